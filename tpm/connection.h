// Internal to the tpm backend (not a public header: it includes tpm2-tss). One ESAPI
// connection to a TPM, the objects it owns, and the error mapping shared by the backend.
#pragma once

#include "base/bytes.h"
#include "base/error.h"
#include "tpm/key_file.h"

#include <tss2/tss2_esys.h>

#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace tpm {

// Who the authorization of a failed command belonged to: a key's auth value maps
// TPM_RC_AUTH_FAIL / BAD_AUTH to Errc::pin_incorrect; a hierarchy's (owner) auth does not,
// because acme-agent never holds one (an owner password on the TPM is a setup problem).
enum class AuthOf { none, key, owner, endorsement };

// True for TPM_RC_HANDLE-like answers meaning "nothing at that handle".
bool is_no_object(TSS2_RC rc);

// The ESAPI context as owners of handles see it: null once the connection was dropped, and
// a new epoch after a reconnect, so a handle from a dead connection is never used.
struct EsysRef {
    ESYS_CONTEXT* esys = nullptr;
    std::uint64_t epoch = 0;
};

// Owner of one ESYS_TR: a transient object or a session is flushed from the TPM when the
// owner goes, a persistent object only has its ESAPI metadata closed. Move-only; lives in
// Connection or in a local under a Connection::Guard, so the lock is held when it goes.
class Object {
  public:
    enum class Kind { transient, persistent, session };

    Object() = default;
    Object(const EsysRef& ref, ESYS_TR tr, Kind kind)
        : ref_(&ref), epoch_(ref.epoch), tr_(tr), kind_(kind) {}
    Object(Object&& o) noexcept : ref_(o.ref_), epoch_(o.epoch_), tr_(o.tr_), kind_(o.kind_) {
        o.tr_ = ESYS_TR_NONE;
    }
    Object& operator=(Object&& o) noexcept {
        if (this != &o) {
            reset();
            ref_ = o.ref_;
            epoch_ = o.epoch_;
            tr_ = o.tr_;
            kind_ = o.kind_;
            o.tr_ = ESYS_TR_NONE;
        }
        return *this;
    }
    Object(const Object&) = delete;
    Object& operator=(const Object&) = delete;
    ~Object() { reset(); }

    [[nodiscard]] ESYS_TR get() const { return tr_; }
    [[nodiscard]] Kind kind() const { return kind_; }
    explicit operator bool() const { return tr_ != ESYS_TR_NONE; }
    void reset() noexcept;

  private:
    const EsysRef* ref_ = nullptr;
    std::uint64_t epoch_ = 0;
    ESYS_TR tr_ = ESYS_TR_NONE;
    Kind kind_ = Kind::transient;
};

// What the TPM says about itself (TPM2_GetCapability, read once per connection).
struct TpmInfo {
    std::uint32_t manufacturer = 0;  // TPM_PT_MANUFACTURER, e.g. 0x49424D00 "IBM" (swtpm)
    std::uint32_t firmware1 = 0, firmware2 = 0;
    std::uint32_t transient_min = 3;  // TPM_PT_HR_TRANSIENT_MIN: object slots guaranteed
    [[nodiscard]] std::string manufacturer_text() const;
};

// One ESAPI context over one TCTI, created on first use and shared by every Key of a
// Keystore. All TPM traffic runs under one mutex: lock() returns a Guard, and every call
// below takes it. A TCTI failure (the TPM went away) drops the connection; the next
// lock() reconnects and keys reload themselves.
class Connection {
  public:
    explicit Connection(std::string tcti) : tcti_(std::move(tcti)) {}
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    [[nodiscard]] const std::string& tcti() const { return tcti_; }

    class Guard {
      public:
        // Null after a TCTI failure dropped the connection (ESAPI calls then fail cleanly).
        [[nodiscard]] ESYS_CONTEXT* esys() const { return conn_->ref_.esys; }
        [[nodiscard]] const EsysRef& ref() const { return conn_->ref_; }
        [[nodiscard]] Connection& conn() const { return *conn_; }

        // Every failed ESAPI call ends here: records the failure (a TCTI-layer error means
        // the TPM is gone, so the connection is dropped, without TPM commands, and the next
        // lock() reconnects) and returns the error for it: `where` names the call
        // ("Esys_Sign"), the message holds `what` and Tss2_RC_Decode(rc), native the TSS2_RC;
        // `auth` says whose authorization a TPM_RC_AUTH_FAIL is about.
        [[nodiscard]] base::Error failed(std::string_view where, TSS2_RC rc,
                                         std::string_view what = {}, AuthOf auth = AuthOf::none);

