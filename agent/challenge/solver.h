// A challenge solver (lego's two-method shape): make the proof visible, then take it down.
#pragma once

#include "keystore/error.h"

#include <memory>
#include <string>

namespace challenge {

using keystore::Result;

class Solver {
public:
    virtual ~Solver() = default;
    // "http-01", "dns-01", "tls-alpn-01": the challenge type this solver answers.
    [[nodiscard]] virtual std::string type() const = 0;
    // Publishes the key authorization for `identifier` (a DNS name or IP) and `token`.
    virtual Result<void> present(const std::string& identifier, const std::string& token,
                                 const std::string& key_authorization) = 0;
    // Takes it down again; never fails (problems are logged).
    virtual void cleanup(const std::string& identifier, const std::string& token) = 0;
};

// http-01 through the built-in responder on `listen` ("[ADDR:]PORT"); it binds at the
// first present() and closes when the solver is destroyed.
std::unique_ptr<Solver> make_http01_server(std::string listen);
// http-01 through files under DIR/.well-known/acme-challenge/ served by an existing server.
std::unique_ptr<Solver> make_http01_webroot(std::string dir);

}  // namespace challenge
