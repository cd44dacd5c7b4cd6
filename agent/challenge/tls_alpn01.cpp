// Placeholder while the tls-alpn-01 responder is being written.
#include "challenge/solver.h"

namespace challenge {

namespace {

class TlsAlpn01Pending final : public Solver {
public:
    [[nodiscard]] std::string type() const override { return "tls-alpn-01"; }
    Result<void> present(const std::string&, const std::string&, const std::string&) override {
        return keystore::fail(keystore::Errc::unsupported, "tls-alpn-01", "not available yet");
    }
    void cleanup(const std::string&, const std::string&) override {}
};

}  // namespace

std::unique_ptr<Solver> make_tls_alpn01(std::string) {
    return std::make_unique<TlsAlpn01Pending>();
}

}  // namespace challenge
