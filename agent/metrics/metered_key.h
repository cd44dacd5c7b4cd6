// A Key that counts its signatures in AgentMetrics: acme_agent_signatures_total and
// acme_agent_signature_duration_seconds on success, acme_agent_signature_errors_total by
// kind on failure, with the key URI's scheme as the backend label. Everything else is the
// wrapped key's. The composition root wraps the keys it opens for `run --metrics`, so the
// backends stay unaware of metrics.
#pragma once

#include "keystore/key.h"
#include "metrics/agent_metrics.h"

namespace metrics {

// `metrics` must outlive the returned key.
keystore::KeyPtr metered(keystore::KeyPtr key, AgentMetrics& metrics);

}  // namespace metrics
