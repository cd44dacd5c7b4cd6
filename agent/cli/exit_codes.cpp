#include "cli/exit_codes.h"

namespace cli {

int exit_code(base::Errc code) {
    using base::Errc;
    switch (code) {
        case Errc::usage:
            return kUsage;
        case Errc::not_found:
            return kNotFound;
        case Errc::exists:
            return kExists;
        case Errc::token_absent:
            return kTokenAbsent;
        case Errc::module_load:
            return kModuleLoad;
        case Errc::pin_incorrect:
            return kPinIncorrect;
        case Errc::pin_locked:
            return kPinLocked;
        case Errc::unsupported:
            return kUnsupported;
        case Errc::hardware:
            return kHardware;
        case Errc::io:
            return kIo;
        case Errc::network:
            return kNetwork;
        case Errc::protocol:
            return kProtocol;
        case Errc::server:
            return kServer;
        case Errc::state:
            return kState;
        case Errc::internal:
            return kInternal;
    }
    return kInternal;
}

std::span<const ExitCodeInfo> exit_code_table() {
    static constexpr ExitCodeInfo kTable[] = {
        {kOk, "success"},
        {kInternal, "internal error (a bug)"},
        {kUsage,
         "usage: bad option, malformed key URI, unknown algorithm, terms not accepted, PIN file "
         "readable by others, a weak key (see --allow-weak-key), an irreversible command "
         "without a terminal or --yes, a certificate on another key without --force"},
        {kNotFound, "not found (key, account, certificate)"},
        {kExists, "already exists (a key with that label or id)"},
        {kTokenAbsent, "token absent (the message lists the tokens present)"},
        {kModuleLoad, "PKCS#11 module or TPM cannot be loaded or reached"},
        {kPinIncorrect, "wrong PIN"},
        {kPinLocked, "PIN locked"},
        {kUnsupported, "unsupported by the backend or this build"},
        {kHardware, "hardware fault"},
        {kIo,
         "local system: a file or directory that cannot be read or written (--out, --webroot, "
         "the state dir), a port that cannot be bound (--http-port, --tls-alpn-port); checked "
         "before the first request to the CA"},
        {kNetwork, "network: connect, TLS verification, timeout"},
        {kProtocol,
         "protocol: the server broke the protocol (bad JSON, foreign URL, wrong certificate "
         "key, a non-certificate block in the chain)"},
        {kServer,
         "refused by a server: the CA (an ACME problem: rejected name, failed challenge, ...) "
         "or the DNS server of --rfc2136 (a wrong TSIG key, a refused update)"},
        {kState, "state dir busy (another agent) or damaged"},
        {kDeployHook,
         "run: a deploy hook failed or timed out (the certificate is stored; the hook runs "
         "again next time)"},
        // store::failpoint's _exit code
        {86, "test builds only: stopped at the failpoint named in ACME_AGENT_FAILPOINT"},
    };
    return kTable;
}

}  // namespace cli
