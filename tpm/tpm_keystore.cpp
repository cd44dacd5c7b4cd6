#include "tpm/tpm_keystore.h"

#include "base/bytes.h"
#include "base/deleter.h"
#include "base/files.h"
#include "base/log.h"
#include "base/ossl.h"
#include "keystore/pin.h"
#include "tpm/attest.h"
#include "tpm/connection.h"
#include "tpm/key_file.h"
#include "tpm/templates.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

namespace tpm {

using base::Bytes;
using base::Errc;
using base::fail;
using base::Result;
using base::Secret;
using keystore::KeyAlgorithm;
using keystore::KeyInfo;
using keystore::KeyPtr;
using keystore::KeyUri;
using Guard = Connection::Guard;

namespace {

constexpr std::uint32_t kPersistentFirst = 0x81000000;
constexpr std::uint32_t kPersistentLast = 0x81ffffff;
constexpr std::uint32_t kPlatformFirst = 0x81800000;  // needs platform auth to persist
// The TPM caps an object's authValue at its nameAlg's digest size (SHA-256 here).
constexpr std::size_t kMaxAuth = 32;

template <typename T>
using EsysPtr = std::unique_ptr<T, base::Deleter<Esys_Free>>;

using base::hex32;

Result<std::uint32_t> parse_handle(const KeyUri& uri) {
    const std::string text = uri.path_attr("handle").value_or("");
    std::string_view digits = text;
    int base = 10;
    if (digits.starts_with("0x") || digits.starts_with("0X")) {
        digits.remove_prefix(2);
        base = 16;
    }
    std::uint32_t h = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), h, base);
    if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() ||
        h < kPersistentFirst || h > kPersistentLast)
        return fail(
            Errc::usage, "key URI",
            "tpm2:handle='" + text + "' is not a persistent handle (0x81000000-0x81ffffff)");
    return h;
}

KeyUri with_handle(const KeyUri& uri, std::uint32_t handle) {
    KeyUri out = uri;
    out.set_path_attr("handle", hex32(handle));
    return out;
}

// The auth value of a key: from the URI's pin-source when `ask` is false (a key without
// one has no auth value), else also from a prompt (a key file that says it has one).
Result<Secret> auth_value(const KeyUri& uri, std::string_view what, bool ask) {
    if (!ask && !uri.query_attr("pin-source") && !uri.query_attr("pin-value")) return Secret{};
    auto pin = keystore::resolve_pin(uri, what, true);
    if (!pin) return pin;
    if (pin->reveal().size() > kMaxAuth)
        return fail(Errc::usage, "pin-source",
                    "a TPM key's auth value is at most " + std::to_string(kMaxAuth) + " bytes");
    return pin;
}

TPM2B_AUTH to_auth(const Secret& s) {
    TPM2B_AUTH a{};
    a.size = static_cast<UINT16>(std::min(s.reveal().size(), sizeof a.buffer));
    std::memcpy(a.buffer, s.reveal().data(), a.size);
    return a;
}

// Wipes a TPM2B_AUTH / TPM2B_SENSITIVE_CREATE copy of an auth value on scope exit.
template <typename T>
struct Wipe {  // NOLINT(cppcoreguidelines-special-member-functions): an aggregate, never copied
    T& value;
    ~Wipe() { OPENSSL_cleanse(&value, sizeof value); }
};

struct Created {
    EsysPtr<TPM2B_PUBLIC> pub;
    EsysPtr<TPM2B_PRIVATE> priv;
};

// TPM2_Create of a signing key under `parent`. With an auth value, the command runs in the
// salted session so inSensitive (which carries the auth value) is encrypted on the wire.
Result<Created> create_key(Guard& g, const Connection::Parent& parent, const TPM2B_PUBLIC& tmpl,
                           const Secret& auth) {
    ESYS_TR session = ESYS_TR_PASSWORD;
    if (!auth.empty()) {
        auto s = g.conn().hmac_session(g, parent.tr);
        if (!s) return std::unexpected(s.error());
        session = *s;
    }
    TPM2B_SENSITIVE_CREATE sensitive{};
    Wipe<TPM2B_SENSITIVE_CREATE> wipe{sensitive};
    sensitive.sensitive.userAuth = to_auth(auth);
    const TPM2B_DATA outside{};
    const TPML_PCR_SELECTION pcrs{};
    TPM2B_PRIVATE* priv = nullptr;
    TPM2B_PUBLIC* pub = nullptr;
    const TSS2_RC rc =
        Esys_Create(g.esys(), parent.tr, session, ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &tmpl,
                    &outside, &pcrs, &priv, &pub, nullptr, nullptr, nullptr);
    if (rc != TSS2_RC_SUCCESS) {
        if (session != ESYS_TR_PASSWORD) g.conn().drop_session(g);
        return std::unexpected(g.failed("Esys_Create", rc, "creating the key under the SRK"));
    }
    return Created{EsysPtr<TPM2B_PUBLIC>(pub), EsysPtr<TPM2B_PRIVATE>(priv)};
}

