#include "keystore/log.h"

#include <atomic>
#include <cstdio>
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
}  // namespace

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
