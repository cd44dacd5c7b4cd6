#include "challenge/listener.h"

#include "base/deleter.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <system_error>

namespace challenge {

using base::Errc;
using base::fail;

namespace {

struct ListenSpec {
    std::string host;
    std::string port;
};

Result<ListenSpec> parse_spec(const std::string& listen) {
    auto bad = [&](const std::string& why) {
        return fail(Errc::usage, "listen " + listen,
                    why + " (want PORT, ADDR:PORT or [V6ADDR]:PORT)");
    };
    ListenSpec spec{"0.0.0.0", listen};
    if (!listen.empty() && listen.front() == '[') {
        const auto close = listen.find(']');
        if (close == std::string::npos || close == 1) return bad("malformed IPv6 address");
        if (close + 1 >= listen.size() || listen[close + 1] != ':') return bad("missing port");
        spec.host = listen.substr(1, close - 1);
        spec.port = listen.substr(close + 2);
    } else if (const auto colon = listen.find(':'); colon != std::string::npos) {
        if (listen.find(':', colon + 1) != std::string::npos) {
            return bad("an IPv6 address needs brackets");
        }
        if (colon > 0) spec.host = listen.substr(0, colon);
        spec.port = listen.substr(colon + 1);
    }
    if (spec.port.empty() || spec.port.size() > 5 ||
        !std::ranges::all_of(spec.port, [](char c) { return c >= '0' && c <= '9'; }) ||
        std::stoul(spec.port) > 65535) {
        return bad("bad port");
    }
    return spec;
}

std::string display(const ListenSpec& spec) {
    return spec.host.find(':') != std::string::npos ? "[" + spec.host + "]:" + spec.port
                                                    : spec.host + ":" + spec.port;
}

}  // namespace

Result<void> ServeThread::start(std::function<void()> loop, const std::string& where) {
    wake_ = Fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!wake_)
        return base::fail(base::Errc::io, where, std::string("eventfd: ") + std::strerror(errno));
    try {
        thread_ = std::thread(std::move(loop));
    } catch (const std::system_error& e) {
        return base::fail(base::Errc::internal, where,
                          std::string("cannot start a thread: ") + e.what());
    }
    return {};
}

ServeThread::~ServeThread() {
    if (thread_.joinable()) {
        const std::uint64_t one = 1;
        // An eventfd write of 1 cannot fail short of a counter overflow.
        [[maybe_unused]] const auto n = ::write(wake_.get(), &one, sizeof one);
        thread_.join();
    }
}

Result<Listener> listen_on(const std::string& listen, std::string_view what) {
    auto spec = parse_spec(listen);
    if (!spec) return std::unexpected(spec.error());
    const std::string where = std::string(what) + " listen " + display(*spec);

    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    if (int rc = ::getaddrinfo(spec->host.c_str(), spec->port.c_str(), &hints, &found); rc != 0) {
        return fail(Errc::usage, where,
                    "'" + spec->host + "' is not a numeric address: " + ::gai_strerror(rc));
    }
    const std::unique_ptr<addrinfo, base::Deleter<::freeaddrinfo>> ai(found);

    Listener out;
    out.fd = Fd(::socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!out.fd) return fail(Errc::io, where, std::string("socket: ") + std::strerror(errno));
    const int on = 1;
    if (::setsockopt(out.fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0) {
        return fail(Errc::io, where, std::string("SO_REUSEADDR: ") + std::strerror(errno));
    }
    if (::bind(out.fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
        return fail(Errc::io, where, "cannot bind " + display(*spec) + ": " + std::strerror(errno));
    }
    if (::listen(out.fd.get(), 64) != 0) {
        return fail(Errc::io, where,
                    "cannot listen on " + display(*spec) + ": " + std::strerror(errno));
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    if (::getsockname(out.fd.get(), reinterpret_cast<sockaddr*>(&bound), &len) != 0) {
        return fail(Errc::io, where, std::string("getsockname: ") + std::strerror(errno));
    }
    out.port =
        ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<const sockaddr_in6*>(&bound)->sin6_port
                                          : reinterpret_cast<const sockaddr_in*>(&bound)->sin_port);
    return out;
}

}  // namespace challenge
