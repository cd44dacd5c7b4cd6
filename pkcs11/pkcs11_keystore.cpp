#include "pkcs11/pkcs11_keystore.h"

#include "base/log.h"
#include "base/ossl.h"
#include "keystore/mac.h"
#include "keystore/pin.h"
#include "pkcs11/module.h"

#include <openssl/core_names.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

namespace pkcs11 {

using base::Bytes;
using base::Errc;
using base::fail;
using keystore::KeyAlgorithm;
using keystore::KeyInfo;
using keystore::KeyPtr;
using keystore::KeyUri;

namespace {

// DER OIDs for CKA_EC_PARAMS.
const Bytes kP256Oid{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
const Bytes kP384Oid{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22};
// DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1): RS256 hashes on the host.
const Bytes kSha256DigestInfo{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01,
                              0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0x04, 0x20};

std::string padded(const CK_UTF8CHAR* s, std::size_t n) {
    std::string out(reinterpret_cast<const char*>(s), n);
    while (!out.empty() && (out.back() == ' ' || out.back() == '\0')) out.pop_back();
    return out;
}

CK_BBOOL kTrue = CK_TRUE;
CK_BBOOL kFalse = CK_FALSE;

// A token in one slot: the login and a pool of sessions, shared by every Key on it.
class Token {
  public:
    Token(std::shared_ptr<Module> module, CK_SLOT_ID slot, const CK_TOKEN_INFO& info)
        : module_(std::move(module)), slot_(slot), info_(info) {}
    ~Token() {
        std::lock_guard lock(mutex_);
        for (auto s : free_) fn()->C_CloseSession(s);
        if (login_session_ != CK_INVALID_HANDLE) {
            fn()->C_Logout(login_session_);
            fn()->C_CloseSession(login_session_);
        }
    }
    Token(const Token&) = delete;
    Token& operator=(const Token&) = delete;

    CK_FUNCTION_LIST* fn() const { return module_->fn(); }
    std::string label() const { return padded(info_.label, sizeof info_.label); }
    std::string serial() const { return padded(info_.serialNumber, sizeof info_.serialNumber); }
    std::string manufacturer() const {
        return padded(info_.manufacturerID, sizeof info_.manufacturerID);
    }
    std::string model() const { return padded(info_.model, sizeof info_.model); }
    const std::string& module_path() const { return module_->path(); }
    CK_SLOT_ID slot_id() const {
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
        ~Lease() {
            if (token_) token_->give_back(handle_, broken_, generation_);
        }
        CK_SESSION_HANDLE get() const { return handle_; }
        void broken() { broken_ = true; }

      private:
        Token* token_;
        CK_SESSION_HANDLE handle_;
        std::uint64_t generation_;  // a session from before a recovery is dead
        bool broken_ = false;
    };

    Result<Lease> session() {
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
        if (CK_RV rv = fn()->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr,
                                           nullptr, &h);
            rv != CKR_OK)
            return call_failed("C_OpenSession", rv, "token '" + label() + "'");
        return Lease(this, h);
    }

    // Which recoveries this token has been through: a Key's object handle and a Lease's
    // session belong to one generation.
    [[nodiscard]] std::uint64_t generation() const { return generation_.load(); }

    // Whether a failed call with `rv` means the sessions are gone but the token may come
    // back: a network HSM's connection dropped (p11-kit-client answers CKR_DEVICE_ERROR
    // and the token info with it), the device removed, the sessions invalidated.
    bool lost(CK_RV rv) const {
        switch (rv) {
            case CKR_SESSION_HANDLE_INVALID:
            case CKR_SESSION_CLOSED:
            case CKR_CRYPTOKI_NOT_INITIALIZED:
            case CKR_DEVICE_REMOVED:
            case CKR_TOKEN_NOT_PRESENT:
                return true;
            default:
                return rv_errc(rv) == Errc::hardware && !present();
        }
    }

    // After lost(): drops every session, re-initializes the module, finds the token again
    // by its serial (its slot may have moved) and logs in again, polling until the token is
    // back or `ACME_AGENT_TOKEN_WAIT` seconds (default 30) have passed. `seen` is the
    // generation() the failure happened in; a recovery another thread finished since is
    // not repeated.
    Result<void> recover(const KeyUri& uri, std::uint64_t seen, const base::Error& cause) {
        std::lock_guard once(recover_mutex_);
        if (generation_.load() != seen) return {};
        {
            std::lock_guard lock(mutex_);
            free_.clear();  // their handles died with the connection or die with C_Finalize
        }
        {
            std::lock_guard lock(login_mutex_);
            login_session_ = CK_INVALID_HANDLE;
        }
        base::log::warning("token '" + label() + "' (serial " + serial() +
                           ") lost its sessions; reconnecting");
        const auto deadline = std::chrono::steady_clock::now() + token_wait();
        auto pause = std::chrono::milliseconds(20);
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
            if (std::chrono::steady_clock::now() >= deadline) {
                base::Error e = cause;
                e.code = Errc::token_absent;
                e.message += "; it did not come back within " +
                             std::to_string(token_wait().count()) +
                             " s (ACME_AGENT_TOKEN_WAIT sets how long to wait)";
                return std::unexpected(std::move(e));
            }
            std::this_thread::sleep_for(pause);  // polling the module: it has no event to wait on
            pause = std::min(pause * 2, std::chrono::milliseconds(1000));
        }
    }

    // Whether the token is still in its slot after a call failed. A token pulled out
    // mid-run does not always say so: SoftHSM, its directory gone, answers C_SignInit with
    // CKR_OBJECT_HANDLE_INVALID, and only C_GetTokenInfo tells what happened.
    bool present() const {
        CK_TOKEN_INFO now{};
        CK_SLOT_ID slot = 0;
        {
            std::lock_guard lock(mutex_);
            slot = slot_;
        }
        return fn()->C_GetTokenInfo(slot, &now) == CKR_OK && (now.flags & CKF_TOKEN_INITIALIZED) &&
               padded(now.serialNumber, sizeof now.serialNumber) == serial();
    }
    // The error for a failed call on this token: token_absent when the token is gone.
    std::unexpected<base::Error> call_failed(const std::string& call, CK_RV rv,
                                             const std::string& context) const {
        if (rv_errc(rv) != Errc::hardware || present()) return rv_fail(call, rv, context);
        return fail(Errc::token_absent, call,
                    "token '" + label() + "' (serial " + serial() + ") is no longer in slot " +
                        std::to_string(slot_id()) + " (" + rv_name(rv) +
                        "); reinsert it and run the command again",
                    rv);
    }

