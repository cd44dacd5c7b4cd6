// Internal to the tpm backend: TPM2_Certify of a loaded key by the attestation key, and the
// EK certificate from NV (see tpm::attest in tpm_keystore.h).
#pragma once

#include "tpm/connection.h"
#include "tpm/tpm_keystore.h"

namespace tpm {

// The AK's template (the header of tpm_keystore.h says why it is a primary).
TPM2B_PUBLIC ak_template();

// With the connection locked and `key` loaded, its authorization in `key_session` (the
// key's auth value already set on `key`): creates the AK (one more object slot), certifies
// `key` over `nonce` and collects the public areas and the EK certificate with its chain.
// A failed TPM2_Certify is reported with AuthOf::key.
base::Result<Attestation> certify(Connection::Guard& g, ESYS_TR key, ESYS_TR key_session,
                                  std::span<const std::uint8_t> nonce);

}  // namespace tpm
