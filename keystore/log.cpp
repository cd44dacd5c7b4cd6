#include "keystore/log.h"

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <string>

namespace keystore {

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

std::string printable(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size();) {
        const auto b = static_cast<unsigned char>(text[i]);
        if (b < 0x80) {
            if ((b < 0x20 && b != '\n') || b == 0x7f)
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

}  // namespace keystore

namespace keystore::log {

namespace {
std::atomic<Level> g_level{Level::info};
std::mutex g_mutex;
void emit(Level at, const char* prefix, std::string_view message) {
    if (g_level.load() < at) return;
    const std::string line = std::string(prefix) + printable(message) + "\n";
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
