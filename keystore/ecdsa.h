// ECDSA signature forms: DER (X9.62, what OpenSSL makes) and JWS raw r||s (RFC 7518 §3.4).
#pragma once

#include "keystore/bytes.h"
#include "keystore/error.h"

#include <span>

namespace keystore {

// DER SEQUENCE{r, s} -> r||s, each left-padded with zeros to `width` bytes.
Result<Bytes> ecdsa_der_to_raw(std::span<const std::uint8_t> der, std::size_t width);
// r||s (even length) -> DER SEQUENCE{r, s}.
Result<Bytes> ecdsa_raw_to_der(std::span<const std::uint8_t> raw);

}  // namespace keystore
