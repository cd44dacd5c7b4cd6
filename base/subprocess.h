// The one way acme-agent starts another program (SECURITY.md rule 21): the dns-01 hook
// (argv only) and the deploy hook (`/bin/sh -c`, a shell line the user wrote).
//
// The child gets: stdin /dev/null; stdout and stderr into one pipe whose last
// `max_output` bytes are kept; no other descriptor (everything >= 3 is closed in the
// child, so the CA's TLS connection, curl's socketpair or a token's fds never leak); an
// environment of PATH, HOME and LANG taken from ours (PATH defaults to a system path when
// unset) plus the caller's own variables, nothing else; default signal dispositions, an
// empty signal mask and its own process group, killed as a whole (SIGKILL) when
// `timeout` passes.
#pragma once

#include "base/error.h"

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace base::subprocess {

struct Command {
    // argv[0] is the program: a path, or (without a '/') looked up on PATH.
    std::vector<std::string> argv;
    // NAME=VALUE pairs added to the base environment (PATH, HOME, LANG).
    std::vector<std::string> env;
    std::chrono::milliseconds timeout{std::chrono::minutes(2)};
    std::size_t max_output = 16 * 1024;
};

// `/bin/sh -c LINE`: for a command line the user wrote (a deploy hook).
std::vector<std::string> shell(const std::string& line);

struct Outcome {
    bool timed_out = false;
    int exit_code = -1;          // when it exited
    int signal = 0;              // when a signal ended it (SIGKILL after a timeout)
    std::string output;          // stdout and stderr as they came, the last max_output bytes
    std::size_t output_cut = 0;  // bytes dropped before `output`

    [[nodiscard]] bool ok() const { return !timed_out && signal == 0 && exit_code == 0; }
    // "exited with status 3", "was killed by signal 9", "timed out after 2 s and was killed"
    [[nodiscard]] std::string status(std::chrono::milliseconds timeout) const;
    // The output for a message: trailing blank lines dropped, "[N bytes cut] " in front
    // when it was cut, control characters escaped; "" when it printed nothing.
    [[nodiscard]] std::string quoted_output() const;
};

// The environment every child starts from: PATH, HOME and LANG (those set here).
std::vector<std::string> base_environment();

// Runs `c` to its end or its timeout. An error only when it could not be started
// (Errc::io, naming the program and why).
Result<Outcome> run(const Command& c);

}  // namespace base::subprocess
