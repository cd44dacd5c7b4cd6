// `acme-agent run --config FILE [--once]`: the command line's side of lifecycle/daemon.h
// (signals, the config file's globals against the command line's, the output).
#include "cli/common.h"
#include "cli/exit_codes.h"
#include "config/config.h"
#include "lifecycle/daemon.h"

#include <sys/stat.h>

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

lifecycle::Runner runner(const Global& cmd, keystore::Registry& reg) {
    return {reg, [&cmd](const config::Config& c) { return settings(merged(cmd, c).global, {}); },
            [&cmd, &reg](const config::Config& c) -> Result<lifecycle::Connection> {
                const Merged m = merged(cmd, c);
                auto state = store::open_storage(m.global.state_dir, m.global.storage);
                if (!state) return std::unexpected(state.error());
                auto client = connect(m.global);
                if (!client) return std::unexpected(client.error());
                auto account = account_for(m.global, m.account, reg, **state, **client, true);
                if (!account) return std::unexpected(account.error());
                return lifecycle::Connection{std::move(*state), std::move(*client),
                                             std::move(*account)};
            }};
}

}  // namespace

Result<Output> run_config(const Global& g, const RunArgs& a, keystore::Registry& reg) {
    // The daemon blocks its signals first, before any thread exists (every thread inherits
    // the mask) and before the config is read: a SIGHUP sent right after start (a reload by
    // systemd) waits for the loop instead of killing the process.
    sigset_t signals;
    ::sigemptyset(&signals);
    for (int sig : {SIGHUP, SIGTERM, SIGINT}) ::sigaddset(&signals, sig);
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
    const lifecycle::Runner run = runner(g, reg);
    Output out;
    if (!a.once) {
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
