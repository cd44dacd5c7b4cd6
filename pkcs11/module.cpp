#include "pkcs11/module.h"

#include "base/log.h"

#include <dlfcn.h>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>

namespace pkcs11 {

using base::Errc;

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

std::unexpected<base::Error> rv_fail(const std::string& call, CK_RV rv,
                                     const std::string& context) {
    std::string msg = rv_name(rv);
    if (!context.empty()) msg = context + ": " + msg;
    return base::fail(rv_errc(rv), call, msg, rv);
}

namespace {
std::mutex g_mutex;
std::map<std::string, std::weak_ptr<Module>> g_modules;
}  // namespace

Result<std::shared_ptr<Module>> Module::get(const std::string& path) {
    std::lock_guard lock(g_mutex);
    if (auto it = g_modules.find(path); it != g_modules.end())
        if (auto m = it->second.lock()) return m;

    const base::log::TraceSpan trace("pkcs11 module load");
    std::shared_ptr<Module> m(new Module());
    m->path_ = path;
    m->handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!m->handle_) {
        const char* why = ::dlerror();
        return base::fail(Errc::module_load, "PKCS#11 module",
                          "cannot load " + path + ": " + (why ? why : "unknown error"));
    }
    auto get_list =
        reinterpret_cast<CK_C_GetFunctionList>(::dlsym(m->handle_, "C_GetFunctionList"));
    if (!get_list)
        return base::fail(Errc::module_load, "PKCS#11 module",
                          path + " is not a PKCS#11 module (no C_GetFunctionList)");
    if (CK_RV rv = get_list(&m->fn_); rv != CKR_OK || !m->fn_)
        return base::fail(Errc::module_load, "C_GetFunctionList", rv_name(rv), rv);
    CK_C_INITIALIZE_ARGS args{};
    args.flags = CKF_OS_LOCKING_OK;
    const CK_RV rv = m->fn_->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED)
        return base::fail(Errc::module_load, "C_Initialize",
                          "module " + path + " failed to initialise: " + rv_name(rv), rv);
    m->finalize_ = rv == CKR_OK;
    g_modules[path] = m;
    return m;
}

Result<void> Module::reinitialize(std::uint64_t seen) {
    std::lock_guard lock(reinit_mutex_);
    if (generation_.load() != seen) return {};
    if (finalize_) {
        fn_->C_Finalize(nullptr);
        CK_C_INITIALIZE_ARGS args{};
        args.flags = CKF_OS_LOCKING_OK;
        if (CK_RV rv = fn_->C_Initialize(&args); rv != CKR_OK) {
            // Not initialized now: the next try initializes again (finalize_ stays true).
            return base::fail(Errc::token_absent, "C_Initialize",
                              "module " + path_ + " cannot reach its token: " + rv_name(rv), rv);
        }
    }
    generation_.fetch_add(1);
    return {};
}

Module::~Module() {
    if (fn_ && finalize_) fn_->C_Finalize(nullptr);
    if (handle_) ::dlclose(handle_);
}

std::string default_module_path() {
    if (const char* env = std::getenv("ACME_AGENT_PKCS11_MODULE"); env && *env) return env;
    return P11_KIT_PROXY_PATH;
}

}  // namespace pkcs11
