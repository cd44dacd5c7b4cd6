// JWK export of a public key (RFC 7517, RFC 7518 §6) and its thumbprint (RFC 7638).
#pragma once

#include "base/bytes.h"
#include "base/error.h"

#include <string>

namespace keystore {

// The JWK of a SubjectPublicKeyInfo (EC P-256/P-384 or RSA) with only the required
// members, in lexicographic order and without whitespace: the exact input of the
// RFC 7638 thumbprint, and valid as the "jwk" of a JWS protected header.
base::Result<std::string> jwk_json(const base::Bytes& spki_der);
// base64url(SHA-256(jwk_json)).
base::Result<std::string> jwk_thumbprint(const base::Bytes& spki_der);

}  // namespace keystore
