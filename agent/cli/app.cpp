#include "cli/app.h"

#include "base/log.h"
#include "cli/common.h"
#include "cli/exit_codes.h"

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

int report(const Options& o, const Result<Output>& r) {
    if (r) {
        if (o.json_out)
            std::cout << json_text(r->data) << "\n";
        else
            std::cout << base::printable(r->text);
        if (!r->failure) return r->status;
        std::cout.flush();
        std::fprintf(stderr, "acme-agent: error: %s\n", r->failure->describe().c_str());
        return exit_code(r->failure->code);
    }
    const Error& e = r.error();
    std::fprintf(stderr, "acme-agent: error: %s\n", e.describe().c_str());
    if (o.json_out) {
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

}  // namespace

int run(int argc, char** argv) {
    base::log::trace(base::log::trace_now(), "main");
    // A peer that goes away (the CA, a TPM simulator socket) is an error to report, not a
    // signal that kills the process mid-write.
    (void)std::signal(SIGPIPE, SIG_IGN);  // cannot fail for SIGPIPE
    Options o;
    CLI::App app{
        "acme-agent: an ACME (RFC 8555) client whose private keys never leave hardware.\n"
        "Keys: pkcs11: (RFC 7512, a PKCS#11 token), tpm2: (a TPM 2.0: a TSS2 key file or a\n"
        "persistent handle), file: (software PEM keys, NO hardware protection: for machines\n"
        "without a token, and tests)."};
    app.set_version_flag("--version", std::string("acme-agent ") + ACME_AGENT_VERSION);
    app.require_subcommand(1);
    // Global options may also follow the command (acme-agent account show --json).
    app.fallthrough();
    app.add_option("--server", o.server, "ACME directory URL")
        ->default_str(kDefaultServer)
        ->envname("ACME_AGENT_SERVER");
    app.add_option("--ca-file", o.ca_file,
                   "extra trusted CA (PEM) for the ACME server, e.g. a test CA")
        ->check(CLI::ExistingFile)
        ->envname("ACME_AGENT_CA_FILE");
    app.add_option("--order-timeout", o.order_timeout,
                   "seconds to wait for an order the CA is processing (slow CAs take minutes); "
                   "the order is resumed by the next run after that")
        ->default_str("900")
        ->check(CLI::Range(1u, 86400u))
        ->envname("ACME_AGENT_ORDER_TIMEOUT");
    app.add_option("--http-timeout", o.http_timeout,
                   "seconds one request to the CA may take (a stalled request without side "
                   "effects is sent again; newOrder and finalize are never resent blindly)")
        ->default_str("60")
        ->check(CLI::Range(1u, 600u))
        ->envname("ACME_AGENT_HTTP_TIMEOUT");
    app.add_option("--state-dir", o.state_dir, "state directory (accounts, certificates)")
        ->default_str(o.state_dir)
        ->envname("ACME_AGENT_STATE_DIR");
    app.add_option("--tcti", o.tcti,
                   "TPM for tpm2: keys, e.g. device:/dev/tpmrm0 or swtpm:host=127.0.0.1,port=2321 "
                   "(default: $ACME_AGENT_TCTI, else device:/dev/tpmrm0)");
    app.add_flag("--json", o.json_out, "print results as JSON on stdout");
    app.add_flag("-v,--verbose", o.verbose, "more detail on stderr (each retry, each request)");
    app.add_flag("-q,--quiet", o.quiet, "no progress lines on stderr");
    app.add_flag("--allow-weak-key", o.allow_weak_key,
                 "accept an account or certificate key that can leave the device (extractable, "
                 "not sensitive, TPM without fixedTPM/fixedParent) or can decrypt/unwrap");
    // The exit codes first: the man page cuts the footer from "Exit codes:" on.
    app.footer(exit_code_footer() +
               "Global options may also come after the command.\n"
               "PINs come from the key URI's pin-source=file:PATH (mode 0600) or a prompt.\n");

    std::function<Result<Output>(const Options&, keystore::Registry&)> action;
    auto bind = [&](CLI::App* sub, auto fn) { sub->callback([&action, fn] { action = fn; }); };
    const std::string key_help =
        "key URI (pkcs11:..., tpm2:path=FILE.tss, tpm2:handle=0x81..., file:PATH)";

    auto* key = app.add_subcommand("key", "manage keys in a token or directory");
    key->require_subcommand(1);
    auto* kgen =
        key->add_subcommand("generate", "generate a key inside the keystore; prints its full URI");
    kgen->add_option("--key", o.key, key_help)->required();
    kgen->add_option("--type", o.type,
                     std::string("algorithm: ") + std::string(keystore::algorithm_names()))
        ->required();
    kgen->add_flag("--always-auth", o.always_auth,
                   "PKCS#11: the token asks for the PIN (from the URI's pin-source) before every "
                   "signature (CKA_ALWAYS_AUTHENTICATE), as smart cards do");
    bind(kgen, key_generate);
    auto* klist = key->add_subcommand("list", "list the keys of a token or directory");
    klist->add_option("--key", o.key, "token URI (pkcs11:token=...) or file:DIR")->required();
    bind(klist, key_list);
    auto* kshow = key->add_subcommand(
        "show", "algorithm, public key, JWK thumbprint and hardware properties");
    kshow->add_option("--key", o.key, key_help)->required();
    bind(kshow, key_show);
    auto* kdel = key->add_subcommand(
        "delete", "destroy a key (both halves); asks first, naming the certificates that use it");
    kdel->add_option("--key", o.key, key_help)->required();
    kdel->add_flag("--yes", o.yes, "do not ask (required when stdin is not a terminal)");
    bind(kdel, key_delete);

    auto* account = app.add_subcommand("account", "ACME account for --server");
    account->require_subcommand(1);
    auto* areg =
        account->add_subcommand("register", "register (or find again) the account of a key");
    areg->add_option("--key", o.key, "account key URI")->required();
    areg->add_option("--email", o.emails, "contact address (repeatable)");
    areg->add_flag("--agree-tos", o.agree_tos, "agree to the CA's terms of service");
    bind(areg, account_register);
    auto* ashow = account->add_subcommand("show", "the stored account and its status at the CA");
    ashow->add_option("--account-key", o.account_key, "account key URI (default: the stored one)");
    bind(ashow, account_show);

    auto eab = [&](CLI::App* sub) {
        sub->add_option("--eab-kid", o.eab_kid, "External Account Binding key id from the CA");
        sub->add_option(
            "--eab-hmac-key", o.eab_hmac_key,
            "EAB MAC key: a 0600 file holding it in base64url, or the pkcs11: URI of an HMAC key "
            "in a token (see key import-hmac)");
    };
    eab(areg);
    auto* aupd = account->add_subcommand("update", "replace the account's contact addresses");
    aupd->add_option("--email", o.emails, "contact address (repeatable)")->required();
    aupd->add_option("--account-key", o.account_key, "account key URI (default: the stored one)");
    bind(aupd, account_update);
    auto* adeact =
        account->add_subcommand("deactivate", "deactivate the account at the CA (final)");
    adeact->add_option("--account-key", o.account_key, "account key URI (default: the stored one)");
    adeact->add_flag("--yes", o.yes, "do not ask (required when stdin is not a terminal)");
    bind(adeact, account_deactivate);
    auto* aroll = account->add_subcommand(
        "rollover", "move the account to another key (RFC 8555 section 7.3.5)");
    aroll->add_option("--new-key", o.new_key, "the new account key URI (generate it first)")
        ->required();
    aroll->add_option("--account-key", o.account_key,
                      "current account key URI (default: the stored one)");
    bind(aroll, account_rollover);

    auto* kimp = key->add_subcommand(
        "import-hmac", "store an EAB MAC key in a token as a non-extractable HMAC key");
    kimp->add_option("--key", o.key, "pkcs11: URI with object=LABEL for the new key")->required();
    kimp->add_option("--from", o.from, "file (mode 0600) holding the base64url MAC key")
        ->required();
    bind(kimp, key_import_hmac);
    auto* katt = key->add_subcommand(
        "attest",
        "TPM evidence that a tpm2: key was made in this TPM (WebAuthn \"tpm\" "
        "attestation statement: TPM2_Certify by the attestation key, EK certificate)");
    katt->add_option("--key", o.key, "tpm2: key URI")->required();
    katt->add_option("--nonce", o.nonce, "the verifier's challenge, hex (1 to 64 bytes)")
        ->required();
    katt->add_option("--out", o.out, "write the attestation object here (else: stdout)");
    katt->add_option("--format", o.format,
                     "cbor (default; on stdout as base64url, the attObj of "
                     "draft-ietf-acme-device-attest) or json (bytes as base64url)")
        ->check(CLI::IsMember({"cbor", "json"}));
    bind(katt, key_attest);

    // Challenge options shared by issue and renew (renew defaults to the stored ones).
    auto challenge_options = [&](CLI::App* sub) {
        sub->add_option("--challenge", o.challenge, "http-01, dns-01 or tls-alpn-01")
            ->default_str("http-01");
        auto* port =
            sub->add_option("--http-port", o.http_port, "built-in http-01 responder: [ADDR:]PORT")
                ->default_str("80");
        sub->add_option("--webroot", o.webroot,
                        "serve http-01 from DIR/.well-known/acme-challenge/")
            ->excludes(port);
        sub->add_option("--tls-alpn-port", o.tls_alpn_port,
                        "built-in tls-alpn-01 responder: [ADDR:]PORT")
            ->default_str("443");
        sub->add_option("--dns-hook", o.dns_hook,
                        "dns-01: run CMD present|cleanup FQDN VALUE (lego exec contract)");
        sub->add_option("--rfc2136", o.rfc2136, "dns-01: send RFC 2136 updates to SERVER[:PORT]");
        sub->add_option("--tsig-key", o.tsig_key,
                        "dns-01: TSIG key file (BIND format) for --rfc2136");
        sub->add_option("--profile", o.profile,
                        "certificate profile offered by the CA (meta.profiles)");
        sub->add_option("--preferred-chain", o.preferred_chain,
                        "pick the chain whose top issuer has this CN");
        sub->add_option("--out", o.out, "also write cert.pem, chain.pem, fullchain.pem here");
        eab(sub);
    };

    auto* iss = app.add_subcommand("issue", "get a certificate for one or more names");
    iss->add_option("--key", o.key, "certificate key URI (required without --batch)");
    iss->add_option("-d,--domain", o.domains,
                    "DNS name or IP address (repeatable; required without --batch)");
    iss->add_option("--batch", o.batch,
                    "one order per line: KEY-URI NAME [NAME...] ('#' comments, blank lines); "
                    "every line is checked before any order starts");
    auto jobs_option = [&](CLI::App* sub, const char* what) {
        sub->add_option("--jobs", o.jobs,
                        std::string("orders run at once (1-64) for ") + what +
                            "; they share one connection pool, account and responder")
            ->default_str("1");
    };
    jobs_option(iss, "--batch");
    iss->add_option("--account-key", o.account_key,
                    "account key URI (default: the stored account)");
    iss->add_option("--email", o.emails, "contact, when a new account is registered");
    iss->add_flag("--agree-tos", o.agree_tos,
                  "agree to the CA's terms, when a new account is registered");
    iss->add_flag("--force", o.force,
                  "replace a certificate of the same name that uses another key (see also "
                  "renew --new-key)");
    challenge_options(iss);
    bind(iss, issue);

    auto* ren = app.add_subcommand("renew", "renew the certificates in the state dir that are due");
    auto* rname = ren->add_option("--name", o.name, "the certificate (its first domain)");
    ren->add_flag("--all", o.all, "every certificate in the state dir")->excludes(rname);
    ren->add_flag("--force", o.force, "renew even when not due");
    ren->add_option("--renew-before-days", o.renew_before_days,
                    "due this many days before expiry (wins over the CA's ARI window; default: "
                    "the ARI window, else the last third of the lifetime)");
    jobs_option(ren, "--all");
    ren->add_flag("--new-key", o.renew_new_key,
                  "generate a fresh key (a new label) for the new certificate");
    ren->add_option("--account-key", o.account_key,
                    "account key URI (default: the stored account)");
    challenge_options(ren);
    bind(ren, renew);

    auto* enr = app.add_subcommand(
        "enroll", "first-boot device enrollment with TPM keys; safe to run at every boot");
    enr->add_option("-d,--domain", o.domains,
                    "the device's name(s); the first names the certificate")
        ->required();
    enr->add_option("--key", o.key, "device key URI (default: tpm2:path=STATE/keys/NAME.tss)");
    enr->add_option("--account-key", o.account_key,
                    "account key URI (default: tpm2:path=STATE/keys/account.tss)");
    enr->add_option("--email", o.emails, "contact, when the account is registered");
    enr->add_flag("--agree-tos", o.agree_tos, "agree to the CA's terms of service");
    enr->add_flag("--force", o.force, "issue again even when the certificate is valid");
    challenge_options(enr);
    bind(enr, enroll);

    auto* rev = app.add_subcommand("revoke", "revoke a certificate");
    rev->add_option("--cert", o.cert_file, "the certificate (PEM)")
        ->required()
        ->check(CLI::ExistingFile);
    rev->add_option("--reason", o.reason,
                    "keyCompromise, superseded, cessationOfOperation, ... or a code");
    rev->add_flag("--with-cert-key", o.with_cert_key,
                  "sign with the certificate's own key (--key) instead of the account");
    rev->add_option("--key", o.key, "the certificate's key URI, with --with-cert-key");
    rev->add_option("--account-key", o.account_key,
                    "account key URI (default: the stored account)");
    bind(rev, revoke);

    auto* runc = app.add_subcommand(
        "run", "keep the certificates of a config file issued and fresh (a daemon, or --once)");
    runc->add_option("--config", o.config, "the TOML config file")->required();
    runc->add_flag("--once", o.once,
                   "issue what is missing, renew what is due, run pending deploy hooks, exit");
    runc->footer(
        "Config (TOML): top level server, ca_file, state_dir, account_key, email (one or a list),\n"
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
    bind(runc, run_config);

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
    o.server_given = app.get_option("--server")->count() > 0;
    o.ca_file_given = app.get_option("--ca-file")->count() > 0;
    o.state_dir_given = app.get_option("--state-dir")->count() > 0;
    base::log::set_level(o.quiet         ? base::log::Level::warning
                         : o.verbose > 0 ? base::log::Level::debug
                                         : base::log::Level::info);
    if (!action) return kUsage;
    if (auto accepted = accept_command_line(o); !accepted)
        return report(o, std::unexpected(accepted.error()));
    keystore::Registry registry = make_registry(o);
    try {
        const int rc = report(o, action(o, registry));
        base::log::trace(base::log::trace_now(), "return from main");
        return rc;
    } catch (const std::exception& e) {
        // A bug, or server data that slipped past a check: fail loudly, never half-done.
        std::fprintf(stderr, "acme-agent: internal error: %s\n", base::printable(e.what()).c_str());
        return kInternal;
    }
}

}  // namespace cli
