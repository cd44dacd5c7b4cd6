#include "store/storage.h"

#include <unistd.h>

#include <algorithm>
#include <array>

namespace store {

using base::Errc;
using base::fail;

std::string default_owner() {
    std::array<char, 256> host{};
    if (::gethostname(host.data(), host.size() - 1) != 0) host[0] = '\0';
    return std::string(host.data()) + ":" + std::to_string(::getpid());
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
