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

Result<CertInfo> inspect(std::string_view pem) {
    auto cert = parse(pem);
    if (!cert) return std::unexpected(cert.error());
    X509* c = cert->get();
    CertInfo info;
    info.subject = name_text(X509_get_subject_name(c));
    info.issuer = name_text(X509_get_issuer_name(c));
    char cn[256] = {};
    if (X509_NAME_get_text_by_NID(X509_get_issuer_name(c), NID_commonName, cn, sizeof cn) > 0)
        info.issuer_cn = cn;
    ossl::Bn serial(ASN1_INTEGER_to_BN(X509_get0_serialNumber(c), nullptr));
    char* hex = BN_bn2hex(serial.get());
    info.serial_hex = hex;
    OPENSSL_free(hex);
    for (auto& ch : info.serial_hex)
        ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    info.serial_hex.erase(
        0, std::min(info.serial_hex.find_first_not_of('0'), info.serial_hex.size() - 1));
    {
        const ASN1_INTEGER* sn = X509_get0_serialNumber(c);
        const int len = i2d_ASN1_INTEGER(sn, nullptr);
        base::Bytes der(static_cast<std::size_t>(len));
        unsigned char* q = der.data();
        i2d_ASN1_INTEGER(sn, &q);
        // Skip tag and length (short or long form) to keep the content octets.
        std::size_t off = 2;
        if (der.size() > 1 && (der[1] & 0x80)) off = 2 + (der[1] & 0x7f);
        info.serial_der.assign(der.begin() + static_cast<long>(std::min(off, der.size())),
                               der.end());
    }
    info.not_before = to_time(X509_get0_notBefore(c));
    info.not_after = to_time(X509_get0_notAfter(c));

    auto* sans =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(c, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); ++i) {
        const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
        if (gn->type == GEN_DNS) {
            info.names.emplace_back(
                reinterpret_cast<const char*>(ASN1_STRING_get0_data(gn->d.dNSName)),
                static_cast<std::size_t>(ASN1_STRING_length(gn->d.dNSName)));
        } else if (gn->type == GEN_IPADD) {
            char buf[INET6_ADDRSTRLEN] = {};
            const int len = ASN1_STRING_length(gn->d.iPAddress);
            inet_ntop(len == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(gn->d.iPAddress), buf,
                      sizeof buf);
            info.names.emplace_back(buf);
        }
    }
    GENERAL_NAMES_free(sans);
    if (const ASN1_OCTET_STRING* aki = X509_get0_authority_key_id(c))
        info.aki.assign(ASN1_STRING_get0_data(aki),
                        ASN1_STRING_get0_data(aki) + ASN1_STRING_length(aki));

    auto spki = ossl::spki_of(X509_get0_pubkey(c));
    if (!spki) return std::unexpected(spki.error());
    info.spki = std::move(*spki);
    const int len = i2d_X509(c, nullptr);
    info.der.resize(static_cast<std::size_t>(len));
    unsigned char* p = info.der.data();
    i2d_X509(c, &p);
    return info;
}

}  // namespace x509
