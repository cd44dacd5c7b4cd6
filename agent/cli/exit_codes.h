// Process exit codes, one per kind of failure (README "Exit codes").
#pragma once

#include "base/error.h"

#include <span>

namespace cli {

enum ExitCode : int {
    kOk = 0,
    kInternal = 1,
    kUsage = 2,
    kNotFound = 3,
    kExists = 4,
    kTokenAbsent = 5,
    kModuleLoad = 6,
    kPinIncorrect = 7,
    kPinLocked = 8,
    kUnsupported = 9,
    kHardware = 10,
    kIo = 11,
    kNetwork = 12,
    kProtocol = 13,
    kServer = 14,
    kState = 15,
    kDeployHook = 16,  // run: a certificate was stored but its deploy hook failed
};

int exit_code(base::Errc code);

// The one list of exit codes and what each means: `acme-agent --help` prints it, and
// tests/integration/docs.sh checks README.md's "Exit codes" table (which the man page's
// EXIT STATUS is made from) and docs/troubleshooting.md against that output.
struct ExitCodeInfo {
    int code;
    const char* meaning;
};
std::span<const ExitCodeInfo> exit_code_table();

}  // namespace cli
