#include "cli/app.h"

#include "base/log.h"
#include "cli/common.h"
#include "cli/exit_codes.h"
#include "metrics/metered_key.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <string_view>

namespace cli {

namespace {

// Server text reaches stdout through the JSON encoder (which escapes every control
// character; bytes that are not UTF-8 become U+FFFD rather than an exception) or, as text,
// through base::printable (SECURITY.md rule 19).
std::string json_text(const json& j) {
    return j.dump(2, ' ', false, json::error_handler_t::replace);
}

int report(const Global& g, const Result<Output>& r) {
    if (r) {
        if (g.json_out)
            std::cout << json_text(r->data) << "\n";
        else
            std::cout << base::printable(r->text);
        if (!r->failure) return r->status;
        std::cout.flush();
        // Through the logger: the same line as ever in text, an object with --log-format json.
        base::log::error(r->failure->describe());
        return exit_code(r->failure->code);
    }
    const Error& e = r.error();
    base::log::error(e.describe());
    if (g.json_out) {
        std::cout << json_text(json{{"error", error_json(e)}}) << "\n";
    }
    return exit_code(e.code);
}

// Edit distance, for "did you mean" (command names are short).
std::size_t distance(std::string_view a, std::string_view b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
            diag = up;
        }
    }
    return row[b.size()];
}

// A parser error as every other failure: "acme-agent: error: ..." on stderr (with the
// command a mistyped word was probably meant to be), {"error": ...} on stdout with --json.
int report_parse_error(CLI::App& app, const CLI::ParseError& e, bool json_out) {
    // The deepest command given, and the first word left over where its subcommand belongs.
    CLI::App* at = &app;
    for (;;) {
        auto chosen = at->get_subcommands();
        if (chosen.empty()) break;
        at = chosen.front();
    }
    std::string message = e.what();
    const auto subs = at->get_subcommands([](const CLI::App*) { return true; });
    std::string word;
    // With fallthrough, a word no command takes lands in the top level's leftovers.
    for (const auto& r : app.remaining(true))
        if (!r.starts_with("-")) {
            word = r;
            break;
        }
    if (!subs.empty() && !word.empty()) {
        std::string best;
        std::size_t best_d = 3;  // at most two edits away, or a prefix
        for (const CLI::App* sub : subs) {
            const std::string& n = sub->get_name();
            const std::size_t d = n.starts_with(word) ? 1 : distance(word, n);
            if (d < best_d) best_d = d, best = n;
        }
        message = "unknown command '" + word + "'";
        if (!best.empty()) message += "; did you mean '" + best + "'?";
    }
    std::string path;
    for (const CLI::App* a = at; a && a != &app; a = a->get_parent())
        path.insert(0, path.empty() ? a->get_name() : a->get_name() + " ");
    message += " (see 'acme-agent " + (path.empty() ? "" : path + " ") + "--help')";
    const Error err{Errc::usage, path, message, std::nullopt};
    std::fprintf(stderr, "acme-agent: error: %s\n", err.describe().c_str());
    if (json_out) std::cout << json{{"error", error_json(err)}}.dump(2) << "\n";
    return kUsage;
}

// The --help footer: every exit code (exit_code_table()), as README.md lists them.
std::string exit_code_footer() {
    std::string out = "Exit codes:\n";
    for (const auto& [code, meaning] : exit_code_table())
        out += "  " + std::to_string(code) + (code < 10 ? "   " : "  ") + meaning + "\n";
    return out;
}

using Action = std::function<Result<Output>(keystore::Registry&)>;

// When CLI11 picks `sub`, the command to run is fn with the global options and its group's.
template <class Group, class Fn>
void command(CLI::App* sub, Action& action, const Global& g, const Group& group, Fn fn) {
    sub->callback([&action, &g, &group, fn] {
        action = [&g, &group, fn](keystore::Registry& reg) { return fn(g, group, reg); };
    });
}

const char* const kKeyHelp =
    "key URI (pkcs11:..., tpm2:path=FILE.tss, tpm2:handle=0x81..., file:PATH)";
const char* const kAccountKeyHelp = "account key URI (default: the stored account)";

