#include "metrics/metered_key.h"

#include "base/log.h"
#include "keystore/algorithm.h"

#include <chrono>
#include <utility>

namespace metrics {

namespace {

class MeteredKey final : public keystore::Key {
  public:
    // `metrics` may be null: the debug line only.
    MeteredKey(keystore::KeyPtr key, AgentMetrics* metrics)
        : key_(std::move(key)), metrics_(metrics) {}

    [[nodiscard]] keystore::KeyAlgorithm algorithm() const override { return key_->algorithm(); }
    [[nodiscard]] const base::Bytes& public_key_der() const override {
        return key_->public_key_der();
    }
    [[nodiscard]] const keystore::KeyUri& uri() const override { return key_->uri(); }
    [[nodiscard]] base::Result<std::vector<keystore::KeyProperty>> properties() const override {
        return key_->properties();
    }

    [[nodiscard]] base::Result<base::Bytes> sign(
        std::span<const std::uint8_t> message) const override {
        const auto start = std::chrono::steady_clock::now();
        auto signature = key_->sign(message);
        const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
        const std::string& backend = key_->uri().scheme();
        if (base::log::level() >= base::log::Level::debug)
            base::log::debug(
                "sign: " + backend + " " + std::string(keystore::algorithm_name(algorithm())) +
                " " + (signature ? "ok" : "failed") + " (" +
                std::to_string(
                    std::chrono::duration_cast<std::chrono::milliseconds>(took).count()) +
                " ms)");
        if (!metrics_) return signature;
        if (signature)
            metrics_->signature(backend, took);
        else
            metrics_->signature_error(backend, signature.error().code);
        return signature;
    }

  private:
    keystore::KeyPtr key_;
    AgentMetrics* metrics_;
};

}  // namespace

keystore::KeyPtr metered(keystore::KeyPtr key, AgentMetrics& metrics) {
    return std::make_shared<const MeteredKey>(std::move(key), &metrics);
}

keystore::KeyPtr traced(keystore::KeyPtr key) {
    return std::make_shared<const MeteredKey>(std::move(key), nullptr);
}

}  // namespace metrics
