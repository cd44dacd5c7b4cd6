// The /metrics endpoint (issue #18): a small HTTP/1.1 server on its own thread that answers
// GET /metrics with the Prometheus text exposition, 404 for any other path and 405 for any
// other method; bounded like the challenge responders (16 connections, 5 s each, 8 KiB of
// request head). It binds loopback unless told otherwise: the metrics name certificates.
#pragma once

#include "base/error.h"

#include <functional>
#include <memory>
#include <string>

namespace metrics {

class Endpoint {
  public:
    // `listen` is "PORT", "ADDR:PORT" or "[V6ADDR]:PORT" with a numeric ADDR, which defaults
    // to 127.0.0.1. Errc::usage for a malformed spec (the error names "metrics" and the
    // spec), Errc::io when it cannot be bound (the reason, e.g. "Address already in use").
    // PORT 0 lets the kernel pick (tests). `render` is called on the server's thread for
    // each scrape; it must be thread-safe (AgentMetrics::render() is).
    static base::Result<std::unique_ptr<Endpoint>> start(const std::string& listen,
                                                         std::function<std::string()> render);
    ~Endpoint();  // stops listening, joins its thread

    // The port bound (the kernel's choice for PORT 0).
    [[nodiscard]] unsigned short port() const;
    // Where it listens, "127.0.0.1:9464" or "[::1]:9464": for the log line that says so.
    [[nodiscard]] const std::string& address() const;

  private:
    Endpoint() = default;
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace metrics
