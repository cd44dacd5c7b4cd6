#include "config/config.h"

#include "base/files.h"
#include "keystore/key_uri.h"

#include <toml.hpp>

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>
#include <utility>

namespace config {

namespace {

using base::Errc;
using base::fail;

// toml11 keeps a table in an unordered map: visit its keys in file order, so that the
// first error reported is the first in the file.
std::vector<std::pair<std::string, const toml::value*>> in_file_order(const toml::value& table) {
    std::vector<std::pair<std::string, const toml::value*>> out;
    for (const auto& [k, v] : table.as_table()) out.emplace_back(k, &v);
    std::ranges::sort(out, [](const auto& a, const auto& b) {
        return a.second->location().line() < b.second->location().line();
    });
    return out;
}

// The useful sentence of a toml11 error: the headline after "[error] toml::fn: ", else the
// note under the marked source line.
std::string toml_message(const std::string& what) {
    std::istringstream in(what);
    std::string line;
    std::string head;
    std::string note;
    while (std::getline(in, line)) {
        if (head.empty() && line.starts_with("[error] ")) {
            head = line.substr(8);
            if (auto colon = head.find(": ");
                head.starts_with("toml::") && colon != std::string::npos)
                head = head.substr(colon + 2);
            else if (head.starts_with("toml::") && head.ends_with(":"))
                head.clear();
            continue;
        }
        if (auto mark = line.find_first_of("^~");
            mark != std::string::npos && line.find(" | ") != std::string::npos)
            if (auto sp = line.find(' ', mark); sp != std::string::npos) note = line.substr(sp + 1);
    }
    while (!head.empty() && (head.back() == ' ' || head.back() == '.')) head.pop_back();
    if (!head.empty()) return "TOML syntax: " + head;
    return "TOML syntax: " + (note.empty() ? std::string("cannot parse") : note);
}

class Reader {
  public:
    Reader(std::string file, std::filesystem::path dir, bool owner_only)
        : file_(std::move(file)), dir_(std::move(dir)), owner_only_(owner_only) {}

    std::string where(const toml::value& v) const {
        return file_ + ":" + std::to_string(v.location().line());
    }
    std::unexpected<base::Error> bad(const toml::value& v, std::string message) const {
        return fail(Errc::usage, where(v), std::move(message));
    }

    Result<std::string> string(const std::string& key, const toml::value& v) const {
        if (!v.is_string()) return bad(v, key + " must be a string (in double quotes)");
        std::string s = v.as_string().str;
        if (s.empty()) return bad(v, key + " must not be empty");
        return s;
    }
    Result<std::string> path(const std::string& key, const toml::value& v) const {
        auto s = string(key, v);
        if (!s) return s;
        std::filesystem::path p(*s);
        return p.is_absolute() ? *s : (dir_ / p).lexically_normal().string();
    }
    // A port as a number (443) or "[ADDR:]PORT" text.
    Result<std::string> port(const std::string& key, const toml::value& v) const {
        if (v.is_integer()) {
            auto n = v.as_integer();
            if (n < 1 || n > 65535) return bad(v, key + " must be a port number (1-65535)");
            return std::to_string(n);
        }
        if (!v.is_string()) return bad(v, key + " must be a port number or \"ADDR:PORT\"");
        return string(key, v);
    }
    Result<unsigned> count(const std::string& key, const toml::value& v, long max) const {
        if (!v.is_integer() || v.as_integer() < 0 || v.as_integer() > max)
            return bad(v, key + " must be a whole number from 0 to " + std::to_string(max));
        return static_cast<unsigned>(v.as_integer());
    }
    // A key URI, its syntax checked, its paths made absolute (relative to the file). A
    // pin-value only in a file no one else can read (SECURITY.md rule 18).
    Result<std::string> key_uri(const std::string& key, const toml::value& v) const {
        auto s = string(key, v);
        if (!s) return s;
        auto u = keystore::KeyUri::parse(*s);
        if (!u) return bad(v, key + ": " + u.error().describe());
        if (u->query_attr("pin-value") && !owner_only_)
            return bad(v, key +
                              ": a pin-value needs a config file only its owner can read; run: "
                              "chmod 600 " +
                              file_ + ", or use ?pin-source=file:FILE");
        u->make_paths_absolute(dir_.string());
        return u->to_string(keystore::KeyUri::PinValue::keep);
    }
    Result<bool> boolean(const std::string& key, const toml::value& v) const {
        if (!v.is_boolean()) return bad(v, key + " must be true or false");
        return v.as_boolean();
    }
    // A string, or (when `one_ok`) a list of strings.
    Result<std::vector<std::string>> strings(const std::string& key, const toml::value& v,
                                             bool one_ok) const {
        std::vector<std::string> out;
        if (one_ok && v.is_string()) {
            auto s = string(key, v);
            if (!s) return std::unexpected(s.error());
            out.push_back(*s);
            return out;
        }
        if (!v.is_array())
            return bad(v, key + " must be a list of strings, e.g. " + key + " = [\"a\", \"b\"]");
        for (const auto& e : v.as_array()) {
            auto s = string(key, e);
            if (!s) return std::unexpected(s.error());
            out.push_back(*s);
        }
        if (out.empty()) return bad(v, key + " must not be empty");
        return out;
    }