    // Logs in once per process. A wrong PIN is tried once: the error is remembered and
    // returned again, never retried (SECURITY.md rule 11).
    Result<void> login(const KeyUri& uri) {
        std::lock_guard lock(login_mutex_);
        if (login_error_) return std::unexpected(*login_error_);
        if (login_session_ != CK_INVALID_HANDLE || !(info_.flags & CKF_LOGIN_REQUIRED)) return {};
        if (info_.flags & CKF_USER_PIN_LOCKED)
            return remember(
                fail(Errc::pin_locked, "C_Login",
                     "the user PIN of token '" + label() + "' is locked; unlock it with the SO PIN",
                     CKR_PIN_LOCKED));
        auto pin = keystore::resolve_pin(uri, "PIN for token '" + label() + "'");
        if (!pin) return std::unexpected(pin.error());
        const base::log::TraceSpan trace("pkcs11 login");
        CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
        if (CK_RV rv = fn()->C_OpenSession(slot_id(), CKF_SERIAL_SESSION | CKF_RW_SESSION, nullptr,
                                           nullptr, &h);
            rv != CKR_OK)
            return rv_fail("C_OpenSession", rv, "token '" + label() + "'");
        auto* p = reinterpret_cast<CK_UTF8CHAR*>(const_cast<char*>(pin->reveal().data()));
        const CK_RV rv = fn()->C_Login(h, CKU_USER, p, pin->reveal().size());
        if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN) {
            fn()->C_CloseSession(h);
            std::string what = "login to token '" + label() + "'";
            if (rv == CKR_PIN_INCORRECT)
                what = "wrong PIN for token '" + label() +
                       "' (not retried; each wrong try counts toward the token's lockout)";
            else if (rv == CKR_PIN_LOCKED)
                what = "the user PIN of token '" + label() + "' is locked";
            return remember(rv_fail("C_Login", rv, what));
        }
        login_session_ = h;  // kept open: the login lasts while one session is open
        return {};
    }

