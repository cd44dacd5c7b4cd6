// tpm::decode_key_file: "TSS2 PRIVATE KEY" PEM files (tpm2-openssl / tpm2-tss-engine).
// Every accepted file re-encodes (encode_key_file) to one that decodes to the same key.
#include "fuzz_common.h"
#include "tpm/key_file.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto text = fuzz_text(data, size);
    auto key = tpm::decode_key_file(text, "fuzz.tss2");
    if (!key) {
        FUZZ_CHECK(key.error().code == base::Errc::io);
        return 0;
    }
    auto pem = tpm::encode_key_file(*key);
    FUZZ_CHECK(pem.has_value(), "encode_key_file failed on a decoded key");
    auto again = tpm::decode_key_file(*pem, "re-encoded");
    FUZZ_CHECK(again.has_value(), "re-encoded key file does not decode");
    FUZZ_CHECK(again->parent == key->parent && again->empty_auth == key->empty_auth &&
                   again->pub == key->pub && again->priv == key->priv,
               "key file round trip changed the key");
    return 0;
}
