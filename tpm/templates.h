// Internal to the tpm backend: object templates and conversions between TPM structures and
// what the keystore speaks (algorithms, SubjectPublicKeyInfo, properties).
#pragma once

#include "base/bytes.h"
#include "base/error.h"
#include "keystore/algorithm.h"
#include "keystore/key.h"

#include <tss2/tss2_tpm2_types.h>

#include <vector>

namespace tpm {

// The storage primary created under the owner hierarchy for key files with parent
// 0x40000001: ECC NIST P-256, nameAlg SHA-256, fixedTPM|fixedParent|sensitiveDataOrigin|
// userWithAuth|noDA|restricted|decrypt, AES-128-CFB, null scheme and KDF — byte for byte
// tpm2-openssl 1.1.1's primaryEccTemplate, including its EMPTY unique field (the TCG
// provisioning guidance's SRK template has 32 zero bytes in unique.x and unique.y, which
// derives a different key: files made under it would not load in tpm2-openssl).
TPM2B_PUBLIC srk_template();

// A signing key: fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|sign; not
// restricted, no decrypt, noDA clear (SECURITY.md rule 12). ECDSA with SHA-256 (P-256) or
// SHA-384 (P-384); RSASSA-PKCS1-v1_5 with SHA-256, exponent 65537. Errc::unsupported for
// rsa-4096 (TPM 2.0 chips and swtpm stop at 3072 bits).
base::Result<TPM2B_PUBLIC> signing_template(keystore::KeyAlgorithm alg);

// The key's JWS algorithm; Errc::unsupported for anything but an unrestricted signing key
// of a supported type whose fixed scheme (if any) matches the JWS algorithm.
base::Result<keystore::KeyAlgorithm> algorithm_of(const TPMT_PUBLIC& pub);
// The scheme passed to TPM2_Sign (explicit, so keys with a null scheme work too).
TPMT_SIG_SCHEME sig_scheme(keystore::KeyAlgorithm alg);
// SubjectPublicKeyInfo DER of the public area.
base::Result<base::Bytes> spki_of(const TPMT_PUBLIC& pub);
// The storage-key shape required of a persistent SRK we salt with and create under.
bool is_storage_key(const TPMT_PUBLIC& pub);
// fixedTPM, fixedParent, sensitiveDataOrigin, userWithAuth, sign, decrypt, restricted, noDA.
std::vector<keystore::KeyProperty> attribute_properties(TPMA_OBJECT attrs);

base::Result<base::Bytes> marshal(const TPM2B_PUBLIC& pub);
base::Result<base::Bytes> marshal(const TPM2B_PRIVATE& priv);
base::Result<TPM2B_PUBLIC> unmarshal_public(const base::Bytes& data);
base::Result<TPM2B_PRIVATE> unmarshal_private(const base::Bytes& data);

}  // namespace tpm
