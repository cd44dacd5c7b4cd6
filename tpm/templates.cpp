#include "tpm/templates.h"

#include "base/ossl.h"

#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <tss2/tss2_mu.h>

namespace tpm {

using base::Errc;
using base::fail;
using keystore::KeyAlgorithm;

namespace {

constexpr TPMA_OBJECT kSigningAttrs = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                                      TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                                      TPMA_OBJECT_SIGN_ENCRYPT;

}  // namespace

TPM2B_PUBLIC srk_template() {
    TPM2B_PUBLIC t{};
    TPMT_PUBLIC& p = t.publicArea;
    p.type = TPM2_ALG_ECC;
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT |
                         TPMA_OBJECT_NODA | TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                         TPMA_OBJECT_SENSITIVEDATAORIGIN;
    p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
    p.parameters.eccDetail.symmetric.keyBits.aes = 128;
    p.parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
    p.parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
    p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    // unique.ecc.x/y stay empty: see the header.
    return t;
}

base::Result<TPM2B_PUBLIC> signing_template(KeyAlgorithm alg) {
    TPM2B_PUBLIC t{};
    TPMT_PUBLIC& p = t.publicArea;
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = kSigningAttrs;
    switch (alg) {
        case KeyAlgorithm::ec_p256:
        case KeyAlgorithm::ec_p384: {
            const bool p384 = alg == KeyAlgorithm::ec_p384;
            p.type = TPM2_ALG_ECC;
            p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
            p.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
            p.parameters.eccDetail.scheme.details.ecdsa.hashAlg =
                p384 ? TPM2_ALG_SHA384 : TPM2_ALG_SHA256;
            p.parameters.eccDetail.curveID = p384 ? TPM2_ECC_NIST_P384 : TPM2_ECC_NIST_P256;
            p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
            return t;
        }
        case KeyAlgorithm::rsa_2048:
        case KeyAlgorithm::rsa_3072:
            p.type = TPM2_ALG_RSA;
            p.parameters.rsaDetail.symmetric.algorithm = TPM2_ALG_NULL;
            p.parameters.rsaDetail.scheme.scheme = TPM2_ALG_RSASSA;
            p.parameters.rsaDetail.scheme.details.rsassa.hashAlg = TPM2_ALG_SHA256;
            p.parameters.rsaDetail.keyBits =
                static_cast<TPMI_RSA_KEY_BITS>(keystore::rsa_bits(alg));
            p.parameters.rsaDetail.exponent = 0;  // 65537
            return t;
        case KeyAlgorithm::rsa_4096:
            break;
    }
    return fail(Errc::unsupported, "tpm2",
                std::string(keystore::algorithm_name(alg)) +
                    " keys cannot be created in a TPM 2.0 (RSA stops at 3072 bits); use ec-p256, "
                    "ec-p384, rsa-2048 or rsa-3072");
}

base::Result<KeyAlgorithm> algorithm_of(const TPMT_PUBLIC& pub) {
    const TPMA_OBJECT a = pub.objectAttributes;
    if (!(a & TPMA_OBJECT_SIGN_ENCRYPT) || (a & TPMA_OBJECT_RESTRICTED))
        return fail(Errc::unsupported, "tpm2", "the object is not an unrestricted signing key");
    if (pub.type == TPM2_ALG_ECC) {
        const auto& d = pub.parameters.eccDetail;
        KeyAlgorithm alg{};
        TPMI_ALG_HASH hash{};
        if (d.curveID == TPM2_ECC_NIST_P256) {
            alg = KeyAlgorithm::ec_p256;
            hash = TPM2_ALG_SHA256;
        } else if (d.curveID == TPM2_ECC_NIST_P384) {
            alg = KeyAlgorithm::ec_p384;
            hash = TPM2_ALG_SHA384;
        } else {
            return fail(Errc::unsupported, "tpm2", "ECC curve has no JWS algorithm here");
        }
        if (d.scheme.scheme != TPM2_ALG_NULL &&
            (d.scheme.scheme != TPM2_ALG_ECDSA || d.scheme.details.ecdsa.hashAlg != hash))
            return fail(Errc::unsupported, "tpm2",
                        "the key's fixed signing scheme is not ECDSA with the curve's hash");
        return alg;
    }
    if (pub.type == TPM2_ALG_RSA) {
        const auto& d = pub.parameters.rsaDetail;
        if (d.exponent != 0 && d.exponent != 65537)
            return fail(Errc::unsupported, "tpm2", "RSA public exponent is not 65537");
        if (d.scheme.scheme != TPM2_ALG_NULL &&
            (d.scheme.scheme != TPM2_ALG_RSASSA ||
             d.scheme.details.rsassa.hashAlg != TPM2_ALG_SHA256))
            return fail(Errc::unsupported, "tpm2",
                        "the key's fixed signing scheme is not RSASSA-PKCS1-v1_5 with SHA-256");
        if (d.keyBits == 2048) return KeyAlgorithm::rsa_2048;
        if (d.keyBits == 3072) return KeyAlgorithm::rsa_3072;
        if (d.keyBits == 4096) return KeyAlgorithm::rsa_4096;
        return fail(Errc::unsupported, "tpm2", "RSA key size has no JWS algorithm here");
    }
    return fail(Errc::unsupported, "tpm2", "object type is neither ECC nor RSA");
}

TPMT_SIG_SCHEME sig_scheme(KeyAlgorithm alg) {
    TPMT_SIG_SCHEME s{};
    if (keystore::is_ec(alg)) {
        s.scheme = TPM2_ALG_ECDSA;
        s.details.ecdsa.hashAlg = alg == KeyAlgorithm::ec_p384 ? TPM2_ALG_SHA384 : TPM2_ALG_SHA256;
    } else {
        s.scheme = TPM2_ALG_RSASSA;
        s.details.rsassa.hashAlg = TPM2_ALG_SHA256;
    }
    return s;
}

base::Result<base::Bytes> spki_of(const TPMT_PUBLIC& pub) {
    auto alg = algorithm_of(pub);
    if (!alg) return std::unexpected(alg.error());
    std::unique_ptr<OSSL_PARAM_BLD, base::ossl::Deleter<OSSL_PARAM_BLD_free>> bld(
        OSSL_PARAM_BLD_new());
    base::ossl::Bn n;
    base::ossl::Bn e;
    // cppcheck-suppress variableScope ; OSSL_PARAM_BLD_to_param() below reads it, after the if
    base::Bytes point;
    const char* type = nullptr;
    if (keystore::is_ec(*alg)) {
        type = "EC";
        const std::size_t w = keystore::ec_field_size(*alg);
        const auto& x = pub.unique.ecc.x;
        const auto& y = pub.unique.ecc.y;
        if (x.size > w || y.size > w)
            return fail(Errc::hardware, "tpm2", "ECC public point wider than its curve");
        point.assign(1 + 2 * w, 0);
        point[0] = 0x04;  // uncompressed; coordinates left-padded to the field width
        const auto at = [&](std::size_t i) {
            return point.begin() + static_cast<std::ptrdiff_t>(i);
        };
        std::copy(x.buffer, x.buffer + x.size, at(1 + (w - x.size)));
        std::copy(y.buffer, y.buffer + y.size, at(1 + w + (w - y.size)));
        if (!bld ||
            !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                             *alg == KeyAlgorithm::ec_p384 ? "P-384" : "P-256",
                                             0) ||
            !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                              point.size()))
            return base::ossl::fail_ossl("OSSL_PARAM_BLD");
    } else {
        type = "RSA";
        const auto& m = pub.unique.rsa;
        const std::uint32_t exp =
            pub.parameters.rsaDetail.exponent ? pub.parameters.rsaDetail.exponent : 65537;
        n.reset(BN_bin2bn(m.buffer, m.size, nullptr));
        e.reset(BN_new());
        if (!bld || !n || !e || !BN_set_word(e.get(), exp) ||
            !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get()) ||
            !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get()))
            return base::ossl::fail_ossl("OSSL_PARAM_BLD");
    }
    std::unique_ptr<OSSL_PARAM, base::ossl::Deleter<OSSL_PARAM_free>> params(
        OSSL_PARAM_BLD_to_param(bld.get()));
    base::ossl::PKeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, type, "provider=default"));
    EVP_PKEY* raw = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
        return base::ossl::fail_ossl("EVP_PKEY_fromdata");
    base::ossl::PKey pkey(raw);
    return base::ossl::spki_of(pkey.get());
}

