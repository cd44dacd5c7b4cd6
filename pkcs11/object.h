// Internal to pkcs11/. Objects on a token: reading attributes, searching by template, the
// object=/id= of a key URI as a search, and the rules every new object follows (a fresh
// random CKA_ID, never shadowing an existing object).
#pragma once

#include "base/bytes.h"
#include "base/error.h"
#include "keystore/key_uri.h"
#include "pkcs11/rv.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace pkcs11 {

// CK_BBOOL values for templates (the template holds a pointer to them).
inline CK_BBOOL kTrue = CK_TRUE;
inline CK_BBOOL kFalse = CK_FALSE;

// Reads one variable-length attribute. std::nullopt when the token refuses (sensitive,
// absent): that refusal is itself a fact callers check.
std::optional<base::Bytes> get_attr(CK_FUNCTION_LIST* fn, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                                    CK_ATTRIBUTE_TYPE type);
std::optional<bool> get_bool(CK_FUNCTION_LIST* fn, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                             CK_ATTRIBUTE_TYPE type);

// Every object matching `tmpl` (C_FindObjectsInit / C_FindObjects / C_FindObjectsFinal).
Result<std::vector<CK_OBJECT_HANDLE>> find(CK_FUNCTION_LIST* fn, CK_SESSION_HANDLE s,
                                           std::vector<CK_ATTRIBUTE> tmpl);

// The search template of the URI's object=/id= (and class).
struct ObjectQuery {
    std::optional<std::string> label;
    std::optional<base::Bytes> id;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;

    // Points into this query: valid while it lives, unchanged.
    std::vector<CK_ATTRIBUTE> tmpl(bool with_class = true);
    [[nodiscard]] std::string describe() const;
};

// The object=/id= of a key URI; Errc::usage for a type= that is not a signing or secret key.
Result<ObjectQuery> object_query(const keystore::KeyUri& uri);

// A CKA_ID for a new object: 16 random bytes.
Result<base::Bytes> new_object_id();

// Errc::exists when the token already holds an object of any class with `label` or `id`:
// a new key never shadows one (which of two a later lookup finds is up to the token).
Result<void> refuse_to_shadow(CK_FUNCTION_LIST* fn, CK_SESSION_HANDLE s, const std::string& label,
                              const base::Bytes& id, std::string_view token_label);

}  // namespace pkcs11
