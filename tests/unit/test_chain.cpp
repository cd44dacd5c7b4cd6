// Certificate chains from the CA: split_chain() accepts only CERTIFICATE blocks, and
// inspect() reports what the user is shown about a certificate.
#include "x509/cert.h"

#include "base/ossl.h"

#include <gtest/gtest.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <chrono>
#include <string>
#include <vector>

namespace {

using base::Bytes;
using base::Errc;
namespace ossl = base::ossl;

ossl::PKey ec_key() {
    return ossl::PKey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
}

std::string pem_of(X509* cert) {
    ossl::Bio bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_X509(bio.get(), cert);
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

std::string private_key_pem(EVP_PKEY* key) {
    ossl::Bio bio(BIO_new(BIO_s_mem()));
    PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

constexpr std::time_t kNotBefore = 1700000000;  // 2023-11-14T22:13:20Z
constexpr std::time_t kNotAfter = 1707776000;   // 2024-02-12T22:13:20Z

struct CertSpec {
    std::string subject_cn;
    std::string issuer_cn;
    const char* serial_hex;
    std::string san;  // X509V3 config form, e.g. "DNS:a.example,IP:192.0.2.7"; "" for none
    bool ca = false;
};

ossl::X509Ptr make_cert(const CertSpec& spec, EVP_PKEY* subject_key, EVP_PKEY* issuer_key,
                        X509* issuer_cert) {
    ossl::X509Ptr cert(X509_new());
    X509_set_version(cert.get(), 2);
    BIGNUM* bn = nullptr;
    BN_hex2bn(&bn, spec.serial_hex);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
    BN_free(bn);
    ASN1_TIME_set(X509_getm_notBefore(cert.get()), kNotBefore);
    ASN1_TIME_set(X509_getm_notAfter(cert.get()), kNotAfter);
    auto add_cn = [](X509_NAME* name, const std::string& cn) {
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>("Test Org"), -1, -1, 0);
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
    };
    add_cn(X509_get_subject_name(cert.get()), spec.subject_cn);
    add_cn(X509_get_issuer_name(cert.get()), spec.issuer_cn);
    X509_set_pubkey(cert.get(), subject_key);

    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer_cert ? issuer_cert : cert.get(), cert.get(), nullptr, nullptr, 0);
    auto add_ext = [&](int nid, const std::string& value) {
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
        if (ext) X509_add_ext(cert.get(), ext, -1);
        X509_EXTENSION_free(ext);
    };
    add_ext(NID_basic_constraints, spec.ca ? "critical,CA:TRUE" : "CA:FALSE");
    add_ext(NID_subject_key_identifier, "hash");
    add_ext(NID_authority_key_identifier, "keyid:always");
    if (!spec.san.empty()) add_ext(NID_subject_alt_name, spec.san);
    X509_sign(cert.get(), issuer_key, EVP_sha256());
    return cert;
}

Bytes spki_of(EVP_PKEY* key) {
    auto s = ossl::spki_of(key);
    return s ? *s : Bytes{};
}

// A CA and a leaf it issued, made once for the whole file.
class Chain : public testing::Test {
  protected:
    static void SetUpTestSuite() {
        ca_key_ = ec_key().release();
        leaf_key_ = ec_key().release();
        ca_ = make_cert({"Test Intermediate CA", "Test Intermediate CA", "7E57CA", "", true},
                        ca_key_, ca_key_, nullptr)
                  .release();
        leaf_ = make_cert({"leaf.example", "Test Intermediate CA", "1A2B3C4D5E6F708192A3B4",
                           "DNS:leaf.example,DNS:www.leaf.example,IP:192.0.2.7,IP:2001:db8::7"},
                          leaf_key_, ca_key_, ca_)
                    .release();
        ca_pem_ = new std::string(pem_of(ca_));
        leaf_pem_ = new std::string(pem_of(leaf_));
    }
    static void TearDownTestSuite() {
        X509_free(leaf_);
        X509_free(ca_);
        EVP_PKEY_free(leaf_key_);
        EVP_PKEY_free(ca_key_);
        delete ca_pem_;
        delete leaf_pem_;
    }

    static void expect_protocol_error(std::string_view pem, std::string_view message_part,
                                      std::size_t max_certs = 10) {
        auto blocks = x509::split_chain(pem, max_certs);
        ASSERT_FALSE(blocks) << "accepted " << blocks->size() << " blocks";
        EXPECT_EQ(blocks.error().code, Errc::protocol);
        EXPECT_NE(blocks.error().message.find(message_part), std::string::npos)
            << "message: " << blocks.error().message;
    }