void add_global_options(CLI::App& app, Global& g) {
    const Global dflt;
    app.add_option("--server", g.server, "ACME directory URL")
        ->default_str(dflt.server)
        ->envname("ACME_AGENT_SERVER");
    app.add_option("--ca-file", g.ca_file,
                   "extra trusted CA (PEM) for the ACME server, e.g. a test CA")
        ->check(CLI::ExistingFile)
        ->envname("ACME_AGENT_CA_FILE");
    app.add_option("--order-timeout", g.order_timeout,
                   "seconds to wait for an order the CA is processing (slow CAs take minutes); "
                   "the order is resumed by the next run after that")
        ->default_str(std::to_string(dflt.order_timeout))
        ->check(CLI::Range(1u, 86400u))
        ->envname("ACME_AGENT_ORDER_TIMEOUT");
    app.add_option("--http-timeout", g.http_timeout,
                   "seconds one request to the CA may take (a stalled request without side "
                   "effects is sent again; newOrder and finalize are never resent blindly)")
        ->default_str(std::to_string(dflt.http_timeout))
        ->check(CLI::Range(1u, 600u))
        ->envname("ACME_AGENT_HTTP_TIMEOUT");
    app.add_option("--state-dir", g.state_dir, "state directory (accounts, certificates)")
        ->default_str(dflt.state_dir)
        ->envname("ACME_AGENT_STATE_DIR");
    app.add_option("--storage", g.storage,
                   "share accounts, orders and certificates with other agents in PostgreSQL: "
                   "postgresql://ROLE@HOST/DB?passfile=FILE (no password in the URL; "
                   "docs/fleet.md)")
        ->envname("ACME_AGENT_STORAGE");
    app.add_option("--tcti", g.tcti,
                   "TPM for tpm2: keys, e.g. device:/dev/tpmrm0 or swtpm:host=127.0.0.1,port=2321 "
                   "(default: $ACME_AGENT_TCTI, else device:/dev/tpmrm0)");
    app.add_flag("--json", g.json_out, "print results as JSON on stdout");
    app.add_flag("-v,--verbose", g.verbose, "more detail on stderr (each retry, each request)");
    app.add_flag("-q,--quiet", g.quiet, "no progress lines on stderr");
    app.add_option("--log-level", g.log_level,
                   "error, warn, info or debug (default info; wins over -q and -v)");
    app.add_option("--log-format", g.log_format,
                   "text (default) or json: one object per line, for log shippers");
    app.add_flag("--allow-weak-key", g.allow_weak_key,
                 "accept an account or certificate key that can leave the device (extractable, "
                 "not sensitive, TPM without fixedTPM/fixedParent) or can decrypt/unwrap");
}

// --eab-kid and --eab-hmac-key, for the commands that may register an account.
void add_eab_options(CLI::App* sub, AccountChoice& a) {
    sub->add_option("--eab-kid", a.eab_kid, "External Account Binding key id from the CA");
    sub->add_option(
        "--eab-hmac-key", a.eab_hmac_key,
        "EAB MAC key: a 0600 file holding it in base64url, or the pkcs11: URI of an HMAC key "
        "in a token (see key import-hmac)");
}

