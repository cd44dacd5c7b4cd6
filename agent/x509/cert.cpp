#include "x509/cert.h"

#include "base/ossl.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>
#include <ctime>

namespace x509 {

namespace ossl = base::ossl;
using base::Errc;
using base::fail;

namespace {
constexpr std::string_view kBegin = "-----BEGIN CERTIFICATE-----";
constexpr std::string_view kEnd = "-----END CERTIFICATE-----";

bool blank(std::string_view s) {
    return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

Result<ossl::X509Ptr> parse(std::string_view pem) {
    ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    ossl::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert)
        return fail(Errc::protocol, "certificate",
                    "undecodable certificate: " + ossl::last_error());
    if (!X509_get0_pubkey(cert.get())) {
        ERR_clear_error();
        return fail(Errc::protocol, "certificate",
                    "the certificate's public key cannot be decoded");
    }
    return cert;
}

std::string name_text(X509_NAME* name) {
    ossl::Bio bio(BIO_new(BIO_s_mem()));
    X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(len));
}

std::chrono::system_clock::time_point to_time(const ASN1_TIME* t) {
    struct tm tm{};
    ASN1_TIME_to_tm(t, &tm);
    return std::chrono::system_clock::from_time_t(timegm(&tm));
}
}  // namespace

Result<std::vector<std::string>> split_chain(std::string_view pem, std::size_t max_certs) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (true) {
        const std::size_t begin = pem.find("-----BEGIN ", pos);
        if (begin == std::string_view::npos) {
            if (!blank(pem.substr(pos)))
                return fail(Errc::protocol, "certificate chain", "text outside PEM blocks");
            break;
        }
        if (!blank(pem.substr(pos, begin - pos)))
            return fail(Errc::protocol, "certificate chain", "text between PEM blocks");
        if (pem.substr(begin, kBegin.size()) != kBegin) {
            const auto eol = pem.find('\n', begin);
            return fail(Errc::protocol, "certificate chain",
                        "the server sent a block that is not a certificate: " +
                            std::string(pem.substr(begin, std::min<std::size_t>(eol - begin, 60))));
        }
        const std::size_t end = pem.find(kEnd, begin);
        if (end == std::string_view::npos ||
            pem.substr(begin + kBegin.size(), end - begin - kBegin.size()).find("-----") !=
                std::string_view::npos)
            return fail(Errc::protocol, "certificate chain", "unterminated CERTIFICATE block");
        std::string block(pem.substr(begin, end + kEnd.size() - begin));
        block += '\n';
        if (auto c = parse(block); !c) return std::unexpected(c.error());
        out.push_back(std::move(block));
        if (out.size() > max_certs)
            return fail(Errc::protocol, "certificate chain",
                        "more than " + std::to_string(max_certs) + " certificates");
        pos = end + kEnd.size();
    }
    if (out.empty())
        return fail(Errc::protocol, "certificate chain", "no certificate in the response");
    return out;
}

namespace {
// A certificate taken apart without OpenSSL's X509 type, whose d2i decodes the public key
// through the provider decoders: on OpenSSL 3.0 that costs more than everything else
// inspect() does, and `renew --all` over 10,000 stored certificates (none due) spent
// two thirds of its time there. The structure is RFC 5280 section 4.1; OpenSSL's own ASN.1
// decoder reads each part, and what it finds is the same as what X509 would give.
void free_types(ASN1_SEQUENCE_ANY* s) {
    sk_ASN1_TYPE_pop_free(s, ASN1_TYPE_free);
}
void free_extensions(X509_EXTENSIONS* s) {
    sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free);
}
using Types = std::unique_ptr<ASN1_SEQUENCE_ANY, base::Deleter<free_types>>;
using Extensions = std::unique_ptr<X509_EXTENSIONS, base::Deleter<free_extensions>>;
using Name = std::unique_ptr<X509_NAME, base::Deleter<X509_NAME_free>>;
using Validity = std::unique_ptr<X509_VAL, base::Deleter<X509_VAL_free>>;