    // The context-specific login (PKCS#11 v2.40 section 5.2) a CKA_ALWAYS_AUTHENTICATE key
    // needs between C_SignInit and C_Sign on session `s`. The PIN is resolved once and kept
    // for the token's life (a prompt per signature would be a dozen prompts per order); a
    // wrong PIN is remembered like the user login's and never tried again.
    Result<void> context_login(CK_SESSION_HANDLE s, const KeyUri& uri) {
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
        auto e = call_failed("C_Login(CKU_CONTEXT_SPECIFIC)", rv, what);
        if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED) {
            context_error_ = e.error();
            context_pin_.reset();
        }
        return e;
    }

  private:
    static std::chrono::seconds token_wait() {
        const char* env = std::getenv("ACME_AGENT_TOKEN_WAIT");
        if (!env || !*env) return std::chrono::seconds(30);
        char* end = nullptr;
        const long v = std::strtol(env, &end, 10);
        return std::chrono::seconds(end && *end == '\0' && v >= 0 && v <= 3600 ? v : 30);
    }

    // This token's slot after a re-initialization: the one holding a token with its serial.
    Result<void> find_slot() {
        CK_ULONG count = 0;
        if (CK_RV rv = fn()->C_GetSlotList(CK_TRUE, nullptr, &count); rv != CKR_OK)
            return rv_fail("C_GetSlotList", rv);
        std::vector<CK_SLOT_ID> slots(count);
        if (CK_RV rv = fn()->C_GetSlotList(CK_TRUE, slots.data(), &count); rv != CKR_OK)
            return rv_fail("C_GetSlotList", rv);
        slots.resize(count);
        for (CK_SLOT_ID s : slots) {
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

    std::unexpected<base::Error> remember(std::unexpected<base::Error> e) {
        login_error_ = e.error();
        return e;
    }
    void give_back(CK_SESSION_HANDLE h, bool broken, std::uint64_t generation) {
        if (generation != generation_.load()) return;  // died with the old connection
        if (broken) {
            fn()->C_CloseSession(h);
            return;
        }
        std::lock_guard lock(mutex_);
        free_.push_back(h);
    }

    std::shared_ptr<Module> module_;
    CK_SLOT_ID slot_;  // guarded by mutex_: a recovery may find the token in another slot
    CK_TOKEN_INFO info_;
    mutable std::mutex mutex_;
    std::vector<CK_SESSION_HANDLE> free_;
    std::mutex recover_mutex_;
    std::atomic<std::uint64_t> generation_{0};
    std::uint64_t module_seen_ = module_->generation();  // guarded by recover_mutex_
    std::mutex login_mutex_;
    CK_SESSION_HANDLE login_session_ = CK_INVALID_HANDLE;
    std::optional<base::Error> login_error_;
    std::optional<base::Secret> context_pin_;
    std::optional<base::Error> context_error_;
};

// Reads one variable-length attribute. std::nullopt when the token refuses (sensitive,
// absent): that refusal is itself a fact callers check.
std::optional<Bytes> get_attr(CK_FUNCTION_LIST* fn, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                              CK_ATTRIBUTE_TYPE type) {
    CK_ATTRIBUTE a{type, nullptr, 0};
    if (fn->C_GetAttributeValue(s, o, &a, 1) != CKR_OK ||
        a.ulValueLen == CK_UNAVAILABLE_INFORMATION)
        return std::nullopt;
    Bytes v(a.ulValueLen);
    a.pValue = v.data();
    if (fn->C_GetAttributeValue(s, o, &a, 1) != CKR_OK) return std::nullopt;
    v.resize(a.ulValueLen);
    return v;
}

std::optional<bool> get_bool(CK_FUNCTION_LIST* fn, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                             CK_ATTRIBUTE_TYPE type) {
    auto v = get_attr(fn, s, o, type);
    if (!v || v->size() != sizeof(CK_BBOOL)) return std::nullopt;
    return (*v)[0] != CK_FALSE;
}

Result<std::vector<CK_OBJECT_HANDLE>> find(CK_FUNCTION_LIST* fn, CK_SESSION_HANDLE s,
                                           std::vector<CK_ATTRIBUTE> tmpl) {
    if (CK_RV rv = fn->C_FindObjectsInit(s, tmpl.data(), tmpl.size()); rv != CKR_OK)
        return rv_fail("C_FindObjectsInit", rv);
    std::vector<CK_OBJECT_HANDLE> out;
    CK_OBJECT_HANDLE batch[32];
    CK_ULONG n = 0;
    CK_RV rv = CKR_OK;
    while ((rv = fn->C_FindObjects(s, batch, 32, &n)) == CKR_OK && n > 0)
        out.insert(out.end(), batch, batch + n);
    fn->C_FindObjectsFinal(s);
    if (rv != CKR_OK) return rv_fail("C_FindObjects", rv);
    return out;
}

// The search template of the URI's object=/id= (and class).
struct ObjectQuery {
    std::optional<std::string> label;
    std::optional<Bytes> id;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;

    std::vector<CK_ATTRIBUTE> tmpl(bool with_class = true) {
        std::vector<CK_ATTRIBUTE> t;
        if (with_class) t.push_back({CKA_CLASS, &cls, sizeof cls});
        if (label) t.push_back({CKA_LABEL, label->data(), label->size()});
        if (id) t.push_back({CKA_ID, id->data(), id->size()});
        return t;
    }
    std::string describe() const {
        std::string d;
        if (label) d += "object=" + *label;
        if (id)
            d += std::string(d.empty() ? "" : ";") +
                 "id=" + keystore::percent_encode(std::string(id->begin(), id->end()));
        return d;
    }
};

Result<ObjectQuery> object_query(const KeyUri& uri) {
    ObjectQuery q;
    q.label = uri.path_attr("object");
    if (auto id = uri.path_attr("id")) q.id = Bytes(id->begin(), id->end());
    if (auto type = uri.path_attr("type"); type && *type != "private" && *type != "secret-key")
        return fail(Errc::usage, "key URI",
                    "type=" + *type + " does not name a signing key (use type=private or omit it)");
    return q;
}

class Pkcs11Key final : public keystore::Key {
  public:
    Pkcs11Key(std::shared_ptr<Token> token, KeyUri uri, KeyAlgorithm alg, Bytes spki, Bytes id,
              bool always_authenticate)
        : token_(std::move(token)),
          uri_(std::move(uri)),
          alg_(alg),
          spki_(std::move(spki)),
          id_(std::move(id)),
          always_authenticate_(always_authenticate) {}

    KeyAlgorithm algorithm() const override { return alg_; }
    const Bytes& public_key_der() const override { return spki_; }
    const KeyUri& uri() const override { return uri_; }

    Result<Bytes> sign(std::span<const std::uint8_t> message) const override {
        const bool ec = keystore::is_ec(alg_);
        Bytes input =
            base::ossl::digest(alg_ == KeyAlgorithm::ec_p384 ? "SHA384" : "SHA256", message);
        if (!ec) input.insert(input.begin(), kSha256DigestInfo.begin(), kSha256DigestInfo.end());
        const base::log::TraceSpan trace("sign");
        const std::uint64_t seen = token_->generation();
        CK_RV rv = CKR_OK;
        auto sig = sign_once(message, input, &rv);
        if (!sig && !ec && !rsa_on_token_.load() && rv != CKR_OK && rv_errc(rv) == Errc::hardware &&
            token_->present()) {
            // tpm2-pkcs11 makes raw CKM_RSA_PKCS out of TPM2_RSA_Decrypt, which a sign-only key
            // may not do (CKR_GENERAL_ERROR); CKM_SHA256_RSA_PKCS is TPM2_Sign. The signature is
            // the same (PKCS#1 v1.5 is deterministic); only the hashing moves to the token.
            base::log::debug("pkcs11: " + rv_name(rv) +
                             " for CKM_RSA_PKCS; signing with CKM_SHA256_RSA_PKCS instead");
            rsa_on_token_.store(true);
            sig = sign_once(message, input, &rv);
        }
        // A token that lost its sessions (a network HSM reconnecting, a device removed and
        // reinserted) is recovered once, and the signature asked for again.
        if (!sig && rv != CKR_OK && token_->lost(rv)) {
            if (auto r = token_->recover(uri_, seen, sig.error()); !r)
                return std::unexpected(r.error());
            sig = sign_once(message, input, &rv);
        }
        return sig;
    }

    Result<std::vector<keystore::KeyProperty>> properties() const override {
        auto lease = token_->session();
        if (!lease) return std::unexpected(lease.error());
        auto handle = private_handle(lease->get());
        if (!handle) return std::unexpected(handle.error());
        auto* fn = token_->fn();
        std::vector<keystore::KeyProperty> out{
            {"backend", "pkcs11"},
            {"token", token_->label()},
            {"manufacturer", token_->manufacturer()},
            {"model", token_->model()},
            {"serial", token_->serial()},
            {"module", token_->module_path()},
        };
        auto flag = [&](const char* name, CK_ATTRIBUTE_TYPE t) {
            auto v = get_bool(fn, lease->get(), *handle, t);
            out.push_back({name, v ? (*v ? "true" : "false") : "unknown"});
        };
        flag("token-object", CKA_TOKEN);
        flag("private", CKA_PRIVATE);
        flag("sensitive", CKA_SENSITIVE);
        flag("always-sensitive", CKA_ALWAYS_SENSITIVE);
        flag("extractable", CKA_EXTRACTABLE);
        flag("never-extractable", CKA_NEVER_EXTRACTABLE);
        flag("local", CKA_LOCAL);
        flag("always-authenticate", CKA_ALWAYS_AUTHENTICATE);
        std::string usage;
        const std::pair<const char*, CK_ATTRIBUTE_TYPE> uses[] = {
            {"sign", CKA_SIGN},
            {"sign-recover", CKA_SIGN_RECOVER},
            {"decrypt", CKA_DECRYPT},
            {"unwrap", CKA_UNWRAP},
            {"derive", CKA_DERIVE}};
        for (auto [name, t] : uses)
            if (get_bool(fn, lease->get(), *handle, t).value_or(false))
                usage += std::string(usage.empty() ? "" : ",") + name;
        out.push_back({"usage", usage.empty() ? "none" : usage});
        out.push_back({"private-value-readable",
                       get_attr(fn, lease->get(), *handle, CKA_VALUE) ||
                               get_attr(fn, lease->get(), *handle, CKA_PRIVATE_EXPONENT)
                           ? "true"
                           : "false"});
        return out;
    }

  private:
    // One signature over the host-side digest (with the DigestInfo prefix for RSA; the
    // message itself when the token hashes), `rv` set to the CK_RV of a failed call for the
    // caller's recovery decision.
    Result<Bytes> sign_once(std::span<const std::uint8_t> message, const Bytes& digest_info,
                            CK_RV* rv_out) const {
        const bool ec = keystore::is_ec(alg_);
        const bool on_token = !ec && rsa_on_token_.load();
        CK_MECHANISM mech{ec         ? CKM_ECDSA
                          : on_token ? CKM_SHA256_RSA_PKCS
                                     : CKM_RSA_PKCS,
                          nullptr, 0};
        const std::span<const std::uint8_t> input =
            on_token ? message : std::span<const std::uint8_t>(digest_info);
        const std::size_t want =
            ec ? 2 * keystore::ec_field_size(alg_) : keystore::rsa_bits(alg_) / 8;
        auto lease = token_->session();
        if (!lease) {
            *rv_out = static_cast<CK_RV>(lease.error().native.value_or(CKR_OK));
            return std::unexpected(lease.error());
        }
        auto handle = private_handle(lease->get());
        if (!handle) {
            lease->broken();
            *rv_out = static_cast<CK_RV>(handle.error().native.value_or(CKR_OK));
            return std::unexpected(handle.error());
        }
        auto* fn = token_->fn();
        if (CK_RV rv = fn->C_SignInit(lease->get(), &mech, *handle); rv != CKR_OK) {
            lease->broken();
            *rv_out = rv;
            return token_->call_failed("C_SignInit", rv, uri_.to_string());
        }
        if (always_authenticate_) {
            if (auto l = token_->context_login(lease->get(), uri_); !l) {
                lease->broken();  // the session holds an operation that was never finished
                return std::unexpected(l.error());
            }
        }
        Bytes sig(want);
        CK_ULONG len = sig.size();
        if (CK_RV rv = fn->C_Sign(lease->get(), const_cast<std::uint8_t*>(input.data()),
                                  input.size(), sig.data(), &len);
            rv != CKR_OK) {
            lease->broken();
            *rv_out = rv;
            return token_->call_failed("C_Sign", rv, uri_.to_string());
        }
        // CKM_ECDSA already gives r||s at the order's width (PKCS#11 v2.40 §2.3.1).
        if (len != want)
            return fail(Errc::hardware, "C_Sign",
                        "token returned a " + std::to_string(len) + "-byte signature, expected " +
                            std::to_string(want));
        return sig;
    }

    // Object handles are looked up once per token generation: they stay valid across
    // sessions of one application, but a token may renumber after a reconnect, and a
    // lookup by CKA_ID costs one find on the token.
    Result<CK_OBJECT_HANDLE> private_handle(CK_SESSION_HANDLE s) const {
        const std::uint64_t generation = token_->generation();
        {
            std::lock_guard lock(mutex_);
            if (handle_ != CK_INVALID_HANDLE && handle_generation_ == generation) return handle_;
        }
        ObjectQuery q;
        q.id = id_;
        auto found = find(token_->fn(), s, q.tmpl());
        if (!found) return std::unexpected(found.error());
        if (found->empty())
            return fail(Errc::not_found, "pkcs11", "the key " + uri_.to_string() + " is gone");
        std::lock_guard lock(mutex_);
        handle_ = found->front();
        handle_generation_ = generation;
        return handle_;
    }

    std::shared_ptr<Token> token_;
    KeyUri uri_;
    KeyAlgorithm alg_;
    Bytes spki_;
    Bytes id_;
    bool always_authenticate_;
    mutable std::atomic<bool> rsa_on_token_{false};  // CKM_SHA256_RSA_PKCS: see sign()
    mutable std::mutex mutex_;
    mutable CK_OBJECT_HANDLE handle_ = CK_INVALID_HANDLE;
    mutable std::uint64_t handle_generation_ = 0;
};

// SubjectPublicKeyInfo from a public key object (EC) or the private key's public parts (RSA).
Result<std::pair<KeyAlgorithm, Bytes>> public_key_of(CK_FUNCTION_LIST* fn, CK_SESSION_HANDLE s,
                                                     CK_OBJECT_HANDLE priv, const Bytes& id) {
    auto type = get_attr(fn, s, priv, CKA_KEY_TYPE);
    if (!type || type->size() != sizeof(CK_KEY_TYPE))
        return fail(Errc::hardware, "C_GetAttributeValue", "cannot read the key type");
    CK_KEY_TYPE kt = 0;
    std::memcpy(&kt, type->data(), sizeof kt);
    std::unique_ptr<OSSL_PARAM_BLD, base::ossl::Deleter<OSSL_PARAM_BLD_free>> bld(
        OSSL_PARAM_BLD_new());
    KeyAlgorithm alg{};
    const char* kind = nullptr;
    base::ossl::Bn n;
    base::ossl::Bn e;
    // cppcheck-suppress variableScope ; OSSL_PARAM_BLD_to_param() below reads it, after the if
    Bytes point;
    if (kt == CKK_EC) {
        auto params = get_attr(fn, s, priv, CKA_EC_PARAMS);
        if (params == kP256Oid)
            alg = KeyAlgorithm::ec_p256;
        else if (params == kP384Oid)
            alg = KeyAlgorithm::ec_p384;
        else
            return fail(Errc::unsupported, "pkcs11", "EC key on a curve other than P-256/P-384");
        // The point lives on the public key object (SoftHSM's private EC key has none).
        CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
        std::vector<CK_ATTRIBUTE> t{{CKA_CLASS, &cls, sizeof cls},
                                    {CKA_ID, const_cast<std::uint8_t*>(id.data()), id.size()}};
        auto pubs = find(fn, s, t);
        if (!pubs) return std::unexpected(pubs.error());
        std::optional<Bytes> raw;
        if (!pubs->empty()) raw = get_attr(fn, s, pubs->front(), CKA_EC_POINT);
        if (!raw) raw = get_attr(fn, s, priv, CKA_EC_POINT);
        if (!raw)
            return fail(Errc::not_found, "pkcs11",
                        "no public key object with the private key's CKA_ID");
        point = *raw;
        // CKA_EC_POINT is DER OCTET STRING per the spec; some tokens give the bare point.
        const std::size_t plen = 1 + 2 * keystore::ec_field_size(alg);
        if (point.size() == plen + 2 && point[0] == 0x04 && point[1] == plen)
            point.erase(point.begin(), point.begin() + 2);
        else if (point.size() == plen + 3 && point[0] == 0x04 && point[1] == 0x81)
            point.erase(point.begin(), point.begin() + 3);
        if (point.size() != plen) return fail(Errc::hardware, "pkcs11", "malformed CKA_EC_POINT");
        kind = "EC";
        OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME,
                                        alg == KeyAlgorithm::ec_p256 ? "P-256" : "P-384", 0);
        OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                         point.size());
    } else if (kt == CKK_RSA) {
        auto mod = get_attr(fn, s, priv, CKA_MODULUS);
        auto exp = get_attr(fn, s, priv, CKA_PUBLIC_EXPONENT);
        if (!mod || !exp) return fail(Errc::hardware, "pkcs11", "cannot read the RSA public key");
        n.reset(BN_bin2bn(mod->data(), static_cast<int>(mod->size()), nullptr));
        e.reset(BN_bin2bn(exp->data(), static_cast<int>(exp->size()), nullptr));
        switch (BN_num_bits(n.get())) {
            case 2048:
                alg = KeyAlgorithm::rsa_2048;
                break;
            case 3072:
                alg = KeyAlgorithm::rsa_3072;
                break;
            case 4096:
                alg = KeyAlgorithm::rsa_4096;
                break;
            default:
                return fail(Errc::unsupported, "pkcs11", "RSA key of an unsupported size");
        }
        kind = "RSA";
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, n.get());
        OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, e.get());
    } else {
        return fail(Errc::unsupported, "pkcs11", "only EC and RSA keys can sign ACME requests");
    }
    std::unique_ptr<OSSL_PARAM, base::ossl::Deleter<OSSL_PARAM_free>> params(
        OSSL_PARAM_BLD_to_param(bld.get()));
    base::ossl::PKeyCtx ctx(EVP_PKEY_CTX_new_from_name(nullptr, kind, "provider=default"));
    EVP_PKEY* raw_key = nullptr;
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx.get()) != 1 ||
        EVP_PKEY_fromdata(ctx.get(), &raw_key, EVP_PKEY_PUBLIC_KEY, params.get()) != 1)
        return base::ossl::fail_ossl("EVP_PKEY_fromdata");
    base::ossl::PKey pkey(raw_key);
    auto spki = base::ossl::spki_of(pkey.get());
    if (!spki) return std::unexpected(spki.error());
    return std::pair{alg, std::move(*spki)};
}

