// Internal to the tpm backend. The "TSS2 PRIVATE KEY" PEM file that tpm2-openssl and
// tpm2-tss-engine read and write (J. Bottomley, "ASN.1 Specification for TPM 2.0 Key Files"):
//
//   TPMKey ::= SEQUENCE {
//       type        OBJECT IDENTIFIER,        -- 2.23.133.10.1.3, a loadable key
//       emptyAuth   [0] EXPLICIT BOOLEAN OPTIONAL,
//       parent      INTEGER,                  -- 0x40000001: the primary from the default
//                                             -- template; 0x81xxxxxx: a persistent parent
//       pubkey      OCTET STRING,             -- marshalled TPM2B_PUBLIC
//       privkey     OCTET STRING }            -- marshalled TPM2B_PRIVATE (parent-encrypted)
//
// The file is the key (SECURITY.md rule 12): its private part is only usable inside the TPM
// that made it, under the same parent.
#pragma once

#include "base/bytes.h"
#include "base/error.h"

#include <cstdint>
#include <string>
#include <string_view>

namespace tpm {

// The parent a key file names: TPM2_RH_OWNER means "the primary made from the default SRK
// template" (tpm2-openssl's convention); 0x81000001 is the persistent SRK (TCG handle).
inline constexpr std::uint32_t kOwnerParent = 0x40000001;
inline constexpr std::uint32_t kSrkHandle = 0x81000001;

struct KeyFile {
    std::uint32_t parent = 0;
    bool empty_auth = true;
    base::Bytes pub;   // marshalled TPM2B_PUBLIC
    base::Bytes priv;  // marshalled TPM2B_PRIVATE
};

// PEM text. emptyAuth is always written: TRUE when the key has no auth value, FALSE when
// it has one (tpm2-openssl 1.1.1 treats an absent emptyAuth as TRUE). On reading, absent
// counts as FALSE, as the specification says.
base::Result<std::string> encode_key_file(const KeyFile& key);
// Parses PEM text; `name` (the path) goes into errors. Errc::io for anything that is not a
// loadable TSS2 key (wrong PEM label, wrong OID, bad DER, parent out of range).
base::Result<KeyFile> decode_key_file(std::string_view pem, const std::string& name);

}  // namespace tpm
