#include "pkcs11/module.h"

#include "base/log.h"

#include <dlfcn.h>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

namespace pkcs11 {

using base::Errc;

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

namespace {
// What a client module (p11-kit-client.so, a network HSM's library) answers once its
// connection is gone.
bool connection_lost(CK_RV rv) {
    return rv == CKR_DEVICE_ERROR || rv == CKR_DEVICE_REMOVED || rv == CKR_CRYPTOKI_NOT_INITIALIZED;
}

CK_RV list_slots(CK_FUNCTION_LIST* fn, std::vector<CK_SLOT_ID>& out) {
    CK_ULONG count = 0;
    if (CK_RV rv = fn->C_GetSlotList(CK_TRUE, nullptr, &count); rv != CKR_OK) return rv;
    out.resize(count);
    const CK_RV rv = fn->C_GetSlotList(CK_TRUE, out.data(), &count);
    out.resize(rv == CKR_OK ? count : 0);
    return rv;
}
}  // namespace

void Reconnecting::pause() {
    std::this_thread::sleep_for(pause_);
    pause_ = std::min(pause_ * 2, std::chrono::milliseconds(1000));
}

std::string Reconnecting::gave_up() const {
    return "it did not come back within " + std::to_string(wait_.count()) +
           " s (ACME_AGENT_TOKEN_WAIT sets how long to wait)";
}

Result<std::vector<CK_SLOT_ID>> Module::token_slots(std::chrono::seconds wait) {
    Reconnecting again(wait);
    bool warned = false;
    bool tried_at_once = false;  // one re-initialization is tried without a pause
    for (;;) {
        const std::uint64_t seen = generation();
        std::vector<CK_SLOT_ID> slots;
        const CK_RV rv = list_slots(fn_, slots);
        if (rv == CKR_OK) return slots;
        if (!connection_lost(rv)) return std::unexpected(check_rv("C_GetSlotList", rv).error());
        if (again.over())
            return base::fail(Errc::token_absent, "C_GetSlotList",
                              "module " + path_ + " lost its connection (" + rv_name(rv) +
                                  ") and " + again.gave_up(),
                              rv);
        if (!warned) {
            base::log::warning("module " + path_ + " lost its connection (" + rv_name(rv) +
                               "); reconnecting");
            warned = true;
        }
        if (reinitialize(seen).has_value() && !tried_at_once) {
            tried_at_once = true;
            continue;
        }
        again.pause();
    }
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
