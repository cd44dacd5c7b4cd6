// The metrics library (base/metrics.h), acme-agent's metric set (agent/metrics) and the
// /metrics endpoint over real loopback sockets, scraped by curl and checked by Prometheus'
// own promtool (Debian `prometheus`).
#include "base/metrics.h"
#include "keystore/file_backend.h"
#include "metrics/agent_metrics.h"
#include "metrics/endpoint.h"
#include "metrics/metered_key.h"
#include "support/process.h"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using base::metrics::Label;
using base::metrics::Registry;
using testsupport::run;

TEST(MetricsRegistry, RendersCountersGaugesAndHistogramsInTheExpositionFormat) {
    Registry r;
    auto& c = r.counter("x_requests_total", "Requests.\nSecond \\ line.",
                        {Label{"code", {"200", "404"}}});
    auto& g = r.gauge("x_temperature_celsius", "Temperature.");
    auto& h = r.histogram("x_duration_seconds", "Durations.", {0.1, 1}, {Label{"op"}});
    c.inc({"404"});
    c.inc({"200"}, 2);
    c.inc({"200"}, -5);  // a counter never goes down
    g.set({}, -1.5);
    h.observe({"sign"}, 0.05);
    h.observe({"sign"}, 0.5);
    h.observe({"sign"}, 7);
    EXPECT_EQ(r.render(),
              "# HELP x_requests_total Requests.\\nSecond \\\\ line.\n"
              "# TYPE x_requests_total counter\n"
              "x_requests_total{code=\"200\"} 2\n"
              "x_requests_total{code=\"404\"} 1\n"
              "# HELP x_temperature_celsius Temperature.\n"
              "# TYPE x_temperature_celsius gauge\n"
              "x_temperature_celsius -1.5\n"
              "# HELP x_duration_seconds Durations.\n"
              "# TYPE x_duration_seconds histogram\n"
              "x_duration_seconds_bucket{op=\"sign\",le=\"0.1\"} 1\n"
              "x_duration_seconds_bucket{op=\"sign\",le=\"1\"} 2\n"
              "x_duration_seconds_bucket{op=\"sign\",le=\"+Inf\"} 3\n"
              "x_duration_seconds_sum{op=\"sign\"} 7.55\n"
              "x_duration_seconds_count{op=\"sign\"} 3\n");
}

TEST(MetricsRegistry, LabelValuesAreEscapedAndBounded) {
    Registry r;
    auto& g = r.gauge("x_info", "Info.", {Label{"name"}, Label{"kind", {"a", "b"}}}, 3);
    g.set({"q\"uo\\te", "a"}, 1);
    g.set({"line\nbreak\x1b[31m", "zzz"}, 1);  // kind outside its set: "other"
    g.set({"third", "b"}, 1);
    g.set({"fourth", "b"}, 1);  // over max_series: dropped
    const std::string out = r.render();
    EXPECT_NE(out.find("x_info{name=\"q\\\"uo\\\\te\",kind=\"a\"} 1\n"), std::string::npos) << out;
    // Text from a configuration is one printable line before it is a label value.
    EXPECT_NE(out.find("x_info{name=\"line\\\\x0abreak\\\\x1b[31m\",kind=\"other\"} 1\n"),
              std::string::npos)
        << out;
    EXPECT_NE(out.find("name=\"third\""), std::string::npos);
    EXPECT_EQ(out.find("fourth"), std::string::npos) << out;
}

TEST(MetricsRegistry, NamesThatBreakTheConventionsAreBugs) {
    Registry r;
    EXPECT_THROW(r.counter("x_requests", "no _total"), std::logic_error);
    EXPECT_THROW(r.gauge("x_things_total", "a gauge named like a counter"), std::logic_error);
    EXPECT_THROW(r.gauge("9x", "bad start"), std::logic_error);
    EXPECT_THROW(r.gauge("x_y", "bad label", {Label{"__reserved"}}), std::logic_error);
    EXPECT_THROW(r.histogram("x_h_seconds", "le is the histogram's", {1}, {Label{"le"}}),
                 std::logic_error);
    EXPECT_THROW(r.histogram("x_h2_seconds", "buckets must increase", {1, 1}), std::logic_error);
    r.gauge("x_once", "first");
    EXPECT_THROW(r.gauge("x_once", "twice"), std::logic_error);
    auto& g = r.gauge("x_two", "two labels", {Label{"a"}, Label{"b"}});
    EXPECT_THROW(g.set({"only one"}, 1), std::logic_error);
}

