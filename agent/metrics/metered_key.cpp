#include "metrics/metered_key.h"

#include <chrono>
#include <utility>

namespace metrics {

namespace {

class MeteredKey final : public keystore::Key {
  public:
    MeteredKey(keystore::KeyPtr key, AgentMetrics& metrics)
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
        if (signature)
            metrics_.signature(key_->uri().scheme(), std::chrono::steady_clock::now() - start);
        else
            metrics_.signature_error(key_->uri().scheme(), signature.error().code);
        return signature;
    }

  private:
    keystore::KeyPtr key_;
    AgentMetrics& metrics_;
};

}  // namespace

keystore::KeyPtr metered(keystore::KeyPtr key, AgentMetrics& metrics) {
    return std::make_shared<const MeteredKey>(std::move(key), metrics);
}

}  // namespace metrics