// Where a key lives: a key file (loaded on demand under its parent) or a persistent handle.
struct Place {
    std::optional<KeyFile> file;
    std::uint32_t handle = 0;  // persistent handle when !file
};

class TpmKey final : public keystore::Key {
  public:
    TpmKey(std::shared_ptr<Connection> conn, KeyUri uri, KeyAlgorithm alg, Bytes spki, Place place,
           Secret auth)
        : conn_(std::move(conn)),
          uri_(std::move(uri)),
          alg_(alg),
          spki_(std::move(spki)),
          place_(std::move(place)),
          auth_(std::move(auth)) {}
    ~TpmKey() override { conn_->release(id_); }
    TpmKey(const TpmKey&) = delete;
    TpmKey& operator=(const TpmKey&) = delete;

    KeyAlgorithm algorithm() const override { return alg_; }
    const Bytes& public_key_der() const override { return spki_; }
    const KeyUri& uri() const override { return uri_; }

    Result<Bytes> sign(std::span<const std::uint8_t> message) const override {
        // Hash on the host, then exactly one TPM2_Sign (no TPM hash sequence).
        const Bytes hash =
            base::ossl::digest(alg_ == KeyAlgorithm::ec_p384 ? "SHA384" : "SHA256", message);
        TPM2B_DIGEST digest{};
        digest.size = static_cast<UINT16>(hash.size());
        std::memcpy(digest.buffer, hash.data(), hash.size());
        const TPMT_SIG_SCHEME scheme = sig_scheme(alg_);
        TPMT_TK_HASHCHECK ticket{};  // null ticket: the digest was not made by the TPM
        ticket.tag = TPM2_ST_HASHCHECK;
        ticket.hierarchy = TPM2_RH_NULL;

        TPMT_SIGNATURE* raw = nullptr;
        {
            auto g = conn_->lock();
            if (!g) return std::unexpected(g.error());
            if (auth_error_) return std::unexpected(*auth_error_);
            // The session first: starting it may need a transient SRK, which must not push
            // this key out of its slot once we hold its handle.
            auto session = session_for(*g);
            if (!session) return std::unexpected(session.error());
            auto tr = handle(*g);
            if (!tr) return std::unexpected(tr.error());
            if (auto a = set_auth(*g, *tr); !a) return std::unexpected(a.error());
            const TSS2_RC rc = Esys_Sign(g->esys(), *tr, *session, ESYS_TR_NONE, ESYS_TR_NONE,
                                         &digest, &scheme, &ticket, &raw);
            if (!auth_.empty()) clear_auth(*g, *tr);  // no copy left in ESAPI between uses
            if (rc != TSS2_RC_SUCCESS) return failed(*g, "Esys_Sign", rc, *session);
        }
        EsysPtr<TPMT_SIGNATURE> sig(raw);
        return jws_form(*sig);
    }

    Result<std::vector<keystore::KeyProperty>> properties() const override {
        auto g = conn_->lock();
        if (!g) return std::unexpected(g.error());
        auto tr = handle(*g);
        if (!tr) return std::unexpected(tr.error());
        TPM2B_PUBLIC* raw = nullptr;
        if (TSS2_RC rc = Esys_ReadPublic(g->esys(), *tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                         &raw, nullptr, nullptr);
            rc != TSS2_RC_SUCCESS) {
            return std::unexpected(g->failed("Esys_ReadPublic", rc, uri_.to_string()));
        }
        EsysPtr<TPM2B_PUBLIC> pub(raw);
        const TPMA_OBJECT attrs = pub->publicArea.objectAttributes;
        const TpmInfo& info = conn_->info(*g);
        std::vector<keystore::KeyProperty> out{
            {"backend", "tpm2"},
            {"tcti", conn_->tcti()},
            {"manufacturer", info.manufacturer_text()},
            {"manufacturer-id", hex32(info.manufacturer)},
            {"firmware-version", hex32(info.firmware1) + "." + hex32(info.firmware2)},
            {"storage", place_.file ? "key file " + *uri_.path_attr("path") + " (parent " +
                                          hex32(place_.file->parent) + ")"
                                    : "persistent handle " + hex32(place_.handle)},
            {"auth", auth_.empty() ? "none (password session)"
                                   : "auth value (salted HMAC session, AES-128-CFB parameter "
                                     "encryption)"},
            // The private part never leaves this TPM unencrypted, and cannot be duplicated
            // to another TPM while fixedTPM and fixedParent are set.
            {"sensitive", "true"},
            {"extractable", (attrs & TPMA_OBJECT_FIXEDTPM) && (attrs & TPMA_OBJECT_FIXEDPARENT)
                                ? "false"
                                : "true"},
        };
        for (auto& p : attribute_properties(attrs)) out.push_back(std::move(p));
        return out;
    }

