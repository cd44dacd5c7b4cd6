#include "store/failpoint.h"

#include <unistd.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace store {

void failpoint(const char* name) {
    // Read on every call, so that a test's forked child can arm one.
    const char* armed = std::getenv("ACME_AGENT_FAILPOINT");
    if (!armed || std::strcmp(armed, name) != 0) return;
    const char msg[] = "acme-agent: failpoint reached, stopping\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(86);
}

}  // namespace store
