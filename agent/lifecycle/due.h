// When a certificate is due for renewal: the one rule `renew`, `enroll` and `run` use.
#pragma once

#include "acme/certificate.h"
#include "base/error.h"
#include "x509/cert.h"

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace lifecycle {

struct Due {
    bool due;
    std::chrono::system_clock::time_point at;
    std::string why;
    std::optional<std::chrono::system_clock::time_point> check_again;  // ARI Retry-After
};

// The CA's renewal window for a certificate (acme::renewal_info), asked only when needed.
using AriSource = std::function<base::Result<std::optional<acme::RenewalWindow>>()>;

// A certificate is due `before_days` before it expires when given (an explicit choice
// wins), else inside the CA's ARI window (at a point spread by the serial) when `ari` is
// given and the CA has one, else in the last third of its lifetime. A failed renewalInfo
// request falls back to the lifetime rule with a warning (RFC 9773 §4.2).
Due due_for_renewal(const x509::CertInfo& leaf, unsigned before_days, const AriSource& ari,
                    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// The same, asking `client` for the ARI window.
base::Result<Due> due_for_renewal(acme::Client& client, const x509::CertInfo& leaf,
                                  unsigned before_days);

// The ARI CertID of the certificate a renewal replaces, or "" when the CA has no
// renewalInfo or the leaf no AKI.
std::string replaces_id(const acme::Client& client, const x509::CertInfo& leaf);

}  // namespace lifecycle
