#include "challenge/dns01.h"

#include "base/files.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>

namespace challenge {

using base::Errc;
using base::fail;

namespace {

constexpr std::size_t kMaxKeyFile = 64 * 1024;

bool is_alnum(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return lower(x) == lower(y); });
}

// Standard base64 (RFC 4648 §4) with padding, as BIND writes secrets.
bool valid_base64(std::string_view s) {
    if (s.empty() || s.size() % 4 != 0) return false;
    std::size_t pad = 0;
    while (pad < 2 && pad < s.size() && s[s.size() - 1 - pad] == '=') ++pad;
    return std::all_of(s.begin(), s.end() - static_cast<std::ptrdiff_t>(pad),
                       [](char c) { return is_alnum(c) || c == '+' || c == '/'; });
}

// A lexer for the small part of named.conf syntax a key file uses. Tokens are views into
// the text, so the secret is never copied into a std::string that is not wiped.
struct Token {
    enum class Kind { word, string, punct, end } kind = Kind::end;
    std::string_view text;
    int line = 0;
};

class Lexer {
  public:
    explicit Lexer(std::string_view text) : s_(text) {}

    // Errors name the line only: a malformed token may be part of the secret.
    Result<Token> next(const std::string& where) {
        for (;;) {
            while (i_ < s_.size() &&
                   (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) {
                if (s_[i_] == '\n') ++line_;
                ++i_;
            }
            if (i_ >= s_.size()) return Token{Token::Kind::end, {}, line_};
            if (s_[i_] == '#' || s_.substr(i_, 2) == "//") {
                while (i_ < s_.size() && s_[i_] != '\n') ++i_;
                continue;
            }
            if (s_.substr(i_, 2) == "/*") {
                const int start = line_;
                const auto end = s_.find("*/", i_ + 2);
                if (end == std::string_view::npos)
                    return fail(Errc::usage, where,
                                "line " + std::to_string(start) + ": unterminated comment");
                line_ += static_cast<int>(std::count(s_.begin() + static_cast<std::ptrdiff_t>(i_),
                                                     s_.begin() + static_cast<std::ptrdiff_t>(end),
                                                     '\n'));
                i_ = end + 2;
                continue;
            }
            break;
        }
        const char c = s_[i_];
        if (c == '{' || c == '}' || c == ';')
            return Token{Token::Kind::punct, s_.substr(i_++, 1), line_};
        if (c == '"') {
            const auto end = s_.find_first_of("\"\n", i_ + 1);
            if (end == std::string_view::npos || s_[end] != '"')
                return fail(Errc::usage, where,
                            "line " + std::to_string(line_) + ": unterminated string");
            Token t{Token::Kind::string, s_.substr(i_ + 1, end - i_ - 1), line_};
            i_ = end + 1;
            return t;
        }
        const std::size_t start = i_;
        while (i_ < s_.size() && !std::string_view(" \t\r\n{};\"#").contains(s_[i_]) &&
               s_.substr(i_, 2) != "//" && s_.substr(i_, 2) != "/*")
            ++i_;
        return Token{Token::Kind::word, s_.substr(start, i_ - start), line_};
    }

  private:
    std::string_view s_;
    std::size_t i_ = 0;
    int line_ = 1;
};

std::optional<std::string> canonical_algorithm(std::string_view name) {
    if (name.ends_with('.')) name.remove_suffix(1);
    for (std::string_view known : {"hmac-sha256", "hmac-sha384", "hmac-sha512"})
        if (iequals(name, known)) return std::string(known) + ".";
    return std::nullopt;
}

bool valid_key_name(std::string_view name) {
    return !name.empty() && name.size() <= 253 && std::ranges::all_of(name, [](char c) {
        return is_alnum(c) || c == '.' || c == '-' || c == '_';
    });
}

}  // namespace

bool valid_dns01_identifier(std::string_view name) {
    if (name.empty() || name.size() > 253) return false;
    std::size_t label = 0;
    for (char c : name) {
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
        } else if (is_alnum(c) || c == '-') {
            if (++label > 63) return false;
        } else {
            return false;
        }
    }
    return label != 0;
}

std::string dns01_record_name(const std::string& identifier) {
    return "_acme-challenge." + identifier + ".";
}