    // tpm::attest: TPM2_Certify of this key by the attestation key.
    Result<Attestation> attest(std::span<const std::uint8_t> nonce) const {
        auto g = conn_->lock();
        if (!g) return std::unexpected(g.error());
        if (auth_error_) return std::unexpected(*auth_error_);
        auto session = session_for(*g);
        if (!session) return std::unexpected(session.error());
        // Slots for the key and the AK, and for a moment a transient SRK while the key
        // loads: nothing else may stay resident on a TPM without a resource manager.
        conn_->make_room(*g, 3);
        auto tr = handle(*g);
        if (!tr) return std::unexpected(tr.error());
        if (auto a = set_auth(*g, *tr); !a) return std::unexpected(a.error());
        auto out = certify(*g, *tr, *session, nonce);
        if (!auth_.empty()) clear_auth(*g, *tr);
        if (!out) {
            if (*session != ESYS_TR_PASSWORD) conn_->drop_session(*g);
            if (out.error().code == Errc::pin_incorrect && out.error().where == "Esys_Certify") {
                if (auth_.empty())
                    out.error().message +=
                        "; the key has an auth value: add ?pin-source=file:PATH to its URI";
                auth_error_ = out.error();  // tried once per Key (SECURITY.md rule 11)
            }
        }
        return out;
    }

  private:
    Result<ESYS_TR> session_for(Guard& g) const {
        if (auth_.empty()) return ESYS_TR_PASSWORD;  // fast path: one command per signature
        return conn_->hmac_session(g);
    }

    static void clear_auth(Guard& g, ESYS_TR tr) {
        const TPM2B_AUTH empty{};
        Esys_TR_SetAuth(g.esys(), tr, &empty);
    }

    Result<void> set_auth(Guard& g, ESYS_TR tr) const {
        TPM2B_AUTH a = to_auth(auth_);
        Wipe<TPM2B_AUTH> wipe{a};
        if (TSS2_RC rc = Esys_TR_SetAuth(g.esys(), tr, &a); rc != TSS2_RC_SUCCESS)
            return std::unexpected(g.failed("Esys_TR_SetAuth", rc));
        return {};
    }

    // The key's ESYS_TR: a persistent handle, or the key file loaded under its parent. Kept
    // in the connection's resident cache; reloaded if the cache evicted it.
    Result<ESYS_TR> handle(Guard& g) const {
        return conn_->resident(g, id_, [this](Guard& gg) { return load(gg); });
    }

    Result<Object> load(Guard& g) const {
        ESYS_TR tr = ESYS_TR_NONE;
        if (!place_.file) {
            if (TSS2_RC rc = Esys_TR_FromTPMPublic(g.esys(), place_.handle, ESYS_TR_NONE,
                                                   ESYS_TR_NONE, ESYS_TR_NONE, &tr);
                rc != TSS2_RC_SUCCESS) {
                auto e = g.failed("Esys_TR_FromTPMPublic", rc, uri_.to_string());
                if (is_no_object(rc)) {
                    e.code = Errc::not_found;
                    e.message = "no key at persistent handle " + hex32(place_.handle) + " [" +
                                e.message + "]";
                }
                return std::unexpected(std::move(e));
            }
            return Object(g.ref(), tr, Object::Kind::persistent);
        }
        auto pub = unmarshal_public(place_.file->pub);
        if (!pub) return std::unexpected(pub.error());
        auto priv = unmarshal_private(place_.file->priv);
        if (!priv) return std::unexpected(priv.error());
        g.conn().make_room(g, 2);  // the key and, for a moment, a transient SRK
        auto parent = g.conn().parent(g, place_.file->parent);
        if (!parent) return std::unexpected(parent.error());
        if (TSS2_RC rc = Esys_Load(g.esys(), parent->tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                   ESYS_TR_NONE, &*priv, &*pub, &tr);
            rc != TSS2_RC_SUCCESS) {
            return std::unexpected(g.failed("Esys_Load", rc,
                                            *uri_.path_attr("path") +
                                                " (a key file loads only in the TPM that made it, "
                                                "under the same parent " +
                                                hex32(place_.file->parent) + ")"));
        }
        return Object(g.ref(), tr, Object::Kind::transient);
        // `parent` goes here: a transient SRK is flushed right after the load.
    }

