// PKCS#11 return values (CK_RV): their names and the one mapping to base::Error that every
// call in pkcs11/ goes through. Includes the PKCS#11 header: for pkcs11/ and its tests
// only, never keystore/.
#pragma once

#include "base/error.h"

#define CK_PTR *
#include <p11-kit/pkcs11.h>

#include <string>
#include <string_view>

namespace pkcs11 {

using base::Result;

// "CKR_PIN_INCORRECT" for 0xa0, ... ("CKR_0x..." when unknown).
std::string rv_name(CK_RV rv);
// Maps a CK_RV to the error code a user can act on.
base::Errc rv_errc(CK_RV rv);
// check_rv("C_Sign", fn->C_Sign(...), "key 'acct'"): success for CKR_OK, else an Error with
// rv_errc(rv), naming the call, the context and rv_name(rv), native = the CK_RV.
base::Result<void> check_rv(std::string_view call, CK_RV rv, std::string_view context = {});

}  // namespace pkcs11