TEST(MetricsRegistry, ValuesKeepFullPrecisionAndSpecialValues) {
    EXPECT_EQ(base::metrics::format_value(1733558400), "1733558400");
    EXPECT_EQ(base::metrics::format_value(1800000000), "1800000000");
    EXPECT_EQ(base::metrics::format_value(-0.0), "0");
    EXPECT_EQ(base::metrics::format_value(1733558400.25), "1733558400.25");
    EXPECT_EQ(base::metrics::format_value(0.1), "0.1");
    EXPECT_EQ(base::metrics::format_value(std::numeric_limits<double>::infinity()), "+Inf");
    EXPECT_EQ(base::metrics::format_value(-std::numeric_limits<double>::infinity()), "-Inf");
    EXPECT_EQ(base::metrics::format_value(std::numeric_limits<double>::quiet_NaN()), "NaN");
}

TEST(MetricsRegistry, ConcurrentUpdatesAreAllCounted) {
    Registry r;
    auto& c = r.counter("x_events_total", "Events.", {Label{"thread"}});
    auto& h = r.histogram("x_wait_seconds", "Waits.", {1});
    std::vector<std::thread> threads;
    threads.reserve(4);
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 10000; ++i) {
                c.inc({std::to_string(t % 2)});
                h.observe({}, 0.5);
                (void)r.render();
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(c.value({"0"}) + c.value({"1"}), 40000);
    EXPECT_EQ(h.value({}), 40000);
}

// A key whose token is gone: every signature fails as a PKCS#11 key's would.
class UnpluggedKey final : public keystore::Key {
  public:
    explicit UnpluggedKey(keystore::KeyPtr real) : real_(std::move(real)) {}
    [[nodiscard]] keystore::KeyAlgorithm algorithm() const override { return real_->algorithm(); }
    [[nodiscard]] const base::Bytes& public_key_der() const override {
        return real_->public_key_der();
    }
    [[nodiscard]] const keystore::KeyUri& uri() const override { return uri_; }
    [[nodiscard]] base::Result<base::Bytes> sign(std::span<const std::uint8_t>) const override {
        return base::fail(base::Errc::token_absent, "C_Sign", "no token matches the key URI");
    }
    [[nodiscard]] base::Result<std::vector<keystore::KeyProperty>> properties() const override {
        return real_->properties();
    }

  private:
    keystore::KeyPtr real_;
    keystore::KeyUri uri_ = *keystore::KeyUri::parse("pkcs11:token=gone;object=k");
};

TEST(AgentMetrics, AMeteredKeyCountsSignaturesAndErrorsByBackend) {
    std::string dir = (std::filesystem::temp_directory_path() / "test_metrics_XXXXXX").string();
    ASSERT_NE(::mkdtemp(dir.data()), nullptr);
    auto store = keystore::make_file_keystore();
    auto uri = keystore::KeyUri::parse("file:" + dir + "/k.pem");
    ASSERT_TRUE(uri);
    auto key = store->generate(*uri, keystore::KeyAlgorithm::ec_p256);
    ASSERT_TRUE(key) << key.error().describe();

    metrics::AgentMetrics m("1.2.3");
    const auto file_key = metrics::metered(*key, m);
    const std::array<std::uint8_t, 3> message{1, 2, 3};
    ASSERT_TRUE(file_key->sign(message));
    ASSERT_TRUE(file_key->sign(message));
    EXPECT_EQ(file_key->uri().to_string(), (*key)->uri().to_string());
    const auto gone = metrics::metered(std::make_shared<const UnpluggedKey>(*key), m);
    const auto failed = gone->sign(message);
    ASSERT_FALSE(failed);
    EXPECT_EQ(failed.error().code, base::Errc::token_absent) << "the error passes unchanged";

    const std::string out = m.render();
    for (const char* line : {
             "acme_agent_signatures_total{backend=\"file\"} 2\n",
             "acme_agent_signature_duration_seconds_count{backend=\"file\"} 2\n",
             "acme_agent_signatures_total{backend=\"pkcs11\"} 0\n",
             "acme_agent_signature_errors_total{backend=\"pkcs11\",kind=\"token_absent\"} 1\n",
         })
        EXPECT_NE(out.find(line), std::string::npos) << line << "\nin\n" << out;
    std::filesystem::remove_all(dir);
}

std::string scrape(const metrics::Endpoint& e, const std::string& path = "/metrics",
                   const std::string& method = "GET") {
    const auto o = run({"curl", "-s", "-g", "-i", "--max-time", "10", "-X", method,
                        "http://" + e.address() + path});
    EXPECT_EQ(o.code, 0) << o.err;
    return o.out;
}

