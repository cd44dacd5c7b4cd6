#include "challenge/http01.h"

#include "challenge/listener.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <set>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace challenge {

using base::Errc;
using base::fail;

namespace {

constexpr std::size_t kMaxHead = 8 * 1024;
constexpr std::string_view kPrefix = "/.well-known/acme-challenge/";

std::string response(int status, std::string_view reason, std::string_view body,
                     std::string_view extra_headers = {}) {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " ";
    out += reason;
    out += "\r\nContent-Type: text/plain\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nCache-Control: no-store\r\nConnection: close\r\n";
    out += extra_headers;
    out += "\r\n";
    out += body;
    return out;
}

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

}  // namespace

struct Http01Responder::Impl {
    Fd listener;
    unsigned short port = 0;
    std::mutex mutex;
    std::map<std::string, std::string, std::less<>> tokens;
    std::set<std::string, std::less<>> served;  // tokens answered 200 (until removed)
    std::condition_variable served_cv;
    Lookup lookup;       // set_lookup; guarded by mutex
    ServeThread server;  // last: it stops before the members its loop uses go

    std::string answer(std::string_view head) {
        const auto eol = head.find_first_of("\r\n");
        const std::string_view line = head.substr(0, eol);
        const auto sp1 = line.find(' ');
        const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
        if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) {
            return response(400, "Bad Request", "bad request\n");
        }
        const std::string_view method = line.substr(0, sp1);
        const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
        if (!line.substr(sp2 + 1).starts_with("HTTP/1.")) {
            return response(400, "Bad Request", "bad request\n");
        }
        if (method != "GET") {
            return response(405, "Method Not Allowed", "method not allowed\n", "Allow: GET\r\n");
        }
        // Exact match only: a query, a fragment, a trailing slash or an encoded byte leaves
        // a token that is not valid, so it cannot name a registered one.
        if (target.starts_with(kPrefix)) {
            const std::string token(target.substr(kPrefix.size()));
            if (valid_token(token)) {
                std::optional<std::string> value;
                Lookup fallback;
                {
                    std::lock_guard lock(mutex);
                    if (auto it = tokens.find(token); it != tokens.end())
                        value = it->second;
                    else
                        fallback = lookup;
                }
                // Not ours: another node of the fleet may have published it.
                if (fallback) value = fallback(token);
                if (value) {
                    std::lock_guard lock(mutex);
                    served.insert(token);
                    served_cv.notify_all();
                    return response(200, "OK", *value);
                }
            }
        }
        return response(404, "Not Found", "not found\n");
    }

    void on_readable(Connection& c) {
        char buf[4096];
        for (;;) {
            const std::size_t room =
                c.phase == Connection::Phase::reading ? kMaxHead - c.in.size() : sizeof buf;
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
                c.out = answer(std::string_view(c.in).substr(0, end));
            } else if (c.in.size() >= kMaxHead) {
                c.out = response(431, "Request Header Fields Too Large", "request too large\n");
            } else {
                continue;
            }
            c.in.clear();
            c.phase = Connection::Phase::writing;
            on_writable(c);
            return;
        }
    }

    static void on_writable(Connection& c) {
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

    void run() {
        serve_connections<Connection>(
            server.wake_fd(), listener.get(),
            [](Fd fd) {
                Connection c;
                c.fd = std::move(fd);
                return std::optional(std::move(c));
            },
            [](const Connection& c) -> short {
                return c.phase == Connection::Phase::writing ? POLLOUT : POLLIN;
            },
            [this](Connection& c) {
                if (c.phase == Connection::Phase::writing) {
                    on_writable(c);
                } else {
                    on_readable(c);
                }
            });
    }
};

Result<std::unique_ptr<Http01Responder>> Http01Responder::start(const std::string& listen) {
    auto bound = listen_on(listen, "http-01");
    if (!bound) return std::unexpected(bound.error());
    const std::string where = "http-01 listen " + listen;

    auto impl = std::make_unique<Impl>();
    impl->listener = std::move(bound->fd);
    impl->port = bound->port;
    if (auto r = impl->server.start([raw = impl.get()] { raw->run(); }, where); !r)
        return std::unexpected(r.error());

    std::unique_ptr<Http01Responder> responder(new Http01Responder());
    responder->impl_ = std::move(impl);
    return responder;
}

Http01Responder::~Http01Responder() = default;

unsigned short Http01Responder::port() const {
    return impl_->port;
}

Result<void> Http01Responder::add(const std::string& token, const std::string& key_authorization) {
    if (!valid_token(token)) {
        return fail(Errc::protocol, "http-01", "the server sent an invalid challenge token");
    }
    std::lock_guard lock(impl_->mutex);
    impl_->tokens.insert_or_assign(token, key_authorization);
    return {};
}

void Http01Responder::remove(const std::string& token) {
    std::lock_guard lock(impl_->mutex);
    impl_->tokens.erase(token);
    impl_->served.erase(token);
}

void Http01Responder::set_lookup(Lookup lookup) {
    std::lock_guard lock(impl_->mutex);
    impl_->lookup = std::move(lookup);
}

bool Http01Responder::wait_served(const std::string& token, std::chrono::milliseconds max) {
    std::unique_lock lock(impl_->mutex);
    return impl_->served_cv.wait_for(lock, max, [&] { return impl_->served.contains(token); });
}

bool valid_token(const std::string& token) {
    return !token.empty() && std::ranges::all_of(token, [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-';
    });
}

}  // namespace challenge
