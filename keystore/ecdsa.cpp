#include "keystore/ecdsa.h"

#include "keystore/ossl.h"

namespace keystore {

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

}  // namespace keystore
