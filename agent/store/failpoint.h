// Failpoints for crash-safety tests: when the environment names this point in
// ACME_AGENT_FAILPOINT, the process stops on the spot (exit 86), as a crash or a power
// cut would, without running destructors or flushing anything. NAME:hang instead says so
// on stderr and blocks the calling thread until the process is killed, its other threads
// (a lease's keeper, a daemon's responders) still running: a test can then kill -9 a
// process that is genuinely in the middle of its work. NAME:stop stops the whole process
// (SIGSTOP, every thread, as a paused VM or a long GC pause) until a test continues it.
#pragma once

namespace store {

void failpoint(const char* name);

}  // namespace store
