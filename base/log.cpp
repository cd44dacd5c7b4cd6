#include "base/log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <string>
#include <utility>

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
std::atomic<Format> g_format{Format::text};
std::atomic<bool> g_timestamps{false};
std::mutex g_mutex;
thread_local std::string t_context;

// sd-daemon(3): JOURNAL_STREAM is "DEVICE:INODE" of the stream systemd connected to the
// journal; it only counts when stderr is still that stream (not redirected by a wrapper).
bool stderr_is_journal() {
    static const bool journal = [] {
        const char* v = std::getenv("JOURNAL_STREAM");
        if (v == nullptr) return false;
        char* end = nullptr;
        const unsigned long long dev = std::strtoull(v, &end, 10);
        if (end == v || *end != ':') return false;
        const char* ino_text = end + 1;
        const unsigned long long ino = std::strtoull(ino_text, &end, 10);
        if (end == ino_text || *end != '\0') return false;
        struct stat st{};
        return ::fstat(STDERR_FILENO, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
    }();
    return journal;
}

std::string_view level_name(Level at) {
    switch (at) {
        case Level::error:
            return "error";
        case Level::warning:
            return "warning";
        case Level::info:
            return "info";
        case Level::debug:
            return "debug";
        case Level::quiet:
            break;
    }
    return "";
}

// syslog(3) priorities: LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG.
char priority(Level at) {
    switch (at) {
        case Level::error:
            return '3';
        case Level::warning:
            return '4';
        case Level::debug:
            return '7';
        default:
            return '6';
    }
}

std::string_view text_prefix(Level at) {
    switch (at) {
        case Level::error:
            return "acme-agent: error: ";
        case Level::warning:
            return "acme-agent: warning: ";
        case Level::debug:
            return "debug: ";
        default:
            return "";
    }
}

// RFC 3339 in UTC with milliseconds.
std::string timestamp(std::int64_t now_ms) {
    const auto secs = static_cast<std::time_t>(now_ms / 1000);
    std::tm tm{};
    (void)::gmtime_r(&secs, &tm);
    char buf[80];
    (void)std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                        tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                        static_cast<int>(now_ms % 1000));
    return buf;
}

// A JSON string of printable() text: that has no control character but '\n' left.
std::string json_string(std::string_view text) {
    std::string out = "\"";
    for (const char c : text) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out += c;
        }
    }
    out += '"';
    return out;
}

// A key URI's pin-value (RFC 7512 §2.3) that slipped into a message is masked: the
// logger is the last place a secret could still be stopped.
std::string mask_pin(std::string text) {
    static constexpr std::string_view kAttr = "pin-value=";
    for (std::size_t at = text.find(kAttr); at != std::string::npos;
         at = text.find(kAttr, at + kAttr.size())) {
        const std::size_t from = at + kAttr.size();
        const std::size_t to = text.find_first_of(";&?#\"' \n", from);
        text.replace(from, (to == std::string::npos ? text.size() : to) - from, "***");
    }
    return text;
}

std::int64_t now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

void emit(Level at, std::string_view message) {
    if (g_level.load() < at) return;
    const std::string line = format_line(at, message, t_context, stderr_is_journal(), now_ms());
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

std::string format_line(Level at, std::string_view message, std::string_view context, bool journal,
                        std::int64_t now) {
    std::string text = mask_pin(printable(message));
    std::string line;
    if (journal) {
        const std::string prefix = {'<', priority(at), '>'};
        line += prefix;
        // journald makes each line of a text message an entry of its own: each carries the
        // priority (a JSON line has its newlines escaped).
        if (g_format.load() == Format::text)
            for (auto nl = text.find('\n'); nl != std::string::npos; nl = text.find('\n', nl + 1))
                text.insert(nl + 1, prefix);
    }
    if (g_format.load() == Format::json) {
        line += "{\"time\":\"" + timestamp(now) + "\",\"level\":\"";
        line += level_name(at);
        line += '"';
        if (!context.empty())
            line += ",\"certificate\":" + json_string(mask_pin(printable(context, Lines::escape)));
        line += ",\"message\":" + json_string(text) + "}\n";
        return line;
    }
    if (!g_timestamps.load()) {
        line += text_prefix(at);
        line += text;
        line += '\n';
        return line;
    }
    if (!journal) line += timestamp(now) + " ";
    line += level_name(at);
    if (!context.empty()) line += " [" + printable(context, Lines::escape) + "]";
    line += " " + text + "\n";
    return line;
}

Result<Level> parse_level(std::string_view text) {
    if (text == "error") return Level::error;
    if (text == "warn" || text == "warning") return Level::warning;
    if (text == "info") return Level::info;
    if (text == "debug") return Level::debug;
    return fail(
        Errc::usage, "--log-level",
        "'" + printable(text, Lines::escape) + "' is not a level; use error, warn, info or debug");
}

Result<Format> parse_format(std::string_view text) {
    if (text == "text") return Format::text;
    if (text == "json") return Format::json;
    return fail(Errc::usage, "--log-format",
                "'" + printable(text, Lines::escape) + "' is not a format; use text or json");
}

void set_format(Format f) {
    g_format = f;
}

void set_timestamps(bool on) {
    g_timestamps = on;
}

Context::Context(std::string name) : previous_(std::exchange(t_context, std::move(name))) {}

Context::~Context() {
    t_context = std::move(previous_);
}

const std::string& context() {
    return t_context;
}

void set_level(Level l) {
    g_level = l;
}
Level level() {
    return g_level.load();
}
void error(std::string_view m) {
    emit(Level::error, m);
}
void warning(std::string_view m) {
    emit(Level::warning, m);
}
void info(std::string_view m) {
    emit(Level::info, m);
}
void debug(std::string_view m) {
    emit(Level::debug, m);
}

}  // namespace base::log
