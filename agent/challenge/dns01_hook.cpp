// dns-01 through an external program, with lego's exec-provider contract
// (`CMD present FQDN VALUE`, `CMD cleanup FQDN VALUE`), so existing lego scripts work.
//
// The command is the path of one executable (found on PATH when it has no '/'), never a
// shell line: a command with spaces is one program path with spaces in it. Arguments are
// fixed by the contract and the identifier is checked first, so nothing the ACME server
// sends reaches a shell (SECURITY.md rule 8).
#include "challenge/dns01.h"
#include "challenge/listener.h"
#include "keystore/log.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <map>
#include <utility>
#include <vector>

extern char** environ;

namespace challenge {

using keystore::Errc;
using keystore::fail;

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kHookTimeout = std::chrono::seconds(120);
constexpr std::size_t kMaxOutput = 2048;      // what an error message quotes
constexpr std::size_t kMaxDrain = 64 * 1024;  // read after the hook exited, then stop
constexpr auto kReapInterval = std::chrono::milliseconds(50);  // only without a pidfd

class FileActions {
  public:
    FileActions() : ok_(::posix_spawn_file_actions_init(&fa_) == 0) {}
    ~FileActions() {
        if (ok_) ::posix_spawn_file_actions_destroy(&fa_);
    }
    FileActions(const FileActions&) = delete;
    FileActions& operator=(const FileActions&) = delete;
    [[nodiscard]] bool ok() const { return ok_; }
    posix_spawn_file_actions_t* get() { return &fa_; }

  private:
    posix_spawn_file_actions_t fa_{};
    bool ok_ = false;
};

class SpawnAttr {
  public:
    SpawnAttr() : ok_(::posix_spawnattr_init(&attr_) == 0) {}
    ~SpawnAttr() {
        if (ok_) ::posix_spawnattr_destroy(&attr_);
    }
    SpawnAttr(const SpawnAttr&) = delete;
    SpawnAttr& operator=(const SpawnAttr&) = delete;
    [[nodiscard]] bool ok() const { return ok_; }
    posix_spawnattr_t* get() { return &attr_; }

