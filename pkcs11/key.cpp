#include "pkcs11/key.h"

#include "base/log.h"
#include "base/ossl.h"
#include "pkcs11/object.h"

#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include <cstring>

namespace pkcs11 {

using base::Bytes;
using base::Errc;
using base::fail;
using keystore::KeyAlgorithm;

namespace {

// DER OIDs for CKA_EC_PARAMS.
const Bytes kP256Oid{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
const Bytes kP384Oid{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
// DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1): RS256 hashes on the host.
const Bytes kSha256DigestInfo{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                              0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};

}  // namespace

// SubjectPublicKeyInfo from a public key object (EC) or the private key's public parts (RSA).
Result<std::pair<KeyAlgorithm, Bytes>> public_key_of(CK_FUNCTION_LIST* fn, CK_SESSION_HANDLE s,
                                                     CK_OBJECT_HANDLE priv, const Bytes& id) {
    auto type = get_attr(fn, s, priv, CKA_KEY_TYPE);
    if (!type || type->size() != sizeof(CK_KEY_TYPE))
        return fail(Errc::hardware, "C_GetAttributeValue", "cannot read the key type");
    CK_KEY_TYPE kt = 0;
    std::memcpy(&kt, type->data(), sizeof kt);
    std::unique_ptr<OSSL_PARAM_BLD, base::ossl::Deleter<OSSL_PARAM_BLD_free>> bld(
        OSSL_PARAM_BLD_new());
    KeyAlgorithm alg{};
    const char* kind = nullptr;
    base::ossl::Bn n;
    base::ossl::Bn e;
    // cppcheck-suppress variableScope ; OSSL_PARAM_BLD_to_param() below reads it, after the if
    Bytes point;
    if (kt == CKK_EC) {
        auto params = get_attr(fn, s, priv, CKA_EC_PARAMS);
        if (params == kP256Oid)
            alg = KeyAlgorithm::ec_p256;
        else if (params == kP384Oid)
            alg = KeyAlgorithm::ec_p384;
        else
            return fail(Errc::unsupported, "pkcs11", "EC key on a curve other than P-256/P-384");
        // The point lives on the public key object (SoftHSM's private EC key has none).
        CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
        std::vector<CK_ATTRIBUTE> t{{CKA_CLASS, &cls, sizeof cls},
                                    {CKA_ID, const_cast<std::uint8_t*>(id.data()), id.size()}};
        auto pubs = find(fn, s, t);
        if (!pubs) return std::unexpected(pubs.error());
        std::optional<Bytes> raw;
        if (!pubs->empty()) raw = get_attr(fn, s, pubs->front(), CKA_EC_POINT);
        if (!raw) raw = get_attr(fn, s, priv, CKA_EC_POINT);
        if (!raw)
            return fail(Errc::not_found, "pkcs11",
                        "no public key object with the private key's CKA_ID");
        point = *raw;
        // CKA_EC_POINT is DER OCTET STRING per the spec; some tokens give the bare point.
        const std::size_t plen = 1 + 2 * keystore::ec_field_size(alg);
        if (point.size() == plen + 2 && point[0] == 0x04 && point[1] == plen)
            point.erase(point.begin(), point.begin() + 2);
        else if (point.size() == plen + 3 && point[0] == 0x04 && point[1] == 0x81)
            point.erase(point.begin(), point.begin() + 3);
        if (point.size() != plen) return fail(Errc::hardware, "pkcs11", "malformed CKA_EC_POINT");
        kind = "EC";
        OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                        alg == KeyAlgorithm::ec_p256 ? "P-256" : "P-384", 0);
        OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                         point.size());
    } else if (kt == CKK_RSA) {
        auto mod = get_attr(fn, s, priv, CKA_MODULUS);
        auto exp = get_attr(fn, s, priv, CKA_PUBLIC_EXPONENT);
        if (!mod || !exp) return fail(Errc::hardware, "pkcs11", "cannot read the RSA public key");
        n.reset(BN_bin2bn(mod->data(), static_cast<int>(mod->size()), nullptr));
        e.reset(BN_bin2bn(exp->data(), static_cast<int>(exp->size()), nullptr));
        switch (BN_num_bits(n.get())) {
            case 2048:
                alg = KeyAlgorithm::rsa_2048;
                break;
            case 3072:
                alg = KeyAlgorithm::rsa_3072;
                break;
            case 4096:
                alg = KeyAlgorithm::rsa_4096;
                break;
            default:
                return fail(Errc::unsupported, "pkcs11", "RSA key of an unsupported size");
        }
        kind = "RSA";
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get());
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get());
    } else {
        return fail(Errc::unsupported, "pkcs11", "only EC and RSA keys can sign ACME requests");
    }
    std::unique_ptr<OSSL_PARAM, base::ossl::Deleter<OSSL_PARAM_free>> params(
        OSSL_PARAM_BLD_to_param(bld.get()));
    base::ossl::PKeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, kind, "provider=default"));
    EVP_PKEY* raw_key = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &raw_key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
        return base::ossl::fail_ossl("EVP_PKEY_fromdata");
    base::ossl::PKey pkey(raw_key);
    auto spki = base::ossl::spki_of(pkey.get());
    if (!spki) return std::unexpected(spki.error());
    return std::pair{alg, std::move(*spki)};
}

