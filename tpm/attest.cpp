#include "tpm/attest.h"

#include "base/log.h"
#include "base/ossl.h"
#include "tpm/cbor.h"

#include <tss2/tss2_mu.h>

#include <openssl/ecdsa.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace tpm {

using base::Bytes;
using base::Errc;
using base::fail;
using base::Result;
using Guard = Connection::Guard;

namespace {

struct EsysFree {
    void operator()(void* p) const noexcept { Esys_Free(p); }
};
template <typename T>
using EsysPtr = std::unique_ptr<T, EsysFree>;

// EK certificate NV indices (TCG EK Credential Profile 2.x §2.2.1.5): RSA 2048, ECC
// P-256 (low range), then the high range (RSA 2048/3072/4096, ECC P-256/P-384/P-521).
constexpr std::uint32_t kEkCertIndices[] = {0x01c00002, 0x01c0000a, 0x01c00012, 0x01c00014,
                                            0x01c0001c, 0x01c00016, 0x01c00018};
// The chain to the manufacturer's CA, when the TPM carries it: one or more DER certificates
// per index, from 0x01c00100 on (same profile).
constexpr std::uint32_t kEkChainFirst = 0x01c00100;
constexpr std::uint32_t kEkChainMax = 16;
// Well below every TPM's TPM2_PT_NV_BUFFER_MAX (1024 on swtpm and common chips).
constexpr UINT16 kNvChunk = 512;

std::string hex32(std::uint32_t v) {
    char buf[16];
    (void)std::snprintf(buf, sizeof buf, "0x%08x", v);
    return buf;
}

Result<Bytes> marshal_public_area(const TPMT_PUBLIC& pub) {
    Bytes out(sizeof(TPMT_PUBLIC));
    std::size_t off = 0;
    if (TSS2_RC rc = Tss2_MU_TPMT_PUBLIC_Marshal(&pub, out.data(), out.size(), &off); rc)
        return fail(Errc::internal, "Tss2_MU_TPMT_PUBLIC_Marshal", "cannot marshal", rc);
    out.resize(off);
    return out;
}

Result<Bytes> public_area(Guard& g, ESYS_TR tr, std::string_view what) {
    TPM2B_PUBLIC* raw = nullptr;
    if (TSS2_RC rc = Esys_ReadPublic(g.esys(), tr, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &raw,
                                     nullptr, nullptr);
        rc != TSS2_RC_SUCCESS)
        return std::unexpected(g.failed("Esys_ReadPublic", rc, what));
    EsysPtr<TPM2B_PUBLIC> pub(raw);
    return marshal_public_area(pub->publicArea);
}

// The contents of NV index `index`; nullopt when the TPM has no such index. EK certificate
// indices are readable with their own (empty) auth value (TPMA_NV_AUTHREAD).
Result<std::optional<Bytes>> read_nv(Guard& g, std::uint32_t index) {
    ESYS_TR nv = ESYS_TR_NONE;
    if (TSS2_RC rc =
            Esys_TR_FromTPMPublic(g.esys(), index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv);
        rc != TSS2_RC_SUCCESS) {
        if (is_no_object(rc)) return std::nullopt;
        return std::unexpected(g.failed("Esys_TR_FromTPMPublic", rc, "NV index " + hex32(index)));
    }
    Object owned(g.ref(), nv, Object::Kind::persistent);  // ESAPI metadata only
    TPM2B_NV_PUBLIC* raw = nullptr;
    if (TSS2_RC rc = Esys_NV_ReadPublic(g.esys(), nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                        &raw, nullptr);
        rc != TSS2_RC_SUCCESS)
        return std::unexpected(g.failed("Esys_NV_ReadPublic", rc, "NV index " + hex32(index)));
    const UINT16 size = raw->nvPublic.dataSize;
    Esys_Free(raw);
    Bytes out;
    while (out.size() < size) {
        const auto n = static_cast<UINT16>(std::min<std::size_t>(kNvChunk, size - out.size()));
        TPM2B_MAX_NV_BUFFER* data = nullptr;
        if (TSS2_RC rc = Esys_NV_Read(g.esys(), nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                      ESYS_TR_NONE, n, static_cast<UINT16>(out.size()), &data);
            rc != TSS2_RC_SUCCESS)
            return std::unexpected(g.failed("Esys_NV_Read", rc, "NV index " + hex32(index)));
        out.insert(out.end(), data->buffer, data->buffer + data->size);
        const bool empty = data->size == 0;
        Esys_Free(data);
        if (empty) break;
    }
    return out;
}

// Splits DER certificates stored back to back; Errc::hardware for anything else (a TPM
// whose EK certificate index holds garbage is not evidence).
Result<std::vector<Bytes>> split_certificates(const Bytes& data, std::uint32_t index) {
    std::vector<Bytes> out;
    const std::uint8_t* p = data.data();
    const std::uint8_t* end = p + data.size();
    while (p < end && *p == 0x30) {
        const std::uint8_t* start = p;
        base::ossl::X509Ptr cert(d2i_X509(nullptr, &p, end - p));
        if (!cert) break;
        out.emplace_back(start, p);
    }
    // Trailing 0x00 / 0xff padding is what an NV index larger than its certificate holds.
    if (out.empty() || !std::all_of(p, end, [](std::uint8_t b) { return b == 0 || b == 0xff; }))
        return fail(Errc::hardware, "tpm2",
                    "NV index " + hex32(index) + " does not hold DER certificates");
    return out;
}

// The EK certificate (the first index that exists) and the chain indices after it.
Result<std::pair<std::vector<Bytes>, std::uint32_t>> ek_certificates(Guard& g) {
    std::vector<Bytes> out;
    std::uint32_t found = 0;
    for (std::uint32_t index : kEkCertIndices) {
        auto nv = read_nv(g, index);
        if (!nv) return std::unexpected(nv.error());
        if (!*nv) continue;
        auto certs = split_certificates(**nv, index);
        if (!certs) return std::unexpected(certs.error());
        out.push_back(std::move(certs->front()));
        found = index;
        break;
    }
    if (!found) return std::pair{std::move(out), found};
    for (std::uint32_t index = kEkChainFirst; index < kEkChainFirst + kEkChainMax; ++index) {
        auto nv = read_nv(g, index);
        if (!nv) return std::unexpected(nv.error());
        if (!*nv) break;
        auto certs = split_certificates(**nv, index);
        if (!certs) return std::unexpected(certs.error());
        for (auto& c : *certs) out.push_back(std::move(c));
    }
    return std::pair{std::move(out), found};
}

Result<Object> create_ak(Guard& g) {
    if (auto a = g.conn().use_endorsement_auth(g); !a) return std::unexpected(a.error());
    TPM2B_SENSITIVE_CREATE sensitive{};
    const TPM2B_PUBLIC tmpl = ak_template();
    const TPM2B_DATA outside{};
    const TPML_PCR_SELECTION pcrs{};
    ESYS_TR tr = ESYS_TR_NONE;
    if (TSS2_RC rc = Esys_CreatePrimary(g.esys(), ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD,
                                        ESYS_TR_NONE, ESYS_TR_NONE, &sensitive, &tmpl, &outside,
                                        &pcrs, &tr, nullptr, nullptr, nullptr, nullptr);
        rc != TSS2_RC_SUCCESS)
        return std::unexpected(g.failed("Esys_CreatePrimary", rc,
                                        "creating the attestation key under the endorsement "
                                        "hierarchy",
                                        AuthOf::endorsement));
    return Object(g.ref(), tr, Object::Kind::transient);
}

// ECDSA r and s as the DER ECDSA-Sig-Value that COSE ES256 verifiers of WebAuthn take.
Result<Bytes> der_signature(const TPMT_SIGNATURE& sig) {
    if (sig.sigAlg != TPM2_ALG_ECDSA || sig.signature.ecdsa.hash != TPM2_ALG_SHA256)
        return fail(Errc::hardware, "Esys_Certify",
                    "the TPM did not sign with the AK's scheme (ECDSA, SHA-256)");
    const auto& r = sig.signature.ecdsa.signatureR;
    const auto& s = sig.signature.ecdsa.signatureS;
    base::ossl::EcdsaSig es(ECDSA_SIG_new());
    BIGNUM* br = BN_bin2bn(r.buffer, r.size, nullptr);
    BIGNUM* bs = BN_bin2bn(s.buffer, s.size, nullptr);
    if (!es || !br || !bs || ECDSA_SIG_set0(es.get(), br, bs) != 1) {
        BN_free(br);
        BN_free(bs);
        return base::ossl::fail_ossl("ECDSA_SIG_set0");
    }
    const int len = i2d_ECDSA_SIG(es.get(), nullptr);
    if (len <= 0) return base::ossl::fail_ossl("i2d_ECDSA_SIG");
    Bytes out(static_cast<std::size_t>(len));
    std::uint8_t* p = out.data();
    i2d_ECDSA_SIG(es.get(), &p);
    return out;
}

}  // namespace

