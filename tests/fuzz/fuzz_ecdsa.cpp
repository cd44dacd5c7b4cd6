// keystore::ecdsa_der_to_raw / ecdsa_raw_to_der. The first byte picks the curve width
// (P-256, P-384, P-521 or an odd one), the rest is a DER signature as an HSM or OpenSSL
// would hand back, then the same bytes taken as r||s.
// Invariants: raw has 2*width bytes; raw -> DER -> raw is the identity.
#include "fuzz_common.h"
#include "keystore/ecdsa.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    static constexpr std::size_t kWidths[] = {32, 48, 66, 1, 20, 28, 64, 0};
    const std::size_t width = kWidths[data[0] % std::size(kWidths)];
    const std::span<const std::uint8_t> body(data + 1, size - 1);

    if (auto raw = keystore::ecdsa_der_to_raw(body, width)) {
        FUZZ_CHECK(raw->size() == 2 * width, "raw size %zu for width %zu", raw->size(), width);
        if (width > 0) {
            auto der = keystore::ecdsa_raw_to_der(*raw);
            FUZZ_CHECK(der.has_value(), "raw_to_der rejected der_to_raw's output");
            auto raw2 = keystore::ecdsa_der_to_raw(*der, width);
            FUZZ_CHECK(raw2 && *raw2 == *raw, "DER -> raw -> DER -> raw changed the value");
        }
    }

    if (auto der = keystore::ecdsa_raw_to_der(body)) {
        FUZZ_CHECK(!body.empty() && body.size() % 2 == 0);
        auto raw = keystore::ecdsa_der_to_raw(*der, body.size() / 2);
        FUZZ_CHECK(raw.has_value(), "der_to_raw rejected raw_to_der's output");
        FUZZ_CHECK(std::equal(raw->begin(), raw->end(), body.begin(), body.end()),
                   "raw -> DER -> raw changed the value");
    } else {
        FUZZ_CHECK(body.empty() || body.size() % 2 == 1, "even-length r||s rejected");
    }
    return 0;
}
