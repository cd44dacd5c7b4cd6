// metrics_fixture NOT_AFTER: acme-agent's metric set with one certificate, "www.example.org",
// valid from NOT_AFTER - 90 days to NOT_AFTER (seconds since the epoch), one failed
// renewal, served by the real /metrics endpoint on 127.0.0.1 (a free port). Prints
// "ready ADDR:PORT" once it accepts scrapes, then serves until SIGTERM. For the scrape of
// a real Prometheus in tests/integration/prometheus.sh, before a daemon is started there.
#include "metrics/agent_metrics.h"
#include "metrics/endpoint.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: metrics_fixture NOT_AFTER\n");
        return 2;
    }
    char* end = nullptr;
    const long long seconds = std::strtoll(argv[1], &end, 10);
    if (end == argv[1] || *end != '\0') {
        std::fprintf(stderr, "metrics_fixture: NOT_AFTER must be seconds since the epoch\n");
        return 2;
    }
    const auto not_after = metrics::Clock::from_time_t(static_cast<std::time_t>(seconds));
    metrics::AgentMetrics m("fixture");
    m.set_certificates({"www.example.org"});
    m.certificate("www.example.org", not_after - std::chrono::hours(24 * 90), not_after,
                  not_after - std::chrono::hours(24 * 30));
    m.renewal("www.example.org", false);
    m.signature("pkcs11", std::chrono::milliseconds(5));
    auto endpoint = metrics::Endpoint::start("0", [&m] { return m.render(); });
    if (!endpoint) {
        std::fprintf(stderr, "metrics_fixture: %s\n", endpoint.error().describe().c_str());
        return 1;
    }
    std::printf("ready %s\n", (*endpoint)->address().c_str());
    std::fflush(stdout);
    for (;;) ::pause();  // SIGTERM ends it
}
