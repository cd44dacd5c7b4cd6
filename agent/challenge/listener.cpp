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

Result<ListenSpec> parse_spec(const std::string& listen, const std::string& default_host) {
    auto bad = [&](const std::string& why) {
        return fail(Errc::usage, "listen " + listen,
                    why + " (want PORT, ADDR:PORT or [V6ADDR]:PORT)");
    };
    ListenSpec spec{default_host, listen};
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

Result<Listener> listen_on(const std::string& listen, std::string_view what,
                           const std::string& default_host) {
    auto spec = parse_spec(listen, default_host);
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

namespace {

struct Connection {
    enum class Phase { reading, writing, draining };
    Fd fd;
    Clock::time_point deadline;
    Phase phase = Phase::reading;
    std::string in;
    std::string out;
    std::size_t sent = 0;
    bool done = false;
};

std::string respond_to(std::string_view head,
                       const std::function<std::string(const HttpRequest&)>& answer) {
    const auto eol = head.find_first_of("\r\n");
    const std::string_view line = head.substr(0, eol);
    const auto sp1 = line.find(' ');
    const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos ||
        !line.substr(sp2 + 1).starts_with("HTTP/1.")) {
        return http_response(400, "Bad Request", "bad request\n");
    }
    return answer(HttpRequest{line.substr(0, sp1), line.substr(sp1 + 1, sp2 - sp1 - 1)});
}

void on_writable(Connection& c) {
    while (c.sent < c.out.size()) {
        const ssize_t n =
            ::send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) c.done = true;
            return;
        }
        c.sent += static_cast<std::size_t>(n);
    }
    // Half-close and read until the client closes: closing with unread bytes would
    // send a RST that can destroy the response before the client reads it.
    ::shutdown(c.fd.get(), SHUT_WR);
    c.phase = Connection::Phase::draining;
}

void on_readable(Connection& c, const std::function<std::string(const HttpRequest&)>& answer) {
    char buf[4096];
    for (;;) {
        const std::size_t room =
            c.phase == Connection::Phase::reading ? kMaxHttpHead - c.in.size() : sizeof buf;
        const ssize_t n = ::recv(c.fd.get(), buf, std::min(room, sizeof buf), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            c.done = true;
            return;
        }
        if (n < 0) {
            if (errno == EINTR) continue;
            return;
        }
        if (c.phase == Connection::Phase::draining) return;  // one read per wake-up
        c.in.append(buf, static_cast<std::size_t>(n));
        // Search a little before the new bytes: the terminator may straddle reads.
        const std::size_t from = c.in.size() - static_cast<std::size_t>(n);
        const std::size_t scan = from >= 3 ? from - 3 : 0;
        std::size_t end = c.in.find("\r\n\r\n", scan);
        if (end == std::string::npos) end = c.in.find("\n\n", scan);
        if (end != std::string::npos) {
            c.out = respond_to(std::string_view(c.in).substr(0, end), answer);
        } else if (c.in.size() >= kMaxHttpHead) {
            c.out = http_response(431, "Request Header Fields Too Large", "request too large\n");
        } else {
            continue;
        }
        c.in.clear();
        c.phase = Connection::Phase::writing;
        on_writable(c);
        return;
    }
}

}  // namespace

std::string http_response(int status, std::string_view reason, std::string_view body,
                          std::string_view extra_headers, std::string_view content_type) {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
    out += reason;
    out += "\r\nContent-Type: ";
    out += content_type;
    out += "\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nCache-Control: no-store\r\nConnection: close\r\n";
    out += extra_headers;
    out += "\r\n";
    out += body;
    return out;
}

void serve_http(int wake_fd, int listen_fd,
                const std::function<std::string(const HttpRequest&)>& answer) {
    serve_connections<Connection>(
        wake_fd, listen_fd,
        [](Fd fd) {
            Connection c;
            c.fd = std::move(fd);
            return std::optional(std::move(c));
        },
        [](const Connection& c) -> short {
            return c.phase == Connection::Phase::writing ? POLLOUT : POLLIN;
        },
        [&answer](Connection& c) {
            if (c.phase == Connection::Phase::writing) {
                on_writable(c);
            } else {
                on_readable(c, answer);
            }
        });
}

}  // namespace challenge
