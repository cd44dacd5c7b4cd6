#include "base/subprocess.h"

#include "base/fd.h"
#include "base/log.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <utility>

// posix_spawn_file_actions_addclosefrom_np (glibc 2.34) closes every fd >= 3 in the child
// with close_range: without it, a descriptor opened without O_CLOEXEC (by curl, a PKCS#11
// module, a TSS library) would leak into every hook.
#if !defined(__GLIBC__) || !__GLIBC_PREREQ(2, 34)
#error "keystore/subprocess.cpp needs posix_spawn_file_actions_addclosefrom_np (glibc >= 2.34)"
#endif

namespace base::subprocess {

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
constexpr std::size_t kMaxDrain = 64 * 1024;  // read after the child exited, then stop
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

std::vector<char*> pointers(std::vector<std::string>& strings) {
    std::vector<char*> out;
    out.reserve(strings.size() + 1);
    for (auto& s : strings) out.push_back(s.data());
    out.push_back(nullptr);
    return out;
}

// Keeps the last `max` bytes (trimmed in steps, not on every read).
void append_bounded(Outcome& o, const char* data, std::size_t n, std::size_t max) {
    o.output.append(data, n);
    if (o.output.size() > 2 * max + 4096) {
        const std::size_t drop = o.output.size() - max;
        o.output.erase(0, drop);
        o.output_cut += drop;
    }
}

void reap(pid_t pid, int& status) {
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
}

}  // namespace

std::vector<std::string> shell(const std::string& line) {
    return {"/bin/sh", "-c", line};
}

std::vector<std::string> base_environment() {
    std::vector<std::string> env;
    const char* path = std::getenv("PATH");
    env.push_back(std::string("PATH=") + (path && *path ? path : kDefaultPath));
    for (const char* name : {"HOME", "LANG"})
        if (const char* v = std::getenv(name)) env.push_back(std::string(name) + "=" + v);
    return env;
}

std::string Outcome::status(std::chrono::milliseconds timeout) const {
    if (timed_out)
        return "timed out after " +
               (timeout.count() % 1000 == 0 ? std::to_string(timeout.count() / 1000) + " s"
                                            : std::to_string(timeout.count()) + " ms") +
               " and was killed";
    if (signal != 0) return "was killed by signal " + std::to_string(signal);
    return "exited with status " + std::to_string(exit_code);
}

std::string Outcome::quoted_output() const {
    std::string text = output;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
        text.pop_back();
    if (text.empty()) return "";
    if (output_cut) text = "[" + std::to_string(output_cut) + " bytes cut] " + text;
    return printable(text);
}

Result<Outcome> run(const Command& c) {
    const std::string where = c.argv.empty() ? std::string("subprocess") : c.argv[0];
    if (c.argv.empty() || c.argv[0].empty()) return fail(Errc::usage, where, "no command given");

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

    std::vector<std::string> args = c.argv;
    std::vector<std::string> env = base_environment();
    env.insert(env.end(), c.env.begin(), c.env.end());
    auto argv = pointers(args);
    auto envp = pointers(env);

    pid_t pid = -1;
    const bool search = c.argv[0].find('/') == std::string::npos;
    // posix_spawnp searches the PATH of this process, which is the PATH the child gets.
    const int rc =
        search ? ::posix_spawnp(&pid, argv[0], fa.get(), attr.get(), argv.data(), envp.data())
               : ::posix_spawn(&pid, argv[0], fa.get(), attr.get(), argv.data(), envp.data());
    if (rc != 0)
        return fail(Errc::io, where,
                    std::string("cannot run it") + (search ? " (searched on PATH)" : "") + ": " +
                        std::strerror(rc));
    write_end.reset();

    // glibc 2.36's <sys/pidfd.h> lacks extern "C", hence the raw syscall. -1 on kernels
    // before 5.3: then waitpid is polled every 50 ms.
    Fd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    const auto deadline = Clock::now() + c.timeout;
    Outcome out;
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
            // The whole process group: what the hook started goes with it.
            ::kill(-pid, SIGKILL);
            ::kill(pid, SIGKILL);
            reap(pid, status);
            out.timed_out = true;
            break;
        }
        auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now) +
                    std::chrono::milliseconds(1);
        if (!pidfd) wait = std::min<std::chrono::milliseconds>(wait, kReapInterval);
        wait = std::min<std::chrono::milliseconds>(wait, std::chrono::hours(24));
        pollfd fds[2] = {{eof ? -1 : read_end.get(), POLLIN, 0},
                         {pidfd ? pidfd.get() : -1, POLLIN, 0}};
        if (::poll(fds, 2, static_cast<int>(wait.count())) < 0 && errno != EINTR) {
            const int err = errno;
            ::kill(-pid, SIGKILL);
            reap(pid, status);
            return fail(Errc::internal, where, std::string("poll: ") + std::strerror(err));
        }
        if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            const ssize_t n = ::read(read_end.get(), buf, sizeof buf);
            if (n > 0)
                append_bounded(out, buf, static_cast<std::size_t>(n), c.max_output);
            else if (n == 0 || errno != EINTR)
                eof = true;
        }
    }
    // It has ended; what it left in the pipe is read, but a background process it started
    // that keeps the pipe open must not hold us.
    if (!eof) {
        ::fcntl(read_end.get(), F_SETFL, O_NONBLOCK);
        for (std::size_t total = 0; total < kMaxDrain;) {
            const ssize_t n = ::read(read_end.get(), buf, sizeof buf);
            if (n <= 0) break;
            append_bounded(out, buf, static_cast<std::size_t>(n), c.max_output);
            total += static_cast<std::size_t>(n);
        }
    }
    if (out.output.size() > c.max_output) {
        const std::size_t drop = out.output.size() - c.max_output;
        out.output.erase(0, drop);
        out.output_cut += drop;
    }
    if (!out.timed_out) {
        if (WIFEXITED(status))
            out.exit_code = WEXITSTATUS(status);
        else if (WIFSIGNALED(status))
            out.signal = WTERMSIG(status);
    } else {
        out.signal = SIGKILL;
    }
    return out;
}

}  // namespace base::subprocess
