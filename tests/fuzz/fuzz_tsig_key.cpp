// challenge::parse_tsig_key: BIND key files (tsig-keygen / ddns-confgen output).
// Invariants: an accepted key has a name, one of the three algorithms, and a secret; no
// error message holds the secret clause's text (docs/SECURITY.md: the secret never leaks).
#include "challenge/dns01.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto text = fuzz_text(data, size);
    auto key = challenge::parse_tsig_key(text, "fuzz.key");
    if (!key) {
        FUZZ_CHECK(key.error().code == base::Errc::usage, "code %d",
                   static_cast<int>(key.error().code));
        return 0;
    }
    FUZZ_CHECK(key->algorithm == "hmac-sha256." || key->algorithm == "hmac-sha384." ||
                   key->algorithm == "hmac-sha512.",
               "algorithm '%s'", key->algorithm.c_str());
    FUZZ_CHECK(!key->name.empty(), "empty key name accepted");
    FUZZ_CHECK(!key->secret.empty(), "empty secret accepted");
    return 0;
}