void add_key_commands(CLI::App& app, const Global& g, KeyArgs& a, Action& action) {
    auto* key = app.add_subcommand("key", "manage keys in a token or directory");
    key->require_subcommand(1);
    auto* kgen =
        key->add_subcommand("generate", "generate a key inside the keystore; prints its full URI");
    kgen->add_option("--key", a.key, kKeyHelp)->required();
    kgen->add_option("--type", a.type,
                     std::string("algorithm: ") + std::string(keystore::algorithm_names()))
        ->required();
    kgen->add_flag("--always-auth", a.always_auth,
                   "PKCS#11: the token asks for the PIN (from the URI's pin-source) before every "
                   "signature (CKA_ALWAYS_AUTHENTICATE), as smart cards do");
    command(kgen, action, g, a, key_generate);
    auto* klist = key->add_subcommand("list", "list the keys of a token or directory");
    klist->add_option("--key", a.key, "token URI (pkcs11:token=...) or file:DIR")->required();
    command(klist, action, g, a, key_list);
    auto* kshow = key->add_subcommand(
        "show", "algorithm, public key, JWK thumbprint and hardware properties");
    kshow->add_option("--key", a.key, kKeyHelp)->required();
    command(kshow, action, g, a, key_show);
    auto* kdel = key->add_subcommand(
        "delete", "destroy a key (both halves); asks first, naming the certificates that use it");
    kdel->add_option("--key", a.key, kKeyHelp)->required();
    kdel->add_flag("--yes", a.yes, "do not ask (required when stdin is not a terminal)");
    command(kdel, action, g, a, key_delete);
    auto* kimp = key->add_subcommand(
        "import-hmac", "store an EAB MAC key in a token as a non-extractable HMAC key");
    kimp->add_option("--key", a.key, "pkcs11: URI with object=LABEL for the new key")->required();
    kimp->add_option("--from", a.from, "file (mode 0600) holding the base64url MAC key")
        ->required();
    command(kimp, action, g, a, key_import_hmac);
    auto* katt = key->add_subcommand(
        "attest",
        "TPM evidence that a tpm2: key was made in this TPM (WebAuthn \"tpm\" "
        "attestation statement: TPM2_Certify by the attestation key, EK certificate)");
    katt->add_option("--key", a.key, "tpm2: key URI")->required();
    katt->add_option("--nonce", a.nonce, "the verifier's challenge, hex (1 to 64 bytes)")
        ->required();
    katt->add_option("--out", a.out, "write the attestation object here (else: stdout)");
    katt->add_option("--format", a.format,
                     "cbor (default; on stdout as base64url, the attObj of "
                     "draft-ietf-acme-device-attest) or json (bytes as base64url)")
        ->check(CLI::IsMember({"cbor", "json"}));
    command(katt, action, g, a, key_attest);
}

void add_account_commands(CLI::App& app, const Global& g, AccountArgs& a, Action& action) {
    const char* const stored = "account key URI (default: the stored one)";
    auto* account = app.add_subcommand("account", "ACME account for --server");
    account->require_subcommand(1);
    auto* areg =
        account->add_subcommand("register", "register (or find again) the account of a key");
    areg->add_option("--key", a.key, "account key URI")->required();
    areg->add_option("--email", a.emails, "contact address (repeatable)");
    areg->add_flag("--agree-tos", a.agree_tos, "agree to the CA's terms of service");
    add_eab_options(areg, a);
    command(areg, action, g, a, account_register);
    auto* ashow = account->add_subcommand("show", "the stored account and its status at the CA");
    ashow->add_option("--account-key", a.account_key, stored);
    command(ashow, action, g, a, account_show);
    auto* aupd = account->add_subcommand("update", "replace the account's contact addresses");
    aupd->add_option("--email", a.emails, "contact address (repeatable)")->required();
    aupd->add_option("--account-key", a.account_key, stored);
    command(aupd, action, g, a, account_update);
    auto* adeact =
        account->add_subcommand("deactivate", "deactivate the account at the CA (final)");
    adeact->add_option("--account-key", a.account_key, stored);
    adeact->add_flag("--yes", a.yes, "do not ask (required when stdin is not a terminal)");
    command(adeact, action, g, a, account_deactivate);
    auto* aroll = account->add_subcommand(
        "rollover", "move the account to another key (RFC 8555 section 7.3.5)");
    aroll->add_option("--new-key", a.new_key, "the new account key URI (generate it first)")
        ->required();
    aroll->add_option("--account-key", a.account_key,
                      "current account key URI (default: the stored one)");
    command(aroll, action, g, a, account_rollover);
}