    static inline EVP_PKEY* ca_key_ = nullptr;
    static inline EVP_PKEY* leaf_key_ = nullptr;
    static inline X509* ca_ = nullptr;
    static inline X509* leaf_ = nullptr;
    static inline std::string* ca_pem_ = nullptr;
    static inline std::string* leaf_pem_ = nullptr;
};

TEST_F(Chain, TwoCertificatesSplitIntoTwoBlocksLeafFirst) {
    auto blocks = x509::split_chain(*leaf_pem_ + *ca_pem_);
    ASSERT_TRUE(blocks) << blocks.error().describe();
    ASSERT_EQ(blocks->size(), 2u);
    EXPECT_EQ((*blocks)[0], *leaf_pem_);
    EXPECT_EQ((*blocks)[1], *ca_pem_);
}

TEST_F(Chain, WhitespaceAroundAndBetweenBlocksIsAccepted) {
    auto blocks = x509::split_chain("\n\n" + *leaf_pem_ + "\r\n \t\n" + *ca_pem_ + "\n\n");
    ASSERT_TRUE(blocks) << blocks.error().describe();
    ASSERT_EQ(blocks->size(), 2u);
    EXPECT_EQ((*blocks)[0], *leaf_pem_);
    EXPECT_EQ((*blocks)[1], *ca_pem_);
}

TEST_F(Chain, CrlfLineEndingsAreAccepted) {
    std::string crlf;
    for (char c : *leaf_pem_ + *ca_pem_) {
        if (c == '\n') crlf += '\r';
        crlf += c;
    }
    auto blocks = x509::split_chain(crlf);
    ASSERT_TRUE(blocks) << blocks.error().describe();
    ASSERT_EQ(blocks->size(), 2u);
    auto leaf = x509::inspect((*blocks)[0]);
    ASSERT_TRUE(leaf) << leaf.error().describe();
    EXPECT_EQ(leaf->spki, spki_of(leaf_key_));
}

TEST_F(Chain, SingleCertificateWithoutTrailingNewline) {
    std::string pem = *leaf_pem_;
    while (!pem.empty() && pem.back() == '\n') pem.pop_back();
    auto blocks = x509::split_chain(pem);
    ASSERT_TRUE(blocks) << blocks.error().describe();
    ASSERT_EQ(blocks->size(), 1u);
    EXPECT_EQ((*blocks)[0], *leaf_pem_);
}

TEST_F(Chain, PrivateKeyBlockIsRefusedWithoutEchoingTheKey) {
    ossl::PKey key = ec_key();
    const std::string key_pem = private_key_pem(key.get());
    ASSERT_EQ(key_pem.rfind("-----BEGIN PRIVATE KEY-----\n", 0), 0u);
    const std::string key_body_line = key_pem.substr(28, 40);
    for (const std::string& pem :
         {*leaf_pem_ + key_pem, key_pem + *leaf_pem_, key_pem, *leaf_pem_ + *ca_pem_ + key_pem}) {
        auto blocks = x509::split_chain(pem);
        ASSERT_FALSE(blocks);
        EXPECT_EQ(blocks.error().code, Errc::protocol);
        EXPECT_NE(blocks.error().message.find("not a certificate"), std::string::npos)
            << blocks.error().message;
        EXPECT_NE(blocks.error().message.find("PRIVATE KEY"), std::string::npos)
            << blocks.error().message;
        EXPECT_EQ(blocks.error().describe().find(key_body_line), std::string::npos)
            << "the error message shows key material: " << blocks.error().describe();
    }
}

TEST_F(Chain, OtherBlockTypesAreNotCertificates) {
    const std::string body = "MIIBAAAA\n";
    for (const char* type : {"EC PRIVATE KEY", "RSA PRIVATE KEY", "CERTIFICATE REQUEST", "X509 CRL",
                             "TRUSTED CERTIFICATE", "PUBLIC KEY"}) {
        SCOPED_TRACE(type);
        const std::string block =
            std::string("-----BEGIN ") + type + "-----\n" + body + "-----END " + type + "-----\n";
        expect_protocol_error(*leaf_pem_ + block, "not a certificate");
    }
}

TEST_F(Chain, TextOutsideBlocksIsRefused) {
    expect_protocol_error(*leaf_pem_ + "garbage\n" + *ca_pem_, "between");
    expect_protocol_error("Certificate:\n    Data: ...\n" + *leaf_pem_, "between");
    expect_protocol_error(*leaf_pem_ + *ca_pem_ + "trailing text\n", "outside");
    expect_protocol_error(*leaf_pem_ + "x", "outside");
}

TEST_F(Chain, EmptyInputIsRefused) {
    expect_protocol_error("", "no certificate");
    expect_protocol_error("\n \r\n\t", "no certificate");
}

TEST_F(Chain, UndecodableCertificatesAreRefused) {
    expect_protocol_error("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                          "undecodable");
    expect_protocol_error("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", "");
    expect_protocol_error(
        "-----BEGIN CERTIFICATE-----\nnot base64 !!!\n-----END CERTIFICATE-----\n", "");
    // A real certificate with its DER cut short (the PEM still decodes as base64).
    const std::string& leaf = *leaf_pem_;
    const std::size_t body = leaf.find('\n') + 1;
    const std::string truncated =
        leaf.substr(0, body) + leaf.substr(body, 128) + "\n" + "-----END CERTIFICATE-----\n";
    expect_protocol_error(*ca_pem_ + truncated, "undecodable");
}

TEST_F(Chain, UnterminatedBlockIsRefused) {
    std::string pem = *leaf_pem_;
    pem.resize(pem.find("-----END"));
    expect_protocol_error(pem, "unterminated");
    // and a BEGIN without END before the next block's BEGIN
    expect_protocol_error(pem + *ca_pem_, "");
}

TEST_F(Chain, AtMostMaxCertsCertificates) {
    std::string three = *leaf_pem_ + *ca_pem_ + *ca_pem_;
    auto ok = x509::split_chain(three, 3);
    ASSERT_TRUE(ok) << ok.error().describe();
    EXPECT_EQ(ok->size(), 3u);
    expect_protocol_error(three, "more than 2", 2);

    std::string ten, eleven;
    for (int i = 0; i < 10; ++i) ten += *ca_pem_;
    eleven = ten + *ca_pem_;
    auto ten_ok = x509::split_chain(ten);
    ASSERT_TRUE(ten_ok) << ten_ok.error().describe();
    EXPECT_EQ(ten_ok->size(), 10u);
    expect_protocol_error(eleven, "more than 10");
}

TEST_F(Chain, InspectLeaf) {
    auto info = x509::inspect(*leaf_pem_);
    ASSERT_TRUE(info) << info.error().describe();
    EXPECT_EQ(info->names, (std::vector<std::string>{"leaf.example", "www.leaf.example",
                                                     "192.0.2.7", "2001:db8::7"}));
    EXPECT_EQ(info->serial_hex, "1a2b3c4d5e6f708192a3b4");
    EXPECT_EQ(info->issuer_cn, "Test Intermediate CA");
    EXPECT_EQ(info->subject, "CN=leaf.example,O=Test Org");
    EXPECT_EQ(info->issuer, "CN=Test Intermediate CA,O=Test Org");
    EXPECT_EQ(info->spki, spki_of(leaf_key_));
    EXPECT_NE(info->spki, spki_of(ca_key_));
    EXPECT_EQ(std::chrono::system_clock::to_time_t(info->not_before), kNotBefore);
    EXPECT_EQ(std::chrono::system_clock::to_time_t(info->not_after), kNotAfter);

    // der is the certificate's DER; aki is the CA's subject key identifier.
    const int len = i2d_X509(leaf_, nullptr);
    Bytes der(static_cast<std::size_t>(len));
    unsigned char* p = der.data();
    i2d_X509(leaf_, &p);
    EXPECT_EQ(info->der, der);
    const ASN1_OCTET_STRING* ski = X509_get0_subject_key_id(ca_);
    ASSERT_NE(ski, nullptr);
    EXPECT_EQ(info->aki, Bytes(ASN1_STRING_get0_data(ski),
                               ASN1_STRING_get0_data(ski) + ASN1_STRING_length(ski)));
}

TEST_F(Chain, InspectCaWithoutSans) {
    auto info = x509::inspect(*ca_pem_);
    ASSERT_TRUE(info) << info.error().describe();
    EXPECT_TRUE(info->names.empty());
    EXPECT_EQ(info->serial_hex, "7e57ca");
    EXPECT_EQ(info->issuer_cn, "Test Intermediate CA");
    EXPECT_EQ(info->spki, spki_of(ca_key_));
}

TEST_F(Chain, InspectEveryBlockOfASplitChain) {
    auto blocks = x509::split_chain(*leaf_pem_ + *ca_pem_);
    ASSERT_TRUE(blocks);
    ASSERT_EQ(blocks->size(), 2u);
    auto leaf = x509::inspect((*blocks)[0]);
    auto ca = x509::inspect((*blocks)[1]);
    ASSERT_TRUE(leaf);
    ASSERT_TRUE(ca);
    EXPECT_EQ(leaf->names.front(), "leaf.example");
    EXPECT_EQ(ca->spki, spki_of(ca_key_));
}

TEST_F(Chain, SerialHexHasNoLeadingZeros) {
    // cert.h: serial_hex is "lower-case hex, no leading zeros".
    struct Case {
        const char* serial;
        const char* shown;
    };
    const Case cases[] = {
        {"0A", "a"},    {"01", "1"},          {"0123456789ABCDEF", "123456789abcdef"},
        {"00FF", "ff"}, {"ABCDEF", "abcdef"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.serial);
        ossl::X509Ptr cert =
            make_cert({"s.example", "Test Intermediate CA", c.serial, "DNS:s.example"}, leaf_key_,
                      ca_key_, ca_);
        auto info = x509::inspect(pem_of(cert.get()));
        ASSERT_TRUE(info) << info.error().describe();
        EXPECT_EQ(info->serial_hex, c.shown);
    }
}

TEST_F(Chain, InspectRefusesWhatIsNotACertificate) {
    for (const std::string& pem :
         {std::string(), std::string("hello"),
          std::string("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")}) {
        auto info = x509::inspect(pem);
        ASSERT_FALSE(info);
        EXPECT_EQ(info.error().code, Errc::protocol);
    }
}

}  // namespace
