// Test support: loopback TCP sockets for tests of the responders and the HTTP client. Every
// socket is a base::Fd (closed when dropped).
#pragma once

#include "base/fd.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace testsupport {

// A TCP socket bound to 127.0.0.1 on a port the kernel picks. With `listen`, it accepts
// connections (so the port is "in use"); without, connecting to it is refused.
struct BoundSocket {
    base::Fd fd;
    unsigned short port = 0;  // 0 when socket, bind or listen failed
};
inline BoundSocket bind_loopback(bool listen) {
    BoundSocket out{base::Fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)), 0};
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (!out.fd || ::bind(out.fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        (listen && ::listen(out.fd.get(), 16) != 0) ||
        ::getsockname(out.fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
        return out;
    out.port = ntohs(addr.sin_port);
    return out;
}

// A blocking client socket connected to 127.0.0.1 (or ::1) with send and receive timeouts of
// `timeout_s` seconds, so a broken server fails the test instead of hanging it. An empty Fd
// when the connection is refused.
inline base::Fd connect_to(unsigned short port, bool v6 = false, long timeout_s = 15) {
    base::Fd s(::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s) return s;
    const timeval tv{timeout_s, 0};
    ::setsockopt(s.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(s.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int rc = -1;
    if (v6) {
        sockaddr_in6 addr{};
        addr.sin6_family = AF_INET6;
        addr.sin6_port = htons(port);
        addr.sin6_addr = in6addr_loopback;
        rc = ::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    } else {
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        rc = ::connect(s.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    }
    if (rc != 0) s.reset();
    return s;
}

// Sends all of `data` (no SIGPIPE); false when the peer is gone or the send timed out.
inline bool send_all(const base::Fd& s, std::string_view data) {
    std::size_t sent = 0;
    while (sent < data.size()) {
        const ssize_t n = ::send(s.get(), data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) return false;
        sent += static_cast<std::size_t>(n);
    }
    return true;
}

// Everything the peer sends until it closes (or the receive timeout, or an error).
inline std::string read_all(const base::Fd& s) {
    std::string out;
    char buf[4096];
    for (;;) {
        const ssize_t n = ::recv(s.get(), buf, sizeof buf, 0);
        if (n <= 0) break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
}

}  // namespace testsupport