// Challenge options shared by issue, renew and enroll (renew defaults to the stored ones).
void add_challenge_options(CLI::App* sub, CertArgs& a) {
    const config::CertificateSettings dflt;
    sub->add_option("--challenge", a.challenge, "http-01, dns-01 or tls-alpn-01")
        ->default_str(dflt.challenge);
    auto* port =
        sub->add_option("--http-port", a.http_port, "built-in http-01 responder: [ADDR:]PORT")
            ->default_str(dflt.http_port);
    sub->add_option("--webroot", a.webroot, "serve http-01 from DIR/.well-known/acme-challenge/")
        ->excludes(port);
    sub->add_option("--tls-alpn-port", a.tls_alpn_port,
                    "built-in tls-alpn-01 responder: [ADDR:]PORT")
        ->default_str(dflt.tls_alpn_port);
    sub->add_option("--dns-hook", a.dns_hook,
                    "dns-01: run CMD present|cleanup FQDN VALUE (lego exec contract)");
    sub->add_option("--rfc2136", a.rfc2136, "dns-01: send RFC 2136 updates to SERVER[:PORT]");
    sub->add_option("--tsig-key", a.tsig_key, "dns-01: TSIG key file (BIND format) for --rfc2136");
    sub->add_option("--profile", a.profile,
                    "certificate profile offered by the CA (meta.profiles)");
    sub->add_option("--preferred-chain", a.preferred_chain,
                    "pick the chain whose top issuer has this CN");
    sub->add_option("--out", a.out, "also write cert.pem, chain.pem, fullchain.pem here");
    add_eab_options(sub, a);
}

void add_jobs_option(CLI::App* sub, CertArgs& a, const char* what) {
    sub->add_option("--jobs", a.jobs,
                    std::string("orders run at once (1-64) for ") + what +
                        "; they share one connection pool, account and responder")
        ->default_str(std::to_string(CertArgs{}.jobs));
}

// issue, renew, enroll.
void add_certificate_commands(CLI::App& app, const Global& g, CertArgs& a, Action& action) {
    auto* iss = app.add_subcommand("issue", "get a certificate for one or more names");
    iss->add_option("--key", a.key, "certificate key URI (required without --batch)");
    iss->add_option("-d,--domain", a.domains,
                    "DNS name or IP address (repeatable; required without --batch)");
    iss->add_option("--batch", a.batch,
                    "one order per line: KEY-URI NAME [NAME...] ('#' comments, blank lines); "
                    "every line is checked before any order starts");
    add_jobs_option(iss, a, "--batch");
    iss->add_option("--account-key", a.account_key, kAccountKeyHelp);
    iss->add_option("--email", a.emails, "contact, when a new account is registered");
    iss->add_flag("--agree-tos", a.agree_tos,
                  "agree to the CA's terms, when a new account is registered");
    iss->add_flag("--force", a.force,
                  "replace a certificate of the same name that uses another key (see also "
                  "renew --new-key)");
    add_challenge_options(iss, a);
    command(iss, action, g, a, issue);

    auto* ren = app.add_subcommand("renew", "renew the certificates in the state dir that are due");
    auto* rname = ren->add_option("--name", a.name, "the certificate (its first domain)");
    ren->add_flag("--all", a.all, "every certificate in the state dir")->excludes(rname);
    ren->add_flag("--force", a.force, "renew even when not due");
    ren->add_option("--renew-before-days", a.renew_before_days,
                    "due this many days before expiry (wins over the CA's ARI window; default: "
                    "the ARI window, else the last third of the lifetime)");
    add_jobs_option(ren, a, "--all");
    ren->add_flag("--new-key", a.renew_new_key,
                  "generate a fresh key (a new label) for the new certificate");
    ren->add_option("--account-key", a.account_key, kAccountKeyHelp);
    add_challenge_options(ren, a);
    command(ren, action, g, a, renew);

    auto* inv = app.add_subcommand(
        "certificates", "list the stored certificates: names, key, expiry, when due, last attempt");
    inv->add_option("--name", a.name, "only this certificate (exit 3 when there is none)");
    inv->footer(
        "For each certificate in the state dir (or --storage): its names, key URI (no PIN) and\n"
        "backend, serial, notAfter and days left, when it is due for renewal and why (the\n"
        "renew_before_days it was ordered with, else the CA's ARI window when the CA answers,\n"
        "else two thirds of its lifetime), the last attempt `run` recorded and the account.\n"
        "The CA asked is --server when given, else the certificate's own.");
    command(inv, action, g, a, certificates);

    auto* enr = app.add_subcommand(
        "enroll", "first-boot device enrollment with TPM keys; safe to run at every boot");
    enr->add_option("-d,--domain", a.domains,
                    "the device's name(s); the first names the certificate")
        ->required();
    enr->add_option("--key", a.key, "device key URI (default: tpm2:path=STATE/keys/NAME.tss)");
    enr->add_option("--account-key", a.account_key,
                    "account key URI (default: tpm2:path=STATE/keys/account.tss)");
    enr->add_option("--email", a.emails, "contact, when the account is registered");
    enr->add_flag("--agree-tos", a.agree_tos, "agree to the CA's terms of service");
    enr->add_flag("--force", a.force, "issue again even when the certificate is valid");
    add_challenge_options(enr, a);
    command(enr, action, g, a, enroll);
}

