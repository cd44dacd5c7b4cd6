// Shared by the command implementations: options, output, and the steps several commands
// take (open a key, connect, find the account).
#pragma once

#include "acme/account.h"
#include "acme/client.h"
#include "config/config.h"
#include "keystore/keystore.h"
#include "store/state.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
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

inline constexpr const char* kDefaultServer = "https://acme-v02.api.letsencrypt.org/directory";

// The command line. Its CertificateSettings (challenge, profile, ...) are kept per
// certificate in live/NAME/renewal.json for renew.
struct Options : config::CertificateSettings {
    std::string server = kDefaultServer;
    std::string ca_file;
    unsigned order_timeout = 900;  // --order-timeout: seconds an order may stay `processing`
    unsigned http_timeout = 60;    // --http-timeout: seconds one request to the CA may take
    std::string state_dir = "/var/lib/acme-agent";
    std::string
        tcti;  // --tcti: the TPM for tpm2: keys (empty: $ACME_AGENT_TCTI, else device:/dev/tpmrm0)
    bool json_out = false;
    int verbose = 0;
    bool quiet = false;
    // --allow-weak-key: open a hardware key that can decrypt/unwrap or leave the device
    bool allow_weak_key = false;
    // --yes: key delete / account deactivate without asking (needed without a terminal)
    bool yes = false;

    std::string key;
    std::string type;
    bool always_auth = false;  // key generate --always-auth
    std::string account_key;
    std::vector<std::string> emails;
    bool agree_tos = false;
    std::vector<std::string> domains;
    std::string out;
    std::string new_key;  // account rollover
    // External Account Binding
    std::string eab_kid;
    std::string eab_hmac_key;  // a file holding the base64url key, or a pkcs11: URI
    std::string from;          // key import-hmac --from FILE

    std::string nonce;            // key attest --nonce HEX
    std::string format = "cbor";  // key attest --format cbor|json
    // revoke
    std::string cert_file;
    std::string reason;
    bool with_cert_key = false;
    // renew
    std::string name;
    bool all = false;
    bool force = false;
    bool renew_new_key = false;
    // issue --batch FILE, and the orders of a batch or of renew --all run at once
    std::string batch;
    unsigned jobs = 1;
    // run --config FILE [--once]; the global options given on the command line (or in their
    // environment variables) win over the config file's
    std::string config;
    bool once = false;
    bool server_given = false;
    bool ca_file_given = false;
    bool state_dir_given = false;
};

// The failures of a command over several items (issue --batch, renew --all, run): how
// many, and the first in input order with its label.
struct Failures {
    std::size_t count = 0;
    std::optional<Error> first;
    std::string first_label;

    void add(const Error& e, const std::string& label) {
        if (!count++) {
            first = e;
            first_label = label;
        }
    }
    // The command's failure: the first one's code (so its exit code), its message counting
    // the failures, e.g. "2 of 5<noun> failed; the first: LABEL: ..."; nullopt when none.
    [[nodiscard]] std::optional<Error> summary(std::size_t total, std::string_view noun = "") const;
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

using Command = Result<Output> (*)(const Options&, keystore::Registry&);

// The one place that knows every backend: URI scheme -> keystore.
keystore::Registry make_registry(const Options& o);
// Checks and settles what the command line gave before any command runs: a pin-value in a
// key URI is refused (ps shows argv to every local user); every path (key URI files,
// --out, --webroot, --tsig-key, --state-dir, ...) is made absolute against the working
// directory, so what is stored works from cron or systemd (cwd /).
Result<void> accept_command_line(Options& o);
// Parses a key URI given to `option`; errors name the option.
Result<keystore::KeyUri> parse_uri(const std::string& text, const char* option);
// What makes a hardware key unfit to be an account or certificate key (empty: nothing):
// a PKCS#11 key that is extractable, not sensitive, or may decrypt/unwrap; a TPM key
// without fixedTPM or fixedParent. file: keys are software by choice and never weak here.
Result<std::vector<std::string>> weaknesses(const keystore::Key& key);
// Opens the account or certificate key at `uri`: refused (Errc::usage, naming the
// attribute) when weaknesses() finds one, unless --allow-weak-key.
Result<keystore::KeyPtr> open_signing_key(const Options& o, keystore::Registry& reg,
                                          const keystore::KeyUri& uri);
// An irreversible step: asks "QUESTION [y/N]" on a terminal; without one, refuses unless
// --yes (Errc::usage naming --yes). `what` names the command in errors.
Result<void> confirm(const Options& o, const std::string& what, const std::string& question);
// The local prerequisites of an order, checked before any request to the CA: the --webroot
// directory exists, --out can be written, and (when `ports`) the built-in responder's port
// can be bound. Errc::io naming the option and what to do.
Result<void> check_local(const Options& o, bool ports = true);
// An error as --json prints it: {"code", "where", "message"[, "native"]}.
json error_json(const Error& e);
std::string pem_public_key(const base::Bytes& spki);
std::string iso_time(std::chrono::system_clock::time_point t);

Result<std::unique_ptr<acme::Client>> connect(const Options& o);

// The EAB settings of --eab-kid / --eab-hmac-key (a 0600 file with the base64url key, or
// the pkcs11: URI of an HMAC key in a token), or nullopt when neither is given.
Result<std::optional<acme::Eab>> eab_from(const Options& o, keystore::Registry& reg);
// Reads a base64url MAC key from a file that only its owner can read.
Result<base::Secret> read_mac_key_file(const std::string& source);

// Without --account-key, an account for --server must be stored: Errc::not_found naming
// `account register` otherwise. Checked before the first request.
Result<void> have_account(const Options& o, const store::StateDir& state);

struct AccountCtx {
    keystore::KeyPtr key;
    std::string url;
};
// The account for --server: the stored one, else the one of --account-key (found again
// or, when may_register, registered). Stores what it learns.
Result<AccountCtx> account_for(const Options& o, keystore::Registry& reg, store::StateDir& state,
                               acme::Client& client, bool may_register);

// What most ACME commands start with: the locked state dir, a client for --server and the
// account (registered on the way when `may_register`).
struct Session {
    store::StateDir state;
    std::unique_ptr<acme::Client> client;
    AccountCtx account;
};
Result<Session> open_session(const Options& o, keystore::Registry& reg, bool may_register);

Result<Output> key_generate(const Options& o, keystore::Registry& reg);
Result<Output> key_list(const Options& o, keystore::Registry& reg);
Result<Output> key_show(const Options& o, keystore::Registry& reg);
Result<Output> key_delete(const Options& o, keystore::Registry& reg);
Result<Output> key_import_hmac(const Options& o, keystore::Registry& reg);
Result<Output> key_attest(const Options& o, keystore::Registry& reg);
Result<Output> account_register(const Options& o, keystore::Registry& reg);
Result<Output> account_show(const Options& o, keystore::Registry& reg);
Result<Output> account_update(const Options& o, keystore::Registry& reg);
Result<Output> account_deactivate(const Options& o, keystore::Registry& reg);
Result<Output> account_rollover(const Options& o, keystore::Registry& reg);
Result<Output> issue(const Options& o, keystore::Registry& reg);
Result<Output> renew(const Options& o, keystore::Registry& reg);
Result<Output> enroll(const Options& o, keystore::Registry& reg);
Result<Output> revoke(const Options& o, keystore::Registry& reg);
Result<Output> run_config(const Options& o, keystore::Registry& reg);

}  // namespace cli
