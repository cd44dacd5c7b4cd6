#include "lifecycle/daemon.h"

#include "base/bytes.h"
#include "base/log.h"
#include "lifecycle/deploy_hook.h"
#include "lifecycle/due.h"
#include "lifecycle/keys.h"
#include "lifecycle/solvers.h"
#include "store/pg.h"
#include "x509/cert.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <filesystem>

namespace lifecycle {

namespace {

using std::chrono::seconds;

// The settings of one configured certificate: the config is the truth, nothing is taken
// from what the state dir recorded at its last issue.
Settings for_certificate(const Settings& base, const config::Certificate& c) {
    Settings s = base;
    // Only the settings part of `c`: the rest has no place in Settings.
    static_cast<config::CertificateSettings&>(s) =
        static_cast<const config::CertificateSettings&>(c);
    s.name = c.name;
    s.out.clear();
    s.force = false;
    s.new_key = false;
    s.tag_progress = false;
    return s;
}

// What happened to one configured certificate in one pass.
struct Outcome {
    json entry;
    std::string text;
    std::optional<Error> error;  // the certificate could not be issued or renewed
    bool hook_failed = false;
    Clock::time_point next;  // when it is due next
    // For Runner::observe: the certificate stored at the end, when it is due, and whether
    // an order was attempted (an error is always a failed attempt).
    std::optional<Clock::time_point> not_before, not_after, due;
    bool ordered = false;
};

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::ranges::sort(v);
    return v;
}

// Issues `c` when missing (or when its key or names changed in the config), renews it when
// due, then runs its deploy hook if it got a new certificate or a previous hook failed.
Outcome handle(const Settings& base, const config::Certificate& c, unsigned hook_timeout,
               keystore::Registry& reg, store::Storage& state, acme::Client& client,
               const Account& account, FleetResponders* responders) {
    Outcome out;
    out.entry = {{"name", c.name}};
    out.next = Clock::now() + std::chrono::hours(24);
    auto failed = [&](const Error& e) {
        out.error = e;
        out.entry["action"] = "failed";
        out.entry["error"] = error_json(e);
        out.text = c.name + ": error: " + e.describe() + "\n";
        return out;
    };
    Settings cs = for_certificate(base, c);
    // Fleet mode: hooks see this node's copy; elsewhere the stored certificate itself.
    const std::string live = cs.fleet_live.empty() ? state.certificate_location(c.name)
                                                   : cs.fleet_live + "/" + store::safe_name(c.name);
    if (responders && published_kind(cs)) {
        if (auto r = responders->serve(cs); !r) return failed(r.error());
        cs.publish_only = true;
    }

    if (c.key.empty()) return failed(Error{Errc::usage, "key", "a key URI is required", {}});
    auto uri = keystore::KeyUri::parse(c.key);
    if (!uri) {
        Error e = uri.error();
        e.where = "key";
        return failed(e);
    }
    auto stored = state.certificate(c.name);
    if (!stored) return failed(stored.error());
    keystore::KeyPtr key;
    std::string why;  // why a new certificate is needed ("" if none)
    std::string replaces;
    if (!*stored) {
        why = "not issued yet";
    } else {
        auto leaf = x509::inspect((*stored)->cert_pem);
        if (!leaf) return failed(leaf.error());
        out.not_before = leaf->not_before;
        out.not_after = leaf->not_after;
        if (sorted(stored_domains(stored_record(**stored), *leaf)) != sorted(c.domains))
            why = "its domains changed in the config";
        if (why.empty() && (*stored)->key_uri != uri->to_string()) {
            // The same key may be written two ways (with or without its id): compare keys.
            auto k = open_signing_key(reg, *uri, cs.allow_weak_key);
            if (!k) return failed(k.error());
            key = *k;
            if (key->public_key_der() != leaf->spki) why = "its key changed in the config";
        }
        if (why.empty()) {
            auto due = due_for_renewal(client, *leaf, c.renew_before_days);
            if (!due) return failed(due.error());
            out.due = due->at;
            if (due->due) {
                why = "due (" + due->why + ")";
                replaces = replaces_id(client, *leaf);
            } else {
                out.next = std::min(due->at, due->check_again.value_or(due->at));
                out.entry["action"] = "unchanged";
                out.entry["due_at"] = iso_time(due->at);
                out.text = c.name + ": valid, due for renewal at " + iso_time(due->at) + " (" +
                           due->why + ")\n";
            }
        }
    }

    bool fresh = false;
    std::optional<store::Certificate> latest = *stored;  // what the storage holds now
    std::unique_ptr<HeldLease> lease;
    if (!why.empty()) {
        // One agent acts on a certificate at a time; after taking the lease, look again.
        auto taken = HeldLease::take(state, c.name);
        if (!taken) {
            if (taken.error().code != Errc::state) return failed(taken.error());
            out.entry["action"] = "busy";
            out.text = c.name + ": " + taken.error().message + "\n";
            out.next = Clock::now() + HeldLease::ttl();
            return out;
        }
        lease = std::move(*taken);
        auto again = look_again(state, c.name, *stored);
        if (!again) return failed(again.error());
        latest = std::move(again->now);
        if (again->changed) {
            why.clear();  // another agent did it meanwhile
            out.entry["action"] = "unchanged";
            out.text = c.name + ": renewed meanwhile by another agent\n";
            out.next = Clock::now();  // look at the new one on the next pass
        }
    }
    if (!why.empty()) {
        base::log::info("run: " + c.name + ": " + why);
        if (!key) {
            auto k = open_signing_key(reg, *uri, cs.allow_weak_key);
            if (!k) return failed(k.error());
            key = *k;
        }
        if (auto r = check_local(cs, /*ports=*/!cs.publish_only); !r) return failed(r.error());
        // Owed from here on: a crash after the certificate is stored still runs the hook.
        if (!c.deploy_hook.empty())
            if (auto w = state.set_deploy_pending(c.name, true); !w) return failed(w.error());
        out.ordered = true;
        auto r = obtain(cs, state, client, account, key, c.domains, replaces, nullptr, lease.get());
        if (!r) return failed(r.error());
        if (!cs.fleet_live.empty()) {  // the copy below is of the certificate just stored
            auto now = state.certificate(c.name);
            if (!now) return failed(now.error());
            latest = std::move(*now);
        }
        out.not_before = r->issued.leaf.not_before;
        out.not_after = r->issued.leaf.not_after;
        out.due.reset();
        const std::string key_uri = key->uri().to_string();
        out.entry = describe(*r, key_uri);
        out.entry["name"] = c.name;
        out.entry["action"] = *stored ? "renewed" : "issued";
        out.text =
            c.name + ": " + (*stored ? "renewed" : "issued") + "\n" + describe_text(*r, key_uri);
        fresh = true;
        if (auto due = due_for_renewal(client, r->issued.leaf, c.renew_before_days)) {
            out.next = due->at;
            out.due = due->at;
        }
    }

    // Fleet mode: this node's copy of what the database holds (renewed here or by another
    // node); a new one owes this node's deploy hook (owed before it is written).
    std::string copied_key;  // the key URI of a certificate another node stored
    if (!cs.fleet_live.empty() && latest && !copy_current(live, *latest)) {
        if (!c.deploy_hook.empty())
            if (auto w = state.set_deploy_pending(c.name, true); !w) return failed(w.error());
        if (auto w = write_copy(live, *latest); !w) return failed(w.error());
        if (!fresh) {
            out.entry["action"] = "installed";
            out.text += c.name + ": installed the certificate another node stored\n";
            copied_key = latest->key_uri;
            fresh = true;
        }
    }
    const bool hook_pending = state.deploy_pending(c.name);
    if (c.deploy_hook.empty()) {
        if (hook_pending) (void)state.set_deploy_pending(c.name, false);
        return out;
    }
    if (!fresh && !hook_pending) return out;
    auto abs = [&](const char* file) {
        std::error_code ec;
        auto p = std::filesystem::absolute(live + "/" + file, ec);
        return ec ? live + "/" + file : p.string();
    };
    std::string domains;
    for (const auto& d : c.domains) domains += (domains.empty() ? "" : " ") + d;
    // The key the stored certificate is on: the one just used, else the one it was stored with.
    const std::string key_uri = !copied_key.empty() ? copied_key
                                : fresh && key      ? key->uri().to_string()
                                : *stored           ? (*stored)->key_uri
                                                    : uri->to_string();
    base::log::info("run: " + c.name + ": deploy hook" + (fresh ? "" : " (retry)"));
    const std::string problem =
        run_hook(c.name, c.deploy_hook,
                 {"ACME_AGENT_NAME=" + c.name, "ACME_AGENT_DOMAINS=" + domains,
                  "ACME_AGENT_CERT=" + abs("cert.pem"), "ACME_AGENT_CHAIN=" + abs("chain.pem"),
                  "ACME_AGENT_FULLCHAIN=" + abs("fullchain.pem"),
                  "ACME_AGENT_KEY_URI=" + without_pin(key_uri)},
                 hook_timeout);
    if (problem.empty()) {
        out.entry["deploy_hook"] = {{"ok", true}};
        out.text += c.name + ": deploy hook ok\n";
        if (auto r = state.set_deploy_pending(c.name, false); !r)
            base::log::warning("run: " + c.name + ": " + r.error().describe());
        return out;
    }
    out.hook_failed = true;
    out.entry["deploy_hook"] = {{"ok", false}, {"message", problem}};
    if (!out.entry.contains("action")) out.entry["action"] = "unchanged";
    out.text += c.name + ": deploy hook failed: " + problem + "\n";
    base::log::error(c.name + ": deploy hook " + problem +
                     "; the certificate is stored, the hook runs again on the next run");
    return out;
}

// The daemon's account of a certificate, as log lines on stderr (errors also with -q).
void log_lines(const std::string& text) {
    std::string line;
    for (char ch : text) {
        if (ch != '\n') {
            line += ch;
            continue;
        }
        if (line.find(": error: ") != std::string::npos)
            base::log::warning("run: " + line);
        else
            base::log::info("run: " + line);
        line.clear();
    }
}

// True when SIGTERM or SIGINT waits (the daemon blocks them): stop between certificates.
bool stop_requested() {
    sigset_t p;
    return ::sigpending(&p) == 0 &&
           (::sigismember(&p, SIGTERM) == 1 || ::sigismember(&p, SIGINT) == 1);
}

}  // namespace

