// What the built-in responders share (the challenge responders and the /metrics endpoint):
// the listening socket ("[ADDR:]PORT" parsed in one place, bound non-blocking with
// SO_REUSEADDR; SECURITY.md rule 16: bind where told), the thread they serve on, its bounded
// connection loop (rule 16: at most 16 connections, 5 s each) and the one-request HTTP/1.1
// exchange over it.
#pragma once

#include "base/error.h"
#include "base/fd.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace challenge {

using base::Result;

using base::Fd;

struct Listener {
    Fd fd;                    // non-blocking, close-on-exec, listening
    unsigned short port = 0;  // the port bound (the kernel's choice for PORT 0)
};

// Listens on `listen` = "PORT", "ADDR:PORT" or "[V6ADDR]:PORT" (ADDR defaults to
// `default_host`; numeric addresses only). Errc::usage for a malformed spec; Errc::io when
// the port cannot be bound, with `what` ("http-01") and ADDR:PORT in the error and the
// reason (e.g. "Address already in use") in its message.
Result<Listener> listen_on(const std::string& listen, std::string_view what,
                           const std::string& default_host = "0.0.0.0");

// The thread a responder serves on. Its loop polls wake_fd() beside its sockets and returns
// once that is readable; the destructor makes it readable and joins. Declare it as the last
// member of the responder's state, so that it stops before anything the loop uses is gone.
class ServeThread {
  public:
    ServeThread() = default;
    ServeThread(const ServeThread&) = delete;
    ServeThread& operator=(const ServeThread&) = delete;
    ~ServeThread();

    // Creates the wake eventfd and runs `loop` on a new thread; errors name `where`.
    Result<void> start(std::function<void()> loop, const std::string& where);
    [[nodiscard]] int wake_fd() const { return wake_.get(); }

  private:
    Fd wake_;
    std::thread thread_;
};

using Clock = std::chrono::steady_clock;
inline constexpr std::size_t kMaxConnections = 16;
inline constexpr auto kConnectionTime = std::chrono::seconds(5);
inline constexpr auto kAcceptBackoff = std::chrono::milliseconds(100);

// The loop a responder runs on its ServeThread, until wake_fd is readable. It accepts on
// listen_fd while fewer than kMaxConnections are open, and after an accept error other
// than EAGAIN (out of descriptors or memory) pauses kAcceptBackoff instead of spinning on a
// listener that stays readable. A connection is dropped when it is `done` or its
// kConnectionTime is up.
//   Conn                      has `Fd fd`, `Clock::time_point deadline` and `bool done`
//   adopt(Fd) -> optional<Conn>  a new connection (nullopt: cannot set it up now; pause)
//   events(const Conn&) -> short what to poll it for (POLLIN or POLLOUT)
//   step(Conn&)                 its socket is ready; also called once right after adopt
template <typename Conn, typename Adopt, typename Events, typename Step>
void serve_connections(int wake_fd, int listen_fd, Adopt adopt, Events events, Step step) {
    std::vector<Conn> conns;
    std::vector<pollfd> fds;
    Clock::time_point accept_paused_until{};
    for (;;) {
        const auto now = Clock::now();
        std::erase_if(conns, [&](const Conn& c) { return c.done || c.deadline <= now; });

        const bool accepting = conns.size() < kMaxConnections && now >= accept_paused_until;
        fds.clear();
        fds.push_back({wake_fd, POLLIN, 0});
        fds.push_back({accepting ? listen_fd : -1, POLLIN, 0});
        auto next = Clock::time_point::max();
        if (!accepting && conns.size() < kMaxConnections) next = accept_paused_until;
        for (const Conn& c : conns) {
            fds.push_back({c.fd.get(), events(c), 0});
            next = std::min(next, c.deadline);
        }
        int timeout = -1;
        if (next != Clock::time_point::max()) {
            const auto ms = std::chrono::ceil<std::chrono::milliseconds>(next - now).count();
            timeout = static_cast<int>(std::clamp<long long>(ms, 0, 60'000));
        }
        if (::poll(fds.data(), fds.size(), timeout) < 0) {
            if (errno == EINTR) continue;
            return;  // cannot happen with valid fds; the listener closes with the responder
        }
        if (fds[0].revents != 0) return;

        for (std::size_t i = 0; i < conns.size(); ++i)
            if (fds[i + 2].revents != 0) step(conns[i]);

        if (!accepting || fds[1].revents == 0) continue;
        while (conns.size() < kMaxConnections) {
            Fd fd(::accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
            if (!fd) {
                if (errno == EINTR || errno == ECONNABORTED) continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                    accept_paused_until = Clock::now() + kAcceptBackoff;
                break;
            }
            std::optional<Conn> made = adopt(std::move(fd));
            if (!made) {
                accept_paused_until = Clock::now() + kAcceptBackoff;
                break;
            }
            Conn& c = conns.emplace_back(std::move(*made));
            c.deadline = Clock::now() + kConnectionTime;
            step(c);  // the request (or ClientHello) is often already there
        }
    }
}

// HTTP/1.1, one request per connection (Connection: close), head at most kMaxHttpHead
// bytes (431 beyond), body ignored. `answer` gets a well-formed request line (anything else
// is answered 400 here) and returns the whole response, http_response() made.
inline constexpr std::size_t kMaxHttpHead = 8 * 1024;
struct HttpRequest {
    std::string_view method;
    std::string_view target;
};
std::string http_response(int status, std::string_view reason, std::string_view body,
                          std::string_view extra_headers = {},
                          std::string_view content_type = "text/plain");
// Runs on the ServeThread until wake_fd is readable (serve_connections' bounds).
void serve_http(int wake_fd, int listen_fd,
                const std::function<std::string(const HttpRequest&)>& answer);

}  // namespace challenge
