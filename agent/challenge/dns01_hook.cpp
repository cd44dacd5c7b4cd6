// dns-01 through an external program, with lego's exec-provider contract
// (`CMD present FQDN VALUE`, `CMD cleanup FQDN VALUE`), so existing lego scripts work.
//
// The command is the path of one executable (found on PATH when it has no '/'), never a
// shell line: a command with spaces is one program path with spaces in it. Arguments are
// fixed by the contract and the identifier is checked first, so nothing the ACME server
// sends reaches a shell (SECURITY.md rule 8).
#include "base/log.h"
#include "base/subprocess.h"
#include "challenge/dns01.h"

#include <map>
#include <utility>

namespace challenge {

using base::Errc;
using base::Error;
using base::fail;

namespace {

constexpr auto kHookTimeout = std::chrono::seconds(120);
constexpr std::size_t kMaxOutput = 2048;  // what an error message quotes

// Runs `command action fqdn value` through base::subprocess (no shell, fds 0-2 only,
// its environment PATH, HOME, LANG and the three ACME_AGENT_* variables).
Result<void> run_hook(const std::string& command, const std::string& action,
                      const std::string& domain, const std::string& fqdn, const std::string& value,
                      std::chrono::milliseconds timeout) {
    const std::string where = "dns-01 hook";
    const std::string what = "'" + command + "' " + action + " " + fqdn;
    if (command.empty()) return fail(Errc::usage, "--dns-hook", "the hook command is empty");

    base::subprocess::Command cmd;
    cmd.argv = {command, action, fqdn, value};
    cmd.env = {"ACME_AGENT_DOMAIN=" + domain, "ACME_AGENT_TXT_NAME=" + fqdn,
               "ACME_AGENT_TXT_VALUE=" + value};
    cmd.timeout = timeout;
    cmd.max_output = kMaxOutput;
    base::log::debug("dns-01 hook: running " + what + " " + value);
    auto r = base::subprocess::run(cmd);
    if (!r) {
        Error e = r.error();
        e.where = where;
        e.message = "cannot run '" + command + "': " + e.message;
        return std::unexpected(e);
    }
    const std::string output = r->quoted_output();
    if (r->ok()) {
        if (!output.empty()) base::log::debug("dns-01 hook " + what + ":\n" + output);
        return {};
    }
    std::string msg = what + " " + r->status(timeout);
    msg += output.empty() ? " and printed nothing" : "; its output ends with:\n" + output;
    return fail(Errc::io, where, msg);
}

class Dns01Hook final : public Solver {
  public:
    Dns01Hook(std::string command, std::chrono::milliseconds timeout)
        : command_(std::move(command)), timeout_(timeout) {}
    std::string type() const override { return "dns-01"; }

    Result<void> present(const std::string& identifier, const std::string& token,
                         const std::string& key_authorization) override {
        if (!valid_dns01_identifier(identifier))
            return fail(Errc::protocol, "dns-01",
                        "the server sent an identifier that is not a DNS name");
        const std::string fqdn = dns01_record_name(identifier);
        const std::string value = dns01_txt_value(key_authorization);
        if (auto r = run_hook(command_, "present", identifier, fqdn, value, timeout_); !r) return r;
        live_.insert_or_assign({identifier, token}, value);
        base::log::info("dns-01: hook published TXT " + fqdn);
        return {};
    }

    void cleanup(const std::string& identifier, const std::string& token) override {
        auto it = live_.find({identifier, token});
        if (it == live_.end()) return;
        const std::string value = std::move(it->second);
        live_.erase(it);
        if (auto r = run_hook(command_, "cleanup", identifier, dns01_record_name(identifier), value,
                              timeout_);
            !r)
            base::log::warning("dns-01 cleanup: " + r.error().describe());
    }

  private:
    std::string command_;
    std::chrono::milliseconds timeout_;
    std::map<std::pair<std::string, std::string>, std::string>
        live_;  // (identifier, token) -> value
};

}  // namespace

std::unique_ptr<Solver> make_dns01_hook(std::string command, std::chrono::milliseconds timeout) {
    return std::make_unique<Dns01Hook>(std::move(command), timeout);
}

std::unique_ptr<Solver> make_dns01_hook(std::string command) {
    return make_dns01_hook(std::move(command), kHookTimeout);
}

}  // namespace challenge
