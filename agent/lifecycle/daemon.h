// `run`: keeps the certificates of a config file issued and fresh, runs each one's deploy
// hook after it changes, and (as a daemon) waits for the next one due, retries failures
// with backoff and reloads the config on SIGHUP.
#pragma once

#include "acme/client.h"
#include "config/config.h"
#include "keystore/keystore.h"
#include "lifecycle/certificate.h"
#include "lifecycle/fleet.h"
#include "lifecycle/report.h"
#include "lifecycle/settings.h"
#include "store/state.h"

#include <chrono>
#include <csignal>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>

namespace lifecycle {

using Clock = std::chrono::system_clock;

// Per certificate: how often it failed in a row and when to try again (the daemon only).
class Backoff {
  public:
    explicit Backoff(std::uint32_t seed = std::random_device{}()) : rng_(seed) {}
    // The wait after `failures` failures in a row: 1 min, 2, 4 ... capped at 6 h (before
    // the jitter of up to a tenth more that failed() adds so that agents spread out).
    static std::chrono::seconds delay(unsigned failures);
    Clock::time_point retry_at(const std::string& name) const;
    // `not_before`: the CA asked not to be asked again until then (Retry-After).
    Clock::time_point failed(const std::string& name,
                             std::optional<std::int64_t> not_before = std::nullopt);
    void ok(const std::string& name) { entries_.erase(name); }
    void clear() { entries_.clear(); }

  private:
    struct Entry {
        unsigned count = 0;
        Clock::time_point at;
    };
    std::map<std::string, Entry> entries_;
    std::mt19937 rng_;
};

// The daemon's sleep after a pass whose earliest due time (or retry) is `next`: until then,
// at least 1 s and at most 6 hours (the CA's ARI window may move), plus up to a tenth (at
// most 5 minutes) at random so that agents spread out.
std::chrono::seconds next_wait(Clock::time_point next, Clock::time_point now, std::mt19937& rng);

// What a pass needs from its caller: the state dir, the CA and the account of a config.
struct Connection {
    std::unique_ptr<store::Storage> state;
    std::unique_ptr<acme::Client> client;
    Account account;
};
// What a pass learnt about one configured certificate, for the caller's metrics.
struct CertificateEvent {
    const std::string& name;
    // The stored certificate's validity, when one is stored and could be read.
    std::optional<Clock::time_point> not_before, not_after;
    // When it is due for renewal, when that was worked out.
    std::optional<Clock::time_point> due;
    // The result of the pass's attempt to issue or renew it (nullopt: nothing was due).
    std::optional<bool> renewed;
    // Why it failed (renewed == false), else null.
    const Error* error = nullptr;
};
struct Runner {
    keystore::Registry& reg;
    // The settings every configured certificate starts from (server, allow_weak_key).
    std::function<Settings(const config::Config&)> settings;
    std::function<Result<Connection>(const config::Config&)> connect;
    // Optional: the daemon's configuration, at start and after each reload. (The `= {}`s
    // let `Runner{reg, settings, connect}` leave them out under -Wmissing-field-initializers.)
    // NOLINTNEXTLINE(readability-redundant-member-init)
    std::function<void(const config::Config&)> configured = {};
    // Optional: each configured certificate of `cfg` after each pass has looked at it.
    // NOLINTNEXTLINE(readability-redundant-member-init)
    std::function<void(const config::Config& cfg, const CertificateEvent&)> observe = {};
    // Optional: the storage URL a config names ("" for the state dir); on PostgreSQL the
    // daemon keeps fleet responders (lifecycle/fleet.h).
    // NOLINTNEXTLINE(readability-redundant-member-init)
    std::function<std::string(const config::Config&)> storage = {};
};

// What one pass over the configured certificates did.
struct Pass {
    json entries = json::array();
    std::string text;
    Failures failures;
    std::size_t hooks_failed = 0;
    Clock::time_point next = Clock::time_point::max();
};

// One pass: issues what is missing (or whose key or names changed in the config), renews
// what is due, runs pending deploy hooks. `backoff` (the daemon) skips certificates waiting
// for a retry, records failures, logs each line and stops early on a pending SIGTERM/SIGINT.
// `fleet` (the daemon on shared storage): its responders, made at the first pass on
// PostgreSQL and kept by the caller from pass to pass.
Pass run_pass(const Runner& runner, const config::Config& cfg, Backoff* backoff,
              std::unique_ptr<FleetResponders>* fleet = nullptr);

// Passes until SIGTERM or SIGINT (returned: "SIGTERM" or "SIGINT"); SIGHUP reloads
// `config_path` (a bad file is reported and the old one kept); SIGUSR1 runs a pass now,
// retrying what waits after a failure too (the fleet's certificate watch sends it when
// another node stored a certificate or the database is back). `signals`
// (SIGHUP, SIGTERM, SIGINT, SIGUSR1) must be blocked in every thread.
std::string run_daemon(const Runner& runner, config::Config cfg, const std::string& config_path,
                       const sigset_t& signals);

}  // namespace lifecycle
