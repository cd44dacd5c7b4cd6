#include "keystore/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

namespace keystore::log {

namespace {
std::atomic<Level> g_level{Level::info};
std::mutex g_mutex;
void emit(Level at, const char* prefix, std::string_view message) {
    if (g_level.load() < at) return;
    const std::string line = std::string(prefix) + std::string(message) + "\n";
    std::lock_guard lock(g_mutex);
    (void)std::fwrite(line.data(), 1, line.size(), stderr);  // nowhere to report a failure
}
// The trace file, opened on first use: -1 when ACME_AGENT_TRACE is unset or cannot be
// opened (tracing is a benchmark aid: it never fails a run).
int trace_fd() {
    static const int fd = [] {
        const char* path = std::getenv("ACME_AGENT_TRACE");
        if (path == nullptr || *path == '\0') return -1;
        return ::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    }();
    return fd;
}
}  // namespace

std::int64_t trace_now() {
    if (trace_fd() < 0) return 0;
    using namespace std::chrono;
    return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

void trace(std::int64_t start_us, std::string_view what) {
    const std::int64_t end_us = trace_now();
    if (end_us == 0) return;
    const std::string line =
        std::to_string(start_us) + " " + std::to_string(end_us) + " " + std::string(what) + "\n";
    // One write per line: O_APPEND keeps the lines of concurrent threads whole.
    (void)!::write(trace_fd(), line.data(), line.size());
}

void set_level(Level l) {
    g_level = l;
}
Level level() {
    return g_level.load();
}
void warning(std::string_view m) {
    emit(Level::warning, "acme-agent: warning: ", m);
}
void info(std::string_view m) {
    emit(Level::info, "", m);
}
void debug(std::string_view m) {
    emit(Level::debug, "debug: ", m);
}

}  // namespace keystore::log
