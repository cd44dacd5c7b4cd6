// ECDSA signature forms: DER ECDSA-Sig-Value <-> JWS r||s (RFC 7518 §3.4).
#include "keystore/ecdsa.h"

#include "base/ossl.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <random>
#include <string>

namespace {

using base::Bytes;
using keystore::ecdsa_der_to_raw;
using keystore::ecdsa_raw_to_der;

// --- a small, independent DER writer ---------------------------------------------------

Bytes der_length(std::size_t n) {
    if (n < 0x80) return {static_cast<std::uint8_t>(n)};
    Bytes out;
    for (std::size_t v = n; v; v >>= 8)
        out.insert(out.begin(), static_cast<std::uint8_t>(v & 0xff));
    out.insert(out.begin(), static_cast<std::uint8_t>(0x80 | out.size()));
    return out;
}

Bytes tlv(std::uint8_t tag, const Bytes& content) {
    Bytes out{tag};
    const Bytes len = der_length(content.size());
    out.insert(out.end(), len.begin(), len.end());
    out.insert(out.end(), content.begin(), content.end());
    return out;
}

// A non-negative INTEGER in minimal DER form from big-endian magnitude bytes.
Bytes der_uint(Bytes magnitude) {
    while (magnitude.size() > 1 && magnitude[0] == 0) magnitude.erase(magnitude.begin());
    if (magnitude.empty()) magnitude.push_back(0);
    if (magnitude[0] & 0x80) magnitude.insert(magnitude.begin(), 0);
    return tlv(0x02, magnitude);
}

Bytes der_sig(const Bytes& r, const Bytes& s) {
    Bytes content = der_uint(r);
    const Bytes ds = der_uint(s);
    content.insert(content.end(), ds.begin(), ds.end());
    return tlv(0x30, content);
}

Bytes concat(const Bytes& a, const Bytes& b) {
    Bytes out = a;
    out.insert(out.end(), b.begin(), b.end());
    return out;
}

Bytes repeat(std::uint8_t b, std::size_t n) {
    return Bytes(n, b);
}

// Left-pads to `width` bytes.
Bytes pad(const Bytes& v, std::size_t width) {
    Bytes out(width - v.size(), 0);
    out.insert(out.end(), v.begin(), v.end());
    return out;
}

// --- der -> raw ------------------------------------------------------------------------

TEST(EcdsaDerToRaw, FixedWidthConversions) {
    struct Case {
        const char* name;
        Bytes r, s;
        std::size_t width;
    };
    Bytes r31 = repeat(0x5a, 31);
    Bytes r32_high = repeat(0xa5, 32);  // DER needs a 0x00 sign byte: 33 content bytes
    Bytes r30_lead = concat({0x01}, repeat(0x00, 29));
    const Case cases[] = {
        {"31-byte r is left-padded", r31, repeat(0x33, 32), 32},
        {"31-byte s is left-padded", repeat(0x33, 32), r31, 32},
        {"r with high bit set (0x00 in DER)", r32_high, repeat(0x11, 32), 32},
        {"both with high bit set", r32_high, r32_high, 32},
        {"r = 1, s = 1", {0x01}, {0x01}, 32},
        {"r = 0x80 (one byte + sign byte)", {0x80}, {0x7f}, 32},
        {"r ending in zero bytes", r30_lead, repeat(0xff, 32), 32},
        {"P-384 short r", repeat(0x42, 47), repeat(0xc3, 48), 48},
        {"P-384 r = 1", {0x01}, repeat(0xff, 48), 48},
        {"P-521 width (long-form DER length)", concat({0x01}, repeat(0xff, 65)),
         concat({0x00, 0x9f}, repeat(0x01, 64)), 66},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        const Bytes der = der_sig(c.r, c.s);
        auto raw = ecdsa_der_to_raw(der, c.width);
        ASSERT_TRUE(raw) << raw.error().describe();
        EXPECT_EQ(*raw, concat(pad(c.r, c.width), pad(c.s, c.width)));
        EXPECT_EQ(raw->size(), 2 * c.width);
    }
}

TEST(EcdsaDerToRaw, HighBitIntegerHasItsSignByteInDer) {
    // Shape check of the input used above: r = 0xa5.. is encoded as 02 21 00 a5 ...
    const Bytes der = der_sig(repeat(0xa5, 32), {0x01});
    ASSERT_EQ(der[2], 0x02);
    ASSERT_EQ(der[3], 33);
    ASSERT_EQ(der[4], 0x00);
    auto raw = ecdsa_der_to_raw(der, 32);
    ASSERT_TRUE(raw);
    EXPECT_EQ(Bytes(raw->begin(), raw->begin() + 32), repeat(0xa5, 32));
}

TEST(EcdsaDerToRaw, RejectsMalformedOrOversizedInput) {
    const Bytes good = der_sig(repeat(0x11, 32), repeat(0x22, 32));
    ASSERT_TRUE(ecdsa_der_to_raw(good, 32));

    const Bytes truncated(good.begin(), good.end() - 1);
    Bytes wrong_tag = good;
    wrong_tag[0] = 0x31;  // SET, not SEQUENCE
    Bytes one_int = tlv(0x30, der_uint(repeat(0x11, 32)));
    Bytes three_ints = tlv(0x30, concat(concat(der_uint({1}), der_uint({2})), der_uint({3})));
    Bytes octets_not_ints = tlv(0x30, concat(tlv(0x04, repeat(1, 32)), tlv(0x04, repeat(2, 32))));

    struct Case {
        const char* name;
        Bytes der;
        std::size_t width;
    };
    const Case cases[] = {
        {"33-significant-byte r for width 32", der_sig(concat({0x01}, repeat(0x00, 32)), {0x01}),
         32},
        {"33-significant-byte s for width 32", der_sig({0x01}, concat({0x7f}, repeat(0xff, 32))),
         32},
        {"49-byte r for width 48", der_sig(concat({0x01}, repeat(0x00, 48)), {0x01}), 48},
        {"trailing garbage after the SEQUENCE", concat(good, {0x00}), 32},
        {"a second SEQUENCE after the first", concat(good, good), 32},
        {"truncated", truncated, 32},
        {"empty", {}, 32},
        {"SET instead of SEQUENCE", wrong_tag, 32},
        {"one INTEGER", one_int, 32},
        {"three INTEGERs", three_ints, 32},
        {"OCTET STRINGs", octets_not_ints, 32},
        {"raw r||s passed as DER", concat(repeat(0x11, 32), repeat(0x22, 32)), 32},
        {"negative r", {0x30, 0x06, 0x02, 0x01, 0xff, 0x02, 0x01, 0x01}, 32},
        {"INTEGER with a redundant 0x00",
         {0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01},
         32},
        {"indefinite length (BER)",
         {0x30, 0x80, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01, 0x00, 0x00},
         32},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        auto raw = ecdsa_der_to_raw(c.der, c.width);
        EXPECT_FALSE(raw) << "converted to " << base::hex_encode(*raw);
    }
}

TEST(EcdsaDerToRaw, ValueThatFitsExactlyIsAccepted) {
    // 32 significant bytes with the high bit set: 33 DER content bytes, still width 32.
    auto raw = ecdsa_der_to_raw(der_sig(repeat(0xff, 32), repeat(0xff, 32)), 32);
    ASSERT_TRUE(raw) << raw.error().describe();
    EXPECT_EQ(*raw, repeat(0xff, 64));
}

// --- raw -> der ------------------------------------------------------------------------

TEST(EcdsaRawToDer, ProducesMinimalDer) {
    struct Case {
        const char* name;
        Bytes r, s;  // at the curve width
    };
    const Case cases[] = {
        {"leading zero byte in r", concat({0x00}, repeat(0x5a, 31)), repeat(0x33, 32)},
        {"many leading zeros in s", repeat(0x33, 32), concat(repeat(0x00, 31), {0x01})},
        {"high bit in r and s", repeat(0x80, 32), repeat(0xff, 32)},
        {"zero byte then high bit", concat({0x00}, repeat(0x80, 31)), repeat(0x01, 32)},
        {"P-384", concat({0x00, 0x00}, repeat(0x9c, 46)), repeat(0x7f, 48)},
        {"P-521 (long-form length)", concat({0x01}, repeat(0xee, 65)),
         concat({0x00}, repeat(0xdd, 65))},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        auto der = ecdsa_raw_to_der(concat(c.r, c.s));
        ASSERT_TRUE(der) << der.error().describe();
        EXPECT_EQ(base::hex_encode(*der), base::hex_encode(der_sig(c.r, c.s)));
        // OpenSSL reads it back to the same numbers.
        const unsigned char* p = der->data();
        base::ossl::EcdsaSig sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der->size())));
        ASSERT_TRUE(sig);
        EXPECT_EQ(p, der->data() + der->size());
    }
}

