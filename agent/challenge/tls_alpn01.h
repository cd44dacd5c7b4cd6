// The built-in tls-alpn-01 responder (RFC 8737, and RFC 8738 §6 for IP identifiers):
// listens on ADDR:PORT only while it is alive and completes a TLS 1.2+ handshake only when
// the client offers ALPN "acme-tls/1" and names, in SNI, an identifier it was given; it
// then presents a self-signed certificate for exactly that identifier carrying the critical
// acmeIdentifier extension, and closes without application data. Every certificate is on
// a throwaway EC P-256 key made in memory (SECURITY.md rule 9). Bounded: at most 16
// concurrent connections, a 5 s deadline per connection, one thread polling non-blocking
// sockets (rule 16).
#pragma once

#include "base/error.h"
#include "challenge/solver.h"

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

namespace challenge {

using base::Result;

class TlsAlpn01Responder {
  public:
    // `listen` is "PORT", "ADDR:PORT" or "[V6ADDR]:PORT"; ADDR defaults to 0.0.0.0.
    // Errc::usage for a malformed spec, Errc::io when the port cannot be bound (the message
    // names ADDR:PORT and the reason), Errc::internal when OpenSSL cannot set up TLS.
    // PORT 0 lets the kernel pick.
    static Result<std::unique_ptr<TlsAlpn01Responder>> start(const std::string& listen);
    ~TlsAlpn01Responder();  // stops listening, drops every connection, joins its thread

    // The port actually bound (the kernel's choice when the spec said 0).
    [[nodiscard]] unsigned short port() const;

    // Answers for `identifier` (a DNS name or an IP literal) from now on with a fresh
    // certificate whose acmeIdentifier is SHA-256(key_authorization); replaces an earlier
    // one for the same identifier. Errc::protocol when the identifier is neither a DNS
    // name nor an IP literal, Errc::internal when OpenSSL fails.
    Result<void> add(const std::string& identifier, const std::string& key_authorization);
    // Stops answering for `identifier`; unknown identifiers are ignored.
    void remove(const std::string& identifier);

    // Fleet mode: where an SNI name not added here is looked up (the identifier and key
    // authorization another node published to the shared storage), on the serve thread, so
    // it must be quick and bounded. Without one, unknown names are refused.
    using Lookup = std::function<std::optional<std::pair<std::string, std::string>>(
        const std::string& server_name)>;
    void set_lookup(Lookup lookup);

  private:
    TlsAlpn01Responder() = default;
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// The solver behind make_tls_alpn01(): binds at the first present(), closes when the last
// live challenge is cleaned up (or the solver is destroyed).
class TlsAlpn01Solver final : public Solver {
  public:
    explicit TlsAlpn01Solver(std::string listen);
    ~TlsAlpn01Solver() override;
    [[nodiscard]] std::string type() const override;
    Result<void> present(const std::string& identifier, const std::string& token,
                         const std::string& key_authorization) override;
    void cleanup(const std::string& identifier, const std::string& token) override;

    // The bound port while the responder is up.
    [[nodiscard]] std::optional<unsigned short> port() const;

  private:
    std::string listen_;
    std::map<std::string, std::string> live_;  // identifier -> the token presented last
    std::unique_ptr<TlsAlpn01Responder> responder_;
};

// The name a validation server sends in SNI for `identifier`, in lower case: the DNS name
// itself (RFC 8737 §3), or for an IP literal its reverse-mapping name (RFC 8738 §6), e.g.
// "1.0.0.127.in-addr.arpa" or the 32-nibble "...ip6.arpa". Errc::protocol for anything else.
Result<std::string> tls_alpn01_server_name(const std::string& identifier);

}  // namespace challenge
