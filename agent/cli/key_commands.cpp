#include "cli/common.h"

#include "base/log.h"
#include "keystore/jwk.h"
#include "keystore/mac.h"
#include "tpm/tpm_keystore.h"
#include "x509/cert.h"

#include <sys/stat.h>

#include <cstdio>

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
    auto weak = weaknesses(**key);
    if (!weak) return std::unexpected(weak.error());
    Output out;
    const std::string pem = pem_public_key((*key)->public_key_der());
    json p = json::object();
    for (const auto& kp : *props) p[kp.name] = kp.value;
    out.data = {{"uri", (*key)->uri().to_string()},
                {"algorithm", keystore::algorithm_name((*key)->algorithm())},
                {"jwk_thumbprint", *thumb},
                {"properties", p},
                // What makes the key refused as an account or certificate key unless
                // --allow-weak-key ([] when nothing), and whether that was given.
                {"weak", *weak},
                {"allow_weak_key", o.allow_weak_key},
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
    std::string list;
    for (const auto& w : *weak) list += (list.empty() ? "" : ", ") + w;
    if (!weak->empty())
        field("weak", list + (o.allow_weak_key ? " (accepted: --allow-weak-key)"
                                               : " (refused as an account or certificate key "
                                                 "without --allow-weak-key)"));
    out.text += pem;
    return out;
}

namespace {
// The certificates in the state dir (when there is one) whose key is `key`.
Result<std::vector<std::string>> certificates_using(const Options& o, const keystore::Key& key) {
    std::vector<std::string> out;
    struct stat st{};
    if (::stat(o.state_dir.c_str(), &st) != 0) return out;  // no state dir: no certificates
    auto state = store::StateDir::open(o.state_dir);
    if (!state) return std::unexpected(state.error());
    auto names = state->certificate_names();
    if (!names) return std::unexpected(names.error());
    for (const auto& name : *names) {
        auto c = state->certificate(name);
        if (!c || !*c) continue;
        auto leaf = x509::inspect((*c)->cert_pem);
        if (leaf && leaf->spki == key.public_key_der()) out.push_back(name);
    }
    return out;
}
}  // namespace

Result<Output> key_delete(const Options& o, keystore::Registry& reg) {
    auto uri = parse_uri(o.key, "--key");
    if (!uri) return std::unexpected(uri.error());
    auto ks = reg.keystore_for(*uri);
    if (!ks) return std::unexpected(ks.error());
    // The key is opened first: a delete of nothing fails before asking, and the question
    // names what still uses it.
    auto key = (*ks)->open(*uri);
    if (!key) return std::unexpected(key.error());
    auto users = certificates_using(o, **key);
    if (!users) return std::unexpected(users.error());
    std::string question = "Destroy " + (*key)->uri().to_string() + "? It cannot be recovered.";
    if (!users->empty()) {
        std::string list;
        for (const auto& n : *users) list += (list.empty() ? "" : ", ") + n;
        question += " Certificates in " + o.state_dir + " that use it: " + list +
                    " (renew them with --new-key first).";
        base::log::warning("key delete: used by the certificates " + list + " in " + o.state_dir);
    }
    if (auto r = confirm(o, "key delete", question); !r) return std::unexpected(r.error());
    if (auto r = (*ks)->destroy(*uri); !r) return std::unexpected(r.error());
    Output out;
    out.data = {{"deleted", uri->to_string()}, {"used_by", *users}};
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

Result<Output> key_attest(const Options& o, keystore::Registry& reg) {
    auto nonce = base::hex_decode(o.nonce);
    if (!nonce || nonce->empty() || nonce->size() > 64)
        return fail(Errc::usage, "--nonce",
                    "'" + o.nonce + "' is not a nonce: give 1 to 64 bytes as hex digits");
    auto uri = parse_uri(o.key, "--key");
    if (!uri) return std::unexpected(uri.error());
    auto key = reg.open(*uri);
    if (!key) return std::unexpected(key.error());
    auto a = tpm::attest(**key, *nonce);
    if (!a) return std::unexpected(a.error());
    const base::Bytes cbor = tpm::attestation_cbor(*a);
    json x5c = json::array();
    for (const auto& c : a->x5c) x5c.push_back(base::base64url_encode(c));
    json stmt = {{"ver", "2.0"},
                 {"alg", a->alg},
                 {"sig", base::base64url_encode(a->sig)},
                 {"certInfo", base::base64url_encode(a->cert_info)},
                 {"pubArea", base::base64url_encode(a->pub_area)}};
    if (!a->x5c.empty()) stmt["x5c"] = x5c;
    const json object = {
        {"fmt", "tpm"}, {"attStmt", stmt}, {"akPubArea", base::base64url_encode(a->ak_pub_area)}};
    const std::string encoded =
        o.format == "json" ? object.dump(2) + "\n" : std::string(cbor.begin(), cbor.end());
    if (!o.out.empty())
        if (auto w = base::write_file_atomic(o.out, encoded, 0644); !w)
            return std::unexpected(w.error());
    char ek_index[16];
    (void)std::snprintf(ek_index, sizeof ek_index, "0x%08x", a->ek_cert_index);
    Output out;
    out.data = {{"key", (*key)->uri().to_string()},
                {"format", o.format},
                {"out", o.out.empty() ? json(nullptr) : json(o.out)},
                {"ek_certificate", a->x5c.empty() ? json(nullptr) : json(ek_index)},
                {"attObj", base::base64url_encode(cbor)},
                {"attestation", object}};
    if (!o.out.empty())
        out.text = "wrote " + o.out + " (" + o.format + ", " + std::to_string(encoded.size()) +
                   " bytes" +
                   (a->x5c.empty() ? ", no EK certificate in this TPM"
                                   : ", EK certificate from NV " + std::string(ek_index)) +
                   ")\n";
    else
        out.text = o.format == "json" ? encoded : base::base64url_encode(cbor) + "\n";
    return out;
}

}  // namespace cli