// The elements of the SEQUENCE encoded at the start of [p, p + len); `used` its length.
Types elements(const unsigned char* p, long len, long* used = nullptr) {
    const unsigned char* q = p;
    Types s(d2i_ASN1_SEQUENCE_ANY(nullptr, &q, len));
    if (used) *used = q - p;
    return s;
}
// Element i if it has the universal type `type` (its whole encoding for SEQUENCE).
const ASN1_STRING* element(const Types& s, int i, int type) {
    if (i >= sk_ASN1_TYPE_num(s.get())) return nullptr;
    const ASN1_TYPE* t = sk_ASN1_TYPE_value(s.get(), i);
    return ASN1_TYPE_get(t) == type ? t->value.asn1_string : nullptr;
}
// The number of element i's context-specific tag ([n]), -1 if it has none; `content` and
// `len` what the tag holds.
int context_tag(const Types& s, int i, const unsigned char** content = nullptr,
                long* len = nullptr) {
    if (i >= sk_ASN1_TYPE_num(s.get())) return -1;
    const ASN1_TYPE* t = sk_ASN1_TYPE_value(s.get(), i);
    if (ASN1_TYPE_get(t) != V_ASN1_OTHER) return -1;
    const unsigned char* p = t->value.asn1_string->data;
    long l = 0;
    int tag = 0, cls = 0;
    if (ASN1_get_object(&p, &l, &tag, &cls, t->value.asn1_string->length) & 0x80 ||
        cls != V_ASN1_CONTEXT_SPECIFIC)
        return -1;
    if (content) *content = p;
    if (len) *len = l;
    return tag;
}
Result<CertInfo> undecodable(const char* what) {
    return fail(Errc::protocol, "certificate", std::string("undecodable certificate: ") + what);
}
}  // namespace