TEST(AgentMetrics, RenewalsCountByResultAndTrackTheRunOfFailures) {
    metrics::AgentMetrics m("1.2.3");
    m.set_certificates({"www", "mail"});
    const auto t0 = metrics::Clock::from_time_t(1'800'000'000);
    const auto h = std::chrono::hours(1);
    m.renewal("www", false, t0);
    m.renewal("www", false, t0 + h);
    std::string out = m.render();
    EXPECT_NE(out.find("acme_agent_build_info{version=\"1.2.3\"} 1\n"), std::string::npos);
    EXPECT_NE(out.find("acme_agent_renewals_total{certificate=\"www\",result=\"failure\"} 2\n"),
              std::string::npos);
    EXPECT_NE(out.find("acme_agent_renewals_total{certificate=\"mail\",result=\"failure\"} 0\n"),
              std::string::npos)
        << "configured certificates start at 0";
    EXPECT_NE(out.find("acme_agent_certificate_renewal_failing_since_timestamp_seconds{"
                       "certificate=\"www\"} 1800000000\n"),
              std::string::npos)
        << "the first failure of the run, not the last";
    EXPECT_NE(out.find("acme_agent_certificate_last_renewal_failure_timestamp_seconds{"
                       "certificate=\"www\"} 1800003600\n"),
              std::string::npos);
    m.renewal("www", true, t0 + 2 * h);
    out = m.render();
    EXPECT_NE(out.find("acme_agent_certificate_renewal_failing_since_timestamp_seconds{"
                       "certificate=\"www\"} 0\n"),
              std::string::npos);
    EXPECT_NE(out.find("acme_agent_certificate_last_renewal_success_timestamp_seconds{"
                       "certificate=\"www\"} 1800007200\n"),
              std::string::npos);

    // A reload without "www": its series go.
    m.certificate("www", t0, t0 + 90 * 24 * h, t0 + 60 * 24 * h);
    m.set_certificates({"mail"});
    out = m.render();
    EXPECT_EQ(out.find("certificate=\"www\""), std::string::npos) << out;
}

TEST(AgentMetrics, RequestsAndSignaturesStayWithinTheirLabelSets) {
    metrics::AgentMetrics m("1.2.3");
    m.acme_request("newOrder", 201, std::chrono::milliseconds(30));
    m.acme_request("https://ca.example/acme/order/123", 200, std::chrono::milliseconds(30));
    m.acme_request("finalize", std::nullopt, std::chrono::seconds(40));
    m.acme_request("newNonce", 1000, std::chrono::milliseconds(1));
    m.acme_retry("newOrder", "bad_nonce", std::chrono::milliseconds(250), false);
    m.acme_retry("newOrder", "rate_limited", std::chrono::seconds(3), true);
    m.signature("pkcs11", std::chrono::milliseconds(3));
    m.signature_error("tpm2", base::Errc::pin_locked);
    m.signature_error("pkcs11", base::Errc::io);
    const std::string out = m.render();
    for (const char* line : {
             "acme_agent_acme_requests_total{endpoint=\"newOrder\",status=\"201\"} 1\n",
             "acme_agent_acme_requests_total{endpoint=\"other\",status=\"200\"} 1\n",
             "acme_agent_acme_requests_total{endpoint=\"finalize\",status=\"none\"} 1\n",
             "acme_agent_acme_requests_total{endpoint=\"newNonce\",status=\"other\"} 1\n",
             "acme_agent_acme_request_duration_seconds_count{endpoint=\"finalize\"} 1\n",
             "acme_agent_acme_retries_total{endpoint=\"newOrder\",reason=\"rate_limited\"} 1\n",
             "acme_agent_acme_retry_wait_seconds_total{source=\"backoff\"} 0.25\n",
             "acme_agent_acme_retry_wait_seconds_total{source=\"retry_after\"} 3\n",
             "acme_agent_signatures_total{backend=\"pkcs11\"} 1\n",
             "acme_agent_signatures_total{backend=\"tpm2\"} 0\n",
             "acme_agent_signature_errors_total{backend=\"tpm2\",kind=\"pin_locked\"} 1\n",
             "acme_agent_signature_errors_total{backend=\"pkcs11\",kind=\"other\"} 1\n",
             "acme_agent_signature_errors_total{backend=\"file\",kind=\"hardware\"} 0\n",
         })
        EXPECT_NE(out.find(line), std::string::npos) << line << "\nin\n" << out;
    EXPECT_EQ(out.find("ca.example"), std::string::npos) << "no URL as a label value";
}

TEST(MetricsEndpoint, ServesTheExpositionThatPromtoolAccepts) {
    metrics::AgentMetrics m("0.1.0");
    m.set_certificates({"www.example.org", "m\"ail"});
    const auto now = metrics::Clock::now();
    m.certificate("www.example.org", now - std::chrono::hours(24),
                  now + std::chrono::hours(24 * 89), now + std::chrono::hours(24 * 59));
    m.renewal("www.example.org", true);
    m.renewal("m\"ail", false);
    m.acme_request("newOrder", 201, std::chrono::milliseconds(12));
    m.acme_retry("newOrder", "server_error", std::chrono::milliseconds(300), false);
    m.signature("pkcs11", std::chrono::milliseconds(4));
    m.signature_error("pkcs11", base::Errc::token_absent);

    auto e = metrics::Endpoint::start("0", [&m] { return m.render(); });
    ASSERT_TRUE(e) << e.error().describe();
    EXPECT_EQ((*e)->address(), "127.0.0.1:" + std::to_string((*e)->port()))
        << "a bare PORT binds loopback only";

    const std::string reply = scrape(**e);
    EXPECT_TRUE(reply.starts_with("HTTP/1.1 200 OK\r\n")) << reply;
    EXPECT_NE(reply.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"),
              std::string::npos)
        << reply;
    EXPECT_NE(reply.find("acme_agent_certificate_expiry_timestamp_seconds{certificate=\"www."
                         "example.org\"}"),
              std::string::npos);

    // promtool lints what Prometheus itself would scrape (names, units, _total, HELP).
    const auto checked = run(
        {"sh", "-c",
         "curl -sf --max-time 10 http://" + (*e)->address() + "/metrics | promtool check metrics"});
    EXPECT_EQ(checked.code, 0) << checked.out << checked.err;
    EXPECT_EQ(checked.out + checked.err, "");
}

TEST(MetricsEndpoint, AnswersOnlyGetMetrics) {
    auto e = metrics::Endpoint::start("127.0.0.1:0", [] { return std::string("x 1\n"); });
    ASSERT_TRUE(e) << e.error().describe();
    EXPECT_TRUE(scrape(**e, "/").starts_with("HTTP/1.1 404 ")) << scrape(**e, "/");
    EXPECT_TRUE(scrape(**e, "/metrics/x").starts_with("HTTP/1.1 404 "));
    EXPECT_TRUE(scrape(**e, "/metrics?name[]=x").starts_with("HTTP/1.1 200 "));
    const std::string post = scrape(**e, "/metrics", "POST");
    EXPECT_TRUE(post.starts_with("HTTP/1.1 405 ")) << post;
    EXPECT_NE(post.find("Allow: GET\r\n"), std::string::npos);
    // A request head past 8 KiB is refused, not buffered.
    const auto big =
        run({"curl", "-s", "-i", "--max-time", "10", "-H", "X-Big: " + std::string(9000, 'a'),
             "http://" + (*e)->address() + "/metrics"});
    EXPECT_TRUE(big.out.starts_with("HTTP/1.1 431 ")) << big.out;
}

TEST(MetricsEndpoint, BadListenSpecsAreUsageErrorsNamingMetrics) {
    for (const char* spec : {"", "99999", "localhost:9464", "::1:9464", "1.2.3.4:x"}) {
        auto e = metrics::Endpoint::start(spec, [] { return std::string(); });
        ASSERT_FALSE(e) << spec;
        EXPECT_EQ(e.error().code, base::Errc::usage) << spec;
        EXPECT_NE(e.error().describe().find("metrics"), std::string::npos) << e.error().describe();
    }
    // The port is taken: an io error with the reason.
    auto first = metrics::Endpoint::start("0", [] { return std::string(); });
    ASSERT_TRUE(first);
    auto second =
        metrics::Endpoint::start(std::to_string((*first)->port()), [] { return std::string(); });
    ASSERT_FALSE(second);
    EXPECT_EQ(second.error().code, base::Errc::io);
    EXPECT_NE(second.error().describe().find("in use"), std::string::npos)
        << second.error().describe();
}

TEST(MetricsEndpoint, ListensOnIpv6Loopback) {
    auto e = metrics::Endpoint::start("[::1]:0", [] { return std::string("x 1\n"); });
    ASSERT_TRUE(e) << e.error().describe();
    EXPECT_EQ((*e)->address(), "[::1]:" + std::to_string((*e)->port()));
    EXPECT_TRUE(scrape(**e).starts_with("HTTP/1.1 200 "));
}

}  // namespace
