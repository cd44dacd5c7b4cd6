// PKCS#10 CSRs signed through a keystore::Key: what a CA parses out of them.
#include "x509/csr.h"

#include "base/ossl.h"
#include "keystore/file_backend.h"
#include "support/temp_dir.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

namespace {

using base::Bytes;
using keystore::KeyAlgorithm;

using testsupport::TempDir;

// What a CA reads from a CSR.
struct ParsedCsr {
    bool parsed = false;
    bool signature_valid = false;
    long version = -1;
    int sig_nid = NID_undef;
    int sig_param_type = -2;  // V_ASN1_UNDEF (-1) when the parameters are absent
    std::vector<std::string> subject_cns;
    int subject_entries = 0;
    std::vector<std::string> sans;  // "DNS:name" / "IP:addr", in order
    int extension_count = 0;
    Bytes spki;
};

ParsedCsr parse_csr(const Bytes& der, const Bytes& key_spki) {
    ParsedCsr out;
    const unsigned char* p = der.data();
    base::ossl::X509Req req(d2i_X509_REQ(nullptr, &p, static_cast<long>(der.size())));
    if (!req || p != der.data() + der.size()) return out;
    out.parsed = true;
    out.version = X509_REQ_get_version(req.get());

    // Verify with the key's public key, decoded independently of the CSR.
    const unsigned char* kp = key_spki.data();
    base::ossl::PKey pub(d2i_PUBKEY(nullptr, &kp, static_cast<long>(key_spki.size())));
    out.signature_valid = pub && X509_REQ_verify(req.get(), pub.get()) == 1;

    const X509_ALGOR* alg = nullptr;
    X509_REQ_get0_signature(req.get(), nullptr, &alg);
    const ASN1_OBJECT* obj = nullptr;
    int ptype = 0;
    const void* pval = nullptr;
    X509_ALGOR_get0(&obj, &ptype, &pval, alg);
    out.sig_nid = OBJ_obj2nid(obj);
    out.sig_param_type = ptype;

    X509_NAME* subject = X509_REQ_get_subject_name(req.get());
    out.subject_entries = X509_NAME_entry_count(subject);
    for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) {
        const ASN1_STRING* s = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
        out.subject_cns.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                     static_cast<std::size_t>(ASN1_STRING_length(s)));
    }

    STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(req.get());
    out.extension_count = exts ? sk_X509_EXTENSION_num(exts) : 0;
    auto* names = exts ? static_cast<GENERAL_NAMES*>(
                             X509V3_get_d2i(exts, NID_subject_alt_name, nullptr, nullptr))
                       : nullptr;
    for (int i = 0; names && i < sk_GENERAL_NAME_num(names); ++i) {
        const GENERAL_NAME* gn = sk_GENERAL_NAME_value(names, i);
        if (gn->type == GEN_DNS) {
            out.sans.push_back(
                "DNS:" +
                std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                            static_cast<std::size_t>(ASN1_STRING_length(gn->d.dNSName))));
        } else if (gn->type == GEN_IPADD) {
            char buf[INET6_ADDRSTRLEN] = {};
            const int len = ASN1_STRING_length(gn->d.iPAddress);
            inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(gn->d.iPAddress), buf,
                      sizeof buf);
            out.sans.push_back("IP:" + std::string(buf));
        } else {
            out.sans.push_back("other:" + std::to_string(gn->type));
        }
    }
    GENERAL_NAMES_free(names);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);

    const EVP_PKEY* csr_key = X509_REQ_get0_pubkey(req.get());
    if (csr_key) {
        auto spki = base::ossl::spki_of(const_cast<EVP_PKEY*>(csr_key));
        if (spki) out.spki = *spki;
    }
    return out;
}

struct AlgCase {
    KeyAlgorithm alg;
    int sig_nid;
    int sig_param_type;  // RFC 5758 §3.2: absent for ECDSA; RFC 4055: NULL for RSA
};

void PrintTo(const AlgCase& c, std::ostream* os) {
    *os << keystore::algorithm_name(c.alg);
}