      private:
        friend class Connection;
        Guard(Connection* c, std::unique_lock<std::mutex> lock)
            : conn_(c), lock_(std::move(lock)) {}
        Connection* conn_;
        std::unique_lock<std::mutex> lock_;
    };

    // Locks and connects if needed: Errc::module_load names the TCTI and what to check.
    base::Result<Guard> lock();

    const TpmInfo& info(Guard&) const { return info_; }

    // The parent for keys: the persistent SRK at 0x81000001 when it is a storage key,
    // else a transient primary from the default template (flushed when the Parent goes).
    struct Parent {
        std::uint32_t handle = kOwnerParent;  // what a key file records
        Object owned;  // the transient primary (flushed) or a persistent TR (closed)
        ESYS_TR tr = ESYS_TR_NONE;
    };
    // `handle` selects which parent: kOwnerParent (transient primary), a 0x81.. handle,
    // or 0 for "the persistent SRK if there is one, else the transient primary".
    base::Result<Parent> parent(Guard& g, std::uint32_t handle);

    // The owner hierarchy's authorization value, for a TPM provisioned with one
    // (tpm2_changeauth -c owner): creating the storage primary and making a key persistent
    // need it. Kept for the connection's life (it is the TPM's, not a key's); use_owner_auth()
    // hands it to ESAPI before each command that authorizes with the owner hierarchy.
    void set_owner_auth(const Guard& g, base::Secret auth);
    // TPM2_PT_LOCKOUT_INTERVAL: seconds until the TPM forgives one failed authorization
    // (and so, in lockout, until the next try is allowed); nullopt if it will not say.
    static std::optional<std::uint32_t> lockout_interval(const Guard& g);
    // Errc::usage, before any try, when the TPM has an owner password and none was given.
    base::Result<void> use_owner_auth(Guard& g);
    // The same for the endorsement hierarchy (?endorsement-auth-source=file:PATH), which
    // the attestation key is created under (tpm/attest.h).
    void set_endorsement_auth(const Guard& g, base::Secret auth);
    base::Result<void> use_endorsement_auth(Guard& g);

    // A salted, unbound HMAC session with AES-128-CFB parameter encryption (decrypt: the
    // first command parameter travels encrypted), salted with the SRK (or `salt`, a loaded
    // storage key); started on first use and kept; drop_session() after any failure that
    // used it.
    base::Result<ESYS_TR> hmac_session(Guard& g, ESYS_TR salt = ESYS_TR_NONE);
    void drop_session(Guard& g);

    // Resident transient keys, least recently used first. A key asks for its ESYS_TR with
    // resident(); the cache evicts (flushes) the least recently used key when loading one
    // more would leave too few object slots (swtpm without a resource manager has 3, and a
    // load needs the key plus a transient SRK).
    using Loader = std::function<base::Result<Object>(Guard&)>;
    base::Result<ESYS_TR> resident(Guard& g, std::uint64_t key_id, const Loader& load);
    void release(std::uint64_t key_id);  // takes the lock itself
    void evict(Guard& g, std::uint64_t key_id);
    // Frees object slots so that `needed` more transient objects fit.
    void make_room(Guard& g, std::size_t needed);
    [[nodiscard]] static std::uint64_t new_key_id();

  private:
    base::Result<void> connect();
    // Guard::failed(): after a TCTI-layer error, drops the connection.
    void note_failure(TSS2_RC rc);
    void disconnect(bool flush) noexcept;

    std::string tcti_;
    std::mutex mutex_;
    TSS2_TCTI_CONTEXT* tcti_ctx_ = nullptr;
    EsysRef ref_;
    TpmInfo info_;
    bool resource_managed_ = false;  // tpmrm / tabrmd virtualise the object slots
    std::optional<bool> srk_persistent_;
    Object srk_tr_;   // ESAPI metadata of the persistent SRK (no TPM slot)
    Object session_;  // the salted HMAC session
    // One hierarchy's password as given, and whether the TPM says it has one (asked once).
    struct HierarchyAuth {
        base::Secret value;
        std::optional<bool> set;
    };
    static base::Result<void> use_auth(Guard& g, ESYS_TR hierarchy, HierarchyAuth& auth);
    HierarchyAuth owner_auth_;
    HierarchyAuth endorsement_auth_;
    struct Entry {
        std::uint64_t key_id;
        Object object;
    };
    std::list<Entry> resident_;  // front = least recently used
};

}  // namespace tpm
