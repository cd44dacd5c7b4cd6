// Byte buffers, base64url (RFC 4648 §5, no padding), hex, ASCII lower case and secret wiping.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace base {

using Bytes = std::vector<std::uint8_t>;

inline std::span<const std::uint8_t> as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string base64url_encode(std::span<const std::uint8_t> data);
inline std::string base64url_encode(std::string_view s) {
    return base64url_encode(as_bytes(s));
}
// Rejects padding, whitespace and characters outside the URL-safe alphabet.
std::optional<Bytes> base64url_decode(std::string_view text);

std::string hex_encode(std::span<const std::uint8_t> data);
std::optional<Bytes> hex_decode(std::string_view text);
// "0x" and eight lower-case hex digits: TPM handles, manufacturer and firmware words.
std::string hex32(std::uint32_t v);

// A-Z to a-z, nothing else (locale-independent): DNS names, header names, hex.
inline std::string ascii_lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

// A string that wipes itself (OPENSSL_cleanse) when destroyed: PINs, auth values, MAC keys.
class Secret {
  public:
    Secret() = default;
    explicit Secret(std::string value) : value_(std::move(value)) {}
    Secret(const Secret&) = delete;
    Secret& operator=(const Secret&) = delete;
    Secret(Secret&& other) noexcept : value_(std::move(other.value_)) { other.wipe(); }
    Secret& operator=(Secret&& other) noexcept;
    ~Secret() { wipe(); }

    [[nodiscard]] const std::string& reveal() const { return value_; }
    [[nodiscard]] bool empty() const { return value_.empty(); }

  private:
    void wipe() noexcept;
    std::string value_;
};

}  // namespace base
