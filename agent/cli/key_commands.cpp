#include "cli/common.h"

#include "base/log.h"
#include "base/ossl.h"
#include "keystore/jwk.h"
#include "keystore/mac.h"
#include "store/pg.h"
#include "tpm/tpm_keystore.h"

#include <openssl/pem.h>

#include <cstdio>

namespace cli {

namespace {

// key show: the public key as PEM.
std::string pem_public_key(const base::Bytes& spki) {
    auto pkey = base::ossl::pkey_from_spki(spki);
    if (!pkey) return "";
    base::ossl::Bio bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_PUBKEY(bio.get(), pkey->get());
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

// key generate, key import-hmac: the URI of the new key.
struct KeyMade {
    std::string uri;
    std::optional<std::string> algorithm;  // generate
};
json json_of(const KeyMade& r) {
    json j{{"uri", r.uri}};
    if (r.algorithm) j["algorithm"] = *r.algorithm;
    return j;
}
std::string text_of(const KeyMade& r) {
    return r.uri + "\n";
}

// key list
struct KeyListed {
    std::vector<keystore::KeyInfo> keys;
};
json json_of(const KeyListed& r) {
    json j = json::array();
    for (const auto& k : r.keys)
        j.push_back(
            {{"uri", k.uri.to_string()}, {"algorithm", keystore::algorithm_name(k.algorithm)}});
    return j;
}
std::string text_of(const KeyListed& r) {
    std::string text;
    for (const auto& k : r.keys)
        text +=
            std::string(keystore::algorithm_name(k.algorithm)) + "  " + k.uri.to_string() + "\n";
    return text;
}

// key show
struct KeyShown {
    std::string uri, algorithm, thumbprint;
    std::vector<keystore::KeyProperty> properties;
    // What makes the key refused as an account or certificate key unless --allow-weak-key
    // ([] when nothing), and whether that was given.
    std::vector<std::string> weak;
    bool allow_weak_key;
    std::string public_key_pem;
};
json json_of(const KeyShown& r) {
    json p = json::object();
    for (const auto& kp : r.properties) p[kp.name] = kp.value;
    return {{"uri", r.uri},
            {"algorithm", r.algorithm},
            {"jwk_thumbprint", r.thumbprint},
            {"properties", p},
            {"weak", r.weak},
            {"allow_weak_key", r.allow_weak_key},
            {"public_key_pem", r.public_key_pem}};
}
std::string text_of(const KeyShown& r) {
    std::string text;
    auto field = [&](std::string name, const std::string& value) {
        name += ":";
        name.resize(std::max<std::size_t>(name.size() + 1, 24), ' ');
        text += name + value + "\n";
    };
    field("uri", r.uri);
    field("algorithm", r.algorithm);
    field("jwk thumbprint", r.thumbprint);
    for (const auto& kp : r.properties) field(kp.name, kp.value);
    std::string list;
    for (const auto& w : r.weak) list += (list.empty() ? "" : ", ") + w;
    if (!r.weak.empty())
        field("weak", list + (r.allow_weak_key ? " (accepted: --allow-weak-key)"
                                               : " (refused as an account or certificate key "
                                                 "without --allow-weak-key)"));
    return text + r.public_key_pem;
}

// key delete
struct KeyDeleted {
    std::string uri;
    std::vector<std::string> used_by;
};
json json_of(const KeyDeleted& r) {
    return {{"deleted", r.uri}, {"used_by", r.used_by}};
}
std::string text_of(const KeyDeleted& r) {
    return "deleted " + r.uri + "\n";
}

}  // namespace

Result<Output> key_generate(const Global& /*g*/, const KeyArgs& a, keystore::Registry& reg) {
    auto uri = parse_uri(a.key, "--key");
    if (!uri) return std::unexpected(uri.error());
    auto alg = keystore::parse_algorithm(a.type);
    if (!alg)
        return fail(Errc::usage, "--type",
                    "unknown algorithm '" + a.type + "'; choose one of " +
                        std::string(keystore::algorithm_names()));
    auto key = reg.generate(*uri, *alg, {.always_authenticate = a.always_auth});
    if (!key) return std::unexpected(key.error());
    return render(KeyMade{(*key)->uri().to_string(), std::string(keystore::algorithm_name(*alg))},
                  json_of, text_of);
}

Result<Output> key_list(const Global& /*g*/, const KeyArgs& a, keystore::Registry& reg) {
    auto uri = parse_uri(a.key, "--key");
    if (!uri) return std::unexpected(uri.error());
    auto ks = reg.keystore_for(*uri);
    if (!ks) return std::unexpected(ks.error());
    auto keys = (*ks)->list(*uri);
    if (!keys) return std::unexpected(keys.error());
    return render(KeyListed{std::move(*keys)}, json_of, text_of);
}

Result<Output> key_show(const Global& g, const KeyArgs& a, keystore::Registry& reg) {
    auto uri = parse_uri(a.key, "--key");
    if (!uri) return std::unexpected(uri.error());
    auto key = reg.open(*uri);
    if (!key) return std::unexpected(key.error());
    auto thumb = keystore::jwk_thumbprint((*key)->public_key_der());
    if (!thumb) return std::unexpected(thumb.error());
    auto props = (*key)->properties();
    if (!props) return std::unexpected(props.error());
    auto weak = weaknesses(**key);
    if (!weak) return std::unexpected(weak.error());
    return render(KeyShown{(*key)->uri().to_string(),
                           std::string(keystore::algorithm_name((*key)->algorithm())), *thumb,
                           std::move(*props), std::move(*weak), g.allow_weak_key,
                           pem_public_key((*key)->public_key_der())},
                  json_of, text_of);
}

Result<Output> key_delete(const Global& g, const KeyArgs& a, keystore::Registry& reg) {
    auto uri = parse_uri(a.key, "--key");
    if (!uri) return std::unexpected(uri.error());
    auto ks = reg.keystore_for(*uri);
    if (!ks) return std::unexpected(ks.error());
    // The key is opened first: a delete of nothing fails before asking, and the question
    // names what still uses it.
    auto key = (*ks)->open(*uri);
    if (!key) return std::unexpected(key.error());
    auto users = lifecycle::certificates_using(g, **key);
    if (!users) return std::unexpected(users.error());
    std::string question = "Destroy " + (*key)->uri().to_string() + "? It cannot be recovered.";
    if (!users->empty()) {
        std::string list;
        for (const auto& n : *users) list += (list.empty() ? "" : ", ") + n;
        const std::string where = g.storage.empty() ? g.state_dir : store::pg::redact(g.storage);
        question += " Certificates in " + where + " that use it: " + list +
                    " (renew them with --new-key first).";
        base::log::warning("key delete: used by the certificates " + list + " in " + where);
    }
    if (auto r = confirm(a.yes, "key delete", question); !r) return std::unexpected(r.error());
    if (auto r = (*ks)->destroy(*uri); !r) return std::unexpected(r.error());
    return render(KeyDeleted{uri->to_string(), std::move(*users)}, json_of, text_of);
}

Result<Output> key_import_hmac(const Global& /*g*/, const KeyArgs& a, keystore::Registry& reg) {
    auto uri = parse_uri(a.key, "--key");
    if (!uri) return std::unexpected(uri.error());
    auto secret = read_mac_key_file(a.from);
    if (!secret) return std::unexpected(secret.error());
    auto ks = reg.keystore_for(*uri);
    if (!ks) return std::unexpected(ks.error());
    auto* macs = dynamic_cast<keystore::MacKeystore*>(*ks);
    if (!macs)
        return fail(Errc::unsupported, "--key",
                    "this backend cannot hold HMAC keys; use a pkcs11: token");
    auto stored = macs->import_hmac(*uri, *secret);
    if (!stored) return std::unexpected(stored.error());
    return render(KeyMade{stored->to_string(), std::nullopt}, json_of, text_of);
}

namespace {
// key attest: the attestation object, written to --out or printed.
struct Attested {
    std::string key, format, out;         // out: "" for stdout
    std::optional<std::string> ek_index;  // the EK certificate's NV index, when there is one
    std::string att_obj;                  // the CBOR object, base64url
    json attestation;                     // the same as JSON, bytes as base64url
    std::string encoded;                  // what --format gives: CBOR bytes or JSON text
};
json json_of(const Attested& r) {
    return {{"key", r.key},
            {"format", r.format},
            {"out", r.out.empty() ? json(nullptr) : json(r.out)},
            {"ek_certificate", r.ek_index ? json(*r.ek_index) : json(nullptr)},
            {"attObj", r.att_obj},
            {"attestation", r.attestation}};
}
std::string text_of(const Attested& r) {
    if (r.out.empty()) return r.format == "json" ? r.encoded : r.att_obj + "\n";
    return "wrote " + r.out + " (" + r.format + ", " + std::to_string(r.encoded.size()) + " bytes" +
           (r.ek_index ? ", EK certificate from NV " + *r.ek_index
                       : ", no EK certificate in this TPM") +
           ")\n";
}
}  // namespace

Result<Output> key_attest(const Global& /*g*/, const KeyArgs& a, keystore::Registry& reg) {
    auto nonce = base::hex_decode(a.nonce);
    if (!nonce || nonce->empty() || nonce->size() > 64)
        return fail(Errc::usage, "--nonce",
                    "'" + a.nonce + "' is not a nonce: give 1 to 64 bytes as hex digits");
    auto uri = parse_uri(a.key, "--key");
    if (!uri) return std::unexpected(uri.error());
    auto key = reg.open(*uri);
    if (!key) return std::unexpected(key.error());
    auto att = tpm::attest(**key, *nonce);
    if (!att) return std::unexpected(att.error());
    const base::Bytes cbor = tpm::attestation_cbor(*att);
    json x5c = json::array();
    for (const auto& c : att->x5c) x5c.push_back(base::base64url_encode(c));
    json stmt = {{"ver", "2.0"},
                 {"alg", att->alg},
                 {"sig", base::base64url_encode(att->sig)},
                 {"certInfo", base::base64url_encode(att->cert_info)},
                 {"pubArea", base::base64url_encode(att->pub_area)}};
    if (!att->x5c.empty()) stmt["x5c"] = x5c;
    Attested r{(*key)->uri().to_string(),
               a.format,
               a.out,
               std::nullopt,
               base::base64url_encode(cbor),
               {{"fmt", "tpm"},
                {"attStmt", stmt},
                {"akPubArea", base::base64url_encode(att->ak_pub_area)}},
               ""};
    r.encoded =
        a.format == "json" ? r.attestation.dump(2) + "\n" : std::string(cbor.begin(), cbor.end());
    if (!a.out.empty())
        if (auto w = base::write_file_atomic(a.out, r.encoded, 0644); !w)
            return std::unexpected(w.error());
    if (!att->x5c.empty()) {
        char ek_index[16];
        (void)std::snprintf(ek_index, sizeof ek_index, "0x%08x", att->ek_cert_index);
        r.ek_index = ek_index;
    }
    return render(r, json_of, text_of);
}

}  // namespace cli
