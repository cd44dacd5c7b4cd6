#include "metrics/agent_metrics.h"

#include <algorithm>

namespace metrics {

using base::metrics::Label;

namespace {

double seconds(Clock::time_point t) {
    return std::chrono::duration<double>(t.time_since_epoch()).count();
}

std::vector<std::string> http_statuses() {
    std::vector<std::string> out;
    for (int s = 100; s <= 599; ++s) out.push_back(std::to_string(s));
    out.emplace_back("none");
    return out;
}

const Label kCertificate{"certificate"};

// Request latency: from a local Pebble (milliseconds) to a busy CA behind a slow link.
const std::vector<double> kRequestBuckets = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
// Signature latency: a software key (microseconds) to a smart card or TPM (a second).
const std::vector<double> kSignatureBuckets = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                               0.25,  0.5,   1,    2.5,   5};

}  // namespace

std::string_view signer_error_kind(base::Errc code) {
    using base::Errc;
    switch (code) {
        case Errc::pin_incorrect:
            return "pin_incorrect";
        case Errc::pin_locked:
            return "pin_locked";
        case Errc::token_absent:
            return "token_absent";
        case Errc::module_load:
            return "module_load";
        case Errc::hardware:
            return "hardware";
        case Errc::unsupported:
            return "unsupported";
        default:
            return "other";
    }
}

AgentMetrics::AgentMetrics(std::string_view version)
    : build_info_(registry_.gauge("acme_agent_build_info",
                                  "Always 1; the version of the running acme-agent.",
                                  {Label{"version"}}, 1)),
      not_before_(registry_.gauge("acme_agent_certificate_not_before_timestamp_seconds",
                                  "Start of the stored certificate's validity (notBefore).",
                                  {kCertificate})),
      expiry_(registry_.gauge("acme_agent_certificate_expiry_timestamp_seconds",
                              "End of the stored certificate's validity (notAfter).",
                              {kCertificate})),
      due_(registry_.gauge("acme_agent_certificate_renewal_due_timestamp_seconds",
                           "When the agent renews the certificate (ARI window, lifetime rule or "
                           "renew_before_days).",
                           {kCertificate})),
      last_success_(registry_.gauge(
          "acme_agent_certificate_last_renewal_success_timestamp_seconds",
          "End of the last renewal that succeeded; 0 when none did since the agent started.",
          {kCertificate})),
      last_failure_(registry_.gauge(
          "acme_agent_certificate_last_renewal_failure_timestamp_seconds",
          "End of the last renewal that failed; 0 when none did since the agent started.",
          {kCertificate})),
      failing_since_(registry_.gauge(
          "acme_agent_certificate_renewal_failing_since_timestamp_seconds",
          "First failure of the current run of failed renewals; 0 when the last attempt "
          "succeeded or none failed.",
          {kCertificate})),
      renewals_(registry_.counter("acme_agent_renewals_total",
                                  "Renewal attempts (whole orders) by certificate and result.",
                                  {kCertificate, Label{"result", {"success", "failure"}}})),
      requests_(
          registry_.counter("acme_agent_acme_requests_total",
                            "ACME requests by endpoint and HTTP status (\"none\": no response).",
                            {Label{"endpoint", kEndpoints}, Label{"status", http_statuses()}})),
      request_seconds_(registry_.histogram("acme_agent_acme_request_duration_seconds",
                                           "Duration of ACME requests, by endpoint.",
                                           kRequestBuckets, {Label{"endpoint", kEndpoints}})),
      retries_(registry_.counter("acme_agent_acme_retries_total",
                                 "ACME requests sent again, by endpoint and reason.",
                                 {Label{"endpoint", kEndpoints}, Label{"reason", kRetryReasons}})),
      retry_wait_(registry_.counter(
          "acme_agent_acme_retry_wait_seconds_total",
          "Time spent waiting before retries; source=\"retry_after\" when the server asked.",
          {Label{"source", {"retry_after", "backoff"}}})),
      signatures_(registry_.counter("acme_agent_signatures_total",
                                    "Signatures made by the key backends.",
                                    {Label{"backend", kBackends}})),
      signature_seconds_(registry_.histogram("acme_agent_signature_duration_seconds",
                                             "Duration of signatures, by backend.",
                                             kSignatureBuckets, {Label{"backend", kBackends}})),
      signature_errors_(registry_.counter(
          "acme_agent_signature_errors_total", "Signatures that failed, by backend and kind.",
          {Label{"backend", kBackends}, Label{"kind", kSignerErrorKinds}})) {
    build_info_.set({std::string(version)}, 1);
    // Counters an alert takes increase() of exist from the start at 0, so that the first
    // error is an increase (a series born at 1 is not).
    for (const auto& backend : kBackends) {
        signatures_.touch({backend});
        for (const auto& kind : kSignerErrorKinds) signature_errors_.touch({backend, kind});
    }
    for (const auto& source : {"retry_after", "backoff"}) retry_wait_.touch({source});
}

void AgentMetrics::set_certificates(const std::vector<std::string>& names) {
    for (base::metrics::Family* f : {&not_before_, &expiry_, &due_, &last_success_, &last_failure_,
                                     &failing_since_, &renewals_})
        f->retain("certificate", names);
    for (const auto& name : names) {
        renewals_.touch({name, "success"});
        renewals_.touch({name, "failure"});
        last_success_.touch({name});
        last_failure_.touch({name});
        failing_since_.touch({name});
    }
}

void AgentMetrics::certificate(const std::string& name, Clock::time_point not_before,
                               Clock::time_point not_after, std::optional<Clock::time_point> due) {
    not_before_.set({name}, seconds(not_before));
    expiry_.set({name}, seconds(not_after));
    if (due)
        due_.set({name}, seconds(*due));
    else
        due_.erase({name});
}

void AgentMetrics::renewal(const std::string& name, bool success, Clock::time_point at) {
    renewals_.inc({name, success ? "success" : "failure"});
    if (success) {
        last_success_.set({name}, seconds(at));
        failing_since_.set({name}, 0);
        return;
    }
    last_failure_.set({name}, seconds(at));
    // Renewals of one certificate do not overlap: read-then-set is not racing itself.
    if (failing_since_.value({name}) == 0) failing_since_.set({name}, seconds(at));
}

void AgentMetrics::acme_request(std::string_view endpoint, std::optional<long> status,
                                std::chrono::duration<double> took) {
    const std::string ep(endpoint);
    requests_.inc({ep, status ? std::to_string(*status) : "none"});
    request_seconds_.observe({ep}, took.count());
}

void AgentMetrics::acme_retry(std::string_view endpoint, std::string_view reason,
                              std::chrono::duration<double> waited, bool server_asked) {
    retries_.inc({std::string(endpoint), std::string(reason)});
    retry_wait_.inc({server_asked ? "retry_after" : "backoff"}, waited.count());
}

void AgentMetrics::signature(std::string_view backend, std::chrono::duration<double> took) {
    const std::string b(backend);
    signatures_.inc({b});
    signature_seconds_.observe({b}, took.count());
}

void AgentMetrics::signature_error(std::string_view backend, base::Errc code) {
    signature_errors_.inc({std::string(backend), std::string(signer_error_kind(code))});
}

}  // namespace metrics
