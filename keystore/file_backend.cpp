#include "keystore/file_backend.h"

#include "base/files.h"
#include "base/ossl.h"
#include "keystore/ecdsa.h"

#include <openssl/core_names.h>
#include <openssl/pem.h>

#include <filesystem>

namespace keystore {

namespace ossl = base::ossl;

using base::Bytes;
using base::Errc;
using base::fail;
using base::read_secret_file;
using base::Result;

namespace {

Result<KeyAlgorithm> algorithm_of(EVP_PKEY* pkey) {
    const int bits = EVP_PKEY_get_bits(pkey);
    switch (EVP_PKEY_get_base_id(pkey)) {
        case EVP_PKEY_EC:
            if (bits == 256) return KeyAlgorithm::ec_p256;
            if (bits == 384) return KeyAlgorithm::ec_p384;
            break;
        case EVP_PKEY_RSA:
            if (bits == 2048) return KeyAlgorithm::rsa_2048;
            if (bits == 3072) return KeyAlgorithm::rsa_3072;
            if (bits == 4096) return KeyAlgorithm::rsa_4096;
            break;
        default:
            break;
    }
    return fail(Errc::unsupported, "file key", "key type/size has no JWS algorithm here");
}

class FileKey final : public Key {
  public:
    FileKey(KeyUri uri, ossl::PKey pkey, KeyAlgorithm alg, Bytes spki)
        : uri_(std::move(uri)), pkey_(std::move(pkey)), alg_(alg), spki_(std::move(spki)) {}

    KeyAlgorithm algorithm() const override { return alg_; }
    const Bytes& public_key_der() const override { return spki_; }
    const KeyUri& uri() const override { return uri_; }

    Result<Bytes> sign(std::span<const std::uint8_t> message) const override {
        const char* md = alg_ == KeyAlgorithm::ec_p384 ? "SHA384" : "SHA256";
        ossl::MdCtx ctx(EVP_MD_CTX_new());
        std::size_t len = 0;
        if (!ctx ||
            EVP_DigestSignInit_ex(ctx.get(), nullptr, md, nullptr, "provider=default", pkey_.get(),
                                  nullptr) != 1 ||
            EVP_DigestSign(ctx.get(), nullptr, &len, message.data(), message.size()) != 1)
            return ossl::fail_ossl("EVP_DigestSign");
        Bytes sig(len);
        if (EVP_DigestSign(ctx.get(), sig.data(), &len, message.data(), message.size()) != 1)
            return ossl::fail_ossl("EVP_DigestSign");
        sig.resize(len);
        if (is_ec(alg_)) return ecdsa_der_to_raw(sig, ec_field_size(alg_));
        return sig;
    }

    Result<std::vector<KeyProperty>> properties() const override {
        return std::vector<KeyProperty>{{"backend", "file (software key, not hardware)"},
                                        {"path", *uri_.path_attr("path")},
                                        {"extractable", "true"},
                                        {"sensitive", "false"}};
    }

  private:
    KeyUri uri_;
    ossl::PKey pkey_;
    KeyAlgorithm alg_;
    Bytes spki_;
};

Result<KeyPtr> load(const KeyUri& uri, const std::string& pem) {
    ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    ossl::PKey pkey(PEM_read_bio_PrivateKey_ex(bio.get(), nullptr, nullptr, nullptr, nullptr,
                                               "provider=default"));
    if (!pkey)
        return fail(Errc::io, *uri.path_attr("path"),
                    "not a PEM private key: " + ossl::last_error());
    auto alg = algorithm_of(pkey.get());
    if (!alg) return std::unexpected(alg.error());
    auto spki = ossl::spki_of(pkey.get());
    if (!spki) return std::unexpected(spki.error());
    return std::make_shared<FileKey>(uri, std::move(pkey), *alg, std::move(*spki));
}

class FileKeystore final : public Keystore {
  public:
    using Keystore::generate;
    Result<KeyPtr> generate(const KeyUri& uri, KeyAlgorithm alg) override {
        const std::string path = *uri.path_attr("path");
        if (std::filesystem::exists(path))
            return fail(Errc::exists, path, "a key file is already there; refusing to overwrite");
        ossl::PKey pkey(is_ec(alg)
                            ? EVP_PKEY_Q_keygen(nullptr, "provider=default", "EC",
                                                alg == KeyAlgorithm::ec_p256 ? "P-256" : "P-384")
                            : EVP_PKEY_Q_keygen(nullptr, "provider=default", "RSA",
                                                static_cast<size_t>(rsa_bits(alg))));
        if (!pkey) return ossl::fail_ossl("EVP_PKEY_Q_keygen");
        ossl::Bio bio(BIO_new(BIO_s_mem()));
        if (!PEM_write_bio_PrivateKey(bio.get(), pkey.get(), nullptr, nullptr, 0, nullptr, nullptr))
            return ossl::fail_ossl("PEM_write_bio_PrivateKey");
        char* data = nullptr;
        const long len = BIO_get_mem_data(bio.get(), &data);
        std::string pem(data, static_cast<std::size_t>(len));
        auto written = base::write_file_atomic(path, pem, 0600, base::Overwrite::no);
        OPENSSL_cleanse(pem.data(), pem.size());
        if (!written) return std::unexpected(written.error());
        return open(uri);
    }

    Result<KeyPtr> open(const KeyUri& uri) override {
        // Owner-only, not through a symlink, checked on the opened file (SECURITY.md rule 18).
        auto pem = read_secret_file(*uri.path_attr("path"), "key file", 64 * 1024);
        if (!pem) return std::unexpected(pem.error());
        return load(uri, pem->reveal());
    }

    Result<std::vector<KeyInfo>> list(const KeyUri& uri) override {
        const std::string path = *uri.path_attr("path");
        std::error_code ec;
        std::vector<KeyInfo> out;
        if (!std::filesystem::is_directory(path, ec)) {
            auto key = open(uri);
            if (!key) return std::unexpected(key.error());
            out.push_back({(*key)->uri(), (*key)->algorithm()});
            return out;
        }
        for (const auto& entry : std::filesystem::directory_iterator(path, ec)) {
            if (entry.path().extension() != ".pem" || !entry.is_regular_file()) continue;
            KeyUri k = uri;
            k.set_path_attr("path", entry.path().string());
            if (auto key = open(k)) out.push_back({k, (*key)->algorithm()});
        }
        if (ec) return fail(Errc::io, path, ec.message());
        return out;
    }

    Result<void> destroy(const KeyUri& uri) override {
        const std::string path = *uri.path_attr("path");
        if (!std::filesystem::exists(path)) return fail(Errc::not_found, path, "no such key file");
        return base::remove_file_durable(path);
    }

    std::string description() const override {
        return "file:PATH  software key in a PEM file (no hardware protection)";
    }
};

}  // namespace

std::unique_ptr<Keystore> make_file_keystore() {
    return std::make_unique<FileKeystore>();
}

}  // namespace keystore