class Pkcs11MacKey final : public keystore::MacKey {
  public:
    Pkcs11MacKey(std::shared_ptr<Token> token, Bytes id)
        : token_(std::move(token)), id_(std::move(id)) {}
    Result<Bytes> hmac_sha256(std::span<const std::uint8_t> data) const override {
        auto lease = token_->session();
        if (!lease) return std::unexpected(lease.error());
        auto* fn = token_->fn();
        ObjectQuery q{std::nullopt, id_, CKO_SECRET_KEY};
        auto found = find(fn, lease->get(), q.tmpl());
        if (!found) return std::unexpected(found.error());
        if (found->empty()) return fail(Errc::not_found, "pkcs11", "the HMAC key is gone");
        CK_MECHANISM mech{CKM_SHA256_HMAC, nullptr, 0};
        if (CK_RV rv = fn->C_SignInit(lease->get(), &mech, found->front()); rv != CKR_OK) {
            lease->broken();
            return rv_fail("C_SignInit", rv, "HMAC-SHA256");
        }
        Bytes mac(32);
        CK_ULONG len = mac.size();
        if (CK_RV rv = fn->C_Sign(lease->get(), const_cast<std::uint8_t*>(data.data()), data.size(),
                                  mac.data(), &len);
            rv != CKR_OK) {
            lease->broken();
            return rv_fail("C_Sign", rv, "HMAC-SHA256");
        }
        mac.resize(len);
        return mac;
    }

