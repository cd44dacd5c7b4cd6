#include "pkcs11/token.h"

#include "base/log.h"
#include "keystore/pin.h"

#include <algorithm>
#include <cstdlib>
#include <thread>
#include <utility>

namespace pkcs11 {

using base::Errc;
using base::fail;
using keystore::KeyUri;

std::string padded(const CK_UTF8CHAR* s, std::size_t n) {
    std::string out(reinterpret_cast<const char*>(s), n);
    while (!out.empty() && (out.back() == ' ' || out.back() == '\0')) out.pop_back();
    return out;
}

Result<LoginSession> LoginSession::open(CK_FUNCTION_LIST* fn, CK_SLOT_ID slot,
                                        std::string_view context) {
    CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
    if (auto r = check_rv(
            "C_OpenSession",
            fn->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &h),
            context);
        !r)
        return std::unexpected(r.error());
    return LoginSession(fn, h);
}

LoginSession::LoginSession(LoginSession&& o) noexcept
    : fn_(o.fn_),
      handle_(std::exchange(o.handle_, CK_INVALID_HANDLE)),
      logged_in_(std::exchange(o.logged_in_, false)) {}

LoginSession& LoginSession::operator=(LoginSession&& o) noexcept {
    if (this != &o) {
        close();
        fn_ = o.fn_;
        handle_ = std::exchange(o.handle_, CK_INVALID_HANDLE);
        logged_in_ = std::exchange(o.logged_in_, false);
    }
    return *this;
}

CK_RV LoginSession::login(CK_USER_TYPE user, const base::Secret& pin) {
    auto* p = reinterpret_cast<CK_UTF8CHAR*>(const_cast<char*>(pin.reveal().data()));
    const CK_RV rv = fn_->C_Login(handle_, user, p, pin.reveal().size());
    logged_in_ = rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN;
    return rv;
}

void LoginSession::close() noexcept {
    if (handle_ == CK_INVALID_HANDLE) return;
    if (logged_in_) fn_->C_Logout(handle_);
    fn_->C_CloseSession(handle_);
    handle_ = CK_INVALID_HANDLE;
    logged_in_ = false;
}

Token::~Token() {
    std::lock_guard lock(mutex_);
    for (auto s : free_) fn()->C_CloseSession(s);
    // login_session_ logs out and closes last, as a member, while module_ is still loaded.
}

Result<Token::Lease> Token::session() {
    CK_SLOT_ID slot = 0;
    {
        std::lock_guard lock(mutex_);
        if (!free_.empty()) {
            const CK_SESSION_HANDLE h = free_.back();
            free_.pop_back();
            return Lease(this, h);
        }
        slot = slot_;
    }
    CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
    if (auto r = check(
            "C_OpenSession",
            fn()->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr, nullptr, &h),
            "token '" + label() + "'");
        !r)
        return std::unexpected(r.error());
    return Lease(this, h);
}

bool Token::lost(CK_RV rv) const {
    switch (rv) {
        case CKR_SESSION_HANDLE_INVALID:
        case CKR_SESSION_CLOSED:
        case CKR_CRYPTOKI_NOT_INITIALIZED:
        case CKR_DEVICE_REMOVED:
        case CKR_TOKEN_NOT_PRESENT:
        // The slot is gone: the module was re-initialized by another thread meanwhile (a
        // restarted p11-kit server numbers its slots anew), or the device was re-plugged.
        case CKR_SLOT_ID_INVALID:
            return true;
        default:
            return rv_errc(rv) == Errc::hardware && !present();
    }
}

Result<void> Token::recover(const KeyUri& uri, std::uint64_t seen, const base::Error& cause) {
    std::lock_guard once(recover_mutex_);
    if (generation_.load() != seen) return {};
    {
        std::lock_guard lock(mutex_);
        free_.clear();  // their handles died with the connection or die with C_Finalize
    }
    {
        std::lock_guard lock(login_mutex_);
        login_session_.forget();
    }
    base::log::warning("token '" + label() + "' (serial " + serial() +
                       ") lost its sessions; reconnecting");
    Reconnecting again(token_wait());
    for (;;) {
        auto back = module_->reinitialize(module_seen_);
        if (back) {
            module_seen_ = module_->generation();
            back = find_slot();
        }
        if (back) {
            generation_.fetch_add(1);
            base::log::info("token '" + label() + "' is back; logging in again");
            return login(uri);
        }
        if (again.over()) {
            base::Error e = cause;
            e.code = Errc::token_absent;
            e.message += "; " + again.gave_up();
            return std::unexpected(std::move(e));
        }
        again.pause();
    }
}

Result<void> Token::follow_module(const KeyUri& uri) {
    const std::uint64_t seen = generation();
    {
        std::lock_guard once(recover_mutex_);
        if (module_seen_ == module_->generation()) return {};
    }
    return recover(
        uri, seen,
        base::Error{Errc::token_absent, "pkcs11",
                    "token '" + label() + "': its module was re-initialized", std::nullopt});
}

