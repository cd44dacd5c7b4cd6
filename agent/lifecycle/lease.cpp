#include "lifecycle/lease.h"

#include "base/log.h"

#include <cstdlib>

namespace lifecycle {

std::chrono::seconds HeldLease::ttl() {
    static const std::chrono::seconds value = [] {
        const char* env = std::getenv("ACME_AGENT_LEASE_TTL");
        if (!env || !*env) return std::chrono::seconds(60);
        char* end = nullptr;
        const long v = std::strtol(env, &end, 10);
        if (end && *end == '\0' && v >= 5 && v <= 3600) return std::chrono::seconds(v);
        base::log::warning("ACME_AGENT_LEASE_TTL is not 5 to 3600 seconds; using 60");
        return std::chrono::seconds(60);
    }();
    return value;
}

base::Result<std::unique_ptr<HeldLease>> HeldLease::take(store::Storage& state,
                                                         const std::string& name) {
    auto lease =
        state.acquire_lease(name, store::default_owner(), ttl(), std::chrono::milliseconds(0));
    if (!lease) {
        base::Error e = lease.error();
        if (e.code == base::Errc::state)
            e.message = "another agent is working on " + name + " (" + e.message +
                        "); it is left to that one";
        return std::unexpected(e);
    }
    return std::unique_ptr<HeldLease>(new HeldLease(state, std::move(*lease)));
}

HeldLease::HeldLease(store::Storage& state, store::Lease lease)
    : state_(state), lease_(std::move(lease)), keeper_([this] { keep(); }) {}

HeldLease::~HeldLease() {
    {
        const std::lock_guard lock(mutex_);
        stop_ = true;
    }
    stop_cv_.notify_all();
    keeper_.join();
    if (auto r = state_.release_lease(lease_); !r)
        base::log::warning("lease " + lease_.name + ": " + r.error().describe());
}

void HeldLease::keep() {
    std::unique_lock lock(mutex_);
    while (!stop_cv_.wait_for(lock, ttl() / 3, [this] { return stop_; })) {
        if (auto r = state_.extend_lease(lease_, ttl()); !r) {
            lost_ = r.error();
            base::log::warning("lease " + lease_.name + ": " + r.error().describe());
            return;
        }
    }
}

base::Result<void> HeldLease::check() const {
    const std::lock_guard lock(mutex_);
    if (lost_) return std::unexpected(*lost_);
    return state_.check_lease(lease_);
}

}  // namespace lifecycle
