#include "pkcs11/module.h"

#include "base/log.h"

#include <dlfcn.h>
#include <cstdlib>
#include <map>
#include <mutex>

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

Module::~Module() {
    if (fn_ && finalize_) fn_->C_Finalize(nullptr);
    if (handle_) ::dlclose(handle_);
}

std::string default_module_path() {
    if (const char* env = std::getenv("ACME_AGENT_PKCS11_MODULE"); env && *env) return env;
    return P11_KIT_PROXY_PATH;
}

}  // namespace pkcs11
