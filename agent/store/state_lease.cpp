// The state dir's leases (store::Storage): leases/NAME.json holds {owner, expires_ms, fence}.
// A record is read and replaced only while leases/ itself is flock()ed (the short critical
// section a database gets from a transaction), and replaced whole (write, rename), so a
// reader without that lock still sees a whole record. The holder keeps the record it wrote
// open and flock()ed: a record whose flock is free has no live holder (its process died or
// dropped the lease), and is free at once rather than at expiry.
#include "store/failpoint.h"
#include "store/state.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <thread>

namespace store {

using base::Create;
using base::Dir;
using base::Errc;
using base::fail;
using std::chrono::milliseconds;

namespace {

constexpr std::size_t max_owner_length = 256;

struct FlockHold final : Lease::Hold {
    explicit FlockHold(int held) : fd(held) {}
    FlockHold(const FlockHold&) = delete;
    FlockHold& operator=(const FlockHold&) = delete;
    FlockHold(FlockHold&&) = delete;
    FlockHold& operator=(FlockHold&&) = delete;
    ~FlockHold() override { ::close(fd); }  // releases the flock
    int fd;
};

struct Record {
    std::string owner;  // empty: released
    std::int64_t expires_ms = 0;
    std::uint64_t fence = 0;
};

std::int64_t now_ms() {
    return std::chrono::duration_cast<milliseconds>(Clock::now().time_since_epoch()).count();
}

Clock::time_point at_ms(std::int64_t ms) {
    return Clock::time_point(milliseconds(ms));
}

std::string file_of(const std::string& name) {
    return safe_name(name) + ".json";
}

// leases/, opened by this call (a descriptor, and so a flock, of its own) and, with
// `exclusive`, flock()ed until it is closed.
Result<Dir> open_leases(const Dir& state, bool exclusive) {
    auto dir = state.sub("leases", Create::yes, 0700);
    if (!dir) return dir;
    if (exclusive)
        while (::flock(dir->fd(), LOCK_EX) != 0)
            if (errno != EINTR) return fail(Errc::io, dir->path(), std::strerror(errno));
    return dir;
}

Result<std::optional<Record>> read_record(const Dir& leases, const std::string& file) {
    auto text = leases.read_file(file, 4096);
    if (!text) {
        if (text.error().code == Errc::not_found) return std::optional<Record>{};
        return std::unexpected(text.error());
    }
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (!j.is_object() || !j["owner"].is_string() || !j["expires_ms"].is_number_integer() ||
        !j["fence"].is_number_unsigned())
        return fail(Errc::state, leases.path() + "/" + file,
                    "damaged lease record; remove it when no agent is running");
    return Record{j["owner"].get<std::string>(), j["expires_ms"].get<std::int64_t>(),
                  j["fence"].get<std::uint64_t>()};
}

// Whether a process holds the record's flock (called with leases/ locked, so the holder
// is not between writing its record and taking the flock).
bool holder_alive(const Dir& leases, const std::string& file) {
    const int fd = ::openat(leases.fd(), file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return false;
    const bool busy = ::flock(fd, LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    ::close(fd);
    return busy;
}

// Writes the record (with leases/ locked) and, for a holder, opens and flock()s it.
Result<std::unique_ptr<Lease::Hold>> write_record(const Dir& leases, const std::string& file,
                                                  const Record& rec) {
    const nlohmann::json j{
        {"owner", rec.owner}, {"expires_ms", rec.expires_ms}, {"fence", rec.fence}};
    if (auto r = leases.write_file(file, j.dump() + "\n", 0600); !r)
        return std::unexpected(r.error());
    if (rec.owner.empty()) return std::unique_ptr<Lease::Hold>{};
    failpoint("lease-written");
    const int fd = ::openat(leases.fd(), file.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return fail(Errc::io, leases.path() + "/" + file, std::strerror(errno));
    if (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
        const int e = errno;
        ::close(fd);
        return fail(Errc::io, leases.path() + "/" + file, std::strerror(e));
    }
    return std::unique_ptr<Lease::Hold>(std::make_unique<FlockHold>(fd));
}

// Why `lease` is no longer held, given the current record (none when it is held).
std::optional<std::string> lost(const Lease& lease, const std::optional<Record>& rec) {
    if (!lease.hold) return "it was released";
    if (!rec || rec->fence != lease.fence || rec->owner != lease.owner) {
        if (rec && !rec->owner.empty())
            return "it passed to " + rec->owner + " (fence " + std::to_string(rec->fence) + ")";
        return "it was freed";
    }
    if (rec->expires_ms <= now_ms()) return "it expired";
    return std::nullopt;
}

base::Error lost_error(const Lease& lease, const std::string& why) {
    return fail(Errc::state, "lease on " + lease.name,
                "no longer held by " + lease.owner + " (fence " + std::to_string(lease.fence) +
                    "): " + why + "; stop acting on this certificate")
        .error();
}

Result<void> check_terms(const std::string& owner, milliseconds ttl) {
    if (owner.empty() || owner.size() > max_owner_length)
        return fail(Errc::usage, "lease owner",
                    "an owner id of 1 to " + std::to_string(max_owner_length) + " characters");
    if (ttl < milliseconds(1)) return fail(Errc::usage, "lease", "a lease lasts 1 ms or more");
    return {};
}

}  // namespace

Result<Lease> StateDir::acquire_lease(const std::string& name, const std::string& owner,
                                      milliseconds ttl, milliseconds wait) {
    if (auto r = check_name(name); !r) return std::unexpected(r.error());
    if (auto r = check_terms(owner, ttl); !r) return std::unexpected(r.error());
    const std::string file = file_of(name);
    const auto deadline = std::chrono::steady_clock::now() + wait;
    for (;;) {
        Record held;
        {
            auto leases = open_leases(dir_, true);
            if (!leases) return std::unexpected(leases.error());
            auto rec = read_record(*leases, file);
            if (!rec) return std::unexpected(rec.error());
            const bool taken = *rec && !(*rec)->owner.empty() && (*rec)->expires_ms > now_ms() &&
                               holder_alive(*leases, file);
            if (!taken) {
                const Record next{owner, now_ms() + ttl.count(), *rec ? (*rec)->fence + 1 : 1};
                auto hold = write_record(*leases, file, next);
                if (!hold) return std::unexpected(hold.error());
                return Lease{name, owner, next.fence, at_ms(next.expires_ms), std::move(*hold)};
            }
            held = **rec;
        }
        const auto left = deadline - std::chrono::steady_clock::now();
        if (left <= milliseconds(0))
            return fail(Errc::state, "lease on " + name,
                        "held by " + held.owner + " (fence " + std::to_string(held.fence) +
                            ") for another " + std::to_string(held.expires_ms - now_ms()) +
                            " ms; wait for it to finish");
        // Polled: a flock cannot be waited for with a deadline.
        std::this_thread::sleep_for(
            std::min<std::chrono::steady_clock::duration>(left, milliseconds(10)));
    }
}

Result<void> StateDir::extend_lease(Lease& lease, milliseconds ttl) {
    if (auto r = check_terms(lease.owner, ttl); !r) return r;
    const std::string file = file_of(lease.name);
    auto leases = open_leases(dir_, true);
    if (!leases) return std::unexpected(leases.error());
    auto rec = read_record(*leases, file);
    if (!rec) return std::unexpected(rec.error());
    if (auto why = lost(lease, *rec)) return std::unexpected(lost_error(lease, *why));
    const Record next{lease.owner, now_ms() + ttl.count(), lease.fence};
    auto hold = write_record(*leases, file, next);
    if (!hold) return std::unexpected(hold.error());
    lease.hold = std::move(*hold);
    lease.expires = at_ms(next.expires_ms);
    return {};
}

Result<void> StateDir::check_lease(const Lease& lease) const {
    // The holder's own clock first: past its expiry it has lost, whatever the record says.
    if (Clock::now() >= lease.expires) return std::unexpected(lost_error(lease, "it expired"));
    auto leases = open_leases(dir_, false);
    if (!leases) return std::unexpected(leases.error());
    auto rec = read_record(*leases, file_of(lease.name));
    if (!rec) return std::unexpected(rec.error());
    if (auto why = lost(lease, *rec)) return std::unexpected(lost_error(lease, *why));
    return {};
}

Result<void> StateDir::release_lease(Lease& lease) {
    if (!lease.hold) return {};
    const std::string file = file_of(lease.name);
    auto leases = open_leases(dir_, true);
    if (!leases) return std::unexpected(leases.error());
    auto rec = read_record(*leases, file);
    if (!rec) return std::unexpected(rec.error());
    // The fence stays in the record, so that the next grant's is higher.
    if (*rec && (*rec)->owner == lease.owner && (*rec)->fence == lease.fence)
        if (auto r = write_record(*leases, file, Record{"", 0, lease.fence}); !r)
            return std::unexpected(r.error());
    lease.hold.reset();
    return {};
}

}  // namespace store