std::chrono::seconds Backoff::delay(unsigned failures) {
    const unsigned n = std::clamp(failures, 1u, 10u);
    return std::min<seconds>(seconds(60L << (n - 1)), std::chrono::hours(6));
}

Clock::time_point Backoff::retry_at(const std::string& name) const {
    auto it = entries_.find(name);
    return it == entries_.end() ? Clock::time_point{} : it->second.at;
}

Clock::time_point Backoff::failed(const std::string& name, std::optional<std::int64_t> not_before) {
    auto& e = entries_[name];
    e.count = std::min(e.count + 1, 10u);
    const seconds d = delay(e.count);
    std::uniform_int_distribution<long> jitter(0, d.count() / 10);
    e.at = Clock::now() + d + seconds(jitter(rng_));
    if (not_before) e.at = std::max(e.at, Clock::time_point(seconds(*not_before)));
    return e.at;
}

std::chrono::seconds next_wait(Clock::time_point next, Clock::time_point now, std::mt19937& rng) {
    auto wait =
        std::chrono::duration_cast<seconds>(std::min(next, now + std::chrono::hours(6)) - now);
    wait = std::max(wait, seconds(1));
    std::uniform_int_distribution<long> jitter(0, std::min<long>(wait.count() / 10, 300));
    return wait + seconds(jitter(rng));
}

