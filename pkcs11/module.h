// A loaded PKCS#11 module: dlopen + C_GetFunctionList + C_Initialize (OS locking), once
// per module path per process, finalized when the last user lets go.
// Includes the PKCS#11 header (through rv.h): for pkcs11/ and its tests only, never keystore/.
#pragma once

#include "base/error.h"
#include "pkcs11/rv.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace pkcs11 {

using base::Result;

class Module {
  public:
    // Loads (or returns the already loaded) module at `path`. Errc::module_load with the
    // dlerror() text when it will not load or lacks C_GetFunctionList.
    static Result<std::shared_ptr<Module>> get(const std::string& path);
    ~Module();
    Module(const Module&) = delete;
    Module& operator=(const Module&) = delete;

    [[nodiscard]] CK_FUNCTION_LIST* fn() const { return fn_; }

    // C_Finalize then C_Initialize again, for a module that lost its device: a client
    // module (p11-kit-client.so, a network HSM's library) reconnects only then. Every
    // session of the module is gone afterwards. `seen` is the generation() in which the
    // caller's call failed: when another caller re-initialized since, this does nothing.
    Result<void> reinitialize(std::uint64_t seen);
    [[nodiscard]] std::uint64_t generation() const { return generation_.load(); }

    // C_GetSlotList(tokenPresent): the slots that hold a token. When the module answers as
    // one whose connection dropped (a network HSM restarted: CKR_DEVICE_ERROR,
    // CKR_DEVICE_REMOVED, CKR_CRYPTOKI_NOT_INITIALIZED), it is re-initialized and asked
    // again until `wait` has passed; then Errc::token_absent saying how long it waited.
    Result<std::vector<CK_SLOT_ID>> token_slots(std::chrono::seconds wait);
    [[nodiscard]] const std::string& path() const { return path_; }

  private:
    Module() = default;
    void* handle_ = nullptr;
    CK_FUNCTION_LIST* fn_ = nullptr;
    bool finalize_ = false;
    std::mutex reinit_mutex_;
    std::atomic<std::uint64_t> generation_{0};
    std::string path_;
};

// Waiting for a module to come back (a network HSM restarting): a module has no event to
// wait on, so it is polled, 20 ms doubling to 1 s, until `wait` has passed.
class Reconnecting {
  public:
    explicit Reconnecting(std::chrono::seconds wait)
        : wait_(wait), deadline_(std::chrono::steady_clock::now() + wait) {}
    [[nodiscard]] bool over() const { return std::chrono::steady_clock::now() >= deadline_; }
    void pause();  // before the next try
    // Said when it is: "it did not come back within N s (ACME_AGENT_TOKEN_WAIT ...)".
    [[nodiscard]] std::string gave_up() const;

  private:
    std::chrono::seconds wait_;
    std::chrono::steady_clock::time_point deadline_;
    std::chrono::milliseconds pause_{20};
};

// The module used when a URI names none: env ACME_AGENT_PKCS11_MODULE, else p11-kit's
// proxy (every token the system has configured).
std::string default_module_path();

}  // namespace pkcs11
