#include "keystore/key_uri.h"

#include <algorithm>
#include <array>
#include <filesystem>

namespace keystore {

using base::Errc;
using base::fail;
using base::Result;

namespace {

constexpr std::array<std::string_view, 13> kPkcs11Path{"token",
                                                       "manufacturer",
                                                       "serial",
                                                       "model",
                                                       "library-manufacturer",
                                                       "library-description",
                                                       "library-version",
                                                       "object",
                                                       "type",
                                                       "id",
                                                       "slot-manufacturer",
                                                       "slot-description",
                                                       "slot-id"};
constexpr std::array<std::string_view, 4> kPkcs11Query{"pin-source", "pin-value", "module-name",
                                                       "module-path"};
constexpr std::array<std::string_view, 2> kTpmPath{"handle", "path"};
constexpr std::array<std::string_view, 3> kTpmQuery{"pin-source", "owner-auth-source",
                                                    "endorsement-auth-source"};

template <std::size_t N>
bool known(const std::array<std::string_view, N>& names, std::string_view name) {
    return std::find(names.begin(), names.end(), name) != names.end();
}

bool unreserved(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

Result<std::string> percent_decode(std::string_view in, std::string_view attr) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out += in[i];
            continue;
        }
        auto hex = [](char c) -> int {
            if (c >= '0' && c <= '9') return c - '0';
            if (c >= 'a' && c <= 'f') return c - 'a' + 10;
            if (c >= 'A' && c <= 'F') return c - 'A' + 10;
            return -1;
        };
        if (i + 2 >= in.size())
            return fail(Errc::usage, "key URI",
                        "truncated percent-escape in '" + std::string(attr) + "'");
        const int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
        if (hi < 0 || lo < 0)
            return fail(Errc::usage, "key URI",
                        "bad percent-escape in '" + std::string(attr) + "'");
        out += static_cast<char>(hi << 4 | lo);
        i += 2;
    }
    return out;
}

Result<KeyUri::Attrs> parse_attrs(std::string_view text, char sep, std::string_view scheme,
                                  bool query) {
    KeyUri::Attrs out;
    if (text.empty()) return out;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        const std::size_t end = std::min(text.find(sep, pos), text.size());
        const std::string_view item = text.substr(pos, end - pos);
        pos = end + 1;
        if (item.empty()) continue;
        const auto eq = item.find('=');
        if (eq == std::string_view::npos || eq == 0)
            return fail(Errc::usage, "key URI",
                        "attribute '" + std::string(item) + "' has no name=value form");
        const std::string name(item.substr(0, eq));
        const bool ok = scheme == "pkcs11"
                            ? (query ? known(kPkcs11Query, name) : known(kPkcs11Path, name))
                            : (query ? known(kTpmQuery, name) : known(kTpmPath, name));
        if (!ok)
            return fail(Errc::usage, "key URI",
                        "unknown " + std::string(query ? "query" : "path") + " attribute '" + name +
                            "' in a " + std::string(scheme) + ": URI");
        for (auto& [n, v] : out)
            if (n == name)
                return fail(Errc::usage, "key URI", "attribute '" + name + "' is repeated");
        auto value = percent_decode(item.substr(eq + 1), name);
        if (!value) return std::unexpected(value.error());
        out.emplace_back(name, std::move(*value));
    }
    return out;
}

}  // namespace

std::string percent_encode(std::string_view value, std::string_view keep) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    for (char c : value) {
        if (unreserved(c) || keep.find(c) != std::string_view::npos) {
            out += c;
        } else {
            const auto u = static_cast<unsigned char>(c);
            out += '%';
            out += kHex[u >> 4];
            out += kHex[u & 15];
        }
    }
    return out;
}