class Csr : public testing::TestWithParam<AlgCase> {
  protected:
    void SetUp() override {
        ASSERT_FALSE(dir_.path().empty());
        store_ = keystore::make_file_keystore();
        auto uri = keystore::KeyUri::parse("file:" + (dir_.path() / "cert-key.pem").string());
        ASSERT_TRUE(uri);
        auto key = store_->generate(*uri, GetParam().alg);
        ASSERT_TRUE(key) << key.error().describe();
        key_ = *key;
    }

    TempDir dir_;
    std::unique_ptr<keystore::Keystore> store_;
    keystore::KeyPtr key_;
};

TEST_P(Csr, DnsAndIpNamesSignedByTheKey) {
    auto der = x509::make_csr(*key_, {"a.example", "b.example", "127.0.0.1", "::1"});
    ASSERT_TRUE(der) << der.error().describe();
    const ParsedCsr csr = parse_csr(*der, key_->public_key_der());
    ASSERT_TRUE(csr.parsed);
    EXPECT_TRUE(csr.signature_valid);
    EXPECT_EQ(csr.version, 0);  // PKCS#10 v1
    EXPECT_EQ(csr.sig_nid, GetParam().sig_nid) << OBJ_nid2sn(csr.sig_nid);
    EXPECT_EQ(csr.sig_param_type, GetParam().sig_param_type);
    EXPECT_EQ(csr.subject_cns, std::vector<std::string>{"a.example"});
    EXPECT_EQ(csr.subject_entries, 1);
    EXPECT_EQ(csr.extension_count, 1);
    EXPECT_EQ(csr.sans, (std::vector<std::string>{"DNS:a.example", "DNS:b.example", "IP:127.0.0.1",
                                                  "IP:::1"}));
    EXPECT_EQ(csr.spki, key_->public_key_der());
}

TEST_P(Csr, FirstDnsNameBecomesTheCnEvenAfterIps) {
    auto der =
        x509::make_csr(*key_, {"192.0.2.1", "2001:db8::7", "www.example.org", "example.org"});
    ASSERT_TRUE(der) << der.error().describe();
    const ParsedCsr csr = parse_csr(*der, key_->public_key_der());
    ASSERT_TRUE(csr.parsed);
    EXPECT_TRUE(csr.signature_valid);
    EXPECT_EQ(csr.subject_cns, std::vector<std::string>{"www.example.org"});
    EXPECT_EQ(csr.sans, (std::vector<std::string>{"IP:192.0.2.1", "IP:2001:db8::7",
                                                  "DNS:www.example.org", "DNS:example.org"}));
}

TEST_P(Csr, OnlyIpsGiveAnEmptySubject) {
    auto der = x509::make_csr(*key_, {"192.0.2.1"});
    ASSERT_TRUE(der) << der.error().describe();
    const ParsedCsr csr = parse_csr(*der, key_->public_key_der());
    ASSERT_TRUE(csr.parsed);
    EXPECT_TRUE(csr.signature_valid);
    EXPECT_EQ(csr.subject_entries, 0);
    EXPECT_EQ(csr.sans, std::vector<std::string>{"IP:192.0.2.1"});
}

INSTANTIATE_TEST_SUITE_P(
    Keys, Csr,
    testing::Values(AlgCase{KeyAlgorithm::ec_p256, NID_ecdsa_with_SHA256, V_ASN1_UNDEF},
                    AlgCase{KeyAlgorithm::ec_p384, NID_ecdsa_with_SHA384, V_ASN1_UNDEF},
                    AlgCase{KeyAlgorithm::rsa_2048, NID_sha256WithRSAEncryption, V_ASN1_NULL}),
    [](const testing::TestParamInfo<AlgCase>& param_info) {
        switch (param_info.param.alg) {
            case KeyAlgorithm::ec_p256:
                return std::string("EcP256");
            case KeyAlgorithm::ec_p384:
                return std::string("EcP384");
            default:
                return std::string("Rsa2048");
        }
    });

class CsrEc : public Csr {};