TEST(EcdsaRawToDer, RejectsOddOrEmptyInput) {
    for (std::size_t n : {0u, 1u, 63u, 65u, 95u}) {
        SCOPED_TRACE(n);
        auto der = ecdsa_raw_to_der(repeat(0x11, n));
        ASSERT_FALSE(der);
        EXPECT_EQ(der.error().code, base::Errc::protocol);
    }
}

TEST(EcdsaRoundTrip, RandomValuesIncludingLeadingZeroBytes) {
    // NOLINTNEXTLINE(cert-msc32-c,cert-msc51-cpp): a fixed seed makes a failure reproducible
    std::mt19937 rng(7518);
    std::uniform_int_distribution<int> byte(0, 255);
    for (std::size_t width : {32u, 48u, 66u}) {
        std::uniform_int_distribution<std::size_t> zeros(0, width - 1);
        for (int i = 0; i < 3000; ++i) {
            Bytes raw(2 * width);
            for (auto& b : raw) b = static_cast<std::uint8_t>(byte(rng));
            // Zero the top bytes of r and/or s in a third of the cases each.
            if (i % 3 == 0) std::fill_n(raw.begin(), zeros(rng), 0);
            if (i % 3 == 1) std::fill_n(raw.begin() + static_cast<long>(width), zeros(rng), 0);
            raw[width - 1] |= 1;  // r and s non-zero
            raw[2 * width - 1] |= 1;
            auto der = ecdsa_raw_to_der(raw);
            ASSERT_TRUE(der) << der.error().describe();
            auto back = ecdsa_der_to_raw(*der, width);
            ASSERT_TRUE(back) << back.error().describe();
            ASSERT_EQ(base::hex_encode(*back), base::hex_encode(raw)) << "width " << width;
        }
    }
}