Pass run_pass(const Runner& runner, const config::Config& cfg, Backoff* backoff,
              std::unique_ptr<FleetResponders>* fleet) {
    Pass pass;
    const Settings base = runner.settings(cfg);
    auto note_failure = [&](const std::string& name, const Error& e) {
        pass.failures.add(e, name);
        if (backoff) pass.next = std::min(pass.next, backoff->failed(name, e.retry_at));
    };
    // Nothing can be done without the state dir, the CA and the account: each certificate
    // failed with that.
    auto all_failed = [&](const Error& e) {
        for (const auto& c : cfg.certificates) {
            pass.entries.push_back(
                {{"name", c.name}, {"action", "failed"}, {"error", error_json(e)}});
            pass.text += c.name + ": error: " + e.describe() + "\n";
            if (backoff) log_lines(c.name + ": error: " + e.describe() + "\n");
            note_failure(c.name, e);
            if (runner.observe)
                runner.observe(cfg, {c.name, std::nullopt, std::nullopt, std::nullopt, false, &e});
        }
        return pass;
    };
    // Fleet mode: the daemon's own responders answer every node's challenges, up before the
    // first order (other nodes' validations may come at once) and whatever happens to this
    // node's CA connection, account or keys (the load balancer still sends it validations).
    // A port that cannot be bound is reported with its certificate, below.
    FleetResponders* responders = nullptr;
    if (const std::string url = runner.storage ? runner.storage(cfg) : std::string();
        fleet && store::pg::is_url(url)) {
        if (!*fleet || (*fleet)->url() != url) *fleet = std::make_unique<FleetResponders>(url);
        responders = fleet->get();
        for (const auto& c : cfg.certificates) (void)responders->serve(for_certificate(base, c));
    }
    auto conn = runner.connect(cfg);
    if (!conn) return all_failed(conn.error());

    for (const auto& c : cfg.certificates) {
        if (backoff && stop_requested()) break;
        if (backoff && backoff->retry_at(c.name) > Clock::now()) {
            pass.next = std::min(pass.next, backoff->retry_at(c.name));
            pass.entries.push_back({{"name", c.name},
                                    {"action", "waiting"},
                                    {"retry_at", iso_time(backoff->retry_at(c.name))}});
            continue;
        }
        // Every line about this certificate carries its name (daemon and JSON log lines).
        const base::log::Context context(c.name);
        Outcome o = handle(base, c, cfg.deploy_hook_timeout, runner.reg, *conn->state,
                           *conn->client, conn->account, responders);
        pass.entries.push_back(o.entry);
        pass.text += o.text;
        if (backoff) log_lines(o.text);
        if (runner.observe) {
            std::optional<bool> renewed;
            if (o.error)
                renewed = false;
            else if (o.ordered)
                renewed = true;
            runner.observe(cfg, {c.name, o.not_before, o.not_after, o.due, renewed,
                                 o.error ? &*o.error : nullptr});
        }
        if (o.error) {
            note_failure(c.name, *o.error);
            continue;
        }
        pass.next = std::min(pass.next, o.next);
        if (o.hook_failed) {
            ++pass.hooks_failed;
            if (backoff) pass.next = std::min(pass.next, backoff->failed(c.name));
        } else if (backoff) {
            backoff->ok(c.name);
        }
    }
    return pass;
}

