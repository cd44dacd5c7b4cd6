// Certificates at the CA: download (with alternate chains), revocation (RFC 8555 §7.6)
// and renewal information (ARI, RFC 9773).
#pragma once

#include "acme/client.h"
#include "x509/cert.h"

#include <chrono>
#include <optional>
#include <string>

namespace acme {

struct Chain {
    std::string cert_pem;   // the leaf
    std::string chain_pem;  // the issuers, in order
    x509::CertInfo leaf;
};

// Downloads the certificate at `url` (POST-as-GET). With `preferred_issuer`, the default
// chain and up to 5 alternates (Link rel="alternate") are compared by the CN of the issuer
// of their top certificate, and the first match is taken; otherwise the default chain.
// Refuses a chain with anything but CERTIFICATE blocks, or whose leaf key is not `spki`.
Result<Chain> download_certificate(Client& client, const keystore::Key& account_key,
                                   const std::string& kid, const std::string& url,
                                   const base::Bytes& spki,
                                   const std::string& preferred_issuer = "");

// RFC 5280 CRLReason names and codes accepted by --reason: "unspecified" 0,
// "keyCompromise" 1, "superseded" 4, "cessationOfOperation" 5, ... or the number.
std::optional<int> parse_reason(const std::string& text);

// revokeCert signed by `signer`: the account key (kid = account URL) or the certificate's
// own key (kid = nullopt: the JWS carries the key's jwk).
Result<void> revoke(Client& client, const keystore::Key& signer,
                    const std::optional<std::string>& kid, const base::Bytes& cert_der,
                    std::optional<int> reason);

// RFC 9773 §4.1: base64url(AKI keyIdentifier) "." base64url(serial content octets).
std::string ari_cert_id(const base::Bytes& aki, const base::Bytes& serial_der);

struct RenewalWindow {
    std::chrono::system_clock::time_point start, end;
    std::string explanation_url;  // as sent; the caller escapes it for display
    // The CA's Retry-After: when to ask again (RFC 9773 §4.3), if it said.
    std::optional<std::chrono::system_clock::time_point> check_again;
};
// The CA's suggested renewal window, or nullopt when the directory has no renewalInfo.
// The window is clamped to the certificate's lifetime (clamp_window).
Result<std::optional<RenewalWindow>> renewal_info(Client& client, const x509::CertInfo& cert);

// A window that ends after the certificate expires would let it expire: start and end are
// moved to no later than notAfter minus a tenth of the lifetime.
RenewalWindow clamp_window(RenewalWindow w, std::chrono::system_clock::time_point not_before,
                           std::chrono::system_clock::time_point not_after);

}  // namespace acme