// --- real signatures -------------------------------------------------------------------

void check_real_signatures(const char* curve, const char* md, std::size_t width, int count) {
    base::ossl::PKey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
    ASSERT_TRUE(key);
    auto spki = base::ossl::spki_of(key.get());
    ASSERT_TRUE(spki);
    int short_r = 0;
    int short_s = 0;
    int high_r = 0;
    for (int i = 0; i < count; ++i) {
        const std::string msg = "message " + std::to_string(i);
        base::ossl::MdCtx ctx(EVP_MD_CTX_new());
        std::size_t len = 0;
        ASSERT_EQ(
            EVP_DigestSignInit_ex(ctx.get(), nullptr, md, nullptr, nullptr, key.get(), nullptr), 1);
        ASSERT_EQ(EVP_DigestSign(ctx.get(), nullptr, &len, base::as_bytes(msg).data(), msg.size()),
                  1);
        Bytes der(len);
        ASSERT_EQ(
            EVP_DigestSign(ctx.get(), der.data(), &len, base::as_bytes(msg).data(), msg.size()), 1);
        der.resize(len);

        auto raw = ecdsa_der_to_raw(der, width);
        ASSERT_TRUE(raw) << raw.error().describe();
        ASSERT_EQ(raw->size(), 2 * width);
        short_r += (*raw)[0] == 0;
        short_s += (*raw)[width] == 0;
        high_r += ((*raw)[0] & 0x80) != 0;
        ASSERT_TRUE(keystore::verify_jws_signature(*spki, base::as_bytes(msg), *raw))
            << "signature " << i << " does not verify as r||s";

        auto der_again = ecdsa_raw_to_der(*raw);
        ASSERT_TRUE(der_again);
        ASSERT_EQ(*der_again, der) << "OpenSSL's DER is minimal; converting back must give it";
    }
    // The edge cases did come up (each has probability ~1/256 or ~1/2 per signature).
    EXPECT_GT(short_r + short_s, 0);
    EXPECT_GT(high_r, 0);
}

TEST(EcdsaRealSignatures, TwoThousandP256SignaturesConvertAndVerify) {
    check_real_signatures("P-256", "SHA256", 32, 2000);
}

TEST(EcdsaRealSignatures, P384SignaturesConvertAndVerify) {
    check_real_signatures("P-384", "SHA384", 48, 3000);  // no short r or s in 300: p = 0.096
}

TEST(EcdsaRealSignatures, TamperedRawSignatureFailsToVerify) {
    base::ossl::PKey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    ASSERT_TRUE(key);
    auto spki = base::ossl::spki_of(key.get());
    ASSERT_TRUE(spki);
    const std::string msg = "hello";
    base::ossl::MdCtx ctx(EVP_MD_CTX_new());
    std::size_t len = 0;
    ASSERT_EQ(
        EVP_DigestSignInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, key.get(), nullptr),
        1);
    ASSERT_EQ(EVP_DigestSign(ctx.get(), nullptr, &len, base::as_bytes(msg).data(), msg.size()), 1);
    Bytes der(len);
    ASSERT_EQ(EVP_DigestSign(ctx.get(), der.data(), &len, base::as_bytes(msg).data(), msg.size()),
              1);
    der.resize(len);
    auto raw = ecdsa_der_to_raw(der, 32);
    ASSERT_TRUE(raw);
    ASSERT_TRUE(keystore::verify_jws_signature(*spki, base::as_bytes(msg), *raw));
    // r and s swapped, a flipped bit, a DER signature where r||s is expected, a short one.
    Bytes swapped =
        concat(Bytes(raw->begin() + 32, raw->end()), Bytes(raw->begin(), raw->begin() + 32));
    Bytes flipped = *raw;
    flipped[63] ^= 0x80;
    Bytes shorter(raw->begin(), raw->end() - 1);
    for (const Bytes* bad : {&swapped, &flipped, &der, &shorter})
        EXPECT_FALSE(keystore::verify_jws_signature(*spki, base::as_bytes(msg), *bad));
}

}  // namespace