    Result<Certificate> certificate(const toml::value& t) const;

  private:
    std::string file_;
    std::filesystem::path dir_;
    bool owner_only_;
};

// Stores a checked value in `field`, or its error in `ok` (the caller returns that).
template <typename R, typename F>
void take(Result<void>& ok, R& checked, F& field) {
    if (!checked)
        ok = std::unexpected(checked.error());
    else
        field = std::move(*checked);
}

bool valid_name(const std::string& name) {
    const std::string rest = name.starts_with("*.") ? name.substr(2) : name;
    return !rest.empty() && rest[0] != '.' && std::ranges::all_of(rest, [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
    });
}

Result<Certificate> Reader::certificate(const toml::value& t) const {
    Certificate c;
    c.line = t.location().line();
    bool has_name = false;
    const toml::value* webroot_at = nullptr;
    for (auto& [k, vp] : in_file_order(t)) {
        const toml::value& v = *vp;
        Result<void> ok;
        auto set = [&](auto checked, auto& field) { take(ok, checked, field); };
        if (k == "name") {
            set(string(k, v), c.name);
            has_name = true;
            if (ok && !valid_name(c.name))
                return bad(v, "name '" + c.name +
                                  "' must be letters, digits, '.', '-' and '_' (a directory name)");
        } else if (k == "domains") {
            set(strings(k, v, false), c.domains);
        } else if (k == "key") {
            set(key_uri(k, v), c.key);
        } else if (k == "challenge") {
            set(string(k, v), c.challenge);
            if (ok && c.challenge != "http-01" && c.challenge != "dns-01" &&
                c.challenge != "tls-alpn-01")
                return bad(v, "challenge '" + c.challenge +
                                  "' is not one of http-01, dns-01, tls-alpn-01");
        } else if (k == "http_port") {
            set(port(k, v), c.http_port);
        } else if (k == "webroot") {
            set(path(k, v), c.webroot);
            webroot_at = &v;
        } else if (k == "tls_alpn_port") {
            set(port(k, v), c.tls_alpn_port);
        } else if (k == "dns_hook") {
            set(string(k, v), c.dns_hook);
        } else if (k == "rfc2136") {
            set(string(k, v), c.rfc2136);
        } else if (k == "tsig_key") {
            set(path(k, v), c.tsig_key);
        } else if (k == "deploy_hook") {
            set(string(k, v), c.deploy_hook);
        } else if (k == "renew_before_days") {
            set(count(k, v, 3650), c.renew_before_days);
        } else if (k == "profile") {
            set(string(k, v), c.profile);
        } else if (k == "preferred_chain") {
            set(string(k, v), c.preferred_chain);
        } else {
            return bad(v, "unknown key '" + k + "' in [[certificate]]");
        }
        if (!ok) return std::unexpected(ok.error());
    }
    if (c.domains.empty()) return bad(t, "[[certificate]] needs domains = [\"NAME\", ...]");
    if (c.key.empty()) return bad(t, "[[certificate]] needs key = \"KEY-URI\"");
    if (!has_name) {
        c.name = c.domains.front();
        if (!valid_name(c.name))
            return bad(t, "the first domain '" + c.name + "' cannot name a directory; set name");
    }
    for (auto& d : c.domains)
        if (d.starts_with("*.") && c.challenge != "dns-01")
            return bad(t, "the wildcard " + d + " needs challenge = \"dns-01\"");
    if (webroot_at && c.challenge != "http-01")
        return bad(*webroot_at, "webroot applies to challenge = \"http-01\" only");
    if (c.challenge == "dns-01") {
        if (c.dns_hook.empty() == c.rfc2136.empty())
            return bad(t,
                       "challenge = \"dns-01\" needs either dns_hook or rfc2136 (with tsig_key)");
        if (!c.rfc2136.empty() && c.tsig_key.empty())
            return bad(t, "rfc2136 needs tsig_key = \"FILE\"");
    }
    return c;
}

}  // namespace

Result<Config> parse(std::string_view text, const std::string& path, bool owner_only) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(path, ec);
    Reader r(path, ec ? std::filesystem::current_path(ec) : abs.parent_path(), owner_only);
    toml::value root;
    try {
        std::istringstream in{std::string(text)};
        root = toml::parse(in, path);
    } catch (const toml::exception& e) {
        return fail(Errc::usage, path + ":" + std::to_string(e.location().line()),
                    toml_message(e.what()));
    } catch (const std::exception& e) {
        return fail(Errc::usage, path, toml_message(e.what()));
    }