Result<CertInfo> inspect(std::string_view pem) {
    CertInfo info;
    {
        ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
        unsigned char* data = nullptr;
        long len = 0;
        if (!PEM_bytes_read_bio(&data, &len, nullptr, PEM_STRING_X509, bio.get(), nullptr, nullptr))
            return fail(Errc::protocol, "certificate",
                        "undecodable certificate: " + ossl::last_error());
        info.der.assign(data, data + len);
        OPENSSL_free(data);
    }
    long used = 0;
    const Types cert = elements(info.der.data(), static_cast<long>(info.der.size()), &used);
    const ASN1_STRING* tbs_der = element(cert, 0, V_ASN1_SEQUENCE);
    if (!cert || sk_ASN1_TYPE_num(cert.get()) != 3 || !tbs_der ||
        !element(cert, 1, V_ASN1_SEQUENCE) || !element(cert, 2, V_ASN1_BIT_STRING))
        return undecodable("not an X.509 certificate");
    info.der.resize(static_cast<std::size_t>(used));  // what follows it is not the certificate
    const Types tbs = elements(tbs_der->data, tbs_der->length);
    if (!tbs) return undecodable("its TBSCertificate");
    int i = context_tag(tbs, 0) == 0 ? 1 : 0;  // [0] version
    const ASN1_STRING* serial = element(tbs, i++, V_ASN1_INTEGER);
    const ASN1_STRING* algorithm = element(tbs, i++, V_ASN1_SEQUENCE);
    const ASN1_STRING* issuer_der = element(tbs, i++, V_ASN1_SEQUENCE);
    const ASN1_STRING* validity_der = element(tbs, i++, V_ASN1_SEQUENCE);
    const ASN1_STRING* subject_der = element(tbs, i++, V_ASN1_SEQUENCE);
    const ASN1_STRING* spki = element(tbs, i++, V_ASN1_SEQUENCE);
    if (!serial || !algorithm || !issuer_der || !validity_der || !subject_der || !spki)
        return undecodable("a field of its TBSCertificate is missing");
    Extensions extensions;
    for (; i < sk_ASN1_TYPE_num(tbs.get()); ++i) {
        const unsigned char* content = nullptr;
        long len = 0;
        const int tag = context_tag(tbs, i, &content, &len);
        if (tag == 3 && !extensions) {
            extensions.reset(d2i_X509_EXTENSIONS(nullptr, &content, len));
            if (!extensions) return undecodable("its extensions");
        } else if (tag != 1 && tag != 2) {  // the unique identifiers are not read
            return undecodable("an unknown field in its TBSCertificate");
        }
    }
    const unsigned char* p = issuer_der->data;
    const Name issuer(d2i_X509_NAME(nullptr, &p, issuer_der->length));
    p = subject_der->data;
    const Name subject(d2i_X509_NAME(nullptr, &p, subject_der->length));
    p = validity_der->data;
    const Validity validity(d2i_X509_VAL(nullptr, &p, validity_der->length));
    if (!issuer || !subject || !validity) return undecodable("its names or its validity");

    info.subject = name_text(subject.get());
    info.issuer = name_text(issuer.get());
    char cn[256] = {};
    if (X509_NAME_get_text_by_NID(issuer.get(), NID_commonName, cn, sizeof cn) > 0)
        info.issuer_cn = cn;
    ossl::Bn bn(ASN1_INTEGER_to_BN(serial, nullptr));
    if (!bn) return undecodable("its serial number");
    char* hex = BN_bn2hex(bn.get());
    info.serial_hex = hex;
    OPENSSL_free(hex);
    for (auto& ch : info.serial_hex)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    info.serial_hex.erase(
        0, std::min(info.serial_hex.find_first_not_of('0'), info.serial_hex.size() - 1));
    {  // the content octets as encoded (with the sign byte), not the magnitude OpenSSL keeps
        const int len = i2d_ASN1_INTEGER(serial, nullptr);
        base::Bytes der(static_cast<std::size_t>(std::max(len, 0)));
        unsigned char* q = der.data();
        i2d_ASN1_INTEGER(serial, &q);
        // Skip tag and length (short or long form).
        std::size_t off = 2;
        if (der.size() > 1 && (der[1] & 0x80)) off = 2 + (der[1] & 0x7f);
        info.serial_der.assign(der.begin() + static_cast<long>(std::min(off, der.size())),
                               der.end());
    }
    info.not_before = to_time(validity->notBefore);
    info.not_after = to_time(validity->notAfter);
    info.spki.assign(spki->data, spki->data + spki->length);

    auto* sans = static_cast<GENERAL_NAMES*>(
        X509V3_get_d2i(extensions.get(), NID_subject_alt_name, nullptr, nullptr));
    for (int k = 0; sans && k < sk_GENERAL_NAME_num(sans); ++k) {
        const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, k);
        if (gn->type == GEN_DNS) {
            info.names.emplace_back(
                reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                static_cast<std::size_t>(ASN1_STRING_length(gn->d.dNSName)));
        } else if (gn->type == GEN_IPADD && (ASN1_STRING_length(gn->d.iPAddress) == 4 ||
                                             ASN1_STRING_length(gn->d.iPAddress) == 16)) {
            char buf[INET6_ADDRSTRLEN] = {};
            const int len = ASN1_STRING_length(gn->d.iPAddress);
            inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(gn->d.iPAddress), buf,
                      sizeof buf);
            info.names.emplace_back(buf);
        }
    }
    GENERAL_NAMES_free(sans);
    auto* akid = static_cast<AUTHORITY_KEYID*>(
        X509V3_get_d2i(extensions.get(), NID_authority_key_identifier, nullptr, nullptr));
    if (akid && akid->keyid)
        info.aki.assign(ASN1_STRING_get0_data(akid->keyid),
                        ASN1_STRING_get0_data(akid->keyid) + ASN1_STRING_length(akid->keyid));
    AUTHORITY_KEYID_free(akid);
    ERR_clear_error();
    return info;
}

}  // namespace x509