Result<KeyUri> KeyUri::parse(std::string_view text) {
    KeyUri uri;
    const auto colon = text.find(':');
    if (colon == std::string_view::npos) {
        // Appended, not "'" + std::string(...): GCC 12 -O3 warns on that (-Wrestrict, PR105329).
        std::string msg = "'";
        msg += text.substr(0, 40);
        msg += "' is not a key URI (expected pkcs11:, tpm2: or file:)";
        return fail(Errc::usage, "key URI", msg);
    }
    uri.scheme_ = std::string(text.substr(0, colon));
    std::string_view rest = text.substr(colon + 1);

    if (uri.scheme_ == "file") {
        // file:PATH or file:///PATH; the path is taken as-is after percent-decoding.
        if (rest.starts_with("//")) {
            rest.remove_prefix(2);
            if (!rest.starts_with("/"))
                return fail(Errc::usage, "key URI", "file: URIs name a local path (file:///PATH)");
        }
        if (rest.empty()) return fail(Errc::usage, "key URI", "file: URI without a path");
        auto path = percent_decode(rest, "path");
        if (!path) return std::unexpected(path.error());
        uri.path_.emplace_back("path", std::move(*path));
        return uri;
    }
    if (uri.scheme_ != "pkcs11" && uri.scheme_ != "tpm2")
        return fail(Errc::usage, "key URI",
                    "unknown scheme '" + uri.scheme_ + ":' (expected pkcs11:, tpm2: or file:)");

    const auto q = rest.find('?');
    auto path = parse_attrs(rest.substr(0, q), ';', uri.scheme_, false);
    if (!path) return std::unexpected(path.error());
    uri.path_ = std::move(*path);
    if (q != std::string_view::npos) {
        auto query = parse_attrs(rest.substr(q + 1), '&', uri.scheme_, true);
        if (!query) return std::unexpected(query.error());
        uri.query_ = std::move(*query);
    }
    if (uri.scheme_ == "tpm2") {
        const bool h = uri.path_attr("handle").has_value(), p = uri.path_attr("path").has_value();
        if (h == p)
            return fail(Errc::usage, "key URI",
                        "a tpm2: URI names exactly one of handle= or path=");
    }
    if (uri.query_attr("pin-source") && uri.query_attr("pin-value"))
        return fail(Errc::usage, "key URI", "pin-source and pin-value exclude each other");
    return uri;
}

std::optional<std::string> KeyUri::path_attr(std::string_view name) const {
    for (const auto& [n, v] : path_)
        if (n == name) return v;
    return std::nullopt;
}

std::optional<std::string> KeyUri::query_attr(std::string_view name) const {
    for (const auto& [n, v] : query_)
        if (n == name) return v;
    return std::nullopt;
}

namespace {
void set_attr(KeyUri::Attrs& attrs, std::string_view name, std::string value) {
    for (auto& [n, v] : attrs)
        if (n == name) {
            v = std::move(value);
            return;
        }
    attrs.emplace_back(std::string(name), std::move(value));
}
}  // namespace

void KeyUri::set_path_attr(std::string_view name, std::string value) {
    set_attr(path_, name, std::move(value));
}
void KeyUri::set_query_attr(std::string_view name, std::string value) {
    set_attr(query_, name, std::move(value));
}
void KeyUri::erase_path_attr(std::string_view name) {
    std::erase_if(path_, [&](const auto& a) { return a.first == name; });
}

void KeyUri::make_paths_absolute(const std::string& base) {
    auto absolute = [&](std::string& path) {
        if (!path.empty() && !path.starts_with('/'))
            path = (std::filesystem::path(base) / path).lexically_normal().string();
    };
    for (auto& [n, v] : path_)
        if (n == "path") absolute(v);
    for (auto& [n, v] : query_) {
        if (n == "module-path" && v.find('/') != std::string::npos) absolute(v);
        if (n != "pin-source") continue;
        // file:PATH and a bare path are made absolute; file:///PATH already is.
        if (v.starts_with("file:") && !v.starts_with("file://")) {
            std::string path = v.substr(5);
            absolute(path);
            v = "file:" + path;
        } else if (!v.starts_with("file:")) {
            absolute(v);
        }
    }
}

std::string KeyUri::to_string(PinValue pin) const {
    if (scheme_ == "file") {
        const std::string path = path_attr("path").value_or("");
        // "file://x" would read as an authority: keep a leading "//" unambiguous.
        return (path.starts_with("//") ? "file://" : "file:") + percent_encode(path, "/");
    }
    std::string out = scheme_ + ":";
    bool first = true;
    for (const auto& [n, v] : path_) {
        if (!first) out += ';';
        first = false;
        if (n == "id") {  // binary: every byte as %XX, the form pkcs11-tool and p11tool print
            out += "id=";
            static constexpr char kHex[] = "0123456789ABCDEF";
            for (unsigned char c : v) out += {'%', kHex[c >> 4], kHex[c & 15]};
            continue;
        }
        // RFC 7512 §2.3 pchar: ':' '@' '&' '+' ',' '$' may stay; '/' kept for tpm2:path.
        out += n + "=" + percent_encode(v, scheme_ == "tpm2" ? ":@&+,$/" : ":@&+,$");
    }
    first = true;
    for (const auto& [n, v] : query_) {
        if (n == "pin-value" && pin == PinValue::omit) continue;
        out += first ? '?' : '&';
        first = false;
        out += n + "=" + percent_encode(v, ":@/+,$;");
    }
    return out;
}

}  // namespace keystore