void add_revoke_command(CLI::App& app, const Global& g, RevokeArgs& a, Action& action) {
    auto* rev = app.add_subcommand("revoke", "revoke a certificate");
    rev->add_option("--cert", a.cert_file, "the certificate (PEM)")
        ->required()
        ->check(CLI::ExistingFile);
    rev->add_option("--reason", a.reason,
                    "keyCompromise, superseded, cessationOfOperation, ... or a code");
    rev->add_flag("--with-cert-key", a.with_cert_key,
                  "sign with the certificate's own key (--key) instead of the account");
    rev->add_option("--key", a.key, "the certificate's key URI, with --with-cert-key");
    rev->add_option("--account-key", a.account_key, kAccountKeyHelp);
    command(rev, action, g, a, revoke);
}

void add_storage_commands(CLI::App& app, const Global& g, StorageArgs& a, Action& action) {
    auto* storage = app.add_subcommand("storage", "move the agent's state between storages");
    storage->require_subcommand(1);
    auto* mig = storage->add_subcommand(
        "migrate",
        "copy a state dir's accounts, certificates and orders in flight into PostgreSQL");
    mig->add_option("--from", a.from, "the state dir")->required();
    mig->add_option("--to", a.to, "postgresql://ROLE@HOST/DB?passfile=FILE (no password in it)")
        ->required();
    mig->add_flag("--overwrite", a.overwrite,
                  "replace records the database already holds with other content");
    command(mig, action, g, a, storage_migrate);
}

void add_run_command(CLI::App& app, const Global& g, RunArgs& a, Action& action) {
    auto* runc = app.add_subcommand(
        "run", "keep the certificates of a config file issued and fresh (a daemon, or --once)");
    runc->add_option("--config", a.config, "the TOML config file")->required();
    runc->add_flag("--once", a.once,
                   "issue what is missing, renew what is due, run pending deploy hooks, exit");
    runc->add_option("--metrics", a.metrics,
                     "[ADDR:]PORT: serve Prometheus metrics at /metrics (ADDR default "
                     "127.0.0.1; wins over the config's metrics; not with --once)");
    runc->footer(
        "Config (TOML): top level server, ca_file, state_dir, storage, account_key, email (one or "
        "a list),\n"
        "agree_tos, eab_kid + eab_hmac_key (a 0600 file or a pkcs11: URI), deploy_hook_timeout\n"
        "(seconds, default 300); one [[certificate]] table per certificate: domains (a list),\n"
        "key (URI), name (default: the first domain; its directory live/NAME/), challenge\n"
        "(http-01, dns-01, tls-alpn-01) with http_port or webroot, tls_alpn_port, dns_hook or\n"
        "rfc2136 + tsig_key; deploy_hook, renew_before_days, profile, preferred_chain.\n"
        "Relative paths are relative to the config file. An unknown key or a bad value is an\n"
        "error naming FILE:LINE (exit 2) and nothing is done. The config is the truth: a\n"
        "certificate is issued again when its key or domains change there. --server, --ca-file\n"
        "and --state-dir (or their environment variables), when given, win over the config's.\n"
        "Without --once: checks again when a certificate is due (renew_before_days, else the\n"
        "CA's ARI window, else two thirds of its lifetime; at least every 6 hours), retries a\n"
        "failed certificate with backoff (never before a Retry-After the CA gave), reloads the "
        "config on SIGHUP (a bad one is reported\n"
        "and the old one kept), exits 0 on SIGTERM or SIGINT.\n"
        "deploy_hook runs with /bin/sh -c after each new certificate, with ACME_AGENT_NAME,\n"
        "ACME_AGENT_DOMAINS (space-separated), ACME_AGENT_CERT, ACME_AGENT_CHAIN,\n"
        "ACME_AGENT_FULLCHAIN (paths) and ACME_AGENT_KEY_URI (no pin-value, no pin-source); its\n"
        "stdout goes to stderr. A hook that fails or times out is reported and runs again on\n"
        "the next pass (STATE/orders/NAME.deploy-pending); the certificate stays stored.\n"
        "run --once exits 0 when every certificate is fine, with the code of the first failed\n"
        "certificate's error when one failed, else 16 when only a deploy hook failed.");
    command(runc, action, g, a, run_config);
}

