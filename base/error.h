// Errors and Result<T> shared by every layer of acme-agent.
#pragma once

#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>

namespace base {

// What went wrong, at the level a caller (and a user) can act on.
// Each code maps to one process exit code in the CLI (see README "Exit codes").
enum class Errc {
    usage,          // bad command line, malformed URI, unknown algorithm
    not_found,      // key or object absent
    exists,         // object already there (generate refuses to overwrite)
    token_absent,   // no token / slot matches the URI
    module_load,    // PKCS#11 module or TSS library cannot be loaded
    pin_incorrect,  // CKR_PIN_INCORRECT / TPM auth failure
    pin_locked,     // CKR_PIN_LOCKED / TPM lockout
    unsupported,    // the backend cannot do this (algorithm, operation)
    hardware,       // any other failure reported by the token or TPM
    io,             // file system
    network,        // connect, TLS, timeouts
    protocol,       // the server sent something that breaks the protocol
    server,         // the server refused (an ACME problem document)
    state,          // the state dir is locked or inconsistent
    internal,       // a bug or an OpenSSL failure that should not happen
};

std::string_view errc_name(Errc code);

struct Error {
    Errc code = Errc::internal;
    std::string where;                    // the call or step that failed, e.g. "C_Login"
    std::string message;                  // for a human; never holds a PIN or key material
    std::optional<std::uint64_t> native;  // CK_RV or TSS2_RC when there is one
    // A server that asked to be left alone until then (Retry-After beyond what the agent
    // waits in process): seconds since the epoch. The CLI reports it, `run` waits for it.
    std::optional<std::int64_t> retry_at = std::nullopt;

    // "where: message (native 0x..)", through printable(): ready for a terminal
    [[nodiscard]] std::string describe() const;
};

template <typename T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> fail(Errc code, std::string where, std::string message,
                                   std::optional<std::uint64_t> native = std::nullopt) {
    return std::unexpected(Error{code, std::move(where), std::move(message), native});
}

}  // namespace base
