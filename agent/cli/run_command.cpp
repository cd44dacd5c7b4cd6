// `acme-agent run --config FILE [--once]`: keeps the certificates of a config file issued
// and fresh, and runs each one's deploy hook after it changes.
#include "base/files.h"
#include "base/log.h"
#include "base/subprocess.h"
#include "cli/certs.h"
#include "cli/common.h"
#include "cli/exit_codes.h"
#include "config/config.h"
#include "x509/cert.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>

namespace cli {

namespace {

using Clock = std::chrono::system_clock;
using std::chrono::seconds;

// The command line's settings with the config file's account and globals. Globals given
// explicitly (command line or environment) win over the file's.
Options merged(const Options& cmd, const config::Config& c) {
    Options o = cmd;
    if (!cmd.server_given && c.server) o.server = *c.server;
    if (!cmd.ca_file_given && c.ca_file) o.ca_file = *c.ca_file;
    if (!cmd.state_dir_given && c.state_dir) o.state_dir = *c.state_dir;
    o.account_key = c.account_key;
    o.emails = c.emails;
    o.agree_tos = c.agree_tos;
    o.eab_kid = c.eab_kid;
    o.eab_hmac_key = c.eab_hmac_key;
    return o;
}

// The settings of one configured certificate: the config is the truth, nothing is taken
// from what the state dir recorded at its last issue.
Options for_certificate(const Options& base, const config::Certificate& c) {
    Options o = base;
    o.name = c.name;
    o.domains = c.domains;
    o.key = c.key;
    // Only the settings part of each: the rest of `c` has no place in Options.
    static_cast<config::CertificateSettings&>(o) =
        static_cast<const config::CertificateSettings&>(c);
    o.out.clear();
    o.force = false;
    o.renew_new_key = false;
    o.jobs = 1;
    return o;
}

// A key URI as a hook may see it: no pin-value (to_string never prints one) and no
// pin-source either (where the PIN lives is not the hook's business). Values are
// percent-encoded, so '&' and '?' only ever separate attributes.
std::string without_pin(const std::string& uri) {
    const auto q = uri.find('?');
    if (q == std::string::npos) return uri;
    std::string out = uri.substr(0, q);
    std::string rest = uri.substr(q + 1);
    char sep = '?';
    std::size_t start = 0;
    while (start <= rest.size()) {
        auto end = rest.find('&', start);
        if (end == std::string::npos) end = rest.size();
        const std::string attr = rest.substr(start, end - start);
        if (!attr.empty() && !attr.starts_with("pin-")) {
            out += sep + attr;
            sep = '&';
        }
        start = end + 1;
    }
    return out;
}

// Runs `command` with /bin/sh -c through base::subprocess: fds 0-2 only, PATH, HOME,
// LANG and `vars` as its environment, its output captured (the last 16 KiB), killed with
// its process group after `timeout`. "" when it exits 0 (its output, if any, logged), else
// what went wrong with the end of its output.
std::string run_hook(const std::string& name, const std::string& command,
                     const std::vector<std::string>& vars, unsigned timeout) {
    base::subprocess::Command cmd;
    cmd.argv = base::subprocess::shell(command);
    cmd.env = vars;
    cmd.timeout = seconds(timeout);
    auto r = base::subprocess::run(cmd);
    if (!r) return "could not be started: " + r.error().message;
    const std::string output = r->quoted_output();
    if (r->ok()) {
        if (!output.empty()) base::log::info("run: " + name + ": deploy hook: " + output);
        return "";
    }
    return r->status(cmd.timeout) + (output.empty() ? "" : "; its output ends with:\n" + output);
}

// What happened to one configured certificate in one pass.
struct Outcome {
    json entry;
    std::string text;
    std::optional<Error> error;  // the certificate could not be issued or renewed
    bool hook_failed = false;
    Clock::time_point next;  // when it is due next
};

std::vector<std::string> sorted(std::vector<std::string> v) {
    std::ranges::sort(v);
    return v;
}

// Issues `c` when missing (or when its key or names changed in the config), renews it when
// due, then runs its deploy hook if it got a new certificate or a previous hook failed.
Outcome handle(const Options& base, const config::Certificate& c, unsigned hook_timeout,
               keystore::Registry& reg, store::StateDir& state, acme::Client& client,
               const AccountCtx& account) {
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
    const Options co = for_certificate(base, c);
    const std::string live = state.path() + "/live/" + store::safe_name(c.name);

    auto uri = parse_uri(c.key, "key");
    if (!uri) return failed(uri.error());
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
        if (sorted(stored_domains(stored_record(**stored), *leaf)) != sorted(c.domains))
            why = "its domains changed in the config";
        if (why.empty() && (*stored)->key_uri != uri->to_string()) {
            // The same key may be written two ways (with or without its id): compare keys.
            auto k = open_signing_key(co, reg, *uri);
            if (!k) return failed(k.error());
            key = *k;
            if (key->public_key_der() != leaf->spki) why = "its key changed in the config";
        }
        if (why.empty()) {
            auto due = due_for_renewal(client, *leaf, c.renew_before_days);
            if (!due) return failed(due.error());
            if (due->due) {
                why = "due (" + due->why + ")";
                if (client.directory().renewal_info && !leaf->aki.empty())
                    replaces = acme::ari_cert_id(leaf->aki, leaf->serial_der);
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
    if (!why.empty()) {
        base::log::info("run: " + c.name + ": " + why);
        if (!key) {
            auto k = open_signing_key(co, reg, *uri);
            if (!k) return failed(k.error());
            key = *k;
        }
        if (auto r = check_local(co); !r) return failed(r.error());
        // Owed from here on: a crash after the certificate is stored still runs the hook.
        if (!c.deploy_hook.empty())
            if (auto w = state.set_deploy_pending(c.name, true); !w) return failed(w.error());
        auto r = obtain(co, state, client, account, key, c.domains, replaces);
        if (!r) return failed(r.error());
        const std::string key_uri = key->uri().to_string();
        out.entry = describe(*r, key_uri);
        out.entry["name"] = c.name;
        out.entry["action"] = *stored ? "renewed" : "issued";
        out.text =
            c.name + ": " + (*stored ? "renewed" : "issued") + "\n" + describe_text(*r, key_uri);
        fresh = true;
        if (auto due = due_for_renewal(client, r->issued.leaf, c.renew_before_days))
            out.next = due->at;
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
    const std::string key_uri = fresh     ? key->uri().to_string()
                                : *stored ? (*stored)->key_uri
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
    std::fprintf(stderr,
                 "acme-agent: error: %s: deploy hook %s; the certificate is stored, the hook "
                 "runs again on the next run\n",
                 base::printable(c.name).c_str(), problem.c_str());
    return out;
}

// Per certificate: how often it failed in a row and when to try again (the daemon only).
class Backoff {
  public:
    Clock::time_point retry_at(const std::string& name) const {
        auto it = entries_.find(name);
        return it == entries_.end() ? Clock::time_point{} : it->second.at;
    }
    // `not_before`: the CA asked not to be asked again until then (Retry-After).
    Clock::time_point failed(const std::string& name,
                             std::optional<std::int64_t> not_before = std::nullopt) {
        auto& e = entries_[name];
        e.count = std::min(e.count + 1, 10u);
        // 1 min, 2, 4 ... capped at 6 h, then up to a tenth more so that agents spread out.
        const seconds delay =
            std::min<seconds>(seconds(60L << (e.count - 1)), std::chrono::hours(6));
        std::uniform_int_distribution<long> jitter(0, delay.count() / 10);
        e.at = Clock::now() + delay + seconds(jitter(rng_));
        if (not_before) e.at = std::max(e.at, Clock::time_point(seconds(*not_before)));
        return e.at;
    }
    void ok(const std::string& name) { entries_.erase(name); }
    void clear() { entries_.clear(); }

  private:
    struct Entry {
        unsigned count = 0;
        Clock::time_point at;
    };
    std::map<std::string, Entry> entries_;
    std::mt19937 rng_{std::random_device{}()};
};

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

struct Pass {
    json entries = json::array();
    std::string text;
    Failures failures;
    std::size_t hooks_failed = 0;
    Clock::time_point next = Clock::time_point::max();
};

// True when SIGTERM or SIGINT waits (the daemon blocks them): stop between certificates.
bool stop_requested() {
    sigset_t p;
    return ::sigpending(&p) == 0 &&
           (::sigismember(&p, SIGTERM) == 1 || ::sigismember(&p, SIGINT) == 1);
}

// One pass over the configured certificates. `backoff` (the daemon) skips those waiting
// for a retry and records failures.
Pass run_pass(const Options& cmd, const config::Config& cfg, keystore::Registry& reg,
              Backoff* backoff) {
    Pass pass;
    const Options base = merged(cmd, cfg);
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
        }
        return pass;
    };
    auto state = store::StateDir::open(base.state_dir);
    if (!state) return all_failed(state.error());
    auto client = connect(base);
    if (!client) return all_failed(client.error());
    auto account = account_for(base, reg, *state, **client, true);
    if (!account) return all_failed(account.error());

    for (const auto& c : cfg.certificates) {
        if (backoff && stop_requested()) break;
        if (backoff && backoff->retry_at(c.name) > Clock::now()) {
            pass.next = std::min(pass.next, backoff->retry_at(c.name));
            pass.entries.push_back({{"name", c.name},
                                    {"action", "waiting"},
                                    {"retry_at", iso_time(backoff->retry_at(c.name))}});
            continue;
        }
        Outcome o = handle(base, c, cfg.deploy_hook_timeout, reg, *state, **client, *account);
        pass.entries.push_back(o.entry);
        pass.text += o.text;
        if (backoff) log_lines(o.text);
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

Result<Output> run_once(const Options& o, const config::Config& cfg, keystore::Registry& reg) {
    Pass pass = run_pass(o, cfg, reg, nullptr);
    Output out;
    out.data = {{"config", cfg.path},
                {"certificates", pass.entries},
                {"failed", pass.failures.count},
                {"hooks_failed", pass.hooks_failed}};
    out.text = pass.text;
    out.failure = pass.failures.summary(cfg.certificates.size(), " certificates");
    if (!out.failure && pass.hooks_failed) {
        out.status = kDeployHook;
    }
    return out;
}

// The signals the daemon waits for with sigtimedwait.
sigset_t daemon_signals() {
    sigset_t set;
    ::sigemptyset(&set);
    ::sigaddset(&set, SIGHUP);
    ::sigaddset(&set, SIGTERM);
    ::sigaddset(&set, SIGINT);
    return set;
}

// `set` is blocked in every thread (run_config blocks it first thing).
Result<Output> run_daemon(const Options& o, config::Config cfg, keystore::Registry& reg,
                          const sigset_t& set) {
    Backoff backoff;
    std::mt19937 rng{std::random_device{}()};
    base::log::info("run: " + std::to_string(cfg.certificates.size()) + " certificate(s) from " +
                    cfg.path);
    for (;;) {
        const Pass pass = run_pass(o, cfg, reg, &backoff);
        // Wake when the first certificate is due or a retry is, at least every 6 hours (the
        // CA's ARI window may move), a little later at random so that agents spread out.
        const auto now = Clock::now();
        auto wait = std::chrono::duration_cast<seconds>(
            std::min(pass.next, now + std::chrono::hours(6)) - now);
        wait = std::max(wait, seconds(1));
        std::uniform_int_distribution<long> jitter(0, std::min<long>(wait.count() / 10, 300));
        wait += seconds(jitter(rng));
        base::log::info("run: next check at " + iso_time(now + wait));
        const auto deadline = std::chrono::steady_clock::now() + wait;
        bool reload = false;
        for (;;) {
            const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) break;
            timespec ts{static_cast<time_t>(left.count() / 1000000000),
                        static_cast<long>(left.count() % 1000000000)};
            const int sig = ::sigtimedwait(&set, nullptr, &ts);
            if (sig < 0) {
                if (errno == EINTR) continue;
                break;  // EAGAIN: time to look again
            }
            if (sig == SIGHUP) {
                reload = true;
                break;
            }
            base::log::info(std::string("run: stopping (") +
                            (sig == SIGTERM ? "SIGTERM" : "SIGINT") + ")");
            Output out;
            out.data = {{"stopped", sig == SIGTERM ? "SIGTERM" : "SIGINT"}};
            return out;
        }
        if (reload) {
            auto fresh = config::load(o.config);
            if (!fresh) {
                std::fprintf(stderr,
                             "acme-agent: error: %s; keeping the configuration loaded before\n",
                             fresh.error().describe().c_str());
            } else {
                cfg = std::move(*fresh);
                backoff.clear();
                base::log::info("run: reloaded " + cfg.path + ": " +
                                std::to_string(cfg.certificates.size()) + " certificate(s)");
            }
        }
    }
}

}  // namespace

Result<Output> run_config(const Options& o, keystore::Registry& reg) {
    // The daemon blocks its signals first, before any thread exists (every thread inherits
    // the mask) and before the config is read: a SIGHUP sent right after start (a reload by
    // systemd) waits for the loop instead of killing the process.
    const sigset_t signals = daemon_signals();
    if (!o.once) ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    // A bad file stops here, before the state dir or the CA is touched.
    auto cfg = config::load(o.config);
    if (!cfg) return std::unexpected(cfg.error());
    if (cfg->certificates.empty())
        return fail(Errc::usage, o.config, "no [[certificate]] tables: nothing to keep issued");
    if (const Options base = merged(o, *cfg); !base.ca_file.empty()) {
        struct stat st{};
        if (::stat(base.ca_file.c_str(), &st) != 0)
            return fail(Errc::usage, o.config, "ca_file " + base.ca_file + " does not exist");
    }
    if (o.once) return run_once(o, *cfg, reg);
    return run_daemon(o, std::move(*cfg), reg, signals);
}

}  // namespace cli
