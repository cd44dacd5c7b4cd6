#include "cli/app.h"

#include <sys/prctl.h>
#include <sys/resource.h>

int main(int argc, char** argv) {
    // First thing (SECURITY.md rule 22): memory will hold a logged-in token session, TSIG
    // and EAB secrets. Not dumpable: no core file, no ptrace or /proc/PID/mem by another
    // process of the same user. Failures are ignored: neither call can fail as used here.
    (void)::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    const rlimit no_core{0, 0};
    (void)::setrlimit(RLIMIT_CORE, &no_core);
    return cli::run(argc, argv);
}
