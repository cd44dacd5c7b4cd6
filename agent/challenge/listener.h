// The listening socket the built-in challenge responders share: "[ADDR:]PORT" parsed in
// one place, bound non-blocking with SO_REUSEADDR (SECURITY.md rule 16: bind where told).
#pragma once

#include "keystore/error.h"

#include <functional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace challenge {

using keystore::Result;

// Owns one file descriptor; closes it when dropped.
class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    [[nodiscard]] int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    void reset() noexcept;

  private:
    int fd_ = -1;
};

struct Listener {
    Fd fd;                    // non-blocking, close-on-exec, listening
    unsigned short port = 0;  // the port bound (the kernel's choice for PORT 0)
};

// Listens on `listen` = "PORT", "ADDR:PORT" or "[V6ADDR]:PORT" (ADDR defaults to 0.0.0.0;
// numeric addresses only). Errc::usage for a malformed spec; Errc::io when the port cannot
// be bound, with `what` ("http-01") and ADDR:PORT in the error and the reason (e.g.
// "Address already in use") in its message.
Result<Listener> listen_on(const std::string& listen, std::string_view what);

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

}  // namespace challenge
