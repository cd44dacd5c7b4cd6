// base::base64url_decode on arbitrary text (round trip: encode(decode(t)) == t, the
// decoder being strict: no padding, no whitespace), and base64url_encode on arbitrary
// bytes (decode(encode(b)) == b). hex_encode / hex_decode get the same treatment.
#include "base/bytes.h"
#include "fuzz_common.h"

#include <algorithm>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto text = fuzz_text(data, size);
    const std::span<const std::uint8_t> bytes(data, size);

    if (auto decoded = base::base64url_decode(text)) {
        // The decoder rejects non-zero trailing bits, so every accepted text is the
        // canonical encoding of its bytes.
        const std::string again = base::base64url_encode(*decoded);
        FUZZ_CHECK(again == text, "encode(decode(t)) != t: '%s'", again.c_str());
    }

    const std::string enc = base::base64url_encode(bytes);
    FUZZ_CHECK(enc.find_first_of("+/= \n") == std::string::npos, "not URL-safe: %s", enc.c_str());
    FUZZ_CHECK(enc.size() == (size * 4 + 2) / 3, "length %zu for %zu bytes", enc.size(), size);
    auto dec = base::base64url_decode(enc);
    FUZZ_CHECK(dec.has_value(), "encode() output rejected: %s", enc.c_str());
    FUZZ_CHECK(std::equal(dec->begin(), dec->end(), bytes.begin(), bytes.end()),
               "decode(encode(b)) != b");

    if (auto h = base::hex_decode(text)) (void)base::hex_encode(*h);
    auto hex = base::hex_decode(base::hex_encode(bytes));
    FUZZ_CHECK(hex && std::equal(hex->begin(), hex->end(), bytes.begin(), bytes.end()),
               "hex_decode(hex_encode(b)) != b");
    return 0;
}
