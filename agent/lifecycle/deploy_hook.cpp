#include "lifecycle/deploy_hook.h"

#include "base/log.h"
#include "base/subprocess.h"

#include <chrono>

namespace lifecycle {

std::string without_pin(const std::string& uri) {
    const auto q = uri.find('?');
    if (q == std::string::npos) return uri;
    std::string out = uri.substr(0, q);
    std::string rest = uri.substr(q + 1);
    char sep = '?';
    std::size_t start = 0;
    while (start <= rest.size()) {
        auto end = rest.find('&', start);
        if (end == std::string::npos) end = rest.size();
        const std::string attr = rest.substr(start, end - start);
        if (!attr.empty() && !attr.starts_with("pin-")) {
            out += sep + attr;
            sep = '&';
        }
        start = end + 1;
    }
    return out;
}

std::string run_hook(const std::string& name, const std::string& command,
                     const std::vector<std::string>& vars, unsigned timeout) {
    base::subprocess::Command cmd;
    cmd.argv = base::subprocess::shell(command);
    cmd.env = vars;
    cmd.timeout = std::chrono::seconds(timeout);
    auto r = base::subprocess::run(cmd);
    if (!r) return "could not be started: " + r.error().message;
    const std::string output = r->quoted_output();
    if (r->ok()) {
        if (!output.empty()) base::log::info("run: " + name + ": deploy hook: " + output);
        return "";
    }
    return r->status(cmd.timeout) + (output.empty() ? "" : "; its output ends with:\n" + output);
}

}  // namespace lifecycle
