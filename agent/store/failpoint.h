// Failpoints for crash-safety tests: when the environment names this point in
// ACME_AGENT_FAILPOINT, the process stops on the spot (exit 86), as a crash or a power
// cut would, without running destructors or flushing anything.
#pragma once

namespace store {

void failpoint(const char* name);

}  // namespace store
