#include "tpm/key_file.h"

#include "base/deleter.h"
#include "base/ossl.h"

#include <openssl/asn1t.h>
#include <openssl/pem.h>

#include <cstring>

// The ASN.1 template of TPMKey; the struct's layout is what the template macros describe.
struct AcmeAgentTss2Key {
    ASN1_OBJECT* type;
    ASN1_BOOLEAN empty_auth;  // -1 when absent
    ASN1_INTEGER* parent;
    ASN1_OCTET_STRING* pubkey;
    ASN1_OCTET_STRING* privkey;
};

extern "C" {
ASN1_SEQUENCE(AcmeAgentTss2Key) = {
    ASN1_SIMPLE(AcmeAgentTss2Key, type, ASN1_OBJECT),
    ASN1_EXP_OPT(AcmeAgentTss2Key, empty_auth, ASN1_BOOLEAN, 0),
    ASN1_SIMPLE(AcmeAgentTss2Key, parent, ASN1_INTEGER),
    ASN1_SIMPLE(AcmeAgentTss2Key, pubkey, ASN1_OCTET_STRING),
    ASN1_SIMPLE(AcmeAgentTss2Key, privkey, ASN1_OCTET_STRING),
} ASN1_SEQUENCE_END(AcmeAgentTss2Key)
}

namespace tpm {

using base::Errc;
using base::fail;

namespace {

constexpr const char* kPemLabel = "TSS2 PRIVATE KEY";
constexpr const char* kLoadableKeyOid = "2.23.133.10.1.3";

void free_tss2_key(AcmeAgentTss2Key* k) {
    ASN1_item_free(reinterpret_cast<ASN1_VALUE*>(k), ASN1_ITEM_rptr(AcmeAgentTss2Key));
}
using Tss2KeyPtr = std::unique_ptr<AcmeAgentTss2Key, base::Deleter<free_tss2_key>>;

// OPENSSL_free is a macro (it passes __FILE__ and __LINE__), so it needs a function.
void free_pem_data(unsigned char* p) {
    OPENSSL_free(p);
}
using PemData = std::unique_ptr<unsigned char, base::Deleter<free_pem_data>>;

}  // namespace

base::Result<std::string> encode_key_file(const KeyFile& key) {
    Tss2KeyPtr k(
        reinterpret_cast<AcmeAgentTss2Key*>(ASN1_item_new(ASN1_ITEM_rptr(AcmeAgentTss2Key))));
    if (!k) return base::ossl::fail_ossl("ASN1_item_new");
    ASN1_OBJECT_free(k->type);
    k->type = OBJ_txt2obj(kLoadableKeyOid, 1);
    // Always written, as tpm2-openssl does: its 1.1.1 reads an absent emptyAuth as TRUE
    // (measured: a key file without it fails there with TPM_RC_AUTH_FAIL).
    k->empty_auth = key.empty_auth ? 0xff : 0;
    if (!k->type || !ASN1_INTEGER_set_uint64(k->parent, key.parent) ||
        !ASN1_OCTET_STRING_set(k->pubkey, key.pub.data(), static_cast<int>(key.pub.size())) ||
        !ASN1_OCTET_STRING_set(k->privkey, key.priv.data(), static_cast<int>(key.priv.size())))
        return base::ossl::fail_ossl("TSS2 key file");
    unsigned char* der = nullptr;
    const int len = ASN1_item_i2d(reinterpret_cast<ASN1_VALUE*>(k.get()), &der,
                                  ASN1_ITEM_rptr(AcmeAgentTss2Key));
    PemData der_owner(der);
    if (len <= 0) return base::ossl::fail_ossl("i2d TSS2 key");
    base::ossl::Bio bio(BIO_new(BIO_s_mem()));
    if (!bio || !PEM_write_bio(bio.get(), kPemLabel, "", der, len))
        return base::ossl::fail_ossl("PEM_write_bio");
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

base::Result<KeyFile> decode_key_file(std::string_view pem, const std::string& name) {
    auto bad = [&](const std::string& why) {
        return fail(Errc::io, name, "not a TSS2 PRIVATE KEY file usable here: " + why);
    };
    base::ossl::Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    char* label = nullptr;
    char* header = nullptr;
    unsigned char* der = nullptr;
    long len = 0;
    if (!bio || PEM_read_bio(bio.get(), &label, &header, &der, &len) != 1) {
        ERR_clear_error();
        return bad("no PEM block");
    }
    PemData der_owner(der);
    const bool right_label = std::strcmp(label, kPemLabel) == 0;
    OPENSSL_free(label);
    OPENSSL_free(header);
    if (!right_label) return bad("the PEM label is not '" + std::string(kPemLabel) + "'");

    const unsigned char* p = der;
    Tss2KeyPtr k(reinterpret_cast<AcmeAgentTss2Key*>(
        ASN1_item_d2i(nullptr, &p, len, ASN1_ITEM_rptr(AcmeAgentTss2Key))));
    if (!k || p != der + len) {
        ERR_clear_error();
        return bad("malformed TPMKey DER");
    }
    char oid[64];
    if (OBJ_obj2txt(oid, sizeof oid, k->type, 1) <= 0 || std::strcmp(oid, kLoadableKeyOid) != 0)
        return bad(std::string("type ") + oid + " is not a loadable key (" + kLoadableKeyOid + ")");
    std::uint64_t parent = 0;
    if (!ASN1_INTEGER_get_uint64(&parent, k->parent) || parent > 0xffffffffu) {
        ERR_clear_error();
        return bad("parent handle out of range");
    }
    KeyFile out;
    out.parent = parent == 0 ? kOwnerParent : static_cast<std::uint32_t>(parent);
    out.empty_auth = k->empty_auth > 0;
    out.pub.assign(k->pubkey->data, k->pubkey->data + k->pubkey->length);
    out.priv.assign(k->privkey->data, k->privkey->data + k->privkey->length);
    return out;
}

}  // namespace tpm
