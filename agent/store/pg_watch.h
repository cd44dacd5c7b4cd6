// Fleet mode: learning within moments that another node stored a certificate. A thread of
// its own LISTENs on acme_agent_certificates (PgStorage::save_certificate NOTIFYs it) over a
// connection of its own, and reconnects when that connection drops.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace store {

class CertificateWatch {
  public:
    // Calls `changed` (on the watch's thread) for each notification, and after each
    // reconnection (what was stored meanwhile went unnoticed: look again). Connection
    // failures are logged as warnings, once per outage, and retried with a growing pause
    // of at most 5 s.
    static std::unique_ptr<CertificateWatch> start(std::string url, std::function<void()> changed);
    ~CertificateWatch();  // stops the thread and waits for it
    CertificateWatch(const CertificateWatch&) = delete;
    CertificateWatch& operator=(const CertificateWatch&) = delete;

  private:
    CertificateWatch(std::string url, std::function<void()> changed);
    void run();
    // Waits up to `ms` for `fd` (-1: none) to be readable or for stop; false on stop.
    bool wait(int fd, int ms);

    std::string url_;
    std::function<void()> changed_;
    int stop_[2] = {-1, -1};  // a pipe: written once to stop the thread
    std::thread thread_;
};

}  // namespace store
