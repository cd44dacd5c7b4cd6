// Fleet mode (docs/fleet.md): agents sharing PostgreSQL answer each other's challenges and
// keep a local copy of every certificate.
//
// - An order's http-01 / tls-alpn-01 challenge is published to the `challenges` table
//   before the CA is told to validate it (publishing()), so whichever node the load
//   balancer sends the CA to can answer it.
// - A `run` daemon keeps a responder on each built-in http-01 and tls-alpn-01 port of its
//   config for as long as it runs (FleetResponders), answering every token any node
//   published; its own orders then only publish.
// - The daemon writes each certificate the database holds to its own DIR/live/NAME/ and
//   runs its deploy hook once per new certificate (copy_current(), write_copy()).
#pragma once

#include "base/error.h"
#include "challenge/solver.h"
#include "config/config.h"
#include "store/pg_storage.h"
#include "store/storage.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace lifecycle {

// Whether fleet mode publishes challenges of this kind: the built-in responders (an
// external web server's webroot and dns-01 stay with the node that orders).
bool published_kind(const config::CertificateSettings& s);

// A solver that publishes each challenge to `pg` (for its lifetime: withdrawn at cleanup)
// and, when `inner` is given, also presents it there (this node's own responder).
std::unique_ptr<challenge::Solver> publishing(store::PgStorage& pg, std::string type,
                                              challenge::Solver* inner);

// The daemon's responders, one per built-in port, answering from the shared storage.
class FleetResponders {
  public:
    // `url`: the shared storage's (store::PgStorage::url()).
    explicit FleetResponders(std::string url);
    ~FleetResponders();
    FleetResponders(const FleetResponders&) = delete;
    FleetResponders& operator=(const FleetResponders&) = delete;

    // Makes sure a responder for `s`'s port (http_port or tls_alpn_port) is up: started at
    // the first call for that port, on a connection of its own to the database. Errc::io
    // when the port cannot be bound.
    base::Result<void> serve(const config::CertificateSettings& s);
    [[nodiscard]] const std::string& url() const { return url_; }

  private:
    struct Port;
    std::string url_;
    std::mutex mutex_;
    std::unique_ptr<store::PgStorage> pg_;  // the responders' lookups
    std::map<std::string, std::unique_ptr<Port>> ports_;
};

// Fleet mode, this node's copy of a certificate in DIR (its live/NAME/): whether it holds
// `cert` already, and writing it there (each file atomically, cert.pem last).
bool copy_current(const std::string& dir, const store::Certificate& cert);
base::Result<void> write_copy(const std::string& dir, const store::Certificate& cert);

}  // namespace lifecycle
