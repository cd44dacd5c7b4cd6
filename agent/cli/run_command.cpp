// `acme-agent run --config FILE [--once]`: the command line's side of lifecycle/daemon.h
// (signals, the config file's globals against the command line's, the output).
#include "base/log.h"
#include "cli/common.h"
#include "cli/exit_codes.h"
#include "config/config.h"
#include "lifecycle/attempts.h"
#include "lifecycle/daemon.h"
#include "metrics/agent_metrics.h"
#include "metrics/endpoint.h"
#include "metrics/metered_key.h"
#include "store/pg_watch.h"

#include <sys/stat.h>
#include <unistd.h>

#include <csignal>

namespace cli {

namespace {

// The command line's global options with the config file's account and globals. Globals
// given explicitly (command line or environment) win over the file's.
struct Merged {
    Global global;
    AccountChoice account;
};
Merged merged(const Global& cmd, const config::Config& c) {
    Merged m{cmd, {c.account_key, c.emails, c.agree_tos, c.eab_kid, c.eab_hmac_key}};
    if (!cmd.server_given && c.server) m.global.server = *c.server;
    if (!cmd.ca_file_given && c.ca_file) m.global.ca_file = *c.ca_file;
    if (!cmd.state_dir_given && c.state_dir) m.global.state_dir = *c.state_dir;
    if (!cmd.storage_given && c.storage) m.global.storage = *c.storage;
    return m;
}

// What the CA client tells the daemon's metrics (none without --metrics).
acme::ClientObserver observer(metrics::AgentMetrics* am) {
    if (!am) return {};
    return {[am](const acme::RequestEvent& e) { am->acme_request(e.endpoint, e.status, e.took); },
            [am](const acme::RetryEvent& e) {
                am->acme_retry(e.endpoint, e.reason, e.waited, e.server_asked);
            }};
}

lifecycle::Runner runner(const Global& cmd, keystore::Registry& reg, metrics::AgentMetrics* am) {
    lifecycle::Runner r{
        reg, [&cmd](const config::Config& c) { return settings(merged(cmd, c).global, {}); },
        [&cmd, &reg, am](const config::Config& c) -> Result<lifecycle::Connection> {
            const Merged m = merged(cmd, c);
            auto state = store::open_storage(m.global.state_dir, m.global.storage);
            if (!state) return std::unexpected(state.error());
            auto client = connect(m.global, observer(am));
            if (!client) return std::unexpected(client.error());
            auto account = account_for(m.global, m.account, reg, **state, **client, true);
            if (!account) return std::unexpected(account.error());
            return lifecycle::Connection{std::move(*state), std::move(*client),
                                         std::move(*account)};
        }};
    r.storage = [&cmd](const config::Config& c) { return merged(cmd, c).global.storage; };
    // Each attempt is recorded for `acme-agent certificates` (failing to record it is only
    // worth a warning: the renewal itself is what matters).
    r.observe = [&cmd, am](const config::Config& c, const lifecycle::CertificateEvent& e) {
        if (e.renewed)
            if (auto w =
                    lifecycle::record_attempt(merged(cmd, c).global.state_dir, e.name, e.error);
                !w)
                base::log::warning("run: " + e.name + ": " + w.error().describe());
        if (!am) return;
        if (e.not_before && e.not_after)
            am->certificate(e.name, *e.not_before, *e.not_after, e.due);
        if (e.renewed) am->renewal(e.name, *e.renewed);
    };
    if (!am) return r;
    r.configured = [am](const config::Config& c) {
        std::vector<std::string> names;
        names.reserve(c.certificates.size());
        for (const auto& cert : c.certificates) names.push_back(cert.name);
        am->set_certificates(names);
    };
    return r;
}

}  // namespace

Result<Output> run_config(const Global& g, const RunArgs& a, keystore::Registry& reg) {
    // The daemon blocks its signals first, before any thread exists (every thread inherits
    // the mask) and before the config is read: a SIGHUP sent right after start (a reload by
    // systemd) waits for the loop instead of killing the process.
    sigset_t signals;
    ::sigemptyset(&signals);
    for (int sig : {SIGHUP, SIGTERM, SIGINT, SIGUSR1}) ::sigaddset(&signals, sig);
    if (!a.once) ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    // A bad file stops here, before the state dir or the CA is touched.
    auto cfg = config::load(a.config);
    if (!cfg) return std::unexpected(cfg.error());
    if (cfg->certificates.empty())
        return fail(Errc::usage, a.config, "no [[certificate]] tables: nothing to keep issued");
    if (const Global base = merged(g, *cfg).global; !base.ca_file.empty()) {
        struct stat st{};
        if (::stat(base.ca_file.c_str(), &st) != 0)
            return fail(Errc::usage, a.config, "ca_file " + base.ca_file + " does not exist");
    }
    if (a.once && !a.metrics.empty())
        return fail(Errc::usage, "--metrics",
                    "the metrics are served while the daemon runs: use it without --once");
    // The daemon's metrics (--metrics, else the config's `metrics`): served from here until
    // it stops; the keys it opens count their signatures.
    std::unique_ptr<metrics::AgentMetrics> am;
    std::unique_ptr<metrics::Endpoint> endpoint;
    const std::string listen = !a.metrics.empty() ? a.metrics : cfg->metrics.value_or("");
    if (!a.once && !listen.empty()) {
        am = std::make_unique<metrics::AgentMetrics>(ACME_AGENT_VERSION);
        auto started = metrics::Endpoint::start(listen, [m = am.get()] { return m->render(); });
        if (!started) return std::unexpected(started.error());
        endpoint = std::move(*started);
        reg.wrap_opened(
            [m = am.get()](keystore::KeyPtr key) { return metrics::metered(std::move(key), *m); });
    }
    const lifecycle::Runner run = runner(g, reg, am.get());
    Output out;
    if (!a.once) {
        // The daemon's lines carry the time, the level and the certificate (docs/operations.md).
        base::log::set_timestamps(true);
        if (endpoint) base::log::info("run: metrics at http://" + endpoint->address() + "/metrics");
        // Fleet mode: a certificate another node stores wakes the loop (SIGUSR1) at once.
        std::unique_ptr<store::CertificateWatch> watch;
        if (const std::string url = merged(g, *cfg).global.storage; store::pg::is_url(url))
            watch = store::CertificateWatch::start(url, [] { ::kill(::getpid(), SIGUSR1); });
        out.data = {{"stopped", lifecycle::run_daemon(run, std::move(*cfg), a.config, signals)}};
        return out;
    }
    const lifecycle::Pass pass = lifecycle::run_pass(run, *cfg, nullptr);
    out.data = {{"config", cfg->path},
                {"certificates", pass.entries},
                {"failed", pass.failures.count},
                {"hooks_failed", pass.hooks_failed}};
    out.text = pass.text;
    out.failure = pass.failures.summary(cfg->certificates.size(), " certificates");
    if (!out.failure && pass.hooks_failed) out.status = kDeployHook;
    return out;
}

}  // namespace cli
