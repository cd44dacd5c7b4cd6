// Internal to pkcs11/. A token in one slot of a loaded module: its login (owned by a
// move-only LoginSession), a pool of sessions shared by every key on it, and the recovery
// of a token that lost its sessions (a network HSM reconnecting, a device reinserted).
#pragma once

#include "base/bytes.h"
#include "base/error.h"
#include "keystore/key_uri.h"
#include "pkcs11/module.h"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pkcs11 {

// A fixed-width, blank-padded CK_UTF8CHAR field (labels, serials) as a string.
std::string padded(const CK_UTF8CHAR* s, std::size_t n);

// The session a user login lives in: PKCS#11 logs an application in while one of its
// sessions stays open, so the login lasts as long as this owner. Logs out (when logged in)
// and closes the session when it goes. Move-only; forget() when the module was
// re-initialized and the handle is already dead.
class LoginSession {
  public:
    LoginSession() = default;
    // Opens a read-write session on `slot`; `context` names the token in the error.
    static Result<LoginSession> open(CK_FUNCTION_LIST* fn, CK_SLOT_ID slot,
                                     std::string_view context);
    LoginSession(LoginSession&& o) noexcept;
    LoginSession& operator=(LoginSession&& o) noexcept;
    LoginSession(const LoginSession&) = delete;
    LoginSession& operator=(const LoginSession&) = delete;
    ~LoginSession() { close(); }

    // C_Login on this session; the CK_RV as the token gave it, for the caller to word the
    // error (CKR_USER_ALREADY_LOGGED_IN counts as logged in).
    CK_RV login(CK_USER_TYPE user, const base::Secret& pin);
    [[nodiscard]] CK_SESSION_HANDLE get() const { return handle_; }
    explicit operator bool() const { return handle_ != CK_INVALID_HANDLE; }
    void forget() noexcept {
        handle_ = CK_INVALID_HANDLE;
        logged_in_ = false;
    }

  private:
    LoginSession(CK_FUNCTION_LIST* fn, CK_SESSION_HANDLE h) : fn_(fn), handle_(h) {}
    void close() noexcept;
    CK_FUNCTION_LIST* fn_ = nullptr;
    CK_SESSION_HANDLE handle_ = CK_INVALID_HANDLE;
    bool logged_in_ = false;
};

class Token {
  public:
    Token(std::shared_ptr<Module> module, CK_SLOT_ID slot, const CK_TOKEN_INFO& info)
        : module_(std::move(module)), slot_(slot), info_(info) {}
    ~Token();
    Token(const Token&) = delete;
    Token& operator=(const Token&) = delete;

    [[nodiscard]] CK_FUNCTION_LIST* fn() const { return module_->fn(); }
    [[nodiscard]] std::string label() const { return padded(info_.label, sizeof info_.label); }
    [[nodiscard]] std::string serial() const {
        return padded(info_.serialNumber, sizeof info_.serialNumber);
    }
    [[nodiscard]] std::string manufacturer() const {
        return padded(info_.manufacturerID, sizeof info_.manufacturerID);
    }
    [[nodiscard]] std::string model() const { return padded(info_.model, sizeof info_.model); }
    [[nodiscard]] const std::string& module_path() const { return module_->path(); }
    [[nodiscard]] CK_SLOT_ID slot_id() const {
        std::lock_guard lock(mutex_);
        return slot_;
    }

    // A session from the pool, returned on destruction unless marked broken.
    class Lease {
      public:
        Lease(Token* t, CK_SESSION_HANDLE h)
            : token_(t), handle_(h), generation_(t->generation()) {}
        Lease(Lease&& o) noexcept
            : token_(o.token_), handle_(o.handle_), generation_(o.generation_) {
            o.token_ = nullptr;
        }
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        Lease& operator=(Lease&&) = delete;
        ~Lease() {
            if (token_) token_->give_back(handle_, broken_, generation_);
        }
        [[nodiscard]] CK_SESSION_HANDLE get() const { return handle_; }
        void broken() { broken_ = true; }