Result<CK_OBJECT_HANDLE> generate_key_pair(const Token& token, CK_SESSION_HANDLE s,
                                           KeyAlgorithm alg, const std::string& label, Bytes id,
                                           const keystore::KeyOptions& options) {
    auto* fn = token.fn();
    CK_MECHANISM mech{keystore::is_ec(alg) ? CKM_EC_KEY_PAIR_GEN : CKM_RSA_PKCS_KEY_PAIR_GEN,
                      nullptr, 0};
    const Bytes& oid = alg == KeyAlgorithm::ec_p384 ? kP384Oid : kP256Oid;
    CK_ULONG bits = keystore::rsa_bits(alg);
    std::uint8_t exponent[] = {0x01, 0x00, 0x01};
    std::vector<CK_ATTRIBUTE> pub{{CKA_TOKEN, &kTrue, 1},
                                  {CKA_PRIVATE, &kFalse, 1},
                                  {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
                                  {CKA_ID, id.data(), id.size()}};
    if (keystore::is_ec(alg)) {
        pub.push_back({CKA_EC_PARAMS, const_cast<std::uint8_t*>(oid.data()), oid.size()});
    } else {
        pub.push_back({CKA_MODULUS_BITS, &bits, sizeof bits});
        pub.push_back({CKA_PUBLIC_EXPONENT, exponent, sizeof exponent});
    }
    // SECURITY.md rule 10: every attribute explicit; SoftHSM's defaults are unsafe.
    std::vector<CK_ATTRIBUTE> priv{
        {CKA_TOKEN, &kTrue, 1},        {CKA_PRIVATE, &kTrue, 1},
        {CKA_SENSITIVE, &kTrue, 1},    {CKA_EXTRACTABLE, &kFalse, 1},
        {CKA_SIGN, &kTrue, 1},         {CKA_SIGN_RECOVER, &kFalse, 1},
        {CKA_DECRYPT, &kFalse, 1},     {CKA_UNWRAP, &kFalse, 1},
        {CKA_DERIVE, &kFalse, 1},      {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
        {CKA_ID, id.data(), id.size()}};
    if (options.always_authenticate) priv.push_back({CKA_ALWAYS_AUTHENTICATE, &kTrue, 1});
    // The public half's usage, stated too; see the retry below for tokens that refuse it.
    std::vector<CK_ATTRIBUTE> pub_usage = pub;
    pub_usage.insert(pub_usage.end(), {{CKA_VERIFY, &kTrue, 1},
                                       {CKA_ENCRYPT, &kFalse, 1},
                                       {CKA_WRAP, &kFalse, 1},
                                       {CKA_DERIVE, &kFalse, 1}});
    CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE hpriv = CK_INVALID_HANDLE;
    CK_RV rv = fn->C_GenerateKeyPair(s, &mech, pub_usage.data(), pub_usage.size(), priv.data(),
                                     priv.size(), &hpub, &hpriv);
    if (rv == CKR_GENERAL_ERROR || rv == CKR_TEMPLATE_INCONSISTENT ||
        rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_ATTRIBUTE_TYPE_INVALID) {
        // tpm2-pkcs11 1.9 derives the public half's usage from the TPM object it makes from
        // the private template, and refuses a public template that states it
        // (CKR_GENERAL_ERROR, "attr mismatch"). The public half is asked for again without
        // usage; the private half's template is unchanged and checked below.
        base::log::debug("pkcs11: token '" + token.label() +
                         "' refused the public "
                         "key's usage attributes (" +
                         rv_name(rv) + "); generating with its own defaults for the public half");
        rv = fn->C_GenerateKeyPair(s, &mech, pub.data(), pub.size(), priv.data(), priv.size(),
                                   &hpub, &hpriv);
    }
    if (auto r = check_rv(
            "C_GenerateKeyPair", rv,
            std::string(keystore::algorithm_name(alg)) + " on token '" + token.label() + "'");
        !r)
        return std::unexpected(r.error());
    // Trust, but verify: the token must say the key was born sensitive, unexportable and
    // sign-only, and asks for the PIN before each signature when that was asked for.
    bool kept = !get_bool(fn, s, hpriv, CKA_DECRYPT).value_or(false) &&
                !get_bool(fn, s, hpriv, CKA_UNWRAP).value_or(false);
    for (auto t : {CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_SENSITIVE})
        kept = kept && get_bool(fn, s, hpriv, t).value_or(false);
    if (!kept) {
        fn->C_DestroyObject(s, hpriv);
        fn->C_DestroyObject(s, hpub);
        return fail(Errc::hardware, "C_GenerateKeyPair",
                    "the token did not keep the new key sensitive, non-extractable and "
                    "sign-only; the key was destroyed");
    }
    if (options.always_authenticate &&
        !get_bool(fn, s, hpriv, CKA_ALWAYS_AUTHENTICATE).value_or(false)) {
        fn->C_DestroyObject(s, hpriv);
        fn->C_DestroyObject(s, hpub);
        return fail(Errc::unsupported, "C_GenerateKeyPair",
                    "token '" + token.label() +
                        "' did not keep CKA_ALWAYS_AUTHENTICATE on the new key; the key was "
                        "destroyed");
    }
    return hpriv;
}

Result<Bytes> Pkcs11Key::sign(std::span<const std::uint8_t> message) const {
    const bool ec = keystore::is_ec(alg_);
    Bytes input = base::ossl::digest(alg_ == KeyAlgorithm::ec_p384 ? "SHA384" : "SHA256", message);
    if (!ec) input.insert(input.begin(), kSha256DigestInfo.begin(), kSha256DigestInfo.end());
    const base::log::TraceSpan trace("sign");
    const std::uint64_t seen = token_->generation();
    CK_RV rv = CKR_OK;
    auto sig = sign_once(message, input, &rv);
    if (!sig && !ec && !rsa_on_token_.load() && rv != CKR_OK && rv_errc(rv) == Errc::hardware &&
        token_->present()) {
        // tpm2-pkcs11 makes raw CKM_RSA_PKCS out of TPM2_RSA_Decrypt, which a sign-only key
        // may not do (CKR_GENERAL_ERROR); CKM_SHA256_RSA_PKCS is TPM2_Sign. The signature is
        // the same (PKCS#1 v1.5 is deterministic); only the hashing moves to the token.
        base::log::debug("pkcs11: " + rv_name(rv) +
                         " for CKM_RSA_PKCS; signing with CKM_SHA256_RSA_PKCS instead");
        rsa_on_token_.store(true);
        sig = sign_once(message, input, &rv);
    }
    // A token that lost its sessions (a network HSM reconnecting, a device removed and
    // reinserted) is recovered once, and the signature asked for again.
    if (!sig && rv != CKR_OK && token_->lost(rv)) {
        if (auto r = token_->recover(uri_, seen, sig.error()); !r)
            return std::unexpected(r.error());
        sig = sign_once(message, input, &rv);
    }
    return sig;
}

Result<std::vector<keystore::KeyProperty>> Pkcs11Key::properties() const {
    auto lease = token_->session();
    if (!lease) return std::unexpected(lease.error());
    auto handle = private_handle(lease->get());
    if (!handle) return std::unexpected(handle.error());
    auto* fn = token_->fn();
    std::vector<keystore::KeyProperty> out{
        {"backend", "pkcs11"},
        {"token", token_->label()},
        {"manufacturer", token_->manufacturer()},
        {"model", token_->model()},
        {"serial", token_->serial()},
        {"module", token_->module_path()},
    };
    auto flag = [&](const char* name, CK_ATTRIBUTE_TYPE t) {
        auto v = get_bool(fn, lease->get(), *handle, t);
        out.push_back({name, v ? (*v ? "true" : "false") : "unknown"});
    };
    flag("token-object", CKA_TOKEN);
    flag("private", CKA_PRIVATE);
    flag("sensitive", CKA_SENSITIVE);
    flag("always-sensitive", CKA_ALWAYS_SENSITIVE);
    flag("extractable", CKA_EXTRACTABLE);
    flag("never-extractable", CKA_NEVER_EXTRACTABLE);
    flag("local", CKA_LOCAL);
    flag("always-authenticate", CKA_ALWAYS_AUTHENTICATE);
    std::string usage;
    const std::pair<const char*, CK_ATTRIBUTE_TYPE> uses[] = {{"sign", CKA_SIGN},
                                                              {"sign-recover", CKA_SIGN_RECOVER},
                                                              {"decrypt", CKA_DECRYPT},
                                                              {"unwrap", CKA_UNWRAP},
                                                              {"derive", CKA_DERIVE}};
    for (auto [name, t] : uses)
        if (get_bool(fn, lease->get(), *handle, t).value_or(false))
            usage += std::string(usage.empty() ? "" : ",") + name;
    out.push_back({"usage", usage.empty() ? "none" : usage});
    out.push_back(
        {"private-value-readable", get_attr(fn, lease->get(), *handle, CKA_VALUE) ||
                                           get_attr(fn, lease->get(), *handle, CKA_PRIVATE_EXPONENT)
                                       ? "true"
                                       : "false"});
    return out;
}

Result<Bytes> Pkcs11Key::sign_once(std::span<const std::uint8_t> message, const Bytes& digest_info,
                                   CK_RV* rv_out) const {
    const bool ec = keystore::is_ec(alg_);
    const bool on_token = !ec && rsa_on_token_.load();
    CK_MECHANISM mech{ec ? CKM_ECDSA : on_token ? CKM_SHA256_RSA_PKCS : CKM_RSA_PKCS, nullptr, 0};
    const std::span<const std::uint8_t> input =
        on_token ? message : std::span<const std::uint8_t>(digest_info);
    const std::size_t want = ec ? 2 * keystore::ec_field_size(alg_) : keystore::rsa_bits(alg_) / 8;
    auto lease = token_->session();
    if (!lease) {
        *rv_out = static_cast<CK_RV>(lease.error().native.value_or(CKR_OK));
        return std::unexpected(lease.error());
    }
    auto handle = private_handle(lease->get());
    if (!handle) {
        lease->broken();
        *rv_out = static_cast<CK_RV>(handle.error().native.value_or(CKR_OK));
        return std::unexpected(handle.error());
    }
    auto* fn = token_->fn();
    if (const CK_RV rv = fn->C_SignInit(lease->get(), &mech, *handle); rv != CKR_OK) {
        lease->broken();
        *rv_out = rv;
        return std::unexpected(token_->check("C_SignInit", rv, uri_.to_string()).error());
    }
    if (always_authenticate_) {
        if (auto l = token_->context_login(lease->get(), uri_); !l) {
            lease->broken();  // the session holds an operation that was never finished
            return std::unexpected(l.error());
        }
    }
    Bytes sig(want);
    CK_ULONG len = sig.size();
    if (CK_RV rv = fn->C_Sign(lease->get(), const_cast<std::uint8_t*>(input.data()), input.size(),
                              sig.data(), &len);
        rv != CKR_OK) {
        lease->broken();
        *rv_out = rv;
        return std::unexpected(token_->check("C_Sign", rv, uri_.to_string()).error());
    }
    // CKM_ECDSA already gives r||s at the order's width (PKCS#11 v2.40 §2.3.1).
    if (len != want)
        return fail(Errc::hardware, "C_Sign",
                    "token returned a " + std::to_string(len) + "-byte signature, expected " +
                        std::to_string(want));
    return sig;
}

Result<CK_OBJECT_HANDLE> Pkcs11Key::private_handle(CK_SESSION_HANDLE s) const {
    const std::uint64_t generation = token_->generation();
    {
        std::lock_guard lock(mutex_);
        if (handle_ != CK_INVALID_HANDLE && handle_generation_ == generation) return handle_;
    }
    ObjectQuery q;
    q.id = id_;
    auto found = find(token_->fn(), s, q.tmpl());
    if (!found) return std::unexpected(found.error());
    if (found->empty())
        return fail(Errc::not_found, "pkcs11", "the key " + uri_.to_string() + " is gone");
    std::lock_guard lock(mutex_);
    handle_ = found->front();
    handle_generation_ = generation;
    return handle_;
}

}  // namespace pkcs11
