// A Key that counts its signatures in AgentMetrics: acme_agent_signatures_total and
// acme_agent_signature_duration_seconds on success, acme_agent_signature_errors_total by
// kind on failure, with the key URI's scheme as the backend label; and, at log level debug,
// logs each signer call (backend, algorithm, duration; never the data). Everything else is
// the wrapped key's. The composition root wraps the keys it opens (keystore::Registry::
// wrap_opened) for `run --metrics` and for debug, so the backends stay unaware of both.
#pragma once

#include "keystore/key.h"
#include "metrics/agent_metrics.h"

namespace metrics {

// `metrics` must outlive the returned key.
keystore::KeyPtr metered(keystore::KeyPtr key, AgentMetrics& metrics);
// Only the debug log line of each signature (no metrics).
keystore::KeyPtr traced(keystore::KeyPtr key);

}  // namespace metrics