bool is_storage_key(const TPMT_PUBLIC& pub) {
    const TPMA_OBJECT a = pub.objectAttributes;
    return (a & TPMA_OBJECT_RESTRICTED) && (a & TPMA_OBJECT_DECRYPT) &&
           !(a & TPMA_OBJECT_SIGN_ENCRYPT) &&
           (pub.type == TPM2_ALG_ECC || pub.type == TPM2_ALG_RSA);
}

std::vector<keystore::KeyProperty> attribute_properties(TPMA_OBJECT attrs) {
    const std::pair<const char*, TPMA_OBJECT> bits[] = {
        {"fixedTPM", TPMA_OBJECT_FIXEDTPM},
        {"fixedParent", TPMA_OBJECT_FIXEDPARENT},
        {"sensitiveDataOrigin", TPMA_OBJECT_SENSITIVEDATAORIGIN},
        {"userWithAuth", TPMA_OBJECT_USERWITHAUTH},
        {"sign", TPMA_OBJECT_SIGN_ENCRYPT},
        {"decrypt", TPMA_OBJECT_DECRYPT},
        {"restricted", TPMA_OBJECT_RESTRICTED},
        {"noDA", TPMA_OBJECT_NODA},
    };
    std::vector<keystore::KeyProperty> out;
    for (auto [name, bit] : bits) out.push_back({name, (attrs & bit) ? "true" : "false"});
    return out;
}