bool Token::present() const {
    CK_TOKEN_INFO now{};
    const CK_SLOT_ID slot = slot_id();
    return fn()->C_GetTokenInfo(slot, &now) == CKR_OK && (now.flags & CKF_TOKEN_INITIALIZED) &&
           padded(now.serialNumber, sizeof now.serialNumber) == serial();
}

Result<void> Token::check(std::string_view call, CK_RV rv, std::string_view context) const {
    auto r = check_rv(call, rv, context);
    if (r || r.error().code != Errc::hardware || present()) return r;
    return fail(Errc::token_absent, std::string(call),
                "token '" + label() + "' (serial " + serial() + ") is no longer in slot " +
                    std::to_string(slot_id()) + " (" + rv_name(rv) +
                    "); reinsert it and run the command again",
                rv);
}

Result<void> Token::login(const KeyUri& uri) {
    std::lock_guard lock(login_mutex_);
    if (login_error_) return std::unexpected(*login_error_);
    if (login_session_ || !(info_.flags & CKF_LOGIN_REQUIRED)) return {};
    if (info_.flags & CKF_USER_PIN_LOCKED)
        return remember(base::Error{
            Errc::pin_locked, "C_Login",
            "the user PIN of token '" + label() + "' is locked; unlock it with the SO PIN",
            CKR_PIN_LOCKED});
    auto pin = keystore::resolve_pin(uri, "PIN for token '" + label() + "'");
    if (!pin) return std::unexpected(pin.error());
    const base::log::TraceSpan trace("pkcs11 login");
    auto session = LoginSession::open(fn(), slot_id(), "token '" + label() + "'");
    if (!session) return std::unexpected(session.error());
    const CK_RV rv = session->login(CKU_USER, *pin);
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
        std::string what = "login to token '" + label() + "'";
        if (rv == CKR_PIN_INCORRECT)
            what = "wrong PIN for token '" + label() +
                   "' (not retried; each wrong try counts toward the token's lockout)";
        else if (rv == CKR_PIN_LOCKED)
            what = "the user PIN of token '" + label() + "' is locked";
        return remember(check_rv("C_Login", rv, what).error());  // the session closes
    }
    login_session_ = std::move(*session);  // kept open: the login lasts while it is
    return {};
}

Result<void> Token::context_login(CK_SESSION_HANDLE s, const KeyUri& uri) {
    std::lock_guard lock(login_mutex_);
    if (context_error_) return std::unexpected(*context_error_);
    if (!context_pin_) {
        auto pin = keystore::resolve_pin(uri, "PIN for token '" + label() + "'");
        if (!pin) return std::unexpected(pin.error());
        context_pin_ = std::move(*pin);
    }
    auto* p = reinterpret_cast<CK_UTF8CHAR*>(const_cast<char*>(context_pin_->reveal().data()));
    const CK_RV rv = fn()->C_Login(s, CKU_CONTEXT_SPECIFIC, p, context_pin_->reveal().size());
    if (rv == CKR_OK) return {};
    std::string what = "per-signature login to token '" + label() + "'";
    if (rv == CKR_PIN_INCORRECT)
        what = "wrong PIN for the per-signature login to token '" + label() +
               "' (not retried; each wrong try counts toward the token's lockout)";
    auto e = check("C_Login(CKU_CONTEXT_SPECIFIC)", rv, what);
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED) {
        context_error_ = e.error();
        context_pin_.reset();
    }
    return e;
}

std::chrono::seconds Token::token_wait() {
    const char* env = std::getenv("ACME_AGENT_TOKEN_WAIT");
    if (!env || !*env) return std::chrono::seconds(30);
    char* end = nullptr;
    const long v = std::strtol(env, &end, 10);
    return std::chrono::seconds(end && *end == '\0' && v >= 0 && v <= 3600 ? v : 30);
}

Result<void> Token::find_slot() {
    // No wait of its own: recover() re-initializes and tries again until its deadline.
    auto slots = module_->token_slots(std::chrono::seconds(0));
    if (!slots) return std::unexpected(slots.error());
    for (CK_SLOT_ID s : *slots) {
        CK_TOKEN_INFO info{};
        if (fn()->C_GetTokenInfo(s, &info) != CKR_OK ||
            padded(info.serialNumber, sizeof info.serialNumber) != serial() ||
            padded(info.label, sizeof info.label) != label())
            continue;
        std::lock_guard lock(mutex_);
        slot_ = s;
        return {};
    }
    return fail(Errc::token_absent, "pkcs11", "token '" + label() + "' is not there");
}

std::unexpected<base::Error> Token::remember(base::Error e) {
    login_error_ = e;
    return std::unexpected(std::move(e));
}

void Token::give_back(CK_SESSION_HANDLE h, bool broken, std::uint64_t generation) {
    if (generation != generation_.load()) return;  // died with the old connection
    if (broken) {
        fn()->C_CloseSession(h);
        return;
    }
    std::lock_guard lock(mutex_);
    free_.push_back(h);
}

}  // namespace pkcs11
