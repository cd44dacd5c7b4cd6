// The deploy hook `run` starts after a certificate changes.
#pragma once

#include <string>
#include <vector>

namespace lifecycle {

// A key URI as a hook may see it: no pin-value (to_string never prints one) and no
// pin-source either (where the PIN lives is not the hook's business). Values are
// percent-encoded, so '&' and '?' only ever separate attributes.
std::string without_pin(const std::string& uri);

// Runs `command` with /bin/sh -c through base::subprocess: fds 0-2 only, PATH, HOME,
// LANG and `vars` as its environment, its output captured (the last 16 KiB), killed with
// its process group after `timeout` seconds. "" when it exits 0 (its output, if any,
// logged under `name`), else what went wrong with the end of its output.
std::string run_hook(const std::string& name, const std::string& command,
                     const std::vector<std::string>& vars, unsigned timeout);

}  // namespace lifecycle
