#include "keystore/ecdsa.h"

#include "base/ossl.h"

namespace keystore {

namespace ossl = base::ossl;

using base::Bytes;
using base::Errc;
using base::fail;
using base::Result;

Result<Bytes> ecdsa_der_to_raw(std::span<const std::uint8_t> der, std::size_t width) {
    const unsigned char* p = der.data();
    ossl::EcdsaSig sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
    if (!sig || p != der.data() + der.size())
        return fail(Errc::hardware, "ECDSA signature", "not a DER ECDSA-Sig-Value");
    const BIGNUM* r = nullptr;
    const BIGNUM* s = nullptr;
    ECDSA_SIG_get0(sig.get(), &r, &s);
    Bytes out(width * 2);
    if (BN_bn2binpad(r, out.data(), static_cast<int>(width)) < 0 ||
        BN_bn2binpad(s, out.data() + width, static_cast<int>(width)) < 0)
        return fail(Errc::hardware, "ECDSA signature", "r or s is wider than the curve");
    return out;
}

Result<Bytes> ecdsa_raw_to_der(std::span<const std::uint8_t> raw) {
    if (raw.empty() || raw.size() % 2)
        return fail(Errc::protocol, "ECDSA signature", "r||s must have an even, non-zero length");
    const int half = static_cast<int>(raw.size() / 2);
    ossl::Bn r(BN_bin2bn(raw.data(), half, nullptr));
    ossl::Bn s(BN_bin2bn(raw.data() + half, half, nullptr));
    ossl::EcdsaSig sig(ECDSA_SIG_new());
    if (!r || !s || !sig || !ECDSA_SIG_set0(sig.get(), r.get(), s.get()))
        return ossl::fail_ossl("ECDSA_SIG_set0");
    (void)r.release();  // sig owns them now
    (void)s.release();
    const int len = i2d_ECDSA_SIG(sig.get(), nullptr);
    if (len <= 0) return ossl::fail_ossl("i2d_ECDSA_SIG");
    Bytes out(static_cast<std::size_t>(len));
    unsigned char* p = out.data();
    i2d_ECDSA_SIG(sig.get(), &p);
    return out;
}

bool verify_jws_signature(const Bytes& spki, std::span<const std::uint8_t> message,
                          std::span<const std::uint8_t> signature) {
    auto key = ossl::pkey_from_spki(spki);
    if (!key) return false;
    Bytes sig(signature.begin(), signature.end());
    const char* md = "SHA256";
    if (EVP_PKEY_get_base_id(key->get()) == EVP_PKEY_EC) {
        const int bits = EVP_PKEY_get_bits(key->get());
        if (signature.size() != static_cast<std::size_t>((bits + 7) / 8) * 2) return false;
        if (bits == 384) md = "SHA384";
        auto der = ecdsa_raw_to_der(signature);
        if (!der) return false;
        sig = std::move(*der);
    }
    ossl::MdCtx ctx(EVP_MD_CTX_new());
    const bool ok =
        ctx &&
        EVP_DigestVerifyInit_ex(ctx.get(), nullptr, md, nullptr, nullptr, key->get(), nullptr) ==
            1 &&
        EVP_DigestVerify(ctx.get(), sig.data(), sig.size(), message.data(), message.size()) == 1;
    ERR_clear_error();
    return ok;
}

}  // namespace keystore