  private:
    std::shared_ptr<Token> token_;
    Bytes id_;
};

class Pkcs11Keystore final : public keystore::Keystore, public keystore::MacKeystore {
  public:
    Result<KeyUri> import_hmac(const KeyUri& uri, const base::Secret& key) override {
        auto token = token_for(uri);
        if (!token) return std::unexpected(token.error());
        auto label = uri.path_attr("object");
        if (!label) return fail(Errc::usage, "key URI", "name the HMAC key with object=LABEL");
        if (auto l = (*token)->login(uri); !l) return std::unexpected(l.error());
        Bytes id(16);
        RAND_bytes(id.data(), 16);
        if (auto given = uri.path_attr("id")) id.assign(given->begin(), given->end());
        auto lease = (*token)->session();
        if (!lease) return std::unexpected(lease.error());
        auto* fn = (*token)->fn();
        for (auto t : {ObjectQuery{label, std::nullopt}, ObjectQuery{std::nullopt, id}}) {
            auto found = find(fn, lease->get(), t.tmpl(false));
            if (!found) return std::unexpected(found.error());
            if (!found->empty())
                return fail(Errc::exists, "pkcs11",
                            "token '" + (*token)->label() + "' already holds an object with " +
                                t.describe());
        }
        CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
        CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
        std::string lbl = *label;
        std::vector<CK_ATTRIBUTE> tmpl{
            {CKA_CLASS, &cls, sizeof cls},
            {CKA_KEY_TYPE, &kt, sizeof kt},
            {CKA_TOKEN, &kTrue, 1},
            {CKA_PRIVATE, &kTrue, 1},
            {CKA_SENSITIVE, &kTrue, 1},
            {CKA_EXTRACTABLE, &kFalse, 1},
            {CKA_SIGN, &kTrue, 1},
            {CKA_VERIFY, &kFalse, 1},
            {CKA_ENCRYPT, &kFalse, 1},
            {CKA_DECRYPT, &kFalse, 1},
            {CKA_WRAP, &kFalse, 1},
            {CKA_UNWRAP, &kFalse, 1},
            {CKA_DERIVE, &kFalse, 1},
            {CKA_LABEL, lbl.data(), lbl.size()},
            {CKA_ID, id.data(), id.size()},
            {CKA_VALUE, const_cast<char*>(key.reveal().data()), key.reveal().size()}};
        CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
        if (CK_RV rv = fn->C_CreateObject(lease->get(), tmpl.data(), tmpl.size(), &h); rv != CKR_OK)
            return rv_fail("C_CreateObject", rv, "HMAC key on token '" + (*token)->label() + "'");
        KeyUri out = uri;
        out.set_path_attr("token", (*token)->label());
        out.set_path_attr("id", std::string(id.begin(), id.end()));
        out.set_path_attr("type", "secret-key");
        return out;
    }

