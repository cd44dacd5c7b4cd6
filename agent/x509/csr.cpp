#include "x509/csr.h"

#include "base/ossl.h"
#include "keystore/ecdsa.h"

#include <arpa/inet.h>
#include <openssl/x509v3.h>

namespace x509 {

namespace ossl = base::ossl;
using base::Errc;
using base::fail;

namespace {
// sk_X509_EXTENSION_pop_free is a macro: the stack's deleter needs a function.
void free_extensions(STACK_OF(X509_EXTENSION) * s) {
    sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free);
}
}  // namespace

bool is_ip_literal(const std::string& name) {
    unsigned char buf[16];
    return inet_pton(AF_INET, name.c_str(), buf) == 1 ||
           inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

Result<base::Bytes> make_csr(const keystore::Key& key, const std::vector<std::string>& names) {
    if (names.empty()) return fail(Errc::usage, "CSR", "no names");
    ossl::X509Req req(X509_REQ_new());
    auto pub = ossl::pkey_from_spki(key.public_key_der());
    if (!pub) return std::unexpected(pub.error());
    if (!req || !X509_REQ_set_version(req.get(), 0) || !X509_REQ_set_pubkey(req.get(), pub->get()))
        return ossl::fail_ossl("X509_REQ");

    X509_NAME* subject = X509_REQ_get_subject_name(req.get());
    for (const auto& n : names)
        if (!is_ip_literal(n) && n.size() <= 64) {
            X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                       reinterpret_cast<const unsigned char*>(n.c_str()), -1, -1,
                                       0);
            break;
        }

    // One GENERAL_NAME per name, built directly: a name can never smuggle in another SAN
    // the way text like "a.example,DNS:b.example" would through the config parser.
    std::unique_ptr<GENERAL_NAMES, ossl::Deleter<GENERAL_NAMES_free>> gens(
        sk_GENERAL_NAME_new_null());
    for (const auto& n : names) {
        GENERAL_NAME* gn = a2i_GENERAL_NAME(nullptr, nullptr, nullptr,
                                            is_ip_literal(n) ? GEN_IPADD : GEN_DNS, n.c_str(), 0);
        if (!gn || (!is_ip_literal(n) && n.find_first_of(",: ") != std::string::npos)) {
            GENERAL_NAME_free(gn);
            return fail(Errc::usage, "CSR", "'" + n + "' is not a valid name for a certificate");
        }
        sk_GENERAL_NAME_push(gens.get(), gn);
    }
    std::unique_ptr<STACK_OF(X509_EXTENSION), ossl::Deleter<free_extensions>> exts(
        sk_X509_EXTENSION_new_null());
    X509_EXTENSION* ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, gens.get());
    if (!ext) return ossl::fail_ossl("X509V3_EXT_i2d");
    sk_X509_EXTENSION_push(exts.get(), ext);
    if (!X509_REQ_add_extensions(req.get(), exts.get()))
        return ossl::fail_ossl("X509_REQ_add_extensions");

    // Sign the to-be-signed part through the Key (no EVP_PKEY with a private half exists).
    const keystore::KeyAlgorithm alg = key.algorithm();
    const int nid = alg == keystore::KeyAlgorithm::ec_p256   ? NID_ecdsa_with_SHA256
                    : alg == keystore::KeyAlgorithm::ec_p384 ? NID_ecdsa_with_SHA384
                                                             : NID_sha256WithRSAEncryption;
    X509_ALGOR* algor = X509_ALGOR_new();
    X509_ALGOR_set0(algor, OBJ_nid2obj(nid), keystore::is_ec(alg) ? V_ASN1_UNDEF : V_ASN1_NULL,
                    nullptr);
    const int set = X509_REQ_set1_signature_algo(req.get(), algor);
    X509_ALGOR_free(algor);
    if (!set) return ossl::fail_ossl("X509_REQ_set1_signature_algo");

    unsigned char* tbs = nullptr;
    const int tbs_len = i2d_re_X509_REQ_tbs(req.get(), &tbs);
    if (tbs_len <= 0) return ossl::fail_ossl("i2d_re_X509_REQ_tbs");
    auto sig = key.sign(std::span<const std::uint8_t>(tbs, static_cast<std::size_t>(tbs_len)));
    OPENSSL_free(tbs);
    if (!sig) return std::unexpected(sig.error());
    if (keystore::is_ec(alg)) {
        auto der = keystore::ecdsa_raw_to_der(*sig);
        if (!der) return std::unexpected(der.error());
        *sig = std::move(*der);
    }
    ASN1_BIT_STRING* bits = ASN1_BIT_STRING_new();
    ASN1_BIT_STRING_set(bits, sig->data(), static_cast<int>(sig->size()));
    // A signature is whole bytes: without BITS_LEFT the encoder would count trailing zero
    // bits as unused and corrupt every signature that ends in a zero bit.
    bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
    bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
    X509_REQ_set0_signature(req.get(), bits);

    const int len = i2d_X509_REQ(req.get(), nullptr);
    if (len <= 0) return ossl::fail_ossl("i2d_X509_REQ");
    base::Bytes out(static_cast<std::size_t>(len));
    unsigned char* p = out.data();
    i2d_X509_REQ(req.get(), &p);
    return out;
}

}  // namespace x509
