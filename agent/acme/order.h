// Orders (RFC 8555 §7.4): newOrder, authorizations solved through a challenge::Solver,
// finalize with a CSR signed by the certificate Key, download and check the chain.
#pragma once

#include "acme/certificate.h"
#include "acme/client.h"
#include "challenge/solver.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace acme {

struct OrderRequest {
    std::vector<std::string> names;  // DNS names and IP literals (RFC 8738)
    const keystore::Key* cert_key = nullptr;
    challenge::Solver* solver = nullptr;
    std::string profile;          // newOrder "profile" (checked against meta.profiles)
    std::string replaces;         // ARI CertID of the certificate this one replaces
    std::string preferred_chain;  // issuer CN of the preferred chain's top certificate
    std::string resume_url;       // an order of a crashed run to continue, if still usable
    // Called with the order URL once the CA has created (or resumed) it, before any
    // challenge is answered: the caller records it (SECURITY.md rule 15).
    std::function<Result<void>(const std::string&)> on_order;
};

struct Issued {
    std::string order_url;
    std::string cert_pem;   // the leaf
    std::string chain_pem;  // the issuers, in order
    x509::CertInfo leaf;
};

// An identifier as sent to the CA: an IPv6 literal in RFC 5952 form, anything else in
// lower case.
std::string normalize_identifier(const std::string& name);

// One line per step for the user ("order ...", "authorization ...", ...).
using Progress = std::function<void(const std::string&)>;

// Errors name the step and, for a failed authorization, the identifier and the CA's
// problem detail. Before returning a certificate, checks that the chain holds only
// CERTIFICATE blocks and that the leaf's public key is the certificate Key's.
Result<Issued> issue(Client& client, const keystore::Key& account_key, const std::string& kid,
                     const OrderRequest& request, const Progress& progress);

}  // namespace acme
