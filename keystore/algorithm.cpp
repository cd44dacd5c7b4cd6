#include "keystore/algorithm.h"

#include <array>
#include <utility>

namespace keystore {

namespace {
constexpr std::array<std::pair<KeyAlgorithm, std::string_view>, 5> kNames{{
    {KeyAlgorithm::ec_p256, "ec-p256"},
    {KeyAlgorithm::ec_p384, "ec-p384"},
    {KeyAlgorithm::rsa_2048, "rsa-2048"},
    {KeyAlgorithm::rsa_3072, "rsa-3072"},
    {KeyAlgorithm::rsa_4096, "rsa-4096"},
}};
}

std::string_view algorithm_name(KeyAlgorithm alg) {
    for (const auto& [a, n] : kNames)
        if (a == alg) return n;
    return "unknown";
}

std::optional<KeyAlgorithm> parse_algorithm(std::string_view name) {
    for (const auto& [a, n] : kNames)
        if (n == name) return a;
    return std::nullopt;
}

std::string_view jws_alg(KeyAlgorithm alg) {
    switch (alg) {
        case KeyAlgorithm::ec_p256:
            return "ES256";
        case KeyAlgorithm::ec_p384:
            return "ES384";
        default:
            return "RS256";
    }
}

std::size_t ec_field_size(KeyAlgorithm alg) {
    switch (alg) {
        case KeyAlgorithm::ec_p256:
            return 32;
        case KeyAlgorithm::ec_p384:
            return 48;
        default:
            return 0;
    }
}

unsigned rsa_bits(KeyAlgorithm alg) {
    switch (alg) {
        case KeyAlgorithm::rsa_2048:
            return 2048;
        case KeyAlgorithm::rsa_3072:
            return 3072;
        case KeyAlgorithm::rsa_4096:
            return 4096;
        default:
            return 0;
    }
}

std::string_view algorithm_names() {
    return "ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096";
}

}  // namespace keystore
