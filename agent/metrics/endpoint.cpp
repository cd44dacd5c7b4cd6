#include "metrics/endpoint.h"

#include "base/metrics.h"
#include "challenge/listener.h"

#include <netdb.h>
#include <sys/socket.h>

#include <utility>

namespace metrics {

using challenge::http_response;
using challenge::HttpRequest;

struct Endpoint::Impl {
    challenge::Fd listener;
    unsigned short port = 0;
    std::string address;
    std::function<std::string()> render;
    challenge::ServeThread server;  // last: it stops before the members its loop uses go

    [[nodiscard]] std::string answer(const HttpRequest& request) const {
        // A scrape may add parameters (scrape_config `params`); they select nothing here.
        const std::string_view path = request.target.substr(0, request.target.find('?'));
        if (path != "/metrics") return http_response(404, "Not Found", "not found\n");
        if (request.method != "GET")
            return http_response(405, "Method Not Allowed", "method not allowed\n",
                                 "Allow: GET\r\n");
        return http_response(200, "OK", render(), {}, base::metrics::kContentType);
    }
};

base::Result<std::unique_ptr<Endpoint>> Endpoint::start(const std::string& listen,
                                                        std::function<std::string()> render) {
    auto bound = challenge::listen_on(listen, "metrics", "127.0.0.1");
    if (!bound) {
        base::Error e = bound.error();
        if (e.code == base::Errc::usage) e.where = "metrics " + listen;
        return std::unexpected(std::move(e));
    }
    auto impl = std::make_unique<Impl>();
    impl->listener = std::move(bound->fd);
    impl->port = bound->port;
    impl->render = std::move(render);
    sockaddr_storage sa{};
    socklen_t len = sizeof sa;
    char host[NI_MAXHOST] = "?";
    if (::getsockname(impl->listener.get(), reinterpret_cast<sockaddr*>(&sa), &len) == 0)
        (void)::getnameinfo(reinterpret_cast<sockaddr*>(&sa), len, host, sizeof host, nullptr, 0,
                            NI_NUMERICHOST);
    const std::string h(host);
    impl->address =
        (h.find(':') != std::string::npos ? "[" + h + "]" : h) + ":" + std::to_string(impl->port);
    if (auto r = impl->server.start(
            [raw = impl.get()] {
                challenge::serve_http(
                    raw->server.wake_fd(), raw->listener.get(),
                    [raw](const HttpRequest& request) { return raw->answer(request); });
            },
            "metrics listen " + listen);
        !r)
        return std::unexpected(r.error());
    std::unique_ptr<Endpoint> endpoint(new Endpoint());
    endpoint->impl_ = std::move(impl);
    return endpoint;
}

Endpoint::~Endpoint() = default;

unsigned short Endpoint::port() const {
    return impl_->port;
}

const std::string& Endpoint::address() const {
    return impl_->address;
}

}  // namespace metrics
