#include "pkcs11/mac_key.h"

#include "pkcs11/object.h"

#include <vector>

namespace pkcs11 {

using base::Bytes;
using base::Errc;
using base::fail;

Result<void> create_mac_key(const Token& token, CK_SESSION_HANDLE s, const std::string& label,
                            Bytes id, const base::Secret& key) {
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
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
        {CKA_LABEL, const_cast<char*>(label.data()), label.size()},
        {CKA_ID, id.data(), id.size()},
        {CKA_VALUE, const_cast<char*>(key.reveal().data()), key.reveal().size()}};
    CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
    return check_rv("C_CreateObject", token.fn()->C_CreateObject(s, tmpl.data(), tmpl.size(), &h),
                    "HMAC key on token '" + token.label() + "'");
}

Result<Bytes> Pkcs11MacKey::hmac_sha256(std::span<const std::uint8_t> data) const {
    auto lease = token_->session();
    if (!lease) return std::unexpected(lease.error());
    auto* fn = token_->fn();
    ObjectQuery q{std::nullopt, id_, CKO_SECRET_KEY};
    auto found = find(fn, lease->get(), q.tmpl());
    if (!found) return std::unexpected(found.error());
    if (found->empty()) return fail(Errc::not_found, "pkcs11", "the HMAC key is gone");
    CK_MECHANISM mech{CKM_SHA256_HMAC, nullptr, 0};
    if (auto r = check_rv("C_SignInit", fn->C_SignInit(lease->get(), &mech, found->front()),
                          "HMAC-SHA256");
        !r) {
        lease->broken();
        return std::unexpected(r.error());
    }
    Bytes mac(32);
    CK_ULONG len = mac.size();
    if (auto r = check_rv("C_Sign",
                          fn->C_Sign(lease->get(), const_cast<std::uint8_t*>(data.data()),
                                     data.size(), mac.data(), &len),
                          "HMAC-SHA256");
        !r) {
        lease->broken();
        return std::unexpected(r.error());
    }
    mac.resize(len);
    return mac;
}

}  // namespace pkcs11
