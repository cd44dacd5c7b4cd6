#include "base/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

namespace base {

namespace {

void hex_byte(std::string& out, unsigned char b) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += "\\x";
    out += kHex[b >> 4];
    out += kHex[b & 0xf];
}

// Length of the valid UTF-8 sequence at text[i] and its code point, or 0 when invalid
// (overlong forms, surrogates and values past U+10FFFF are invalid).
std::size_t utf8_at(std::string_view text, std::size_t i, char32_t& cp) {
    const auto b0 = static_cast<unsigned char>(text[i]);
    std::size_t len = 0;
    char32_t min = 0;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
        len = 2, cp = b0 & 0x1f, min = 0x80;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
        len = 3, cp = b0 & 0x0f, min = 0x800;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
        len = 4, cp = b0 & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (i + len > text.size()) return 0;
    for (std::size_t k = 1; k < len; ++k) {
        const auto b = static_cast<unsigned char>(text[i + k]);
        if ((b & 0xc0) != 0x80) return 0;
        cp = (cp << 6) | (b & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

// Code points that are printable UTF-8 yet steer a terminal or reorder what it shows.
bool format_control(char32_t cp) {
    return (cp >= 0x80 && cp <= 0x9f) ||      // C1 (CSI, OSC as one code point)
           cp == 0x061c ||                    // Arabic letter mark
           (cp >= 0x200e && cp <= 0x200f) ||  // LRM, RLM
           (cp >= 0x2028 && cp <= 0x202e) ||  // line/paragraph separators, bidi embeddings
           (cp >= 0x2066 && cp <= 0x2069);    // bidi isolates
}

}  // namespace

std::string printable(std::string_view text, Lines lines) {
    const bool keep_newline = lines == Lines::keep;
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        const auto b = static_cast<unsigned char>(text[i]);
        if (b < 0x80) {
            if ((b < 0x20 && (b != '\n' || !keep_newline)) || b == 0x7f)
                hex_byte(out, b);
            else
                out += static_cast<char>(b);
            ++i;
            continue;
        }
        char32_t cp = 0;
        const std::size_t len = utf8_at(text, i, cp);
        if (len == 0) {
            hex_byte(out, b);
            ++i;
            continue;
        }
        if (format_control(cp)) {
            char buf[16];
            (void)std::snprintf(buf, sizeof buf, "\\u{%x}", static_cast<unsigned>(cp));
            out += buf;
        } else {
            out.append(text.substr(i, len));
        }
        i += len;
    }
    return out;
}

}  // namespace base

namespace base::log {

namespace {
std::atomic<Level> g_level{Level::info};
std::mutex g_mutex;
void emit(Level at, const char* prefix, std::string_view message) {
    if (g_level.load() < at) return;
    const std::string line = std::string(prefix) + printable(message) + "\n";
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

}  // namespace base::log