    std::unexpected<base::Error> failed(Guard& g, std::string_view where, TSS2_RC rc,
                                        ESYS_TR session) const {
        if (session != ESYS_TR_PASSWORD) conn_->drop_session(g);
        base::Error e = g.failed(where, rc, uri_.to_string(), AuthOf::key);
        if (e.code == Errc::pin_incorrect) {
            if (auth_.empty())
                e.message += "; the key has an auth value: add ?pin-source=file:PATH to its URI";
            auth_error_ = e;  // a wrong auth value is tried once per Key (SECURITY.md rule 11)
        } else if (e.code == Errc::pin_locked) {
            if (auto s = Connection::lockout_interval(g))
                e.message += "; this TPM forgives one failure every " + std::to_string(*s) +
                             " s (TPM2_PT_LOCKOUT_INTERVAL): the next try is allowed in at most " +
                             std::to_string(*s) + " s";
        }
        if (is_no_object(rc)) conn_->evict(g, id_);  // reload next time
        return std::unexpected(std::move(e));
    }

    Result<Bytes> jws_form(const TPMT_SIGNATURE& sig) const {
        if (keystore::is_ec(alg_)) {
            if (sig.sigAlg != TPM2_ALG_ECDSA)
                return fail(Errc::hardware, "Esys_Sign", "the TPM returned a non-ECDSA signature");
            const std::size_t w = keystore::ec_field_size(alg_);
            const auto& r = sig.signature.ecdsa.signatureR;
            const auto& s = sig.signature.ecdsa.signatureS;
            if (r.size > w || s.size > w)
                return fail(Errc::hardware, "Esys_Sign", "r or s is wider than the curve");
            Bytes out(2 * w, 0);  // r and s left-padded to the field width (RFC 7518 §3.4)
            std::copy(r.buffer, r.buffer + r.size,
                      out.begin() + static_cast<std::ptrdiff_t>(w - r.size));
            std::copy(s.buffer, s.buffer + s.size,
                      out.begin() + static_cast<std::ptrdiff_t>(2 * w - s.size));
            return out;
        }
        if (sig.sigAlg != TPM2_ALG_RSASSA)
            return fail(Errc::hardware, "Esys_Sign", "the TPM returned a non-RSASSA signature");
        const std::size_t n = keystore::rsa_bits(alg_) / 8;
        const auto& rs = sig.signature.rsassa.sig;
        if (rs.size > n)
            return fail(Errc::hardware, "Esys_Sign", "RSA signature longer than the modulus");
        Bytes out(n, 0);
        std::copy(rs.buffer, rs.buffer + rs.size,
                  out.begin() + static_cast<std::ptrdiff_t>(n - rs.size));
        return out;
    }

    std::shared_ptr<Connection> conn_;
    const std::uint64_t id_ = Connection::new_key_id();
    KeyUri uri_;
    KeyAlgorithm alg_;
    Bytes spki_;
    Place place_;
    Secret auth_;
    mutable std::optional<base::Error> auth_error_;  // guarded by the connection lock
};

class TpmKeystore final : public keystore::Keystore {
  public:
    explicit TpmKeystore(std::string tcti) : conn_(std::make_shared<Connection>(std::move(tcti))) {}

    using keystore::Keystore::generate;
    Result<KeyPtr> generate(const KeyUri& uri, KeyAlgorithm alg) override {
        if (auto o = take_owner_auth(uri); !o) return std::unexpected(o.error());
        auto tmpl = signing_template(alg);
        if (!tmpl) return std::unexpected(tmpl.error());
        if (auto path = uri.path_attr("path")) return generate_file(uri, *path, alg, *tmpl);
        return generate_persistent(uri, alg, *tmpl);
    }

    Result<KeyPtr> open(const KeyUri& uri) override {
        if (auto o = take_owner_auth(uri); !o) return std::unexpected(o.error());
        if (auto path = uri.path_attr("path")) return open_file(uri, *path);
        auto h = parse_handle(uri);
        if (!h) return std::unexpected(h.error());
        auto auth = auth_value(uri, "auth value for TPM key " + hex32(*h), false);
        if (!auth) return std::unexpected(auth.error());
        auto g = conn_->lock();
        if (!g) return std::unexpected(g.error());
        auto pub = read_persistent(*g, *h);
        if (!pub) return std::unexpected(pub.error());
        auto alg = algorithm_of(*pub);
        if (!alg) return std::unexpected(alg.error());
        auto spki = spki_of(*pub);
        if (!spki) return std::unexpected(spki.error());
        return std::make_shared<TpmKey>(conn_, with_handle(uri, *h), *alg, std::move(*spki),
                                        Place{std::nullopt, *h}, std::move(*auth));
    }