    Result<std::unique_ptr<keystore::MacKey>> open_mac(const KeyUri& uri) override {
        auto token = token_for(uri);
        if (!token) return std::unexpected(token.error());
        ObjectQuery q{uri.path_attr("object"), std::nullopt, CKO_SECRET_KEY};
        if (auto id = uri.path_attr("id")) q.id = Bytes(id->begin(), id->end());
        if (!q.label && !q.id)
            return fail(Errc::usage, "key URI", "name the HMAC key with object=LABEL");
        if (auto l = (*token)->login(uri); !l) return std::unexpected(l.error());
        auto lease = (*token)->session();
        if (!lease) return std::unexpected(lease.error());
        auto found = find((*token)->fn(), lease->get(), q.tmpl());
        if (!found) return std::unexpected(found.error());
        if (found->size() != 1)
            return fail(found->empty() ? Errc::not_found : Errc::usage, "pkcs11",
                        found->empty() ? "no secret key with " + q.describe() + " on token '" +
                                             (*token)->label() + "'"
                                       : "several secret keys match " + q.describe());
        auto id = get_attr((*token)->fn(), lease->get(), found->front(), CKA_ID).value_or(Bytes{});
        return std::unique_ptr<keystore::MacKey>(
            std::make_unique<Pkcs11MacKey>(*token, std::move(id)));
    }

    Result<KeyPtr> generate(const KeyUri& uri, KeyAlgorithm alg) override {
        return generate(uri, alg, keystore::KeyOptions{});
    }

