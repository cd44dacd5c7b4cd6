#include "lifecycle/keys.h"

#include "store/open.h"
#include "x509/cert.h"

#include <string_view>

namespace lifecycle {

using base::Errc;
using base::fail;
using base::Result;

Result<keystore::KeyUri> parse_uri(const std::string& text, const char* option) {
    if (text.empty()) return fail(Errc::usage, option, "a key URI is required");
    auto uri = keystore::KeyUri::parse(text);
    if (!uri) {
        base::Error e = uri.error();
        e.where = std::string(option);
        return std::unexpected(e);
    }
    return uri;
}

Result<std::vector<std::string>> weaknesses(const keystore::Key& key) {
    std::vector<std::string> out;
    if (key.uri().scheme() == "file") return out;
    auto props = key.properties();
    if (!props) return std::unexpected(props.error());
    auto value = [&](std::string_view name) -> std::string {
        for (const auto& p : *props)
            if (p.name == name) return p.value;
        return "";
    };
    // TPM: extractable is derived from these two; name the TPM's own attributes.
    for (const char* bit : {"fixedTPM", "fixedParent"})
        if (value(bit) == "false") out.push_back(std::string(bit) + " is not set");
    if (out.empty() && value("extractable") == "true") out.emplace_back("extractable");
    if (value("sensitive") == "false") out.emplace_back("not sensitive");
    const std::string usage = "," + value("usage") + ",";
    for (const char* use : {"decrypt", "unwrap"})
        if (usage.find(std::string(",") + use + ",") != std::string::npos)
            out.push_back(std::string("may ") + use);
    return out;
}

Result<keystore::KeyPtr> open_signing_key(keystore::Registry& reg, const keystore::KeyUri& uri,
                                          bool allow_weak) {
    auto key = reg.open(uri);
    if (!key || allow_weak) return key;
    auto weak = weaknesses(**key);
    if (!weak) return std::unexpected(weak.error());
    if (weak->empty()) return key;
    std::string list;
    for (const auto& w : *weak) list += (list.empty() ? "" : ", ") + w;
    return fail(Errc::usage, (*key)->uri().to_string(),
                "weak key: " + list +
                    "; a key that can leave the device or also decrypt is refused as an account "
                    "or certificate key (generate one with 'acme-agent key generate', or accept "
                    "it with --allow-weak-key)");
}

Result<std::vector<std::string>> certificates_using(const Globals& g, const keystore::Key& key) {
    std::vector<std::string> out;
    if (store::storage_absent(g.state_dir, g.storage)) return out;
    auto state = store::open_storage(g.state_dir, g.storage);
    if (!state) return std::unexpected(state.error());
    auto names = (*state)->certificate_names();
    if (!names) return std::unexpected(names.error());
    for (const auto& name : *names) {
        auto c = (*state)->certificate(name);
        if (!c || !*c) continue;
        auto leaf = x509::inspect((*c)->cert_pem);
        if (leaf && leaf->spki == key.public_key_der()) out.push_back(name);
    }
    return out;
}

}  // namespace lifecycle