    Result<std::vector<KeyInfo>> list(const KeyUri& uri) override {
        if (auto path = uri.path_attr("path")) return list_files(uri, *path);
        auto g = conn_->lock();
        if (!g) return std::unexpected(g.error());
        auto handles = persistent_handles(*g, kPersistentFirst, 0xffffff + 1);
        if (!handles) return std::unexpected(handles.error());
        std::vector<KeyInfo> out;
        for (std::uint32_t h : *handles) {
            auto pub = read_persistent(*g, h);
            if (!pub) continue;
            auto alg = algorithm_of(*pub);
            if (!alg) continue;  // the SRK, an EK, a decrypt key: not ours to list
            auto k = KeyUri::parse("tpm2:handle=" + hex32(h));
            if (k) out.push_back({*k, *alg});
        }
        return out;
    }

    Result<void> destroy(const KeyUri& uri) override {
        if (auto path = uri.path_attr("path")) {
            // The file is the key: removing it destroys the key (the TPM keeps nothing).
            auto pem = base::read_file(*path, 64 * 1024);
            if (!pem) return std::unexpected(pem.error());
            if (auto f = decode_key_file(*pem, *path); !f)
                return fail(
                    Errc::usage, *path,
                    "not a TSS2 key file; refusing to delete it (" + f.error().message + ")");
            return base::remove_file_durable(*path);
        }
        if (auto o = take_owner_auth(uri); !o) return std::unexpected(o.error());
        auto h = parse_handle(uri);
        if (!h) return std::unexpected(h.error());
        auto g = conn_->lock();
        if (!g) return std::unexpected(g.error());
        ESYS_TR tr = ESYS_TR_NONE;
        if (TSS2_RC rc =
                Esys_TR_FromTPMPublic(g->esys(), *h, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr);
            rc != TSS2_RC_SUCCESS)
            return no_handle(*g, *h, rc);
        Object obj(g->ref(), tr, Object::Kind::persistent);
        auto pub = read_public(*g, tr);
        if (!pub) return std::unexpected(pub.error());
        if (auto alg = algorithm_of(*pub); !alg)
            return fail(Errc::usage, "tpm2",
                        "the object at " + hex32(*h) +
                            " is not an unrestricted signing key; refusing to evict it");
        ESYS_TR none = ESYS_TR_NONE;
        if (auto a = conn_->use_owner_auth(*g); !a) return std::unexpected(a.error());
        if (TSS2_RC rc = Esys_EvictControl(g->esys(), ESYS_TR_RH_OWNER, tr, ESYS_TR_PASSWORD,
                                           ESYS_TR_NONE, ESYS_TR_NONE, *h, &none);
            rc != TSS2_RC_SUCCESS) {
            return std::unexpected(
                g->failed("Esys_EvictControl", rc, "evicting " + hex32(*h), AuthOf::owner));
        }
        return {};  // `obj` closes the stale ESYS_TR (a no-op if ESAPI already dropped it)
    }