    Config c;
    c.path = path;
    for (auto& [k, vp] : in_file_order(root)) {
        const toml::value& v = *vp;
        Result<void> ok;
        auto set = [&](auto checked, auto& field) { take(ok, checked, field); };
        if (k == "server") {
            set(r.string(k, v), c.server);
        } else if (k == "ca_file") {
            set(r.path(k, v), c.ca_file);
        } else if (k == "state_dir") {
            set(r.path(k, v), c.state_dir);
        } else if (k == "storage") {
            set(r.string(k, v), c.storage);
        } else if (k == "account_key") {
            set(r.key_uri(k, v), c.account_key);
        } else if (k == "email") {
            set(r.strings(k, v, true), c.emails);
        } else if (k == "agree_tos") {
            set(r.boolean(k, v), c.agree_tos);
        } else if (k == "eab_kid") {
            set(r.string(k, v), c.eab_kid);
        } else if (k == "eab_hmac_key") {
            // A pkcs11: URI of an HMAC key, or a file (relative to the config).
            if (v.is_string() && v.as_string().str.starts_with("pkcs11:"))
                set(r.key_uri(k, v), c.eab_hmac_key);
            else
                set(r.path(k, v), c.eab_hmac_key);
        } else if (k == "deploy_hook_timeout") {
            set(r.count(k, v, 86400), c.deploy_hook_timeout);
            if (ok && c.deploy_hook_timeout == 0)
                return r.bad(v, "deploy_hook_timeout must be at least 1 (seconds)");
        } else if (k == "metrics") {
            set(r.string(k, v), c.metrics);
        } else if (k == "certificate") {
            if (!v.is_array() || !std::all_of(v.as_array().begin(), v.as_array().end(),
                                              [](auto& t) { return t.is_table(); }))
                return r.bad(v, "certificate must be [[certificate]] tables");
            std::set<std::string> names;
            for (const auto& t : v.as_array()) {
                auto cert = r.certificate(t);
                if (!cert) return std::unexpected(cert.error());
                if (!names.insert(cert->name).second)
                    return r.bad(t, "a second certificate named '" + cert->name +
                                        "' (set name to tell them apart)");
                c.certificates.push_back(std::move(*cert));
            }
        } else {
            return r.bad(v, "unknown key '" + k + "' (top level)");
        }
        if (!ok) return std::unexpected(ok.error());
    }
    if (c.eab_kid.empty() != c.eab_hmac_key.empty())
        return fail(Errc::usage, path, "eab_kid and eab_hmac_key go together; set both or neither");
    return c;
}

Result<Config> load(const std::string& path) {
    // Its deploy_hook runs as this user: a file another user can change is code they run
    // here (SECURITY.md rule 18). Checked on the opened file, not through a symlink.
    base::FileInfo info;
    // A FIFO (a generated config) is checked the same way: its owner and mode.
    auto text = base::read_file_nofollow(path, 1 << 20, &info, /*fifo_ok=*/true);
    if (!text) return std::unexpected(text.error());
    const uid_t me = ::geteuid();
    if (info.uid != me && info.uid != 0)
        return fail(Errc::usage, path,
                    "owned by uid " + std::to_string(info.uid) + ", not by this user (uid " +
                        std::to_string(me) +
                        ") or root, and its hooks would run as this user; "
                        "run: chown " +
                        std::to_string(me) + " " + path);
    if (info.mode & 022)
        return fail(Errc::usage, path,
                    "writable by group or others, and its hooks run as this user; run: chmod "
                    "go-w " +
                        path);
    return parse(*text, path, (info.mode & 077) == 0);
}

}  // namespace config
