// The pieces of the dns-01 solvers (solver.h: make_dns01_hook, make_dns01_rfc2136) that
// tests and the CLI need on their own: name checks, the TSIG key-file parser, the server
// address parser, and factories with the time limits as parameters.
#pragma once

#include "base/bytes.h"
#include "challenge/solver.h"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace challenge {

// True when `name` can be put under "_acme-challenge.": only [A-Za-z0-9.-], labels of
// 1..63 characters, at most 253 in all, no leading, trailing or doubled dot. The name comes
// from the ACME server, so this is checked before it reaches a hook or a DNS packet
// (SECURITY.md rule 8).
bool valid_dns01_identifier(std::string_view name);

// "_acme-challenge." + identifier + "." (RFC 8555 §8.4).
std::string dns01_record_name(const std::string& identifier);

// A TSIG key (RFC 8945) as BIND's key file holds it. `algorithm` is the canonical name
// with a trailing dot ("hmac-sha256."); `secret` is the base64 text of the file.
struct TsigKey {
    std::string name;
    std::string algorithm;
    base::Secret secret;
};

// Parses BIND's key-statement syntax as written by tsig-keygen / ddns-confgen:
//   key "name" { algorithm hmac-sha256; secret "base64"; };
// with #, // and /* */ comments. Exactly one key statement; algorithms hmac-sha256,
// hmac-sha384, hmac-sha512. Errc::usage naming `where` and the line; no message ever
// holds the secret or any text of the secret clause.
Result<TsigKey> parse_tsig_key(std::string_view text, const std::string& where);
// Reads (at most 64 KiB) and parses a key file: Errc::not_found / Errc::io / Errc::usage.
Result<TsigKey> read_tsig_key_file(const std::string& path);

// "HOST[:PORT]" with HOST an IPv4 literal or a bracketed IPv6 literal ("[::1]:5353"); a
// bare IPv6 literal without a port is accepted too. Port defaults to 53. Errc::usage.
struct DnsServer {
    std::string address;  // the literal without brackets
    std::uint16_t port = 53;
    [[nodiscard]] std::string to_string() const;  // "127.0.0.1:53", "[::1]:53"
};
Result<DnsServer> parse_dns_server(const std::string& text);

// make_dns01_hook with the hook's time limit as a parameter (120 s there).
std::unique_ptr<Solver> make_dns01_hook(std::string command, std::chrono::milliseconds timeout);

// make_dns01_rfc2136 with its limits as parameters: `wait` bounds present()'s wait for the
// server to answer the new TXT record (60 s there), `query_timeout` each DNS exchange
// (5 s there).
std::unique_ptr<Solver> make_dns01_rfc2136(std::string server, std::string tsig_key_file,
                                           std::chrono::milliseconds wait,
                                           std::chrono::milliseconds query_timeout);

}  // namespace challenge
