// OpenSSL ownership helpers for implementations (not part of the keystore interface:
// only .cpp files and backends include this).
#pragma once

#include "base/bytes.h"
#include "base/deleter.h"
#include "base/error.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

namespace base::ossl {

using base::Deleter;

using PKey = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using PKeyCtx = std::unique_ptr<EVP_PKEY_CTX, Deleter<EVP_PKEY_CTX_free>>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, Deleter<EVP_MD_CTX_free>>;
using Bio = std::unique_ptr<BIO, Deleter<BIO_free_all>>;
using Bn = std::unique_ptr<BIGNUM, Deleter<BN_free>>;
using EcdsaSig = std::unique_ptr<ECDSA_SIG, Deleter<ECDSA_SIG_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using X509Req = std::unique_ptr<X509_REQ, Deleter<X509_REQ_free>>;

// The newest OpenSSL error queue entry as text (and the queue cleared).
std::string last_error();
inline std::unexpected<Error> fail_ossl(std::string where) {
    return fail(Errc::internal, std::move(where), last_error());
}

// SubjectPublicKeyInfo DER <-> EVP_PKEY (public half only).
Result<PKey> pkey_from_spki(const Bytes& der);
Result<Bytes> spki_of(EVP_PKEY* pkey);

// SHA-256 or SHA-384, fetched from the default provider (never a hardware provider).
Bytes digest(std::string_view md_name, std::span<const std::uint8_t> data);

// Verifies a JWS-form signature (r||s for EC, PKCS#1 v1.5 for RSA) with the public key.

}  // namespace base::ossl
