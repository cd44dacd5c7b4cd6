// tpm2: keys inside a TPM 2.0, through tpm2-tss ESAPI.
//
//   tpm2:path=FILE.tss[?pin-source=file:PIN]      the key lives in a "TSS2 PRIVATE KEY" PEM
//                                                 file (tpm2-openssl's format), wrapped by
//                                                 the TPM's storage root key
//   tpm2:handle=0x81xxxxxx[?pin-source=file:PIN]  the key is persistent in the TPM
//
// Keys are created inside the TPM under the SRK (the persistent one at 0x81000001 if it
// exists, else a transient primary from tpm2-openssl's default template) as
// fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|sign, unrestricted, no decrypt,
// dictionary-attack protection kept (SECURITY.md rule 12). An optional auth value comes
// from pin-source and travels only in a salted HMAC session with parameter encryption.
// Algorithms: ec-p256, ec-p384, rsa-2048, rsa-3072 (rsa-4096: Errc::unsupported).
// Signing hashes on the host and sends one TPM2_Sign (password session: one command).
//
// Object slots: a key file is loaded on open and stays loaded while its Key lives, so a
// signature is one command. Without a resource manager (swtpm, /dev/tpm0) the TPM only
// guarantees TPM_PT_HR_TRANSIENT_MIN slots (3 on swtpm) and a load needs one more for the
// transient SRK, so loaded keys form a least-recently-used set: opening or using a key
// beyond that flushes the least recently used one, which reloads itself on its next use
// (CreatePrimary + Load + FlushContext). The SRK is flushed right after each load.
// Persistent keys take no slot.
//
// `tcti` selects the TPM ("device:/dev/tpmrm0", "swtpm:host=127.0.0.1,port=2321", ...);
// empty means $ACME_AGENT_TCTI, else device:/dev/tpmrm0. Nothing touches the TPM until a
// key is generated, opened, listed by handle or destroyed by handle. The Keystore and its
// Keys share one ESAPI connection whose commands run one at a time under a mutex, so
// Key::sign may be called from several threads. Errors: Errc::module_load when the TCTI
// cannot be reached, pin_incorrect / pin_locked for a wrong auth value / DA lockout (never
// retried), exists, not_found, unsupported, io (key files), hardware (anything else;
// Error::native holds the TSS2_RC).
#pragma once

#include "keystore/keystore.h"

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace tpm {

std::unique_ptr<keystore::Keystore> make_keystore(std::string tcti = {});

// The transient objects loaded in the TPM right now, asked through `ks`'s own connection
// (a simulator serves one connection at a time), for leak checks in tests and diagnostics.
// `ks` must come from make_keystore (Errc::usage otherwise).
base::Result<std::size_t> transient_handles(keystore::Keystore& ks);

// Evidence that a tpm2: key was created in this TPM (issue #19 item 5): TPM2_Certify of the
// key by an attestation key (AK) over the caller's nonce. The AK is a primary key of the
// endorsement hierarchy made from a fixed template (ECC NIST P-256, ECDSA with SHA-256,
// fixedTPM|fixedParent|sensitiveDataOrigin|userWithAuth|restricted|sign): the endorsement
// seed makes it the same key every time on the same TPM, so nothing is stored and nothing
// is persistent. Its hierarchy's password, if the TPM has one, comes from the key URI's
// ?endorsement-auth-source=file:PATH. The fields are those of the WebAuthn "tpm"
// attestation statement (draft-ietf-acme-device-attest).
struct Attestation {
    std::int64_t alg = -7;            // COSE algorithm of sig: ES256 (the AK's)
    std::vector<base::Bytes> x5c;     // DER: the EK certificate, then its chain; empty if none
    std::uint32_t ek_cert_index = 0;  // the NV index it came from (0: none)
    base::Bytes sig;                  // the AK's ECDSA signature over cert_info (DER)
    base::Bytes cert_info;            // TPMS_ATTEST, as the TPM signed it
    base::Bytes pub_area;             // TPMT_PUBLIC of the certified key
    base::Bytes ak_pub_area;          // TPMT_PUBLIC of the AK
};
// Errc::unsupported when `key` is not a tpm2: key; Errc::usage for a nonce of 0 or more than
// 64 bytes (the TPM's qualifyingData limit); the key's usual errors otherwise.
base::Result<Attestation> attest(const keystore::Key& key, std::span<const std::uint8_t> nonce);

// The attestation object as CBOR (RFC 8949, deterministic encoding: definite lengths,
// shortest heads, map keys in bytewise order): {"fmt": "tpm", "attStmt": {"ver": "2.0",
// "alg", "x5c", "sig", "certInfo", "pubArea"}, "akPubArea"}. x5c is left out without an EK
// certificate.
base::Bytes attestation_cbor(const Attestation& a);

}  // namespace tpm
