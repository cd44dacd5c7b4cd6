#include "store/storage.h"

#include "base/log.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdlib>

namespace store {

using base::Errc;
using base::fail;

namespace {
std::string hostname() {
    std::array<char, 256> host{};
    if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
    return host.data();
}
}  // namespace

Result<std::vector<std::optional<Certificate>>> Storage::certificates(
    const std::vector<std::string>& names) const {
    std::vector<std::optional<Certificate>> out;
    out.reserve(names.size());
    for (const auto& name : names) {
        auto c = certificate(name);
        if (!c) return std::unexpected(c.error());
        out.push_back(std::move(*c));
    }
    return out;
}

std::string default_owner() {
    return node_name() + ":" + std::to_string(::getpid());
}

std::string node_name() {
    if (const char* env = std::getenv("ACME_AGENT_NODE"); env && *env) {
        const std::string node = env;
        const bool plain = node.size() <= 64 && std::ranges::all_of(node, [](char c) {
                               return std::isalnum(static_cast<unsigned char>(c)) || c == '-' ||
                                      c == '.' || c == '_';
                           });
        if (plain) return node;
        base::log::warning("ACME_AGENT_NODE is not 1 to 64 of [A-Za-z0-9._-]; using the hostname");
    }
    return hostname();
}

Result<void> check_name(const std::string& name) {
    const auto control = [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; };
    std::string why;
    if (name.empty())
        why = "is empty";
    else if (name.size() > max_name_length)
        why = "is longer than " + std::to_string(max_name_length) + " characters";
    else if (name.find('/') != std::string::npos)
        why = "holds '/'";
    else if (name.find("..") != std::string::npos)
        why = "holds '..'";
    else if (std::ranges::any_of(name, control))
        why = "holds a control character";
    if (why.empty()) return {};
    const std::string shown = name.size() > 64 ? name.substr(0, 64) + "..." : name;
    return fail(Errc::usage, "certificate name",
                "'" + shown + "' " + why +
                    "; name a certificate by its first domain (letters, digits, '.', '-', "
                    "'_', a leading '*.')");
}

Result<void> check_server(const std::string& server) {
    if (server.empty()) return fail(Errc::usage, "server", "no ACME directory URL");
    if (server.size() > max_server_length)
        return fail(Errc::usage, "server",
                    "the ACME directory URL is longer than " + std::to_string(max_server_length) +
                        " characters");
    return {};
}

}  // namespace store
