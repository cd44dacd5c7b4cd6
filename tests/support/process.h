// Test support: run a command (no shell), capture its output and exit code.
#pragma once

#include "base/fd.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

extern char** environ;

namespace testsupport {

struct Outcome {
    int code = -1;
    std::string out;
    std::string err;
};

// Runs argv with the current environment plus `extra_env` ("NAME=VALUE"), stdin from
// /dev/null. Returns exit code (or 128+signal), stdout and stderr.
inline Outcome run(const std::vector<std::string>& argv,
                   const std::vector<std::string>& extra_env = {}) {
    std::array<int, 2> out_pipe{-1, -1};
    std::array<int, 2> err_pipe{-1, -1};
    const bool piped =
        pipe2(out_pipe.data(), O_CLOEXEC) == 0 && pipe2(err_pipe.data(), O_CLOEXEC) == 0;
    base::Fd out_read(out_pipe[0]);
    base::Fd out_write(out_pipe[1]);
    base::Fd err_read(err_pipe[0]);
    base::Fd err_write(err_pipe[1]);
    if (!piped) return {};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_write.get(), 1);
    posix_spawn_file_actions_adddup2(&fa, err_write.get(), 2);
    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<std::string> env_store;
    for (char** e = environ; *e; ++e) env_store.emplace_back(*e);
    for (const auto& e : extra_env) env_store.push_back(e);
    std::vector<char*> env;
    env.reserve(env_store.size() + 1);
    for (auto& e : env_store) env.push_back(const_cast<char*>(e.c_str()));
    env.push_back(nullptr);
    pid_t pid = -1;
    const int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), env.data());
    posix_spawn_file_actions_destroy(&fa);
    out_write.reset();  // the child's copies are the only writers left: EOF when it exits
    err_write.reset();
    Outcome o;
    if (rc != 0) {
        o.err = "cannot start " + argv[0];
        return o;
    }
    std::array<pollfd, 2> fds{{{out_read.get(), POLLIN, 0}, {err_read.get(), POLLIN, 0}}};
    int open_fds = 2;
    char buf[4096];
    while (open_fds > 0) {
        if (poll(fds.data(), fds.size(), -1) < 0) break;
        for (std::size_t i = 0; i < fds.size(); ++i) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
            const ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n <= 0) {
                (i == 0 ? out_read : err_read).reset();
                fds[i].fd = -1;
                --open_fds;
            } else {
                (i == 0 ? o.out : o.err).append(buf, static_cast<std::size_t>(n));
            }
        }
    }
    int status = 0;
    waitpid(pid, &status, 0);
    o.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return o;
}

// Parses `export A=B C=D` lines (as printed by the project's setup scripts) and setenv()s them.
inline void apply_exports(const std::string& text) {
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t eol = text.find('\n', pos);
        if (eol == std::string::npos) eol = text.size();
        std::string line = text.substr(pos, eol - pos);
        pos = eol + 1;
        if (!line.starts_with("export ")) continue;
        line.erase(0, 7);
        // split on spaces outside quotes
        std::string item;
        char quote = 0;
        auto flush = [&] {
            auto eq = item.find('=');
            if (eq != std::string::npos)
                setenv(item.substr(0, eq).c_str(), item.substr(eq + 1).c_str(), 1);
            item.clear();
        };
        for (char c : line) {
            if (quote) {
                if (c == quote)
                    quote = 0;
                else
                    item += c;
            } else if (c == '\'' || c == '"') {
                quote = c;
            } else if (c == ' ') {
                flush();
            } else {
                item += c;
            }
        }
        flush();
    }
}

}  // namespace testsupport
