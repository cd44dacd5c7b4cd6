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

constexpr std::string_view kPrefix = "/.well-known/acme-challenge/";

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

    std::string answer(const HttpRequest& request) {
        const std::string_view method = request.method;
        const std::string_view target = request.target;
        if (method != "GET") {
            return http_response(405, "Method Not Allowed", "method not allowed\n",
                                 "Allow: GET\r\n");
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
                    return http_response(200, "OK", *value);
                }
            }
        }
        return http_response(404, "Not Found", "not found\n");
    }

    void run() {
        serve_http(server.wake_fd(), listener.get(),
                   [this](const HttpRequest& request) { return answer(request); });
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
