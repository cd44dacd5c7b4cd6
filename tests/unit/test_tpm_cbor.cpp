// The CBOR encoder of the tpm backend (RFC 8949): the examples of its Appendix A, the
// deterministic map order of §4.2.1, and the attestation object's exact bytes.
#include "tpm/cbor.h"
#include "tpm/tpm_keystore.h"

#include <gtest/gtest.h>

#include <string>

namespace {

using base::Bytes;
namespace cbor = tpm::cbor;

std::string hex(const Bytes& b) {
    return base::hex_encode(b);
}

TEST(TpmCbor, IntegersFromRfc8949AppendixA) {
    EXPECT_EQ(hex(cbor::integer(0)), "00");
    EXPECT_EQ(hex(cbor::integer(23)), "17");
    EXPECT_EQ(hex(cbor::integer(24)), "1818");
    EXPECT_EQ(hex(cbor::integer(100)), "1864");
    EXPECT_EQ(hex(cbor::integer(1000)), "1903e8");
    EXPECT_EQ(hex(cbor::integer(1000000)), "1a000f4240");
    EXPECT_EQ(hex(cbor::integer(1000000000000)), "1b000000e8d4a51000");
    EXPECT_EQ(hex(cbor::integer(-1)), "20");
    EXPECT_EQ(hex(cbor::integer(-7)), "26");
    EXPECT_EQ(hex(cbor::integer(-10)), "29");
    EXPECT_EQ(hex(cbor::integer(-100)), "3863");
    EXPECT_EQ(hex(cbor::integer(-1000)), "3903e7");
    EXPECT_EQ(hex(cbor::integer(INT64_MIN)), "3b7fffffffffffffff");
}

TEST(TpmCbor, StringsArraysMapsFromRfc8949AppendixA) {
    EXPECT_EQ(hex(cbor::bytes({})), "40");
    EXPECT_EQ(hex(cbor::bytes(Bytes{1, 2, 3, 4})), "4401020304");
    EXPECT_EQ(hex(cbor::text("")), "60");
    EXPECT_EQ(hex(cbor::text("IETF")), "6449455446");
    EXPECT_EQ(hex(cbor::array({})), "80");
    EXPECT_EQ(hex(cbor::array({cbor::integer(1), cbor::integer(2), cbor::integer(3)})), "83010203");
    EXPECT_EQ(hex(cbor::map({})), "a0");
    EXPECT_EQ(
        hex(cbor::map({{cbor::text("a"), cbor::integer(1)},
                       {cbor::text("b"), cbor::array({cbor::integer(2), cbor::integer(3)})}})),
        "a26161016162820203");
    // A 300-byte string: two-byte length head.
    EXPECT_EQ(hex(cbor::bytes(Bytes(300, 0))).substr(0, 6), "59012c");
}

TEST(TpmCbor, MapKeysInBytewiseOrderOfTheirEncoding) {
    // §4.2.1: "aa" (0x62...) sorts after "b" (0x61 0x62): shorter keys first.
    EXPECT_EQ(hex(cbor::map({{cbor::text("aa"), cbor::integer(3)},
                             {cbor::text("b"), cbor::integer(2)},
                             {cbor::text("a"), cbor::integer(1)}})),
              "a3616101616202626161"
              "03");
}

TEST(TpmCbor, AttestationObjectBytes) {
    tpm::Attestation a;
    a.sig = {1};
    a.cert_info = {2};
    a.pub_area = {3};
    a.ak_pub_area = {4};
    // {"fmt": "tpm", "attStmt": {"alg": -7, "sig": h'01', "ver": "2.0", "pubArea": h'03',
    //  "certInfo": h'02'}, "akPubArea": h'04'}: no x5c without an EK certificate.
    EXPECT_EQ(hex(tpm::attestation_cbor(a)),
              "a3"
              "63666d74"
              "6374706d"
              "6761747453746d74"
              "a5"
              "63616c67"
              "26"
              "63736967"
              "4101"
              "63766572"
              "63322e30"
              "6770756241726561"
              "4103"
              "6863657274496e666f"
              "4102"
              "69616b50756241726561"
              "4104");
    a.x5c = {{0x30, 0x00}};
    const std::string with = hex(tpm::attestation_cbor(a));
    // x5c (0x63 "x5c") after "ver": [h'3000'].
    EXPECT_NE(with.find("63766572"
                        "63322e30"
                        "63783563"
                        "81"
                        "423000"),
              std::string::npos);
}

}  // namespace
