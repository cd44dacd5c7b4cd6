// The acme-agent command line (ARCHITECTURE.md "The command line"): parses arguments
// with CLI11, runs one command, prints text or --json, returns the exit code.
#pragma once

namespace cli {

int run(int argc, char** argv);

}  // namespace cli