  private:
    posix_spawnattr_t attr_{};
    bool ok_ = false;
};

// The hook's output goes into error messages and logs: keep the tail, starting at a line
// boundary, with control characters (terminal escapes) made visible.
std::string output_tail(const std::string& raw) {
    std::string tail = raw;
    if (tail.size() > kMaxOutput) {
        tail.erase(0, tail.size() - kMaxOutput);
        if (auto nl = tail.find('\n'); nl != std::string::npos && nl + 1 < tail.size())
            tail.erase(0, nl + 1);
    }
    while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r' || tail.back() == ' '))
        tail.pop_back();
    for (char& c : tail)
        if ((static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') || c == 0x7f) c = '?';
    return tail;
}

std::vector<std::string> hook_environment(const std::string& domain, const std::string& fqdn,
                                          const std::string& value) {
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) {
        std::string_view entry(*e);
        if (entry.starts_with("ACME_AGENT_DOMAIN=") || entry.starts_with("ACME_AGENT_TXT_NAME=") ||
            entry.starts_with("ACME_AGENT_TXT_VALUE="))
            continue;
        env.emplace_back(entry);
    }
    env.push_back("ACME_AGENT_DOMAIN=" + domain);
    env.push_back("ACME_AGENT_TXT_NAME=" + fqdn);
    env.push_back("ACME_AGENT_TXT_VALUE=" + value);
    return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
    std::vector<char*> out;
    out.reserve(strings.size() + 1);
    for (auto& s : strings) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

void append_bounded(std::string& out, const char* data, std::size_t n) {
    out.append(data, n);
    if (out.size() > 2 * kMaxOutput) out.erase(0, out.size() - kMaxOutput - 512);
}

// Runs `command action fqdn value` without a shell: stdin /dev/null, stdout and stderr into
// one pipe whose tail is kept, no inherited descriptors, default signal dispositions, its
// own process group so that a timeout kills everything it started.
Result<void> run_hook(const std::string& command, const std::string& action,
                      const std::string& domain, const std::string& fqdn, const std::string& value,
                      std::chrono::milliseconds timeout) {
    const std::string where = "dns-01 hook";
    const std::string what = "'" + command + "' " + action + " " + fqdn;
    if (command.empty()) return fail(Errc::usage, "--dns-hook", "the hook command is empty");

    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0)
        return fail(Errc::io, where, std::string("pipe: ") + std::strerror(errno));
    Fd read_end(p[0]);
    Fd write_end(p[1]);

    FileActions fa;
    SpawnAttr attr;
    if (!fa.ok() || !attr.ok()) return fail(Errc::internal, where, "posix_spawn setup failed");
    sigset_t none;
    sigset_t all;
    sigemptyset(&none);
    sigfillset(&all);
    if (::posix_spawn_file_actions_addopen(fa.get(), 0, "/dev/null", O_RDONLY, 0) != 0 ||
        ::posix_spawn_file_actions_adddup2(fa.get(), write_end.get(), 1) != 0 ||
        ::posix_spawn_file_actions_adddup2(fa.get(), write_end.get(), 2) != 0 ||
        ::posix_spawn_file_actions_addclosefrom_np(fa.get(), 3) != 0 ||
        ::posix_spawnattr_setflags(attr.get(), POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                   POSIX_SPAWN_SETSIGDEF) != 0 ||
        ::posix_spawnattr_setpgroup(attr.get(), 0) != 0 ||
        ::posix_spawnattr_setsigmask(attr.get(), &none) != 0 ||
        ::posix_spawnattr_setsigdefault(attr.get(), &all) != 0)
        return fail(Errc::internal, where, "posix_spawn setup failed");

    std::vector<std::string> args{command, action, fqdn, value};
    std::vector<std::string> env = hook_environment(domain, fqdn, value);
    auto argv = pointers(args);
    auto envp = pointers(env);

    keystore::log::debug("dns-01 hook: running " + what + " " + value);
    pid_t pid = -1;
    const bool search = command.find('/') == std::string::npos;
    const int rc =
        search
            ? ::posix_spawnp(&pid, command.c_str(), fa.get(), attr.get(), argv.data(), envp.data())
            : ::posix_spawn(&pid, command.c_str(), fa.get(), attr.get(), argv.data(), envp.data());
    if (rc != 0)
        return fail(Errc::io, where,
                    "cannot run '" + command + "'" + (search ? " (searched on PATH)" : "") + ": " +
                        std::strerror(rc));
    write_end.reset();

    // glibc 2.36's <sys/pidfd.h> lacks extern "C", hence the raw syscall. -1 on kernels
    // before 5.3: then waitpid is polled every 50 ms.
    Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    const auto deadline = Clock::now() + timeout;
    std::string output;
    bool eof = false;
    int status = 0;
    char buf[4096];
    for (;;) {
        const pid_t w = ::waitpid(pid, &status, WNOHANG);
        if (w == pid) break;
        if (w < 0 && errno != EINTR) {
            ::kill(-pid, SIGKILL);
            return fail(Errc::internal, where, std::string("waitpid: ") + std::strerror(errno));
        }
        const auto now = Clock::now();
        if (now >= deadline) {
            ::kill(-pid, SIGKILL);
            ::kill(pid, SIGKILL);
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            std::string msg =
                "dns hook timed out after " +
                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(timeout).count()) +
                " s: " + what + " (killed)";
            if (auto tail = output_tail(output); !tail.empty())
                msg += "; its output ends with:\n" + tail;
            return fail(Errc::io, where, msg);
        }
        auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
                    std::chrono::milliseconds(1);
        if (!pidfd) wait = std::min<std::chrono::milliseconds>(wait, kReapInterval);
        pollfd fds[2] = {{eof ? -1 : read_end.get(), POLLIN, 0},
                         {pidfd ? pidfd.get() : -1, POLLIN, 0}};
        if (::poll(fds, 2, static_cast<int>(wait.count())) < 0 && errno != EINTR) {
            ::kill(-pid, SIGKILL);
            while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
            }
            return fail(Errc::internal, where, std::string("poll: ") + std::strerror(errno));
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            const ssize_t n = ::read(read_end.get(), buf, sizeof buf);
            if (n > 0)
                append_bounded(output, buf, static_cast<std::size_t>(n));
            else if (n == 0 || errno != EINTR)
                eof = true;
        }
    }
    // The hook has exited; what it left in the pipe is read, but a background process it
    // started that keeps the pipe open must not hold us.
    if (!eof) {
        ::fcntl(read_end.get(), F_SETFL, O_NONBLOCK);
        for (std::size_t total = 0; total < kMaxDrain;) {
            const ssize_t n = ::read(read_end.get(), buf, sizeof buf);
            if (n <= 0) break;
            append_bounded(output, buf, static_cast<std::size_t>(n));
            total += static_cast<std::size_t>(n);
        }
    }

    const std::string tail = output_tail(output);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        if (!tail.empty()) keystore::log::debug("dns-01 hook " + what + ":\n" + tail);
        return {};
    }
    std::string msg =
        what + (WIFEXITED(status) ? " failed with exit code " + std::to_string(WEXITSTATUS(status))
                                  : " was killed by signal " + std::to_string(WTERMSIG(status)));
    msg += tail.empty() ? " and printed nothing" : "; its output ends with:\n" + tail;
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
        keystore::log::info("dns-01: hook published TXT " + fqdn);
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
            keystore::log::warning("dns-01 cleanup: " + r.error().describe());
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