// The log's level and format: an explicit --log-level wins over -q / -v; a bad value is a
// usage error naming its option.
Result<void> set_logging(const Global& g) {
    base::log::Level level = g.quiet         ? base::log::Level::warning
                             : g.verbose > 0 ? base::log::Level::debug
                                             : base::log::Level::info;
    if (!g.log_level.empty()) {
        auto parsed = base::log::parse_level(g.log_level);
        if (!parsed) return std::unexpected(parsed.error());
        level = *parsed;
    }
    base::log::set_level(level);
    if (!g.log_format.empty()) {
        auto parsed = base::log::parse_format(g.log_format);
        if (!parsed) return std::unexpected(parsed.error());
        base::log::set_format(*parsed);
    }
    return {};
}

}  // namespace

int run(int argc, char** argv) {
    base::log::trace(base::log::trace_now(), "main");
    // A peer that goes away (the CA, a TPM simulator socket) is an error to report, not a
    // signal that kills the process mid-write.
    (void)std::signal(SIGPIPE, SIG_IGN);  // cannot fail for SIGPIPE
    Args args;
    Global& g = args.global;
    CLI::App app{
        "acme-agent: an ACME (RFC 8555) client whose private keys never leave hardware.\n"
        "Keys: pkcs11: (RFC 7512, a PKCS#11 token), tpm2: (a TPM 2.0: a TSS2 key file or a\n"
        "persistent handle), file: (software PEM keys, NO hardware protection: for machines\n"
        "without a token, and tests)."};
    app.set_version_flag("--version", std::string("acme-agent ") + ACME_AGENT_VERSION);
    app.require_subcommand(1);
    // Global options may also follow the command (acme-agent account show --json).
    app.fallthrough();
    add_global_options(app, g);
    // The exit codes first: the man page cuts the footer from "Exit codes:" on.
    app.footer(exit_code_footer() +
               "Global options may also come after the command.\n"
               "PINs come from the key URI's pin-source=file:PATH (mode 0600) or a prompt.\n");

    Action action;
    add_key_commands(app, g, args.key, action);
    add_account_commands(app, g, args.account, action);
    add_certificate_commands(app, g, args.cert, action);
    add_revoke_command(app, g, args.revoke, action);
    add_run_command(app, g, args.run, action);
    add_storage_commands(app, g, args.storage, action);

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        // --json may not have been stored yet when parsing stopped.
        const bool json_out = std::any_of(
            argv + 1, argv + argc, [](const char* a) { return std::string_view(a) == "--json"; });
        return report_parse_error(app, e, json_out);
    }
    g.server_given = app.get_option("--server")->count() > 0;
    g.ca_file_given = app.get_option("--ca-file")->count() > 0;
    g.state_dir_given = app.get_option("--state-dir")->count() > 0;
    g.storage_given = app.get_option("--storage")->count() > 0;
    if (auto logging = set_logging(g); !logging) return report(g, std::unexpected(logging.error()));
    if (!action) return kUsage;
    if (auto accepted = accept_command_line(args); !accepted)
        return report(g, std::unexpected(accepted.error()));
    keystore::Registry registry = make_registry(g);
    // -v / debug: a line per signer call (run --metrics wraps the keys its own way).
    if (base::log::level() >= base::log::Level::debug) registry.wrap_opened(metrics::traced);
    try {
        const int rc = report(g, action(registry));
        base::log::trace(base::log::trace_now(), "return from main");
        return rc;
    } catch (const std::exception& e) {
        // A bug, or server data that slipped past a check: fail loudly, never half-done.
        std::fprintf(stderr, "acme-agent: internal error: %s\n", base::printable(e.what()).c_str());
        return kInternal;
    }
}

}  // namespace cli
