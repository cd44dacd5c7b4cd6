#include "cli/common.h"

#include "keystore/jwk.h"
#include "keystore/mac.h"

namespace cli {

Result<Output> key_generate(const Options& o, keystore::Registry& reg) {
    auto uri = parse_uri(o.key, "--key");
    if (!uri) return std::unexpected(uri.error());
    auto alg = keystore::parse_algorithm(o.type);
    if (!alg)
        return fail(Errc::usage, "--type",
                    "unknown algorithm '" + o.type + "'; choose one of " +
                        std::string(keystore::algorithm_names()));
    auto key = reg.generate(*uri, *alg, {.always_authenticate = o.always_auth});
    if (!key) return std::unexpected(key.error());
    Output out;
    out.data = {{"uri", (*key)->uri().to_string()}, {"algorithm", keystore::algorithm_name(*alg)}};
    out.text = (*key)->uri().to_string() + "\n";
    return out;
}

Result<Output> key_list(const Options& o, keystore::Registry& reg) {
    auto uri = parse_uri(o.key, "--key");
    if (!uri) return std::unexpected(uri.error());
    auto ks = reg.keystore_for(*uri);
    if (!ks) return std::unexpected(ks.error());
    auto keys = (*ks)->list(*uri);
    if (!keys) return std::unexpected(keys.error());
    Output out;
    out.data = json::array();
    for (auto& k : *keys) {
        out.data.push_back(
            {{"uri", k.uri.to_string()}, {"algorithm", keystore::algorithm_name(k.algorithm)}});
        out.text +=
            std::string(keystore::algorithm_name(k.algorithm)) + "  " + k.uri.to_string() + "\n";
    }
    return out;
}

Result<Output> key_show(const Options& o, keystore::Registry& reg) {
    auto uri = parse_uri(o.key, "--key");
    if (!uri) return std::unexpected(uri.error());
    auto key = reg.open(*uri);
    if (!key) return std::unexpected(key.error());
    auto thumb = keystore::jwk_thumbprint((*key)->public_key_der());
    if (!thumb) return std::unexpected(thumb.error());
    auto props = (*key)->properties();
    if (!props) return std::unexpected(props.error());
    Output out;
    const std::string pem = pem_public_key((*key)->public_key_der());
    json p = json::object();
    for (const auto& kp : *props) p[kp.name] = kp.value;
    out.data = {{"uri", (*key)->uri().to_string()},
                {"algorithm", keystore::algorithm_name((*key)->algorithm())},
                {"jwk_thumbprint", *thumb},
                {"properties", p},
                {"public_key_pem", pem}};
    auto field = [&](std::string name, const std::string& value) {
        name += ":";
        name.resize(std::max<std::size_t>(name.size() + 1, 24), ' ');
        out.text += name + value + "\n";
    };
    field("uri", (*key)->uri().to_string());
    field("algorithm", std::string(keystore::algorithm_name((*key)->algorithm())));
    field("jwk thumbprint", *thumb);
    for (auto& kp : *props) field(kp.name, kp.value);
    out.text += pem;
    return out;
}

Result<Output> key_delete(const Options& o, keystore::Registry& reg) {
    auto uri = parse_uri(o.key, "--key");
    if (!uri) return std::unexpected(uri.error());
    auto ks = reg.keystore_for(*uri);
    if (!ks) return std::unexpected(ks.error());
    if (auto r = (*ks)->destroy(*uri); !r) return std::unexpected(r.error());
    Output out;
    out.data = {{"deleted", uri->to_string()}};
    out.text = "deleted " + uri->to_string() + "\n";
    return out;
}

Result<Output> key_import_hmac(const Options& o, keystore::Registry& reg) {
    auto uri = parse_uri(o.key, "--key");
    if (!uri) return std::unexpected(uri.error());
    auto secret = read_mac_key_file(o.from);
    if (!secret) return std::unexpected(secret.error());
    auto ks = reg.keystore_for(*uri);
    if (!ks) return std::unexpected(ks.error());
    auto* macs = dynamic_cast<keystore::MacKeystore*>(*ks);
    if (!macs)
        return fail(Errc::unsupported, "--key",
                    "this backend cannot hold HMAC keys; use a pkcs11: token");
    auto stored = macs->import_hmac(*uri, *secret);
    if (!stored) return std::unexpected(stored.error());
    Output out;
    out.data = {{"uri", stored->to_string()}};
    out.text = stored->to_string() + "\n";
    return out;
}

}  // namespace cli
