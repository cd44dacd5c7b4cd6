#include "pkcs11/pkcs11_keystore.h"

#include "base/log.h"
#include "keystore/mac.h"
#include "pkcs11/key.h"
#include "pkcs11/mac_key.h"
#include "pkcs11/module.h"
#include "pkcs11/object.h"
#include "pkcs11/token.h"

#include <filesystem>
#include <map>
#include <mutex>

namespace pkcs11 {

using base::Bytes;
using base::Errc;
using base::fail;
using keystore::KeyAlgorithm;
using keystore::KeyInfo;
using keystore::KeyPtr;
using keystore::KeyUri;

namespace {

// Finds tokens by the URI's token attributes (one Token per module and slot, shared by
// every key on it) and keys on them by object=/id=.
class Pkcs11Keystore final : public keystore::Keystore, public keystore::MacKeystore {
  public:
    Result<KeyUri> import_hmac(const KeyUri& uri, const base::Secret& key) override {
        auto token = token_for(uri);
        if (!token) return std::unexpected(token.error());
        auto label = uri.path_attr("object");
        if (!label) return fail(Errc::usage, "key URI", "name the HMAC key with object=LABEL");
        if (auto l = (*token)->login(uri); !l) return std::unexpected(l.error());
        Bytes id;
        if (auto given = uri.path_attr("id")) {
            id.assign(given->begin(), given->end());
        } else {
            auto fresh = new_object_id();
            if (!fresh) return std::unexpected(fresh.error());
            id = std::move(*fresh);
        }
        auto lease = (*token)->session();
        if (!lease) return std::unexpected(lease.error());
        auto* fn = (*token)->fn();
        if (auto r = refuse_to_shadow(fn, lease->get(), *label, id, (*token)->label()); !r)
            return std::unexpected(r.error());
        if (auto r = create_mac_key(**token, lease->get(), *label, id, key); !r)
            return std::unexpected(r.error());
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
            auto fresh = new_object_id();
            if (!fresh) return std::unexpected(fresh.error());
            q->id = std::move(*fresh);
        }
        auto lease = (*token)->session();
        if (!lease) return std::unexpected(lease.error());
        auto* fn = (*token)->fn();
        const CK_SESSION_HANDLE s = lease->get();
        if (auto r = refuse_to_shadow(fn, s, *q->label, *q->id, (*token)->label()); !r)
            return std::unexpected(r.error());
        auto hpriv = generate_key_pair(**token, s, alg, *q->label, *q->id, options);
        if (!hpriv) return std::unexpected(hpriv.error());
        KeyUri full = canonical_uri(uri, **token, *q->label, *q->id);
        auto pk = public_key_of(fn, s, *hpriv, *q->id);
        if (!pk) return std::unexpected(pk.error());
        return std::make_shared<Pkcs11Key>(*token, full, pk->first, std::move(pk->second), *q->id,
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
                if (auto r = check_rv("C_DestroyObject", fn->C_DestroyObject(lease->get(), h)); !r)
                    return r;
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
        // A module that lost its connection since (a network HSM restarted under `run`) is
        // re-initialized here; the tokens' sessions recover when they are next used.
        auto slots = (*module)->token_slots(Token::token_wait());
        if (!slots) return std::unexpected(slots.error());

        std::string present;
        for (CK_SLOT_ID slot : *slots) {
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
            std::shared_ptr<Token> token;
            {
                std::lock_guard lock(mutex_);
                auto& cached = tokens_[{*path, slot}];
                if (!cached) cached = std::make_shared<Token>(*module, slot, info);
                token = cached;
            }
            if (auto r = token->follow_module(uri); !r) return std::unexpected(r.error());
            return token;
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
