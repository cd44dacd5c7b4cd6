// The command line's side of every command: its options (one struct per group), its
// result rendered for --json and for a person, and the few steps that are about the
// command line (settling paths, asking before an irreversible step). What a command does
// is lifecycle/'s.
#pragma once

#include "acme/account.h"
#include "acme/client.h"
#include "config/config.h"
#include "keystore/keystore.h"
#include "lifecycle/account.h"
#include "lifecycle/certificate.h"
#include "lifecycle/keys.h"
#include "lifecycle/report.h"
#include "lifecycle/settings.h"
#include "store/open.h"
#include "store/state.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#ifndef ACME_AGENT_VERSION
// NOLINTNEXTLINE(cppcoreguidelines-macro-usage): CMake passes it as -D; this is the fallback
#define ACME_AGENT_VERSION "dev"
#endif

namespace cli {

using base::Errc;
using base::Error;
using base::fail;
using base::Result;
using nlohmann::json;

using lifecycle::error_json;
using lifecycle::Failures;
using lifecycle::iso_time;
using lifecycle::weaknesses;

// The command line, one struct per command group; each command takes the global options
// and its group's. Defaults live in lifecycle/settings.h (lifecycle::Globals: server, state
// dir, timeouts) and config::CertificateSettings (challenge, ports).
struct Global : lifecycle::Globals {
    Global();  // user_agent: acme-agent/VERSION
    // --tcti: the TPM for tpm2: keys (empty: $ACME_AGENT_TCTI, else device:/dev/tpmrm0)
    std::string tcti;
    bool json_out = false;
    int verbose = 0;
    bool quiet = false;
    std::string log_level;   // --log-level error|warn|info|debug: wins over -q / -v
    std::string log_format;  // --log-format text|json
    // Given on the command line (or in their environment variables): win over run's config.
    bool server_given = false;
    bool ca_file_given = false;
    bool state_dir_given = false;
    bool storage_given = false;
};

// Which ACME account, and what a new one is registered with.
using lifecycle::AccountChoice;

// key generate | list | show | delete | import-hmac
struct KeyArgs {
    std::string key;
    std::string type;
    bool always_auth = false;     // key generate --always-auth
    std::string from;             // key import-hmac --from FILE
    bool yes = false;             // key delete --yes: without asking (needed without a terminal)
    std::string nonce;            // key attest --nonce HEX
    std::string out;              // key attest --out FILE
    std::string format = "cbor";  // key attest --format cbor|json
};

// account register | show | update | deactivate | rollover
struct AccountArgs : AccountChoice {
    std::string key;      // register --key
    std::string new_key;  // rollover --new-key
    bool yes = false;     // deactivate --yes
};

// issue, renew, enroll. Their CertificateSettings (challenge, profile, ...) are kept per
// certificate in live/NAME/renewal.json for renew.
struct CertArgs : config::CertificateSettings, AccountChoice {
    std::string key;
    std::vector<std::string> domains;
    std::string out;
    std::string name;  // renew --name
    bool all = false;  // renew --all
    bool force = false;
    bool renew_new_key = false;  // renew --new-key
    // issue --batch FILE, and the orders of a batch or of renew --all run at once
    std::string batch;
    unsigned jobs = 1;
};

// revoke
struct RevokeArgs : AccountChoice {
    std::string cert_file;
    std::string reason;
    bool with_cert_key = false;
    std::string key;
};

// run --config FILE [--once]
struct RunArgs {
    std::string config;
    bool once = false;
    std::string metrics;  // --metrics [ADDR:]PORT: wins over the config's `metrics`
};

// storage migrate --from DIR --to URL [--overwrite]
struct StorageArgs {
    std::string from;
    std::string to;
    bool overwrite = false;
};

// Everything the command line can give (only the chosen command's group is filled).
struct Args {
    Global global;
    KeyArgs key;
    AccountArgs account;
    CertArgs cert;
    RevokeArgs revoke;
    RunArgs run;
    StorageArgs storage;
};

// What a command returns: JSON for --json, and the text a person reads.
struct Output {
    json data = json::object();
    std::string text;
    // Set when some of several orders failed (issue --batch, renew --all): the output is
    // printed, then this error, and its exit code is the process's.
    std::optional<Error> failure;
    // The exit code when there is no failure (run: kDeployHook when only a deploy hook failed).
    int status = 0;
};

// A command's typed result R in both renderings: json_of(R) for --json, text_of(R) for a
// person (each result type has the two, next to its command; passed here, since a result
// type of the lifecycle library is not found by argument-dependent lookup).
template <class R>
Output render(const R& r, json (*json_of)(const std::type_identity_t<R>&),
              std::string (*text_of)(const std::type_identity_t<R>&)) {
    Output out;
    out.data = json_of(r);
    out.text = text_of(r);
    return out;
}

// The one place that knows every backend: URI scheme -> keystore.
keystore::Registry make_registry(const Global& g);
// Checks and settles what the command line gave before any command runs: a pin-value in a
// key URI is refused (ps shows argv to every local user); every path (key URI files,
// --out, --webroot, --tsig-key, --state-dir, ...) is made absolute against the working
// directory, so what is stored works from cron or systemd (cwd /).
Result<void> accept_command_line(Args& a);
using lifecycle::parse_uri;
// The lifecycle's settings of the command line (challenge, --out, --force, ...).
lifecycle::Settings settings(const Global& g, const CertArgs& a);
// An irreversible step: asks "QUESTION [y/N]" on a terminal; without one, refuses unless
// --yes (Errc::usage naming --yes). `what` names the command in errors.
Result<void> confirm(bool yes, const std::string& what, const std::string& question);

// The account and the CA (lifecycle/account.h).
using lifecycle::account_for;
using lifecycle::connect;
using lifecycle::have_account;
using lifecycle::open_session;
using lifecycle::read_mac_key_file;

// The commands, one group each (app.cpp adds them to the parser: add_*_commands).
Result<Output> key_generate(const Global& g, const KeyArgs& a, keystore::Registry& reg);
Result<Output> key_list(const Global& g, const KeyArgs& a, keystore::Registry& reg);
Result<Output> key_show(const Global& g, const KeyArgs& a, keystore::Registry& reg);
Result<Output> key_delete(const Global& g, const KeyArgs& a, keystore::Registry& reg);
Result<Output> key_import_hmac(const Global& g, const KeyArgs& a, keystore::Registry& reg);
Result<Output> key_attest(const Global& g, const KeyArgs& a, keystore::Registry& reg);
Result<Output> account_register(const Global& g, const AccountArgs& a, keystore::Registry& reg);
Result<Output> account_show(const Global& g, const AccountArgs& a, keystore::Registry& reg);
Result<Output> account_update(const Global& g, const AccountArgs& a, keystore::Registry& reg);
Result<Output> account_deactivate(const Global& g, const AccountArgs& a, keystore::Registry& reg);
Result<Output> account_rollover(const Global& g, const AccountArgs& a, keystore::Registry& reg);
Result<Output> issue(const Global& g, const CertArgs& a, keystore::Registry& reg);
Result<Output> renew(const Global& g, const CertArgs& a, keystore::Registry& reg);
Result<Output> enroll(const Global& g, const CertArgs& a, keystore::Registry& reg);
Result<Output> revoke(const Global& g, const RevokeArgs& a, keystore::Registry& reg);
Result<Output> run_config(const Global& g, const RunArgs& a, keystore::Registry& reg);
// certificates [--name N]: the inventory of the stored certificates (only a.name is used).
Result<Output> certificates(const Global& g, const CertArgs& a, keystore::Registry& reg);
Result<Output> storage_migrate(const Global& g, const StorageArgs& a, keystore::Registry& reg);

}  // namespace cli