base::Result<base::Bytes> marshal(const TPM2B_PUBLIC& pub) {
    base::Bytes out(sizeof(TPM2B_PUBLIC));
    std::size_t off = 0;
    if (TSS2_RC rc = Tss2_MU_TPM2B_PUBLIC_Marshal(&pub, out.data(), out.size(), &off); rc)
        return fail(Errc::internal, "Tss2_MU_TPM2B_PUBLIC_Marshal", "cannot marshal", rc);
    out.resize(off);
    return out;
}

base::Result<base::Bytes> marshal(const TPM2B_PRIVATE& priv) {
    base::Bytes out(sizeof(TPM2B_PRIVATE));
    std::size_t off = 0;
    if (TSS2_RC rc = Tss2_MU_TPM2B_PRIVATE_Marshal(&priv, out.data(), out.size(), &off); rc)
        return fail(Errc::internal, "Tss2_MU_TPM2B_PRIVATE_Marshal", "cannot marshal", rc);
    out.resize(off);
    return out;
}

base::Result<TPM2B_PUBLIC> unmarshal_public(const base::Bytes& data) {
    TPM2B_PUBLIC pub{};
    std::size_t off = 0;
    if (TSS2_RC rc = Tss2_MU_TPM2B_PUBLIC_Unmarshal(data.data(), data.size(), &off, &pub);
        rc || off != data.size())
        return fail(Errc::io, "Tss2_MU_TPM2B_PUBLIC_Unmarshal",
                    "the key file's public part is malformed", rc);
    return pub;
}

base::Result<TPM2B_PRIVATE> unmarshal_private(const base::Bytes& data) {
    TPM2B_PRIVATE priv{};
    std::size_t off = 0;
    if (TSS2_RC rc = Tss2_MU_TPM2B_PRIVATE_Unmarshal(data.data(), data.size(), &off, &priv);
        rc || off != data.size())
        return fail(Errc::io, "Tss2_MU_TPM2B_PRIVATE_Unmarshal",
                    "the key file's private part is malformed", rc);
    return priv;
}

}  // namespace tpm