      private:
        Token* token_;
        CK_SESSION_HANDLE handle_;
        std::uint64_t generation_;  // a session from before a recovery is dead
        bool broken_ = false;
    };

    Result<Lease> session();

    // Which recoveries this token has been through: a Key's object handle and a Lease's
    // session belong to one generation.
    [[nodiscard]] std::uint64_t generation() const { return generation_.load(); }

    // Whether a failed call with `rv` means the sessions are gone but the token may come
    // back: a network HSM's connection dropped (p11-kit-client answers CKR_DEVICE_ERROR
    // and the token info with it), the device removed, the sessions invalidated, the slot
    // renumbered by a re-initialization.
    [[nodiscard]] bool lost(CK_RV rv) const;

    // After lost(): drops every session, re-initializes the module, finds the token again
    // by its serial (its slot may have moved) and logs in again, polling until the token is
    // back or `ACME_AGENT_TOKEN_WAIT` seconds (default 30) have passed. `seen` is the
    // generation() the failure happened in; a recovery another thread finished since is
    // not repeated.
    Result<void> recover(const keystore::KeyUri& uri, std::uint64_t seen, const base::Error& cause);

    // When the module was re-initialized since this token last looked (another token of it,
    // or the keystore finding a key, reconnected it), its sessions and login are dead:
    // recovers before anything uses them. Nothing to do otherwise.
    Result<void> follow_module(const keystore::KeyUri& uri);

    // Whether the token is still in its slot after a call failed. A token pulled out
    // mid-run does not always say so: SoftHSM, its directory gone, answers C_SignInit with
    // CKR_OBJECT_HANDLE_INVALID, and only C_GetTokenInfo tells what happened.
    [[nodiscard]] bool present() const;

    // check_rv() for a call on this token: token_absent, saying so, when a hardware-class
    // failure came from the token having left its slot.
    [[nodiscard]] Result<void> check(std::string_view call, CK_RV rv,
                                     std::string_view context) const;

    // Logs in once per process. A wrong PIN is tried once: the error is remembered and
    // returned again, never retried (SECURITY.md rule 11).
    Result<void> login(const keystore::KeyUri& uri);

    // The context-specific login (PKCS#11 v2.40 section 5.2) a CKA_ALWAYS_AUTHENTICATE key
    // needs between C_SignInit and C_Sign on session `s`. The PIN is resolved once and kept
    // for the token's life (a prompt per signature would be a dozen prompts per order); a
    // wrong PIN is remembered like the user login's and never tried again.
    Result<void> context_login(CK_SESSION_HANDLE s, const keystore::KeyUri& uri);

    // How long a lost token or module connection is waited for: ACME_AGENT_TOKEN_WAIT
    // seconds (0 to 3600), default 30.
    static std::chrono::seconds token_wait();

  private:
    // This token's slot after a re-initialization: the one holding a token with its serial.
    Result<void> find_slot();
    std::unexpected<base::Error> remember(base::Error e);
    void give_back(CK_SESSION_HANDLE h, bool broken, std::uint64_t generation);

    std::shared_ptr<Module> module_;  // first: outlives the sessions below
    CK_SLOT_ID slot_;  // guarded by mutex_: a recovery may find the token in another slot
    CK_TOKEN_INFO info_;
    mutable std::mutex mutex_;
    std::vector<CK_SESSION_HANDLE> free_;
    std::mutex recover_mutex_;
    std::atomic<std::uint64_t> generation_{0};
    std::uint64_t module_seen_ = module_->generation();  // guarded by recover_mutex_
    std::mutex login_mutex_;
    LoginSession login_session_;  // guarded by login_mutex_
    std::optional<base::Error> login_error_;
    std::optional<base::Secret> context_pin_;
    std::optional<base::Error> context_error_;
};

}  // namespace pkcs11
