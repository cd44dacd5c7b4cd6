// Key algorithms and their JWS names (RFC 7518 §3.1).
#pragma once

#include <optional>
#include <string_view>

namespace keystore {

enum class KeyAlgorithm { ec_p256, ec_p384, rsa_2048, rsa_3072, rsa_4096 };

// "ec-p256", "rsa-2048", ... (the --type spelling).
std::string_view algorithm_name(KeyAlgorithm alg);
std::optional<KeyAlgorithm> parse_algorithm(std::string_view name);
// "ES256", "ES384", "RS256".
std::string_view jws_alg(KeyAlgorithm alg);
inline bool is_ec(KeyAlgorithm alg) {
    return alg == KeyAlgorithm::ec_p256 || alg == KeyAlgorithm::ec_p384;
}
// Bytes of one ECDSA coordinate / half-signature (32 or 48); 0 for RSA.
std::size_t ec_field_size(KeyAlgorithm alg);
// RSA modulus bits; 0 for EC.
unsigned rsa_bits(KeyAlgorithm alg);
// The list, for help texts: "ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096".
std::string_view algorithm_names();

}  // namespace keystore