TPM2B_PUBLIC ak_template() {
    TPM2B_PUBLIC t{};
    TPMT_PUBLIC& p = t.publicArea;
    p.type = TPM2_ALG_ECC;
    p.nameAlg = TPM2_ALG_SHA256;
    p.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
                         TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH |
                         TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
    p.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
    p.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
    p.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
    p.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
    p.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
    return t;
}

Result<Attestation> certify(Guard& g, ESYS_TR key, ESYS_TR key_session,
                            std::span<const std::uint8_t> nonce) {
    Attestation out;
    auto pub = public_area(g, key, "the key");
    if (!pub) return std::unexpected(pub.error());
    out.pub_area = std::move(*pub);
    auto ak = create_ak(g);
    if (!ak) return std::unexpected(ak.error());
    auto ak_pub = public_area(g, ak->get(), "the attestation key");
    if (!ak_pub) return std::unexpected(ak_pub.error());
    out.ak_pub_area = std::move(*ak_pub);

    TPM2B_DATA qualifying{};
    qualifying.size = static_cast<UINT16>(nonce.size());
    std::memcpy(qualifying.buffer, nonce.data(), nonce.size());
    TPMT_SIG_SCHEME scheme{};
    scheme.scheme = TPM2_ALG_NULL;  // the AK's own (restricted keys allow no other)
    TPM2B_ATTEST* info = nullptr;
    TPMT_SIGNATURE* sig = nullptr;
    if (TSS2_RC rc = Esys_Certify(g.esys(), key, ak->get(), key_session, ESYS_TR_PASSWORD,
                                  ESYS_TR_NONE, &qualifying, &scheme, &info, &sig);
        rc != TSS2_RC_SUCCESS)
        return std::unexpected(g.failed("Esys_Certify", rc, "certifying the key", AuthOf::key));
    EsysPtr<TPM2B_ATTEST> info_owned(info);
    EsysPtr<TPMT_SIGNATURE> sig_owned(sig);
    out.cert_info.assign(info->attestationData, info->attestationData + info->size);
    auto der = der_signature(*sig);
    if (!der) return std::unexpected(der.error());
    out.sig = std::move(*der);
    ak->reset();  // the AK's slot is free before the NV reads

    auto ek = ek_certificates(g);
    if (!ek) return std::unexpected(ek.error());
    out.x5c = std::move(ek->first);
    out.ek_cert_index = ek->second;
    if (!out.ek_cert_index)
        base::log::debug("tpm2: no EK certificate in NV; the evidence carries no x5c");
    return out;
}

Bytes attestation_cbor(const Attestation& a) {
    std::vector<std::pair<Bytes, Bytes>> stmt{
        {cbor::text("ver"), cbor::text("2.0")},
        {cbor::text("alg"), cbor::integer(a.alg)},
        {cbor::text("sig"), cbor::bytes(a.sig)},
        {cbor::text("certInfo"), cbor::bytes(a.cert_info)},
        {cbor::text("pubArea"), cbor::bytes(a.pub_area)},
    };
    if (!a.x5c.empty()) {
        std::vector<Bytes> certs;
        certs.reserve(a.x5c.size());
        for (const auto& c : a.x5c) certs.push_back(cbor::bytes(c));
        stmt.emplace_back(cbor::text("x5c"), cbor::array(certs));
    }
    return cbor::map({
        {cbor::text("fmt"), cbor::text("tpm")},
        {cbor::text("attStmt"), cbor::map(std::move(stmt))},
        {cbor::text("akPubArea"), cbor::bytes(a.ak_pub_area)},
    });
}

}  // namespace tpm
