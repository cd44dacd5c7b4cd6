// The lease an agent holds on a certificate while it orders or renews it (store::Storage's
// per-certificate lease): taken before anything is decided, kept alive on a thread while
// the order runs, checked before the result is stored, released at the end. With the
// state dir it keeps two agents on one machine apart; with PostgreSQL, a fleet.
#pragma once

#include "store/storage.h"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace lifecycle {

class HeldLease {
  public:
    // How long a grant lasts: ACME_AGENT_LEASE_TTL seconds (5 to 3600), default 60. It is
    // extended every third of that while held, so a holder that dies frees it at most this
    // long after its last extension (a shorter one: a faster takeover, more extensions).
    static std::chrono::seconds ttl();

    // Takes the lease on `name` without waiting: Errc::state "another agent (OWNER) is
    // working on NAME" when someone else holds it.
    static base::Result<std::unique_ptr<HeldLease>> take(store::Storage& state,
                                                         const std::string& name);
    HeldLease(const HeldLease&) = delete;
    HeldLease& operator=(const HeldLease&) = delete;
    HeldLease(HeldLease&&) = delete;
    HeldLease& operator=(HeldLease&&) = delete;
    ~HeldLease();  // stops extending, releases

    // Ok while the lease is still this agent's; Errc::state once it was lost (an extension
    // failed, or it expired): the caller must not act on the certificate any more.
    [[nodiscard]] base::Result<void> check() const;

  private:
    HeldLease(store::Storage& state, store::Lease lease);
    void keep();

    store::Storage& state_;
    store::Lease lease_;
    mutable std::mutex mutex_;
    std::condition_variable stop_cv_;
    bool stop_ = false;
    std::optional<base::Error> lost_;
    std::thread keeper_;
};

}  // namespace lifecycle
