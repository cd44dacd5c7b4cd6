#include "pkcs11/rv.h"

#include <cstdio>

namespace pkcs11 {

using base::Errc;
using base::Result;

std::string rv_name(CK_RV rv) {
    switch (rv) {
        // clang-format off: a macro call per line; clang-format cannot lay out the list stably
#define RV(x) case x: return #x;  // NOLINT(cppcoreguidelines-macro-usage): needs #x
        RV(CKR_OK)
        RV(CKR_CANCEL)
        RV(CKR_HOST_MEMORY)
        RV(CKR_SLOT_ID_INVALID)
        RV(CKR_GENERAL_ERROR)
        RV(CKR_FUNCTION_FAILED)
        RV(CKR_ARGUMENTS_BAD)
        RV(CKR_ATTRIBUTE_READ_ONLY)
        RV(CKR_ATTRIBUTE_SENSITIVE)
        RV(CKR_ATTRIBUTE_TYPE_INVALID)
        RV(CKR_ATTRIBUTE_VALUE_INVALID)
        RV(CKR_DATA_INVALID)
        RV(CKR_DATA_LEN_RANGE)
        RV(CKR_DEVICE_ERROR)
        RV(CKR_DEVICE_MEMORY)
        RV(CKR_DEVICE_REMOVED)
        RV(CKR_FUNCTION_NOT_SUPPORTED)
        RV(CKR_KEY_HANDLE_INVALID)
        RV(CKR_KEY_SIZE_RANGE)
        RV(CKR_KEY_TYPE_INCONSISTENT)
        RV(CKR_KEY_FUNCTION_NOT_PERMITTED)
        RV(CKR_MECHANISM_INVALID)
        RV(CKR_MECHANISM_PARAM_INVALID)
        RV(CKR_OBJECT_HANDLE_INVALID)
        RV(CKR_OPERATION_ACTIVE)
        RV(CKR_OPERATION_NOT_INITIALIZED)
        RV(CKR_PIN_INCORRECT)
        RV(CKR_PIN_INVALID)
        RV(CKR_PIN_LEN_RANGE)
        RV(CKR_PIN_EXPIRED)
        RV(CKR_PIN_LOCKED)
        RV(CKR_SESSION_CLOSED)
        RV(CKR_SESSION_COUNT)
        RV(CKR_SESSION_HANDLE_INVALID)
        RV(CKR_SESSION_READ_ONLY)
        RV(CKR_TEMPLATE_INCOMPLETE)
        RV(CKR_TEMPLATE_INCONSISTENT)
        RV(CKR_TOKEN_NOT_PRESENT)
        RV(CKR_TOKEN_NOT_RECOGNIZED)
        RV(CKR_TOKEN_WRITE_PROTECTED)
        RV(CKR_USER_ALREADY_LOGGED_IN)
        RV(CKR_USER_NOT_LOGGED_IN)
        RV(CKR_USER_PIN_NOT_INITIALIZED)
        RV(CKR_USER_TYPE_INVALID)
        RV(CKR_BUFFER_TOO_SMALL)
        RV(CKR_CRYPTOKI_NOT_INITIALIZED)
        RV(CKR_CRYPTOKI_ALREADY_INITIALIZED)
        RV(CKR_DOMAIN_PARAMS_INVALID)
        RV(CKR_CURVE_NOT_SUPPORTED)
#undef RV
        // clang-format on
        default: {
            char buf[32];
            (void)std::snprintf(buf, sizeof buf, "CKR_0x%lx", static_cast<unsigned long>(rv));
            return buf;
        }
    }
}

Errc rv_errc(CK_RV rv) {
    switch (rv) {
        case CKR_PIN_INCORRECT:
        case CKR_PIN_INVALID:
        case CKR_PIN_LEN_RANGE:
            return Errc::pin_incorrect;
        case CKR_PIN_LOCKED:
        case CKR_PIN_EXPIRED:
            return Errc::pin_locked;
        case CKR_TOKEN_NOT_PRESENT:
        case CKR_TOKEN_NOT_RECOGNIZED:
        case CKR_DEVICE_REMOVED:
        case CKR_SLOT_ID_INVALID:
            return Errc::token_absent;
        case CKR_MECHANISM_INVALID:
        case CKR_FUNCTION_NOT_SUPPORTED:
        case CKR_KEY_SIZE_RANGE:
        case CKR_CURVE_NOT_SUPPORTED:
        case CKR_DOMAIN_PARAMS_INVALID:
            return Errc::unsupported;
        default:
            return Errc::hardware;
    }
}

Result<void> check_rv(std::string_view call, CK_RV rv, std::string_view context) {
    if (rv == CKR_OK) return {};
    std::string msg = rv_name(rv);
    if (!context.empty()) msg = std::string(context) + ": " + msg;
    return base::fail(rv_errc(rv), std::string(call), std::move(msg), rv);
}

}  // namespace pkcs11
