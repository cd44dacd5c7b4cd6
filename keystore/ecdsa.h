// ECDSA signature forms: DER (X9.62, what OpenSSL makes) and JWS raw r||s (RFC 7518 §3.4).
#pragma once

#include "base/bytes.h"
#include "base/error.h"

#include <span>

namespace keystore {

// DER SEQUENCE{r, s} -> r||s, each left-padded with zeros to `width` bytes.
base::Result<base::Bytes> ecdsa_der_to_raw(std::span<const std::uint8_t> der, std::size_t width);
// r||s (even length) -> DER SEQUENCE{r, s}.
base::Result<base::Bytes> ecdsa_raw_to_der(std::span<const std::uint8_t> raw);
// Whether `signature` (JWS form: raw r||s for ECDSA) over `message` verifies with the
// public key `spki` (DER SubjectPublicKeyInfo), SHA-256 or, for P-384, SHA-384.
bool verify_jws_signature(const base::Bytes& spki, std::span<const std::uint8_t> message,
                          std::span<const std::uint8_t> signature);

}  // namespace keystore