TEST_P(CsrEc, LongFirstNameIsNotTheCn) {
    // A CN is at most 64 characters (RFC 5280 ub-common-name); a longer first DNS name
    // stays a SAN only and the next one that fits is the CN.
    const std::string longname = std::string(60, 'a') + ".example";   // 68 chars
    const std::string exactly64 = std::string(56, 'b') + ".example";  // 64 chars
    auto der = x509::make_csr(*key_, {longname, exactly64});
    ASSERT_TRUE(der) << der.error().describe();
    const ParsedCsr csr = parse_csr(*der, key_->public_key_der());
    ASSERT_TRUE(csr.parsed);
    EXPECT_TRUE(csr.signature_valid);
    EXPECT_EQ(csr.subject_cns, std::vector<std::string>{exactly64});
    EXPECT_EQ(csr.sans, (std::vector<std::string>{"DNS:" + longname, "DNS:" + exactly64}));
}

TEST_P(CsrEc, NoNamesIsAUsageError) {
    auto der = x509::make_csr(*key_, {});
    ASSERT_FALSE(der);
    EXPECT_EQ(der.error().code, base::Errc::usage);
}

TEST_P(CsrEc, ANameIsExactlyOneSan) {
    // A name must never turn into several SANs (or another kind of SAN).
    for (const std::string name : {"a.example,DNS:evil.example", "a.example,IP:10.0.0.1"}) {
        SCOPED_TRACE(name);
        auto der = x509::make_csr(*key_, {name});
        if (!der) {
            EXPECT_EQ(der.error().code, base::Errc::usage);
            continue;
        }
        const ParsedCsr csr = parse_csr(*der, key_->public_key_der());
        ASSERT_TRUE(csr.parsed);
        EXPECT_EQ(csr.sans, std::vector<std::string>{"DNS:" + name});
    }
}

TEST_P(CsrEc, WildcardName) {
    auto der = x509::make_csr(*key_, {"*.example.org"});
    ASSERT_TRUE(der) << der.error().describe();
    const ParsedCsr csr = parse_csr(*der, key_->public_key_der());
    ASSERT_TRUE(csr.parsed);
    EXPECT_TRUE(csr.signature_valid);
    EXPECT_EQ(csr.subject_cns, std::vector<std::string>{"*.example.org"});
    EXPECT_EQ(csr.sans, std::vector<std::string>{"DNS:*.example.org"});
}

TEST_P(CsrEc, SignatureDoesNotVerifyWithAnotherKey) {
    auto der = x509::make_csr(*key_, {"a.example"});
    ASSERT_TRUE(der);
    base::ossl::PKey other(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
    ASSERT_TRUE(other);
    auto other_spki = base::ossl::spki_of(other.get());
    ASSERT_TRUE(other_spki);
    EXPECT_FALSE(parse_csr(*der, *other_spki).signature_valid);
    EXPECT_TRUE(parse_csr(*der, key_->public_key_der()).signature_valid);
}

INSTANTIATE_TEST_SUITE_P(
    Keys, CsrEc,
    testing::Values(AlgCase{KeyAlgorithm::ec_p256, NID_ecdsa_with_SHA256, V_ASN1_UNDEF}),
    [](const testing::TestParamInfo<AlgCase>&) { return std::string("EcP256"); });

TEST(IsIpLiteral, Table) {
    struct Case {
        const char* name;
        bool ip;
    };
    const Case cases[] = {
        {"127.0.0.1", true},
        {"192.0.2.1", true},
        {"0.0.0.0", true},
        {"255.255.255.255", true},
        {"::1", true},
        {"::", true},
        {"2001:db8::1", true},
        {"2001:DB8:0:0:0:0:0:1", true},
        {"::ffff:192.0.2.1", true},
        {"fe80::1%eth0", false},  // zone ids are not identifiers
        {"[::1]", false},
        {"a.example", false},
        {"localhost", false},
        {"1.2.3", false},
        {"1.2.3.4.5", false},
        {"256.1.1.1", false},
        {"01.2.3.4", false},
        {"0x7f.0.0.1", false},
        {"1.2.3.4 ", false},
        {" 1.2.3.4", false},
        {"1.2.3.4.example", false},
        {"", false},
        {"2001:db8::1::2", false},
        {"12345::1", false},
    };
    for (const auto& c : cases)
        EXPECT_EQ(x509::is_ip_literal(c.name), c.ip) << '"' << c.name << '"';
}

}  // namespace
