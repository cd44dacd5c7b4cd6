#include "store/pg_watch.h"

#include "base/log.h"
#include "store/pg.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace store {

std::unique_ptr<CertificateWatch> CertificateWatch::start(std::string url,
                                                          std::function<void()> changed) {
    std::unique_ptr<CertificateWatch> w(new CertificateWatch(std::move(url), std::move(changed)));
    w->thread_ = std::thread([raw = w.get()] { raw->run(); });
    return w;
}

CertificateWatch::CertificateWatch(std::string url, std::function<void()> changed)
    : url_(std::move(url)), changed_(std::move(changed)) {
    if (::pipe2(stop_, O_CLOEXEC) != 0) stop_[0] = stop_[1] = -1;
}

CertificateWatch::~CertificateWatch() {
    if (stop_[1] >= 0) (void)!::write(stop_[1], "x", 1);
    if (thread_.joinable()) thread_.join();
    for (int fd : stop_)
        if (fd >= 0) ::close(fd);
}

bool CertificateWatch::wait(int fd, int ms) {
    pollfd fds[2] = {{stop_[0], POLLIN, 0}, {fd, POLLIN, 0}};
    for (;;) {
        const int n = ::poll(fds, fd >= 0 ? 2 : 1, ms);
        if (n < 0 && errno == EINTR) continue;
        return n <= 0 || !(fds[0].revents & POLLIN);
    }
}

void CertificateWatch::run() {
    if (stop_[0] < 0) return;
    bool connected_before = false;
    bool warned = false;
    int pause_ms = 200;
    for (;;) {
        auto c = pg::Connection::open(url_);
        if (c)
            if (auto l = c->exec("LISTEN acme_agent_certificates"); !l)
                c = std::unexpected(l.error());
        if (!c) {
            if (!warned)
                base::log::warning("fleet: certificate watch: " + c.error().describe() +
                                   "; trying again");
            warned = true;
            if (!wait(-1, pause_ms)) return;
            pause_ms = std::min(pause_ms * 2, 5000);
            continue;
        }
        if (warned) base::log::info("fleet: certificate watch reconnected");
        if (connected_before || warned) changed_();  // stored meanwhile: look again
        connected_before = true;
        warned = false;
        pause_ms = 200;
        for (;;) {
            if (!wait(c->socket(), -1)) return;
            auto got = c->notifications();
            if (!got) {
                base::log::warning("fleet: certificate watch: " + got.error().describe() +
                                   "; reconnecting");
                warned = true;
                break;
            }
            if (!got->empty()) changed_();
        }
    }
}

}  // namespace store