    // TPM2_GetCapability(TPM2_CAP_HANDLES) from TPM2_HT_TRANSIENT, on this connection.
    Result<std::size_t> transient_handles() {
        auto g = conn_->lock();
        if (!g) return std::unexpected(g.error());
        TPMS_CAPABILITY_DATA* raw = nullptr;
        TPMI_YES_NO more = TPM2_NO;
        if (TSS2_RC rc = Esys_GetCapability(g->esys(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                            TPM2_CAP_HANDLES, TPM2_HT_TRANSIENT << TPM2_HR_SHIFT,
                                            TPM2_MAX_CAP_HANDLES, &more, &raw);
            rc != TSS2_RC_SUCCESS) {
            return std::unexpected(g->failed("Esys_GetCapability", rc, "transient handles"));
        }
        EsysPtr<TPMS_CAPABILITY_DATA> caps(raw);
        std::size_t n = 0;
        for (UINT32 i = 0; i < caps->data.handles.count; ++i)
            n += (caps->data.handles.handle[i] >> TPM2_HR_SHIFT) == TPM2_HT_TRANSIENT;
        return n;
    }

    std::string description() const override {
        return "tpm2:path=FILE.tss or tpm2:handle=0x81xxxxxx [?pin-source=file:PIN]  key inside "
               "a TPM 2.0 (TCTI from --tcti or ACME_AGENT_TCTI, default device:/dev/tpmrm0)";
    }

  private:
    // ?owner-auth-source=file:PATH: the owner password of a provisioned TPM (same rules as
    // pin-source), handed to the connection, which uses it for the storage primary and
    // EvictControl.
    // ?endorsement-auth-source= likewise, for the attestation key (tpm/attest.h).
    Result<void> take_owner_auth(const KeyUri& uri) {
        for (const bool owner : {true, false}) {
            auto source = uri.query_attr(owner ? "owner-auth-source" : "endorsement-auth-source");
            if (!source) continue;
            KeyUri only_source = uri;
            only_source.set_query_attr("pin-source", *source);
            auto auth = auth_value(
                only_source,
                owner ? "owner password of the TPM" : "endorsement password of the TPM", true);
            if (!auth) return std::unexpected(auth.error());
            auto g = conn_->lock();
            if (!g) return std::unexpected(g.error());
            if (owner)
                conn_->set_owner_auth(*g, std::move(*auth));
            else
                conn_->set_endorsement_auth(*g, std::move(*auth));
        }
        return {};
    }

    Result<KeyPtr> generate_file(const KeyUri& uri, const std::string& path, KeyAlgorithm alg,
                                 const TPM2B_PUBLIC& tmpl) {
        std::error_code ec;
        if (std::filesystem::exists(path, ec))
            return fail(Errc::exists, path, "a key file is already there; refusing to overwrite");
        auto auth = auth_value(uri, "auth value for the new TPM key", false);
        if (!auth) return std::unexpected(auth.error());
        KeyFile file;
        EsysPtr<TPM2B_PUBLIC> pub;
        {
            auto g = conn_->lock();
            if (!g) return std::unexpected(g.error());
            auto parent = conn_->parent(*g, 0);
            if (!parent) return std::unexpected(parent.error());
            auto created = create_key(*g, *parent, tmpl, *auth);
            if (!created) return std::unexpected(created.error());
            file.parent = parent->handle;
            pub = std::move(created->pub);
            auto pub_bytes = marshal(*pub);
            auto priv_bytes = marshal(*created->priv);
            if (!pub_bytes || !priv_bytes)
                return std::unexpected(pub_bytes ? priv_bytes.error() : pub_bytes.error());
            file.pub = std::move(*pub_bytes);
            file.priv = std::move(*priv_bytes);
        }
        file.empty_auth = auth->empty();
        auto pem = encode_key_file(file);
        if (!pem) return std::unexpected(pem.error());
        // SECURITY.md rule 12: the file is the key, written durably and never over another.
        if (auto w = base::write_file_atomic(path, *pem, 0600, base::Overwrite::no); !w)
            return std::unexpected(w.error());
        auto spki = spki_of(pub->publicArea);
        if (!spki) return std::unexpected(spki.error());
        base::log::debug("tpm2: created " + std::string(keystore::algorithm_name(alg)) + " key " +
                         path + " under parent " + hex32(file.parent));
        return std::make_shared<TpmKey>(conn_, uri, alg, std::move(*spki),
                                        Place{std::move(file), 0}, std::move(*auth));
    }

    Result<KeyPtr> generate_persistent(const KeyUri& uri, KeyAlgorithm alg,
                                       const TPM2B_PUBLIC& tmpl) {
        auto h = parse_handle(uri);
        if (!h) return std::unexpected(h.error());
        if (*h == kSrkHandle || *h >= kPlatformFirst)
            return fail(Errc::usage, "key URI",
                        hex32(*h) +
                            (*h == kSrkHandle ? " is the SRK's handle (TCG provisioning guidance)"
                                              : " is in the platform range, which needs "
                                                "platform authorization") +
                            "; pick another persistent handle, e.g. 0x81000002");
        auto auth = auth_value(uri, "auth value for the new TPM key", false);
        if (!auth) return std::unexpected(auth.error());
        auto g = conn_->lock();
        if (!g) return std::unexpected(g.error());
        auto taken = persistent_handles(*g, *h, 1);
        if (!taken) return std::unexpected(taken.error());
        if (!taken->empty() && taken->front() == *h)
            return fail(Errc::exists, "tpm2",
                        "persistent handle " + hex32(*h) + " is occupied; refusing to overwrite");

        conn_->make_room(*g, 2);  // the SRK and the new key, loaded for EvictControl
        auto parent = conn_->parent(*g, 0);
        if (!parent) return std::unexpected(parent.error());
        auto created = create_key(*g, *parent, tmpl, *auth);
        if (!created) return std::unexpected(created.error());
        ESYS_TR loaded = ESYS_TR_NONE;
        if (TSS2_RC rc = Esys_Load(g->esys(), parent->tr, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                   ESYS_TR_NONE, created->priv.get(), created->pub.get(), &loaded);
            rc != TSS2_RC_SUCCESS) {
            return std::unexpected(g->failed("Esys_Load", rc, "the new key"));
        }
        Object transient(g->ref(), loaded, Object::Kind::transient);
        ESYS_TR persistent = ESYS_TR_NONE;
        if (auto a = conn_->use_owner_auth(*g); !a) return std::unexpected(a.error());
        if (TSS2_RC rc = Esys_EvictControl(g->esys(), ESYS_TR_RH_OWNER, loaded, ESYS_TR_PASSWORD,
                                           ESYS_TR_NONE, ESYS_TR_NONE, *h, &persistent);
            rc != TSS2_RC_SUCCESS) {
            auto e = g->failed("Esys_EvictControl", rc, "making the key persistent at " + hex32(*h),
                               AuthOf::owner);
            if (e.code == Errc::exists)
                e.message = "persistent handle " + hex32(*h) + " is occupied [" + e.message + "]";
            return std::unexpected(std::move(e));
        }
        Object(g->ref(), persistent, Object::Kind::persistent).reset();
        auto spki = spki_of(created->pub->publicArea);
        if (!spki) return std::unexpected(spki.error());
        base::log::debug("tpm2: created " + std::string(keystore::algorithm_name(alg)) +
                         " key at persistent handle " + hex32(*h));
        return std::make_shared<TpmKey>(conn_, with_handle(uri, *h), alg, std::move(*spki),
                                        Place{std::nullopt, *h}, std::move(*auth));
        // `transient` (the loaded copy) and a transient SRK are flushed here.
    }

    Result<KeyPtr> open_file(const KeyUri& uri, const std::string& path) {
        auto pem = base::read_file(path, 64 * 1024);
        if (!pem) return std::unexpected(pem.error());
        auto file = decode_key_file(*pem, path);
        if (!file) return std::unexpected(file.error());
        auto pub = unmarshal_public(file->pub);
        if (!pub) return std::unexpected(pub.error());
        auto alg = algorithm_of(pub->publicArea);
        if (!alg) {
            base::Error e = alg.error();
            e.where = path;
            return std::unexpected(std::move(e));
        }
        auto spki = spki_of(pub->publicArea);
        if (!spki) return std::unexpected(spki.error());
        // emptyAuth FALSE says the key has an auth value: from pin-source, else a prompt.
        // emptyAuth TRUE: a pin-source is ignored, since sending a value to a key that has
        // none would count as a dictionary-attack failure.
        Result<Secret> auth = Secret{};
        if (!file->empty_auth)
            auth = auth_value(uri, "auth value for TPM key " + path, true);
        else if (uri.query_attr("pin-source"))
            base::log::debug("tpm2: " + path + " has no auth value; ignoring pin-source");
        if (!auth) return std::unexpected(auth.error());
        auto key = std::make_shared<TpmKey>(conn_, uri, *alg, std::move(*spki),
                                            Place{std::move(*file), 0}, std::move(*auth));
        // Load now, so a file from another TPM fails at open, not at the first signature.
        if (auto p = key->properties(); !p) return std::unexpected(p.error());
        return key;
    }

    static Result<std::vector<KeyInfo>> list_files(const KeyUri& uri, const std::string& path) {
        std::vector<KeyInfo> out;
        auto add = [&](const std::string& file) -> Result<void> {
            auto pem = base::read_file(file, 64 * 1024);
            if (!pem) return std::unexpected(pem.error());
            auto f = decode_key_file(*pem, file);
            if (!f) return std::unexpected(f.error());
            auto pub = unmarshal_public(f->pub);
            if (!pub) return std::unexpected(pub.error());
            auto alg = algorithm_of(pub->publicArea);
            if (!alg) return std::unexpected(alg.error());
            KeyUri k = uri;
            k.set_path_attr("path", file);
            out.push_back({std::move(k), *alg});
            return {};
        };
        std::error_code ec;
        if (!std::filesystem::is_directory(path, ec)) {
            if (auto r = add(path); !r) return std::unexpected(r.error());
            return out;
        }
        std::vector<std::string> files;
        for (const auto& entry : std::filesystem::directory_iterator(path, ec))
            if (entry.path().extension() == ".tss" && entry.is_regular_file())
                files.push_back(entry.path().string());
        if (ec) return fail(Errc::io, path, ec.message());
        std::ranges::sort(files);
        for (auto& f : files)
            if (auto r = add(f); !r) base::log::debug("tpm2: skipping " + r.error().describe());
        return out;
    }

    // Handles of persistent objects from `first` on (at most `count`).
    static Result<std::vector<std::uint32_t>> persistent_handles(Guard& g, std::uint32_t first,
                                                                 std::uint32_t count) {
        std::vector<std::uint32_t> out;
        TPMI_YES_NO more = TPM2_YES;
        std::uint32_t next = first;
        while (more == TPM2_YES && out.size() < count) {
            TPMS_CAPABILITY_DATA* raw = nullptr;
            if (TSS2_RC rc = Esys_GetCapability(
                    g.esys(), ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES, next,
                    std::min<std::uint32_t>(count, TPM2_MAX_CAP_HANDLES), &more, &raw);
                rc != TSS2_RC_SUCCESS) {
                return std::unexpected(g.failed("Esys_GetCapability", rc, "persistent handles"));
            }
            EsysPtr<TPMS_CAPABILITY_DATA> caps(raw);
            const auto& hl = caps->data.handles;
            if (hl.count == 0) break;
            for (UINT32 i = 0; i < hl.count && out.size() < count; ++i)
                if (hl.handle[i] >= first && hl.handle[i] <= kPersistentLast)
                    out.push_back(hl.handle[i]);
            next = hl.handle[hl.count - 1] + 1;
            if (next > kPersistentLast) break;
        }
        return out;
    }

    static Result<TPMT_PUBLIC> read_public(Guard& g, ESYS_TR tr) {
        TPM2B_PUBLIC* raw = nullptr;
        if (TSS2_RC rc = Esys_ReadPublic(g.esys(), tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                         &raw, nullptr, nullptr);
            rc != TSS2_RC_SUCCESS) {
            return std::unexpected(g.failed("Esys_ReadPublic", rc));
        }
        EsysPtr<TPM2B_PUBLIC> pub(raw);
        return pub->publicArea;
    }

    static Result<TPMT_PUBLIC> read_persistent(Guard& g, std::uint32_t h) {
        ESYS_TR tr = ESYS_TR_NONE;
        if (TSS2_RC rc =
                Esys_TR_FromTPMPublic(g.esys(), h, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &tr);
            rc != TSS2_RC_SUCCESS)
            return no_handle(g, h, rc);
        Object obj(g.ref(), tr, Object::Kind::persistent);
        return read_public(g, tr);
    }

    static std::unexpected<base::Error> no_handle(Guard& g, std::uint32_t h, TSS2_RC rc) {
        auto e = g.failed("Esys_TR_FromTPMPublic", rc, hex32(h));
        if (is_no_object(rc)) {
            e.code = Errc::not_found;
            e.message = "no object at persistent handle " + hex32(h);
        }
        return std::unexpected(std::move(e));
    }

    std::shared_ptr<Connection> conn_;
};

}  // namespace