    Result<KeyPtr> generate(const KeyUri& uri, KeyAlgorithm alg,
                            const keystore::KeyOptions& options) override {
        auto token = token_for(uri);
        if (!token) return std::unexpected(token.error());
        auto q = object_query(uri);
        if (!q) return std::unexpected(q.error());
        if (!q->label)
            return fail(Errc::usage, "key URI",
                        "name the new key with object=LABEL (and optionally id=...)");
        if (auto l = (*token)->login(uri); !l) return std::unexpected(l.error());
        if (!q->id) {
            q->id = Bytes(16);
            RAND_bytes(q->id->data(), 16);
        }
        auto lease = (*token)->session();
        if (!lease) return std::unexpected(lease.error());
        auto* fn = (*token)->fn();
        const CK_SESSION_HANDLE s = lease->get();

        // Refuse to shadow any object with the same label or id, of any class.
        for (auto t : {ObjectQuery{q->label, std::nullopt}, ObjectQuery{std::nullopt, q->id}}) {
            auto found = find(fn, s, t.tmpl(false));
            if (!found) return std::unexpected(found.error());
            if (!found->empty())
                return fail(Errc::exists, "pkcs11",
                            "token '" + (*token)->label() + "' already holds an object with " +
                                t.describe() + "; choose another object= label or delete it");
        }

        CK_MECHANISM mech{keystore::is_ec(alg) ? CKM_EC_KEY_PAIR_GEN : CKM_RSA_PKCS_KEY_PAIR_GEN,
                          nullptr, 0};
        const Bytes& oid = alg == KeyAlgorithm::ec_p384 ? kP384Oid : kP256Oid;
        CK_ULONG bits = keystore::rsa_bits(alg);
        std::uint8_t exponent[] = {0x01, 0x00, 0x01};
        std::string label = *q->label;
        Bytes id = *q->id;
        std::vector<CK_ATTRIBUTE> pub{{CKA_TOKEN, &kTrue, 1},
                                      {CKA_PRIVATE, &kFalse, 1},
                                      {CKA_LABEL, label.data(), label.size()},
                                      {CKA_ID, id.data(), id.size()}};
        if (keystore::is_ec(alg)) {
            pub.push_back({CKA_EC_PARAMS, const_cast<std::uint8_t*>(oid.data()), oid.size()});
        } else {
            pub.push_back({CKA_MODULUS_BITS, &bits, sizeof bits});
            pub.push_back({CKA_PUBLIC_EXPONENT, exponent, sizeof exponent});
        }
        // SECURITY.md rule 10: every attribute explicit; SoftHSM's defaults are unsafe.
        std::vector<CK_ATTRIBUTE> priv{
            {CKA_TOKEN, &kTrue, 1},        {CKA_PRIVATE, &kTrue, 1},
            {CKA_SENSITIVE, &kTrue, 1},    {CKA_EXTRACTABLE, &kFalse, 1},
            {CKA_SIGN, &kTrue, 1},         {CKA_SIGN_RECOVER, &kFalse, 1},
            {CKA_DECRYPT, &kFalse, 1},     {CKA_UNWRAP, &kFalse, 1},
            {CKA_DERIVE, &kFalse, 1},      {CKA_LABEL, label.data(), label.size()},
            {CKA_ID, id.data(), id.size()}};
        if (options.always_authenticate) priv.push_back({CKA_ALWAYS_AUTHENTICATE, &kTrue, 1});
        // The public half's usage, stated too; see the retry below for tokens that refuse it.
        std::vector<CK_ATTRIBUTE> pub_usage = pub;
        pub_usage.insert(pub_usage.end(), {{CKA_VERIFY, &kTrue, 1},
                                           {CKA_ENCRYPT, &kFalse, 1},
                                           {CKA_WRAP, &kFalse, 1},
                                           {CKA_DERIVE, &kFalse, 1}});
        CK_OBJECT_HANDLE hpub = CK_INVALID_HANDLE;
        CK_OBJECT_HANDLE hpriv = CK_INVALID_HANDLE;
        CK_RV rv = fn->C_GenerateKeyPair(s, &mech, pub_usage.data(), pub_usage.size(), priv.data(),
                                         priv.size(), &hpub, &hpriv);
        if (rv == CKR_GENERAL_ERROR || rv == CKR_TEMPLATE_INCONSISTENT ||
            rv == CKR_ATTRIBUTE_VALUE_INVALID || rv == CKR_ATTRIBUTE_TYPE_INVALID) {
            // tpm2-pkcs11 1.9 derives the public half's usage from the TPM object it makes from
            // the private template, and refuses a public template that states it
            // (CKR_GENERAL_ERROR, "attr mismatch"). The public half is asked for again without
            // usage; the private half's template is unchanged and checked below.
            base::log::debug("pkcs11: token '" + (*token)->label() +
                             "' refused the public "
                             "key's usage attributes (" +
                             rv_name(rv) +
                             "); generating with its own defaults for the public half");
            rv = fn->C_GenerateKeyPair(s, &mech, pub.data(), pub.size(), priv.data(), priv.size(),
                                       &hpub, &hpriv);
        }
        if (rv != CKR_OK)
            return rv_fail("C_GenerateKeyPair", rv,
                           std::string(keystore::algorithm_name(alg)) + " on token '" +
                               (*token)->label() + "'");
        // Trust, but verify: the token must say the key was born sensitive, unexportable and
        // sign-only, and asks for the PIN before each signature when that was asked for.
        bool kept = !get_bool(fn, s, hpriv, CKA_DECRYPT).value_or(false) &&
                    !get_bool(fn, s, hpriv, CKA_UNWRAP).value_or(false);
        for (auto t : {CKA_ALWAYS_SENSITIVE, CKA_NEVER_EXTRACTABLE, CKA_SENSITIVE})
            kept = kept && get_bool(fn, s, hpriv, t).value_or(false);
        if (!kept) {
            fn->C_DestroyObject(s, hpriv);
            fn->C_DestroyObject(s, hpub);
            return fail(Errc::hardware, "C_GenerateKeyPair",
                        "the token did not keep the new key sensitive, non-extractable and "
                        "sign-only; the key was destroyed");
        }
        if (options.always_authenticate &&
            !get_bool(fn, s, hpriv, CKA_ALWAYS_AUTHENTICATE).value_or(false)) {
            fn->C_DestroyObject(s, hpriv);
            fn->C_DestroyObject(s, hpub);
            return fail(Errc::unsupported, "C_GenerateKeyPair",
                        "token '" + (*token)->label() +
                            "' did not keep CKA_ALWAYS_AUTHENTICATE on the new key; the key was "
                            "destroyed");
        }
        KeyUri full = canonical_uri(uri, **token, label, id);
        auto pk = public_key_of(fn, s, hpriv, id);
        if (!pk) return std::unexpected(pk.error());
        return std::make_shared<Pkcs11Key>(*token, full, pk->first, std::move(pk->second), id,
                                           options.always_authenticate);
    }

    Result<KeyPtr> open(const KeyUri& uri) override {
        const base::log::TraceSpan trace("pkcs11 open key");
        auto token = token_for(uri);
        if (!token) return std::unexpected(token.error());
        auto q = object_query(uri);
        if (!q) return std::unexpected(q.error());
        if (!q->label && !q->id)
            return fail(Errc::usage, "key URI", "name the key with object=LABEL and/or id=...");
        if (auto l = (*token)->login(uri); !l) return std::unexpected(l.error());
        auto lease = (*token)->session();
        if (!lease) return std::unexpected(lease.error());
        auto* fn = (*token)->fn();
        auto found = find(fn, lease->get(), q->tmpl());
        if (!found) return std::unexpected(found.error());
        if (found->empty())
            return fail(
                Errc::not_found, "pkcs11",
                "no private key with " + q->describe() + " on token '" + (*token)->label() + "'");
        if (found->size() > 1)
            return fail(Errc::usage, "pkcs11",
                        std::to_string(found->size()) + " private keys match " + q->describe() +
                            "; add id= to pick one");
        auto id = get_attr(fn, lease->get(), found->front(), CKA_ID).value_or(Bytes{});
        auto label = get_attr(fn, lease->get(), found->front(), CKA_LABEL).value_or(Bytes{});
        auto pk = public_key_of(fn, lease->get(), found->front(), id);
        if (!pk) return std::unexpected(pk.error());
        KeyUri full = canonical_uri(uri, **token, std::string(label.begin(), label.end()), id);
        const bool always_auth =
            get_bool(fn, lease->get(), found->front(), CKA_ALWAYS_AUTHENTICATE).value_or(false);
        return std::make_shared<Pkcs11Key>(*token, full, pk->first, std::move(pk->second), id,
                                           always_auth);
    }

