// A challenge solver (lego's two-method shape): make the proof visible, then take it down.
#pragma once

#include "base/error.h"

#include <chrono>
#include <memory>
#include <string>

namespace challenge {

using base::Result;

class Solver {
  public:
    virtual ~Solver() = default;
    // "http-01", "dns-01", "tls-alpn-01": the challenge type this solver answers.
    [[nodiscard]] virtual std::string type() const = 0;
    // Publishes the key authorization for `identifier` (a DNS name without any "*." — for a
    // wildcard authorization the base name — or an IP literal) and `token`.
    virtual Result<void> present(const std::string& identifier, const std::string& token,
                                 const std::string& key_authorization) = 0;
    // Takes it down again; never fails (problems are logged).
    virtual void cleanup(const std::string& identifier, const std::string& token) = 0;
    // True once the agent's own responder has served `token` to the CA (waiting at most
    // `max`); false when it has not, or when this solver cannot tell (webroot, dns-01).
    virtual bool wait_served(const std::string& token, std::chrono::milliseconds max) {
        (void)token;
        (void)max;
        return false;
    }
};

// http-01 through the built-in responder on `listen` ("[ADDR:]PORT"); it binds at the
// first present() and closes when the solver is destroyed.
std::unique_ptr<Solver> make_http01_server(std::string listen);
// http-01 through files under DIR/.well-known/acme-challenge/ served by an existing server.
std::unique_ptr<Solver> make_http01_webroot(std::string dir);

// tls-alpn-01 (RFC 8737) through a built-in responder on `listen` ("[ADDR:]PORT"): only
// ALPN acme-tls/1, SNI must be a name being validated, a self-signed certificate on a
// throwaway key with the critical acmeIdentifier extension. Binds at the first present().
std::unique_ptr<Solver> make_tls_alpn01(std::string listen);

// dns-01 through an executable: `CMD present FQDN VALUE` / `CMD cleanup FQDN VALUE` with
// FQDN = "_acme-challenge.NAME." (lego's exec-provider contract) and the environment
// ACME_AGENT_DOMAIN, ACME_AGENT_TXT_NAME, ACME_AGENT_TXT_VALUE. No shell is involved.
std::unique_ptr<Solver> make_dns01_hook(std::string command);

// dns-01 through RFC 2136 dynamic updates signed with TSIG (a BIND key file), sent to
// `server` ("HOST[:PORT]"); present() returns once that server answers the TXT record
// (bounded wait).
std::unique_ptr<Solver> make_dns01_rfc2136(std::string server, std::string tsig_key_file);

// The dns-01 TXT value: base64url(SHA-256(key authorization)) (RFC 8555 §8.4).
std::string dns01_txt_value(const std::string& key_authorization);

}  // namespace challenge
