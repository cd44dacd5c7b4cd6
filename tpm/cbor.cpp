#include "tpm/cbor.h"

#include <algorithm>

namespace tpm::cbor {

namespace {

// The initial byte and argument of an item of major type `major` (RFC 8949 §3).
void head(base::Bytes& out, std::uint8_t major, std::uint64_t n) {
    const auto m = static_cast<std::uint8_t>(major << 5);
    int width = 0;
    if (n < 24) {
        out.push_back(static_cast<std::uint8_t>(m | n));
        return;
    }
    if (n <= 0xff) {
        out.push_back(m | 24);
        width = 1;
    } else if (n <= 0xffff) {
        out.push_back(m | 25);
        width = 2;
    } else if (n <= 0xffffffff) {
        out.push_back(m | 26);
        width = 4;
    } else {
        out.push_back(m | 27);
        width = 8;
    }
    for (int i = width - 1; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(n >> (8 * i)));
}

}  // namespace

base::Bytes integer(std::int64_t v) {
    base::Bytes out;
    if (v >= 0)
        head(out, 0, static_cast<std::uint64_t>(v));
    else
        head(out, 1, static_cast<std::uint64_t>(-(v + 1)));
    return out;
}

base::Bytes bytes(std::span<const std::uint8_t> b) {
    base::Bytes out;
    head(out, 2, b.size());
    out.insert(out.end(), b.begin(), b.end());
    return out;
}

base::Bytes text(std::string_view s) {
    base::Bytes out;
    head(out, 3, s.size());
    out.insert(out.end(), s.begin(), s.end());
    return out;
}

base::Bytes array(const std::vector<base::Bytes>& items) {
    base::Bytes out;
    head(out, 4, items.size());
    for (const auto& i : items) out.insert(out.end(), i.begin(), i.end());
    return out;
}

base::Bytes map(std::vector<std::pair<base::Bytes, base::Bytes>> entries) {
    std::ranges::sort(entries, {}, &std::pair<base::Bytes, base::Bytes>::first);
    base::Bytes out;
    head(out, 5, entries.size());
    for (const auto& [k, v] : entries) {
        out.insert(out.end(), k.begin(), k.end());
        out.insert(out.end(), v.begin(), v.end());
    }
    return out;
}

}  // namespace tpm::cbor
