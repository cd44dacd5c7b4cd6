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

#include <memory>
#include <string>

namespace tpm {

std::unique_ptr<keystore::Keystore> make_keystore(std::string tcti = {});

// The transient objects loaded in the TPM right now, asked through `ks`'s own connection
// (a simulator serves one connection at a time), for leak checks in tests and diagnostics.
// `ks` must come from make_keystore (Errc::usage otherwise).
base::Result<std::size_t> transient_handles(keystore::Keystore& ks);

}  // namespace tpm