std::string run_daemon(const Runner& runner, config::Config cfg, const std::string& config_path,
                       const sigset_t& signals) {
    Backoff backoff;
    std::mt19937 rng{std::random_device{}()};
    base::log::info("run: " + std::to_string(cfg.certificates.size()) + " certificate(s) from " +
                    cfg.path);
    if (runner.configured) runner.configured(cfg);
    std::unique_ptr<FleetResponders> fleet;  // fleet mode: up from pass to pass
    for (;;) {
        const Pass pass = run_pass(runner, cfg, &backoff, &fleet);
        // Wake when the first certificate is due or a retry is.
        const auto now = Clock::now();
        const seconds wait = next_wait(pass.next, now, rng);
        base::log::info("run: next check at " + iso_time(now + wait));
        const auto deadline = std::chrono::steady_clock::now() + wait;
        bool reload = false;
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) break;
            timespec ts{static_cast<time_t>(left.count() / 1000000000),
                        static_cast<long>(left.count() % 1000000000)};
            const int sig = ::sigtimedwait(&signals, nullptr, &ts);
            if (sig < 0) {
                if (errno == EINTR) continue;
                break;  // EAGAIN: time to look again
            }
            if (sig == SIGHUP) {
                reload = true;
                break;
            }
            if (sig == SIGUSR1) {
                // The shared storage changed or is back after an outage: look again now,
                // the certificates waiting after a failure included.
                backoff.clear();
                break;
            }
            const std::string name = sig == SIGTERM ? "SIGTERM" : "SIGINT";
            base::log::info("run: stopping (" + name + ")");
            return name;
        }
        if (reload) {
            auto fresh = config::load(config_path);
            if (!fresh) {
                base::log::error(fresh.error().describe() +
                                 "; keeping the configuration loaded before");
            } else {
                cfg = std::move(*fresh);
                backoff.clear();
                if (runner.configured) runner.configured(cfg);
                base::log::info("run: reloaded " + cfg.path + ": " +
                                std::to_string(cfg.certificates.size()) + " certificate(s)");
            }
        }
    }
}

}  // namespace lifecycle
