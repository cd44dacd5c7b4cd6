#include "tpm/connection.h"

#include "base/bytes.h"
#include "base/log.h"
#include "tpm/templates.h"

#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include <openssl/crypto.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>

namespace tpm {

using base::Errc;
using base::Result;

namespace {

// The TPM's own response code without the handle/session/parameter number of format 1.
TPM2_RC tpm_base(TSS2_RC rc) {
    const auto layer = rc & TSS2_RC_LAYER_MASK;
    if (layer != TSS2_TPM_RC_LAYER && layer != TSS2_RESMGR_TPM_RC_LAYER) return 0;
    const TPM2_RC r = rc & 0xffff;
    if (r & TPM2_RC_FMT1) return r & (TPM2_RC_FMT1 | 0x3f);
    return r & 0xfff;
}

using base::hex32;

// What to check when the TCTI cannot be opened, by TCTI name.
std::string connect_hint(const std::string& tcti) {
    const std::string name = tcti.substr(0, tcti.find(':'));
    if (name == "swtpm" || name == "mssim")
        return "is the simulator running and listening there? (scripts/swtpm-setup.sh DIR "
               "starts one and prints ACME_AGENT_TCTI)";
    if (name == "device")
        return "does the device exist and may this user open it? (usually group 'tss'; "
               "/dev/tpmrm0 is the kernel's resource manager)";
    if (name == "tabrmd") return "is tpm2-abrmd running and reachable on D-Bus?";
    return "is the TCTI configuration right?";
}

// The error for a failed TSS call; Guard::failed() is its only user.
base::Error tss_error(std::string_view where, TSS2_RC rc, std::string_view what, AuthOf auth) {
    std::string decoded = Tss2_RC_Decode(rc);
    std::string message = what.empty() ? decoded : std::string(what) + ": " + decoded;
    Errc code = Errc::hardware;
    const TPM2_RC base = tpm_base(rc);
    if (base == TPM2_RC_AUTH_FAIL || base == TPM2_RC_BAD_AUTH) {
        if (auth == AuthOf::key) {
            code = Errc::pin_incorrect;
            message = std::string(what.empty() ? "" : std::string(what) + ": ") +
                      "wrong auth value for the TPM key (not retried; each wrong try counts "
                      "toward the TPM's dictionary-attack lockout) [" +
                      decoded + "]";
        } else if (auth == AuthOf::owner) {
            code = Errc::pin_incorrect;
            message += " (wrong owner password from owner-auth-source; not retried)";
        } else if (auth == AuthOf::endorsement) {
            code = Errc::pin_incorrect;
            message += " (wrong endorsement password from endorsement-auth-source; not retried)";
        }
    } else if (base == TPM2_RC_LOCKOUT) {
        code = Errc::pin_locked;
        message = std::string(what.empty() ? "" : std::string(what) + ": ") +
                  "the TPM is in dictionary-attack lockout after too many wrong auth values; "
                  "wait for its recovery time (tpm2_getcap properties-variable: "
                  "TPM2_PT_LOCKOUT_RECOVERY) or clear it with the lockout auth "
                  "(tpm2_dictionarylockout --clear-lockout) [" +
                  decoded + "]";
    } else if (base == TPM2_RC_NV_DEFINED) {
        code = Errc::exists;
    } else if (base == TPM2_RC_OBJECT_MEMORY) {
        message +=
            " (no free object slot in the TPM: another program left transient objects "
            "loaded — tpm2_flushcontext -t — or use a resource manager)";
    } else if ((rc & TSS2_RC_LAYER_MASK) == TSS2_TCTI_RC_LAYER) {
        message += " (lost the connection to the TPM)";
    }
    return base::Error{code, std::string(where), std::move(message), rc};
}

}  // namespace

bool is_no_object(TSS2_RC rc) {
    const TPM2_RC base = tpm_base(rc);
    return base == TPM2_RC_HANDLE || base == TPM2_RC_VALUE ||
           (base >= TPM2_RC_REFERENCE_H0 && base <= TPM2_RC_REFERENCE_H6);
}

void Object::reset() noexcept {
    if (tr_ == ESYS_TR_NONE) return;
    if (ref_ && ref_->esys && ref_->epoch == epoch_) {
        if (kind_ == Kind::persistent)
            Esys_TR_Close(ref_->esys, &tr_);
        else
            Esys_FlushContext(ref_->esys, tr_);  // transient object or session: frees the slot
    }
    tr_ = ESYS_TR_NONE;
}

std::string TpmInfo::manufacturer_text() const {
    std::string s;
    for (int shift = 24; shift >= 0; shift -= 8) {
        const char c = static_cast<char>((manufacturer >> shift) & 0xff);
        if (c >= 0x20 && c < 0x7f) s += c;
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    return s;
}

Connection::~Connection() {
    std::lock_guard lock(mutex_);
    disconnect(true);
}

std::uint64_t Connection::new_key_id() {
    static std::atomic<std::uint64_t> next{1};
    return next++;
}

Result<Connection::Guard> Connection::lock() {
    std::unique_lock lock(mutex_);
    if (!ref_.esys)
        if (auto c = connect(); !c) return std::unexpected(c.error());
    return Guard(this, std::move(lock));
}

Result<void> Connection::connect() {
    // tpm2-tss prints every failed command to stderr; our errors carry the decoded code, and
    // SECURITY.md rule 13 keeps TSS dumps out of logs. TSS2_LOG set by the user still wins.
    static std::once_flag quiet;
    std::call_once(quiet, [] { ::setenv("TSS2_LOG", "all+NONE", 0); });

    auto unreachable = [&](std::string_view call, TSS2_RC rc) {
        disconnect(false);
        return std::unexpected(base::Error{
            Errc::module_load, std::string(call),
            "cannot reach the TPM through TCTI '" + tcti_ + "' (" + Tss2_RC_Decode(rc) + "); " +
                connect_hint(tcti_) +
                "; the TCTI comes from --tcti, ACME_AGENT_TCTI or defaults to device:/dev/tpmrm0",
            rc});
    };
    if (TSS2_RC rc = Tss2_TctiLdr_Initialize(tcti_.c_str(), &tcti_ctx_); rc != TSS2_RC_SUCCESS) {
        tcti_ctx_ = nullptr;
        return unreachable("Tss2_TctiLdr_Initialize", rc);
    }
    ESYS_CONTEXT* esys = nullptr;
    if (TSS2_RC rc = Esys_Initialize(&esys, tcti_ctx_, nullptr); rc != TSS2_RC_SUCCESS)
        return unreachable("Esys_Initialize", rc);
    ref_.esys = esys;
    ++ref_.epoch;
    resource_managed_ = tcti_.starts_with("device:/dev/tpmrm") || tcti_.starts_with("tabrmd");

    // One capability read per connection: manufacturer, firmware, object slots.
    TPMS_CAPABILITY_DATA* caps = nullptr;
    TPMI_YES_NO more = TPM2_NO;
    TSS2_RC rc =
        Esys_GetCapability(ref_.esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                           TPM2_CAP_TPM_PROPERTIES, TPM2_PT_MANUFACTURER, 16, &more, &caps);
    if (tpm_base(rc) == TPM2_RC_INITIALIZE) {
        // A simulator started without startup-clear: do what the firmware would have done.
        if (TSS2_RC s = Esys_Startup(ref_.esys, TPM2_SU_CLEAR); s != TSS2_RC_SUCCESS)
            return unreachable("Esys_Startup", s);
        rc = Esys_GetCapability(ref_.esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                TPM2_CAP_TPM_PROPERTIES, TPM2_PT_MANUFACTURER, 16, &more, &caps);
    }
    if (rc != TSS2_RC_SUCCESS) return unreachable("Esys_GetCapability", rc);
    info_ = TpmInfo{};
    for (UINT32 i = 0; i < caps->data.tpmProperties.count; ++i) {
        const auto& p = caps->data.tpmProperties.tpmProperty[i];
        if (p.property == TPM2_PT_MANUFACTURER) info_.manufacturer = p.value;
        if (p.property == TPM2_PT_FIRMWARE_VERSION_1) info_.firmware1 = p.value;
        if (p.property == TPM2_PT_FIRMWARE_VERSION_2) info_.firmware2 = p.value;
        if (p.property == TPM2_PT_HR_TRANSIENT_MIN && p.value >= 2) info_.transient_min = p.value;
    }
    Esys_Free(caps);
    base::log::debug("tpm2: connected through " + tcti_ + " to a TPM by '" +
                     info_.manufacturer_text() + "'");
    return {};
}

void Connection::disconnect(bool flush) noexcept {
    ESYS_CONTEXT* esys = ref_.esys;
    if (!flush) ref_.esys = nullptr;  // the TPM is gone: forget handles without commands
    resident_.clear();
    session_.reset();
    srk_tr_.reset();
    srk_persistent_.reset();
    ref_.esys = nullptr;
    if (esys) Esys_Finalize(&esys);
    if (tcti_ctx_) Tss2_TctiLdr_Finalize(&tcti_ctx_);
    tcti_ctx_ = nullptr;
}

base::Error Connection::Guard::failed(std::string_view where, TSS2_RC rc, std::string_view what,
                                      AuthOf auth) {
    conn_->note_failure(rc);
    return tss_error(where, rc, what, auth);
}

void Connection::note_failure(TSS2_RC rc) {
    if ((rc & TSS2_RC_LAYER_MASK) != TSS2_TCTI_RC_LAYER) return;
    base::log::warning("tpm2: lost the connection through " + tcti_ + "; will reconnect");
    disconnect(false);
}

Result<Connection::Parent> Connection::parent(Guard& g, std::uint32_t handle) {
    Parent out;
    if (handle == 0 || handle == kSrkHandle) {
        if (!srk_persistent_) {
            ESYS_TR tr = ESYS_TR_NONE;
            TSS2_RC rc = Esys_TR_FromTPMPublic(ref_.esys, kSrkHandle, ESYS_TR_NONE, ESYS_TR_NONE,
                                               ESYS_TR_NONE, &tr);
            if (rc == TSS2_RC_SUCCESS) {
                Object obj(ref_, tr, Object::Kind::persistent);
                TPM2B_PUBLIC* pub = nullptr;
                rc = Esys_ReadPublic(ref_.esys, tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub,
                                     nullptr, nullptr);
                const bool storage = rc == TSS2_RC_SUCCESS && is_storage_key(pub->publicArea);
                Esys_Free(pub);
                if (storage) srk_tr_ = std::move(obj);
                srk_persistent_ = storage;
            } else if (is_no_object(rc)) {
                srk_persistent_ = false;
            } else {
                return std::unexpected(
                    g.failed("Esys_TR_FromTPMPublic", rc, "reading the SRK 0x81000001"));
            }
        }
        if (*srk_persistent_) {
            out.handle = kSrkHandle;
            out.tr = srk_tr_.get();
            return out;
        }
        if (handle == kSrkHandle)
            return base::fail(Errc::not_found, "tpm2",
                              "the key's parent, the persistent SRK 0x81000001, is not in "
                              "this TPM (or is not a storage key)");
    } else if (handle != kOwnerParent) {
        // A key file naming another persistent parent: use it as it is.
        ESYS_TR tr = ESYS_TR_NONE;
        if (TSS2_RC rc = Esys_TR_FromTPMPublic(ref_.esys, handle, ESYS_TR_NONE, ESYS_TR_NONE,
                                               ESYS_TR_NONE, &tr);
            rc != TSS2_RC_SUCCESS) {
            auto e = g.failed("Esys_TR_FromTPMPublic", rc, "the key's parent " + hex32(handle));
            if (is_no_object(rc)) e.code = Errc::not_found;
            return std::unexpected(std::move(e));
        }
        out.handle = handle;
        out.owned = Object(ref_, tr, Object::Kind::persistent);
        out.tr = tr;
        return out;
    }
    // The transient primary: the same key every time (same template, same owner seed).
    make_room(g, 1);
    if (auto a = use_owner_auth(g); !a) return std::unexpected(a.error());
    TPM2B_SENSITIVE_CREATE sensitive{};
    const TPM2B_PUBLIC tmpl = srk_template();
    const TPM2B_DATA outside{};
    const TPML_PCR_SELECTION pcrs{};
    ESYS_TR tr = ESYS_TR_NONE;
    if (TSS2_RC rc = Esys_CreatePrimary(ref_.esys, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                        ESYS_TR_NONE, &sensitive, &tmpl, &outside, &pcrs, &tr,
                                        nullptr, nullptr, nullptr, nullptr);
        rc != TSS2_RC_SUCCESS) {
        return std::unexpected(
            g.failed("Esys_CreatePrimary", rc, "creating the SRK", AuthOf::owner));
    }
    out.handle = kOwnerParent;
    out.owned = Object(ref_, tr, Object::Kind::transient);
    out.tr = tr;
    return out;
}

void Connection::set_owner_auth(const Guard& /*locked*/, base::Secret auth) {
    owner_auth_.value = std::move(auth);
}

void Connection::set_endorsement_auth(const Guard& /*locked*/, base::Secret auth) {
    endorsement_auth_.value = std::move(auth);
}

std::optional<std::uint32_t> Connection::lockout_interval(const Guard& g) {
    TPMS_CAPABILITY_DATA* raw = nullptr;
    if (!g.esys() || Esys_GetCapability(g.esys(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                        TPM2_CAP_TPM_PROPERTIES, TPM2_PT_LOCKOUT_INTERVAL, 1,
                                        nullptr, &raw) != TSS2_RC_SUCCESS)
        return std::nullopt;
    std::optional<std::uint32_t> out;
    const auto& props = raw->data.tpmProperties;
    if (props.count == 1 && props.tpmProperty[0].property == TPM2_PT_LOCKOUT_INTERVAL)
        out = props.tpmProperty[0].value;
    Esys_Free(raw);
    return out;
}

Result<void> Connection::use_owner_auth(Guard& g) {
    return use_auth(g, ESYS_TR_RH_OWNER, owner_auth_);
}

Result<void> Connection::use_endorsement_auth(Guard& g) {
    return use_auth(g, ESYS_TR_RH_ENDORSEMENT, endorsement_auth_);
}

Result<void> Connection::use_auth(Guard& g, ESYS_TR hierarchy, HierarchyAuth& auth) {
    if (!g.esys()) return {};
    const bool owner = hierarchy == ESYS_TR_RH_OWNER;
    if (auth.value.empty()) {
        // Trying an empty hierarchy auth on a TPM that has one would cost a dictionary-attack
        // strike: ask the TPM first (TPMA_PERMANENT ownerAuthSet / endorsementAuthSet, no
        // authorization needed).
        TPMS_CAPABILITY_DATA* raw = nullptr;
        if (!auth.set && Esys_GetCapability(g.esys(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                            TPM2_CAP_TPM_PROPERTIES, TPM2_PT_PERMANENT, 1, nullptr,
                                            &raw) == TSS2_RC_SUCCESS) {
            const auto& props = raw->data.tpmProperties;
            const TPMA_PERMANENT bit =
                owner ? TPMA_PERMANENT_OWNERAUTHSET : TPMA_PERMANENT_ENDORSEMENTAUTHSET;
            auth.set = props.count == 1 && props.tpmProperty[0].property == TPM2_PT_PERMANENT &&
                       (props.tpmProperty[0].value & bit);
            Esys_Free(raw);
        }
        if (auth.set.value_or(false))
            return base::fail(
                Errc::usage, "tpm2",
                owner ? "the TPM's owner hierarchy has a password (it was provisioned with one); "
                        "add ?owner-auth-source=file:PATH, a 0600 file holding it, to the key URI"
                      : "the TPM's endorsement hierarchy has a password (it was provisioned with "
                        "one); add ?endorsement-auth-source=file:PATH, a 0600 file holding it, "
                        "to the key URI");
        return {};
    }
    TPM2B_AUTH a{};
    a.size = static_cast<UINT16>(std::min(auth.value.reveal().size(), sizeof a.buffer));
    std::memcpy(a.buffer, auth.value.reveal().data(), a.size);
    const TSS2_RC rc = Esys_TR_SetAuth(g.esys(), hierarchy, &a);
    OPENSSL_cleanse(a.buffer, sizeof a.buffer);
    if (rc != TSS2_RC_SUCCESS)
        return std::unexpected(g.failed("Esys_TR_SetAuth", rc, owner ? "owner" : "endorsement"));
    return {};
}

Result<ESYS_TR> Connection::hmac_session(Guard& g, ESYS_TR salt_key) {
    if (session_) return session_.get();
    Parent srk;
    if (salt_key == ESYS_TR_NONE) {
        auto p = parent(g, 0);
        if (!p) return std::unexpected(p.error());
        srk = std::move(*p);
        salt_key = srk.tr;
    }
    const TPMT_SYM_DEF sym{
        .algorithm = TPM2_ALG_AES, .keyBits = {.aes = 128}, .mode = {.aes = TPM2_ALG_CFB}};
    ESYS_TR s = ESYS_TR_NONE;
    if (TSS2_RC rc =
            Esys_StartAuthSession(ref_.esys, salt_key, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                  ESYS_TR_NONE, nullptr, TPM2_SE_HMAC, &sym, TPM2_ALG_SHA256, &s);
        rc != TSS2_RC_SUCCESS) {
        return std::unexpected(g.failed("Esys_StartAuthSession", rc, "salted HMAC session"));
    }
    session_ = Object(ref_, s, Object::Kind::session);
    const TPMA_SESSION attrs = TPMA_SESSION_CONTINUESESSION | TPMA_SESSION_DECRYPT;
    if (TSS2_RC rc = Esys_TRSess_SetAttributes(ref_.esys, s, attrs, 0xff); rc != TSS2_RC_SUCCESS) {
        session_.reset();
        return std::unexpected(g.failed("Esys_TRSess_SetAttributes", rc));
    }
    return s;
}

void Connection::drop_session(Guard&) {
    session_.reset();
}

void Connection::make_room(Guard&, std::size_t needed) {
    if (resource_managed_) return;
    auto slots_used = [&] {
        std::size_t n = 0;
        for (auto& e : resident_) n += e.object.kind() == Object::Kind::transient;
        return n;
    };
    for (auto it = resident_.begin();
         it != resident_.end() && slots_used() + needed > info_.transient_min;) {
        if (it->object.kind() == Object::Kind::transient)
            it = resident_.erase(it);  // flushes
        else
            ++it;
    }
}

Result<ESYS_TR> Connection::resident(Guard& g, std::uint64_t key_id, const Loader& load) {
    for (auto it = resident_.begin(); it != resident_.end(); ++it)
        if (it->key_id == key_id) {
            resident_.splice(resident_.end(), resident_, it);  // now most recently used
            return resident_.back().object.get();
        }
    auto obj = load(g);
    if (!obj) return std::unexpected(obj.error());
    const ESYS_TR tr = obj->get();
    resident_.push_back({key_id, std::move(*obj)});
    return tr;
}

void Connection::evict(Guard&, std::uint64_t key_id) {
    std::erase_if(resident_, [&](const Entry& e) { return e.key_id == key_id; });
}

void Connection::release(std::uint64_t key_id) {
    std::lock_guard lock(mutex_);
    std::erase_if(resident_, [&](const Entry& e) { return e.key_id == key_id; });
}

}  // namespace tpm