Result<TsigKey> parse_tsig_key(std::string_view text, const std::string& where) {
    Lexer lex(text);
    auto at = [&](const Token& t, const std::string& what) {
        return fail(Errc::usage, where, "line " + std::to_string(t.line) + ": " + what);
    };
    auto expect = [&](std::string_view punct, const std::string& after) -> Result<void> {
        auto t = lex.next(where);
        if (!t) return std::unexpected(t.error());
        if (t->kind != Token::Kind::punct || t->text != punct)
            return at(*t, "expected '" + std::string(punct) + "' " + after);
        return {};
    };

    std::optional<TsigKey> key;
    for (;;) {
        auto t = lex.next(where);
        if (!t) return std::unexpected(t.error());
        if (t->kind == Token::Kind::end) break;
        if (t->kind != Token::Kind::word || !iequals(t->text, "key"))
            return at(
                *t, "expected a key statement (key \"NAME\" { algorithm ...; secret \"...\"; };)");
        if (key) return at(*t, "more than one key statement; the file must hold exactly one key");

        TsigKey k;
        auto name = lex.next(where);
        if (!name) return std::unexpected(name.error());
        if (name->kind != Token::Kind::word && name->kind != Token::Kind::string)
            return at(*name, "expected the key's name after 'key'");
        if (!valid_key_name(name->text))
            return at(*name, "the key name '" + std::string(name->text) +
                                 "' is not a DNS name ([A-Za-z0-9._-])");
        k.name = std::string(name->text);
        if (auto e = expect("{", "after the key name"); !e) return std::unexpected(e.error());

        bool has_secret = false;
        for (;;) {
            auto c = lex.next(where);
            if (!c) return std::unexpected(c.error());
            if (c->kind == Token::Kind::punct && c->text == "}") break;
            if (c->kind == Token::Kind::end)
                return at(*c, "the key statement is not closed with '};'");
            if (c->kind != Token::Kind::word) return at(*c, "expected 'algorithm' or 'secret'");
            if (iequals(c->text, "algorithm")) {
                auto v = lex.next(where);
                if (!v) return std::unexpected(v.error());
                if (v->kind != Token::Kind::word && v->kind != Token::Kind::string)
                    return at(*v, "expected an algorithm name after 'algorithm'");
                auto alg = canonical_algorithm(v->text);
                if (!alg)
                    return at(*v, "unsupported TSIG algorithm '" + std::string(v->text) +
                                      "' for key '" + k.name +
                                      "' (use hmac-sha256, hmac-sha384 or hmac-sha512)");
                k.algorithm = *alg;
                if (auto e = expect(";", "after the algorithm"); !e)
                    return std::unexpected(e.error());
            } else if (iequals(c->text, "secret")) {
                // Nothing of this clause goes into a message.
                auto v = lex.next(where);
                if (!v) return std::unexpected(v.error());
                if (v->kind != Token::Kind::string)
                    return at(*v,
                              "the secret of key '" + k.name + "' must be a quoted base64 string");
                if (!valid_base64(v->text))
                    return at(*v, "the secret of key '" + k.name + "' is not valid base64");
                k.secret = base::Secret(std::string(v->text));
                has_secret = true;
                if (auto e = expect(";", "after the secret"); !e) return std::unexpected(e.error());
            } else {
                return at(*c, "unknown clause '" + std::string(c->text).substr(0, 32) +
                                  "' in the key statement (expected 'algorithm' or 'secret')");
            }
        }
        if (auto e = expect(";", "after '}'"); !e) return std::unexpected(e.error());
        if (k.algorithm.empty())
            return fail(Errc::usage, where, "key '" + k.name + "' has no algorithm");
        if (!has_secret) return fail(Errc::usage, where, "key '" + k.name + "' has no secret");
        key = std::move(k);
    }
    if (!key) return fail(Errc::usage, where, "no key statement (key \"NAME\" { ... };) found");
    return std::move(*key);
}

Result<TsigKey> read_tsig_key_file(const std::string& path) {
    // Owner-only, checked on the opened file (SECURITY.md rule 18); wiped after parsing.
    auto held = base::read_secret_file(path, "TSIG key file", kMaxKeyFile);
    if (!held) return std::unexpected(held.error());
    return parse_tsig_key(held->reveal(), path);
}

std::string DnsServer::to_string() const {
    const bool v6 = address.find(':') != std::string::npos;
    return (v6 ? "[" + address + "]" : address) + ":" + std::to_string(port);
}

Result<DnsServer> parse_dns_server(const std::string& text) {
    const std::string where = "--rfc2136";
    auto bad = [&](const std::string& why) {
        return fail(Errc::usage, where,
                    "'" + text + "' " + why + " (expected IPV4[:PORT] or [IPV6][:PORT])");
    };
    if (text.find('\0') != std::string::npos) return bad("contains a NUL byte");
    DnsServer out;
    std::string_view host = text;
    std::string_view port;
    if (text.starts_with('[')) {
        const auto close = text.find(']');
        if (close == std::string::npos) return bad("has no closing ']'");
        host = std::string_view(text).substr(1, close - 1);
        std::string_view rest = std::string_view(text).substr(close + 1);
        if (!rest.empty()) {
            if (rest.front() != ':') return bad("has text after ']' that is not :PORT");
            port = rest.substr(1);
            if (port.empty()) return bad("has an empty port");
        }
    } else if (std::count(text.begin(), text.end(), ':') == 1) {
        const auto colon = text.find(':');
        host = std::string_view(text).substr(0, colon);
        port = std::string_view(text).substr(colon + 1);
        if (port.empty()) return bad("has an empty port");
    }
    std::array<unsigned char, 16> buf{};
    const std::string h(host);
    if (::inet_pton(AF_INET, h.c_str(), buf.data()) == 1) {
        if (text.starts_with('[')) return bad("puts an IPv4 address in brackets");
    } else if (::inet_pton(AF_INET6, h.c_str(), buf.data()) != 1) {
        return bad("is not an IP address; a host name is not accepted");
    }
    out.address = h;
    if (!port.empty()) {
        unsigned value = 0;
        auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535)
            return bad("has a port that is not 1-65535");
        out.port = static_cast<std::uint16_t>(value);
    }
    return out;
}

}  // namespace challenge
