#include "pkcs11/object.h"

#include "base/ossl.h"

#include <openssl/rand.h>

namespace pkcs11 {

using base::Bytes;
using base::Errc;
using base::fail;

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
    if (auto r = check_rv("C_FindObjectsInit", fn->C_FindObjectsInit(s, tmpl.data(), tmpl.size()));
        !r)
        return std::unexpected(r.error());
    std::vector<CK_OBJECT_HANDLE> out;
    CK_OBJECT_HANDLE batch[32];
    CK_ULONG n = 0;
    CK_RV rv = CKR_OK;
    while ((rv = fn->C_FindObjects(s, batch, 32, &n)) == CKR_OK && n > 0)
        out.insert(out.end(), batch, batch + n);
    fn->C_FindObjectsFinal(s);
    if (auto r = check_rv("C_FindObjects", rv); !r) return std::unexpected(r.error());
    return out;
}

std::vector<CK_ATTRIBUTE> ObjectQuery::tmpl(bool with_class) {
    std::vector<CK_ATTRIBUTE> t;
    if (with_class) t.push_back({CKA_CLASS, &cls, sizeof cls});
    if (label) t.push_back({CKA_LABEL, label->data(), label->size()});
    if (id) t.push_back({CKA_ID, id->data(), id->size()});
    return t;
}

std::string ObjectQuery::describe() const {
    std::string d;
    if (label) d += "object=" + *label;
    if (id)
        d += std::string(d.empty() ? "" : ";") +
             "id=" + keystore::percent_encode(std::string(id->begin(), id->end()));
    return d;
}

Result<ObjectQuery> object_query(const keystore::KeyUri& uri) {
    ObjectQuery q;
    q.label = uri.path_attr("object");
    if (auto id = uri.path_attr("id")) q.id = Bytes(id->begin(), id->end());
    if (auto type = uri.path_attr("type"); type && *type != "private" && *type != "secret-key")
        return fail(Errc::usage, "key URI",
                    "type=" + *type + " does not name a signing key (use type=private or omit it)");
    return q;
}

Result<Bytes> new_object_id() {
    Bytes id(16);
    if (RAND_bytes(id.data(), static_cast<int>(id.size())) != 1)
        return base::ossl::fail_ossl("RAND_bytes");
    return id;
}

Result<void> refuse_to_shadow(CK_FUNCTION_LIST* fn, CK_SESSION_HANDLE s, const std::string& label,
                              const Bytes& id, std::string_view token_label) {
    for (auto q : {ObjectQuery{label, std::nullopt}, ObjectQuery{std::nullopt, id}}) {
        auto found = find(fn, s, q.tmpl(false));
        if (!found) return std::unexpected(found.error());
        if (!found->empty())
            return fail(Errc::exists, "pkcs11",
                        "token '" + std::string(token_label) + "' already holds an object with " +
                            q.describe() + "; choose another object= label or delete it");
    }
    return {};
}

}  // namespace pkcs11
