// ARI (RFC 9773): the CertID from a certificate's AKI and serial, checked against the RFC's
// example, and the revocation reasons --reason accepts.
#include "acme/certificate.h"
#include "base/ossl.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

namespace {

using base::Bytes;

const Bytes kAki{0x69, 0x88, 0x5B, 0x6B, 0x87, 0x46, 0x40, 0x41, 0xE1, 0xB3,
                 0x7B, 0x84, 0x7B, 0xA0, 0xAE, 0x2C, 0xDE, 0x01, 0xC8, 0xD4};

TEST(Ari, CertIdMatchesRfc9773Example) {
    // RFC 9773 §4.1: AKI 69:88:5B:..:D4 and serial 00:87:65:43:21.
    EXPECT_EQ(acme::ari_cert_id(kAki, Bytes{0x00, 0x87, 0x65, 0x43, 0x21}),
              "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
}

// A certificate with serial 0x87654321 (DER content 00 87 65 43 21: the high bit needs the
// zero byte) and the RFC's AKI gives the RFC's CertID through x509::inspect.
TEST(Ari, CertIdFromACertificate) {
    base::ossl::PKey key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    ASSERT_TRUE(key);
    base::ossl::X509Ptr cert(X509_new());
    X509_set_version(cert.get(), 2);
    base::ossl::Bn serial(BN_new());
    BN_set_word(serial.get(), 0x87654321u);
    BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(cert.get()));
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert.get()), "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("ari.example"), -1, -1, 0);
    X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get()));
    X509_set_pubkey(cert.get(), key.get());
    AUTHORITY_KEYID* akid = AUTHORITY_KEYID_new();
    akid->keyid = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(akid->keyid, kAki.data(), static_cast<int>(kAki.size()));
    X509_add1_ext_i2d(cert.get(), NID_authority_key_identifier, akid, 0, 0);
    AUTHORITY_KEYID_free(akid);
    ASSERT_GT(X509_sign(cert.get(), key.get(), EVP_sha256()), 0);
    base::ossl::Bio bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509(bio.get(), cert.get());
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    auto info = x509::inspect(std::string(data, static_cast<std::size_t>(len)));
    ASSERT_TRUE(info.has_value()) << info.error().describe();
    EXPECT_EQ(info->serial_der, (Bytes{0x00, 0x87, 0x65, 0x43, 0x21}));
    EXPECT_EQ(info->aki, kAki);
    EXPECT_EQ(info->serial_hex, "87654321");
    EXPECT_EQ(acme::ari_cert_id(info->aki, info->serial_der),
              "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
}

TEST(Revoke, ReasonsByNameAndCode) {
    EXPECT_EQ(acme::parse_reason("unspecified"), 0);
    EXPECT_EQ(acme::parse_reason("keyCompromise"), 1);
    EXPECT_EQ(acme::parse_reason("superseded"), 4);
    EXPECT_EQ(acme::parse_reason("cessationOfOperation"), 5);
    EXPECT_EQ(acme::parse_reason("4"), 4);
    EXPECT_EQ(acme::parse_reason("10"), 10);
    EXPECT_FALSE(acme::parse_reason("7"));  // unused in RFC 5280
    EXPECT_FALSE(acme::parse_reason("11"));
    EXPECT_FALSE(acme::parse_reason("-1"));
    EXPECT_FALSE(acme::parse_reason(""));
    EXPECT_FALSE(acme::parse_reason("KeyCompromise"));
    EXPECT_FALSE(acme::parse_reason("1; rm -rf"));
}

}  // namespace