    Result<std::vector<KeyInfo>> list(const KeyUri& uri) override {
        auto token = token_for(uri);
        if (!token) return std::unexpected(token.error());
        if (auto l = (*token)->login(uri); !l) return std::unexpected(l.error());
        auto lease = (*token)->session();
        if (!lease) return std::unexpected(lease.error());
        auto* fn = (*token)->fn();
        auto q = object_query(uri);
        if (!q) return std::unexpected(q.error());
        auto found = find(fn, lease->get(), q->tmpl());
        if (!found) return std::unexpected(found.error());
        std::vector<KeyInfo> out;
        for (auto h : *found) {
            auto id = get_attr(fn, lease->get(), h, CKA_ID).value_or(Bytes{});
            auto label = get_attr(fn, lease->get(), h, CKA_LABEL).value_or(Bytes{});
            auto pk = public_key_of(fn, lease->get(), h, id);
            if (!pk) continue;  // not a key we can sign ACME requests with
            out.push_back({canonical_uri(uri, **token, std::string(label.begin(), label.end()), id),
                           pk->first});
        }
        return out;
    }

    Result<void> destroy(const KeyUri& uri) override {
        auto key = open(uri);
        if (!key) return std::unexpected(key.error());
        auto token = token_for(uri);
        auto lease = (*token)->session();
        if (!lease) return std::unexpected(lease.error());
        auto* fn = (*token)->fn();
        const auto id = *(*key)->uri().path_attr("id");
        ObjectQuery q{std::nullopt, Bytes(id.begin(), id.end())};
        for (CK_OBJECT_CLASS cls : {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY}) {
            q.cls = cls;
            auto found = find(fn, lease->get(), q.tmpl());
            if (!found) return std::unexpected(found.error());
            for (auto h : *found)
                if (CK_RV rv = fn->C_DestroyObject(lease->get(), h); rv != CKR_OK)
                    return rv_fail("C_DestroyObject", rv);
        }
        return {};
    }

    std::string description() const override {
        return "pkcs11:token=LABEL;object=NAME?module-path=SO&pin-source=file:PIN  "
               "key on a PKCS#11 token (RFC 7512)";
    }

  private:
    static KeyUri canonical_uri(const KeyUri& given, const Token& token, std::string label,
                                const Bytes& id) {
        KeyUri out = given;
        out.set_path_attr("token", token.label());
        if (!label.empty()) out.set_path_attr("object", std::move(label));
        out.set_path_attr("id", std::string(id.begin(), id.end()));
        out.set_path_attr("type", "private");
        return out;
    }

    static Result<std::string> module_of(const KeyUri& uri) {
        if (auto path = uri.query_attr("module-path")) return *path;
        if (auto name = uri.query_attr("module-name")) {
            for (std::string cand : {std::string(P11_KIT_MODULE_DIR) + "/" + *name + ".so",
                                     std::string(P11_KIT_MODULE_DIR) + "/lib" + *name + ".so"})
                if (std::filesystem::exists(cand)) return cand;
            return *name + ".so";  // let dlopen search
        }
        return default_module_path();
    }

    Result<std::shared_ptr<Token>> token_for(const KeyUri& uri) {
        auto path = module_of(uri);
        if (!path) return std::unexpected(path.error());
        auto module = Module::get(*path);
        if (!module) return std::unexpected(module.error());
        auto* fn = (*module)->fn();

        CK_ULONG count = 0;
        if (CK_RV rv = fn->C_GetSlotList(CK_TRUE, nullptr, &count); rv != CKR_OK)
            return rv_fail("C_GetSlotList", rv);
        std::vector<CK_SLOT_ID> slots(count);
        if (CK_RV rv = fn->C_GetSlotList(CK_TRUE, slots.data(), &count); rv != CKR_OK)
            return rv_fail("C_GetSlotList", rv);
        slots.resize(count);

        std::string present;
        for (CK_SLOT_ID slot : slots) {
            CK_TOKEN_INFO info{};
            if (fn->C_GetTokenInfo(slot, &info) != CKR_OK) continue;
            CK_SLOT_INFO sinfo{};
            fn->C_GetSlotInfo(slot, &sinfo);
            const std::string label = padded(info.label, sizeof info.label);
            if (!(info.flags & CKF_TOKEN_INITIALIZED)) continue;
            present += (present.empty() ? "'" : ", '") + label + "' (serial " +
                       padded(info.serialNumber, sizeof info.serialNumber) + ", slot-id " +
                       std::to_string(slot) + ")";
            auto is = [&](const char* attr, const std::string& value) {
                auto want = uri.path_attr(attr);
                return !want || *want == value;
            };
            if (!is("token", label) ||
                !is("serial", padded(info.serialNumber, sizeof info.serialNumber)) ||
                !is("manufacturer", padded(info.manufacturerID, sizeof info.manufacturerID)) ||
                !is("model", padded(info.model, sizeof info.model)) ||
                !is("slot-id", std::to_string(slot)) ||
                !is("slot-description",
                    padded(sinfo.slotDescription, sizeof sinfo.slotDescription)) ||
                !is("slot-manufacturer", padded(sinfo.manufacturerID, sizeof sinfo.manufacturerID)))
                continue;
            std::lock_guard lock(mutex_);
            auto& cached = tokens_[{*path, slot}];
            if (!cached) cached = std::make_shared<Token>(*module, slot, info);
            return cached;
        }
        std::string wanted;
        for (const auto& [n, v] : uri.path_attrs())
            if (n != "object" && n != "id" && n != "type")
                wanted.append(wanted.empty() ? "" : ";").append(n).append("=").append(v);
        return fail(Errc::token_absent, "pkcs11",
                    "no token matches '" + (wanted.empty() ? std::string("any") : wanted) +
                        "' in " + *path +
                        "; tokens present: " + (present.empty() ? std::string("none") : present));
    }

    std::mutex mutex_;
    std::map<std::pair<std::string, CK_SLOT_ID>, std::shared_ptr<Token>> tokens_;
};

}  // namespace

std::unique_ptr<keystore::Keystore> make_keystore() {
    return std::make_unique<Pkcs11Keystore>();
}

}  // namespace pkcs11