Result<std::size_t> transient_handles(keystore::Keystore& ks) {
    auto* tpm = dynamic_cast<TpmKeystore*>(&ks);
    if (!tpm) return fail(Errc::usage, "tpm2", "not a TPM keystore");
    return tpm->transient_handles();
}

Result<Attestation> attest(const keystore::Key& key, std::span<const std::uint8_t> nonce) {
    const auto* tpm = dynamic_cast<const TpmKey*>(&key);
    if (!tpm)
        return fail(Errc::unsupported, key.uri().to_string(),
                    "attestation evidence is made by a TPM: give a tpm2: key (tpm2:path=FILE.tss "
                    "or tpm2:handle=0x81...); PKCS#11 and file keys have no TPM2_Certify");
    // TPM2B_DATA holds at most a SHA-512 digest (TPM 2.0 part 2, 10.4.3).
    if (nonce.empty() || nonce.size() > sizeof(TPMU_HA))
        return fail(Errc::usage, "--nonce",
                    "the nonce must be 1 to " + std::to_string(sizeof(TPMU_HA)) + " bytes");
    return tpm->attest(nonce);
}

std::unique_ptr<keystore::Keystore> make_keystore(std::string tcti) {
    if (tcti.empty()) {
        const char* env = std::getenv("ACME_AGENT_TCTI");
        tcti = env && *env ? env : "device:/dev/tpmrm0";
    }
    return std::make_unique<TpmKeystore>(std::move(tcti));
}

}  // namespace tpm
