#include "store/failpoint.h"

#include <unistd.h>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace store {

void failpoint(const char* name) {
    // Read on every call, so that a test's forked child can arm one.
    const char* armed = std::getenv("ACME_AGENT_FAILPOINT");
    if (!armed) return;
    std::string_view point = armed;
    const bool hang = point.ends_with(":hang");
    const bool stop = point.ends_with(":stop");
    if (hang || stop) point.remove_suffix(5);
    if (point != name) return;
    if (stop) {  // the whole process, as a paused VM; it goes on when continued (SIGCONT)
        const std::string msg =
            "acme-agent: failpoint " + std::string(point) + " reached, stopping the process\n";
        (void)!::write(2, msg.data(), msg.size());
        (void)::raise(SIGSTOP);
        return;
    }
    if (!hang) {
        const char msg[] = "acme-agent: failpoint reached, stopping\n";
        (void)!::write(2, msg, sizeof msg - 1);
        ::_exit(86);
    }
    const std::string msg =
        "acme-agent: failpoint " + std::string(point) + " reached, holding until killed\n";
    (void)!::write(2, msg.data(), msg.size());
    for (;;) ::pause();  // returns after a handled signal: hold on
}

}  // namespace store
