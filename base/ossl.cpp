#include "base/ossl.h"

#include <openssl/core_names.h>

namespace base::ossl {

std::string last_error() {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return "OpenSSL failure";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

Result<PKey> pkey_from_spki(const Bytes& der) {
    const unsigned char* p = der.data();
    PKey key(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
    if (!key) return fail(Errc::protocol, "d2i_PUBKEY", last_error());
    return key;
}

Result<Bytes> spki_of(EVP_PKEY* pkey) {
    const int len = i2d_PUBKEY(pkey, nullptr);
    if (len <= 0) return fail_ossl("i2d_PUBKEY");
    Bytes out(static_cast<std::size_t>(len));
    unsigned char* p = out.data();
    i2d_PUBKEY(pkey, &p);
    return out;
}

Bytes digest(std::string_view md_name, std::span<const std::uint8_t> data) {
    std::unique_ptr<EVP_MD, Deleter<EVP_MD_free>> md(
        EVP_MD_fetch(nullptr, std::string(md_name).c_str(), "provider=default"));
    Bytes out(EVP_MAX_MD_SIZE);
    unsigned int len = 0;
    if (!md || !EVP_Digest(data.data(), data.size(), out.data(), &len, md.get(), nullptr))
        throw std::runtime_error("digest " + std::string(md_name) + " unavailable");
    out.resize(len);
    return out;
}

}  // namespace base::ossl
