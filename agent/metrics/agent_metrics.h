// acme-agent's metric set (issue #18): every metric the agent exports is defined here, in
// one place, with its labels and their allowed values. Names follow the Prometheus
// conventions: base units (seconds), counters end in _total, timestamps are seconds since
// the epoch (_timestamp_seconds). Label values are bounded: fixed sets, or certificate
// names from the configuration; never a serial, URL, key URI or PIN.
// docs/operations.md describes each metric; dist/prometheus/acme-agent.rules.yml alerts on
// them.
#pragma once

#include "base/error.h"
#include "base/metrics.h"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace metrics {

// ACME resources, as the `endpoint` label (RFC 8555 §7.1 names, plus ARI's renewalInfo).
inline const std::vector<std::string> kEndpoints = {
    "directory", "newNonce",  "newAccount", "account",     "keyChange",   "newOrder",  "order",
    "authz",     "challenge", "finalize",   "certificate", "renewalInfo", "revokeCert"};
// Key URI schemes, as the `backend` label.
inline const std::vector<std::string> kBackends = {"pkcs11", "tpm2", "file"};
// Why a signature failed, as the `kind` label (from base::Errc).
inline const std::vector<std::string> kSignerErrorKinds = {
    "pin_incorrect", "pin_locked",  "token_absent", "module_load",
    "hardware",      "unsupported", "other"};
// Why a request was sent again, as the `reason` label.
inline const std::vector<std::string> kRetryReasons = {"bad_nonce", "rate_limited", "server_error",
                                                       "network", "timeout"};

using Clock = std::chrono::system_clock;

class AgentMetrics {
  public:
    // `version`: the build's version, exported as acme_agent_build_info{version}.
    explicit AgentMetrics(std::string_view version);

    // The exposition for GET /metrics.
    [[nodiscard]] std::string render() const { return registry_.render(); }

    // The certificates of the configuration (at start and after each reload): creates their
    // series at 0 and drops those of certificates no longer configured.
    void set_certificates(const std::vector<std::string>& names);
    // What the store holds for `name`: the certificate's validity and when it is due.
    void certificate(const std::string& name, Clock::time_point not_before,
                     Clock::time_point not_after, std::optional<Clock::time_point> due);
    // The end of one renewal attempt of `name` (the whole order, after the agent's own
    // retries): counts it by result and updates the last success / failure timestamps and
    // the time the current run of failures began.
    void renewal(const std::string& name, bool success, Clock::time_point at = Clock::now());

    // One ACME request: `endpoint` from kEndpoints, `status` the HTTP status or nullopt when
    // no response came (network error, timeout).
    void acme_request(std::string_view endpoint, std::optional<long> status,
                      std::chrono::duration<double> took);
    // A request sent again for `reason` (kRetryReasons) after `waited`; `server_asked`
    // when the wait was the server's Retry-After.
    void acme_retry(std::string_view endpoint, std::string_view reason,
                    std::chrono::duration<double> waited, bool server_asked);
    // One signature by `backend` (a key URI scheme): its duration, or the error.
    void signature(std::string_view backend, std::chrono::duration<double> took);
    void signature_error(std::string_view backend, base::Errc code);

    [[nodiscard]] base::metrics::Registry& registry() { return registry_; }

  private:
    base::metrics::Registry registry_;
    base::metrics::Family& build_info_;
    base::metrics::Family& not_before_;
    base::metrics::Family& expiry_;
    base::metrics::Family& due_;
    base::metrics::Family& last_success_;
    base::metrics::Family& last_failure_;
    base::metrics::Family& failing_since_;
    base::metrics::Family& renewals_;
    base::metrics::Family& requests_;
    base::metrics::Family& request_seconds_;
    base::metrics::Family& retries_;
    base::metrics::Family& retry_wait_;
    base::metrics::Family& signatures_;
    base::metrics::Family& signature_seconds_;
    base::metrics::Family& signature_errors_;
};

// The kind label for a signer error.
std::string_view signer_error_kind(base::Errc code);

}  // namespace metrics
