// The ACME directory (RFC 8555 §7.1.1) as Client::connect reads it. connect() itself
// fetches the directory over https:// through libcurl and has no entry point that takes
// a body, so it cannot be reached without a network server; this target runs the same
// steps on the fuzz input with the public helpers connect() uses: nlohmann::json::parse
// (no exceptions), acme::json_string for each entry, acme::json_bool for
// meta.externalAccountRequired, meta.profiles, and acme::origin_of for the origin check.
#include "acme/client.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string body(fuzz_text(data, size));
    const auto j = nlohmann::json::parse(body, nullptr, false);
    acme::Directory d;
    d.url = "https://acme.example:14000/dir";
    const std::string origin = acme::origin_of(d.url);
    if (j.is_discarded() || !j.is_object()) {
        // The helpers must not throw on any JSON value either.
        (void)acme::json_string(j, "newNonce");
        (void)acme::json_bool(j, "newNonce");
        return 0;
    }
    d.new_nonce = acme::json_string(j, "newNonce");
    d.new_account = acme::json_string(j, "newAccount");
    d.new_order = acme::json_string(j, "newOrder");
    d.revoke_cert = acme::json_string(j, "revokeCert");
    d.key_change = acme::json_string(j, "keyChange");
    if (j.contains("newAuthz")) d.new_authz = acme::json_string(j, "newAuthz");
    if (j.contains("renewalInfo")) d.renewal_info = acme::json_string(j, "renewalInfo");
    if (j.contains("meta") && j["meta"].is_object()) {
        const auto& meta = j["meta"];
        d.terms_of_service = acme::json_string(meta, "termsOfService");
        d.eab_required = acme::json_bool(meta, "externalAccountRequired");
        if (meta.contains("profiles")) d.profiles = meta["profiles"];
        if (d.profiles.is_object())
            for (const auto& [name, value] : d.profiles.items())
                (void)acme::json_string(d.profiles, name.c_str());
    }
    for (const std::string* u :
         {&d.new_nonce, &d.new_account, &d.new_order, &d.revoke_cert, &d.key_change})
        (void)(acme::origin_of(*u) == origin);
    return 0;
}
