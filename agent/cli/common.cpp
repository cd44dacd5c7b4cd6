#include "cli/common.h"

#include "keystore/file_backend.h"
#include "pkcs11/pkcs11_keystore.h"
#include "store/pg.h"
#include "tpm/tpm_keystore.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

namespace cli {

Global::Global() {
    user_agent = std::string("acme-agent/") + ACME_AGENT_VERSION;
}

keystore::Registry make_registry(const Global& g) {
    keystore::Registry r;
    r.add("file", [] {
        return Result<std::unique_ptr<keystore::Keystore>>(keystore::make_file_keystore());
    });
    r.add("pkcs11",
          [] { return Result<std::unique_ptr<keystore::Keystore>>(pkcs11::make_keystore()); });
    r.add("tpm2", [tcti = g.tcti] {
        return Result<std::unique_ptr<keystore::Keystore>>(tpm::make_keystore(tcti));
    });
    return r;
}

Result<void> accept_command_line(Args& args) {
    std::error_code ec;
    const std::string cwd = std::filesystem::current_path(ec).string();
    if (ec) return fail(Errc::io, "working directory", ec.message());
    auto key_uri = [&](std::string& text, const char* option) -> Result<void> {
        if (text.empty()) return {};
        auto uri = keystore::KeyUri::parse(text);
        if (!uri) return {};  // the command reports it, naming the option
        if (uri->query_attr("pin-value"))
            return fail(Errc::usage, option,
                        "a pin-value on the command line is visible to every local user (ps); "
                        "put the PIN in a file (printf '%s' PIN > FILE; chmod 600 FILE) and use "
                        "?pin-source=file:FILE instead");
        uri->make_paths_absolute(cwd);
        text = uri->to_string();
        return {};
    };
    Global& g = args.global;
    for (auto [text, option] :
         {std::pair{&args.key.key, "--key"}, std::pair{&args.account.key, "--key"},
          std::pair{&args.cert.key, "--key"}, std::pair{&args.revoke.key, "--key"},
          std::pair{&args.account.account_key, "--account-key"},
          std::pair{&args.cert.account_key, "--account-key"},
          std::pair{&args.revoke.account_key, "--account-key"},
          std::pair{&args.account.new_key, "--new-key"}})
        if (auto r = key_uri(*text, option); !r) return r;
    for (std::string* eab : {&args.account.eab_hmac_key, &args.cert.eab_hmac_key}) {
        if (eab->starts_with("pkcs11:")) {
            if (auto r = key_uri(*eab, "--eab-hmac-key"); !r) return r;
        } else if (!eab->empty()) {
            std::string path = eab->starts_with("file:") ? eab->substr(5) : *eab;
            *eab = std::filesystem::absolute(path, ec).lexically_normal().string();
        }
    }
    for (std::string* path : {&args.cert.out, &args.cert.webroot, &args.cert.tsig_key, &g.state_dir,
                              &g.ca_file, &args.run.config, &args.cert.batch, &args.storage.from})
        if (!path->empty())
            *path = std::filesystem::absolute(*path, ec).lexically_normal().string();
    return {};
}

lifecycle::Settings settings(const Global& g, const CertArgs& a) {
    lifecycle::Settings s;
    static_cast<config::CertificateSettings&>(s) =
        static_cast<const config::CertificateSettings&>(a);  // only the settings part
    s.server = g.server;
    s.name = a.name;
    s.out = a.out;
    s.tag_progress = a.jobs > 1;
    s.allow_weak_key = g.allow_weak_key;
    s.force = a.force;
    s.new_key = a.renew_new_key;
    // Fleet mode: each node keeps its copies of the shared certificates under its state dir.
    if (store::pg::is_url(g.storage)) s.fleet_live = g.state_dir + "/live";
    return s;
}

Result<void> confirm(bool yes, const std::string& what, const std::string& question) {
    if (yes) return {};
    if (!::isatty(STDIN_FILENO))
        return fail(Errc::usage, what,
                    "this cannot be undone and there is no terminal to ask; add --yes to go ahead");
    std::fprintf(stderr, "%s [y/N] ", question.c_str());
    std::fflush(stderr);
    std::string answer;
    if (!std::getline(std::cin, answer)) answer.clear();
    if (answer == "y" || answer == "Y" || answer == "yes" || answer == "YES") return {};
    return fail(Errc::usage, what, "not confirmed; nothing was changed");
}

}  // namespace cli
