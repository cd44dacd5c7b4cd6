#include "base/error.h"

#include "base/log.h"

#include <cstdio>

namespace base {

std::string_view errc_name(Errc code) {
    switch (code) {
        case Errc::usage:
            return "usage";
        case Errc::not_found:
            return "not_found";
        case Errc::exists:
            return "exists";
        case Errc::token_absent:
            return "token_absent";
        case Errc::module_load:
            return "module_load";
        case Errc::pin_incorrect:
            return "pin_incorrect";
        case Errc::pin_locked:
            return "pin_locked";
        case Errc::unsupported:
            return "unsupported";
        case Errc::hardware:
            return "hardware";
        case Errc::io:
            return "io";
        case Errc::network:
            return "network";
        case Errc::protocol:
            return "protocol";
        case Errc::server:
            return "server";
        case Errc::state:
            return "state";
        case Errc::internal:
            return "internal";
    }
    return "internal";
}

std::string Error::describe() const {
    std::string out = where.empty() ? message : where + ": " + message;
    if (native) {
        char buf[32];
        (void)std::snprintf(buf, sizeof buf, " (0x%llx)", static_cast<unsigned long long>(*native));
        out += buf;
    }
    return printable(out);  // the message may quote the server or a hook (rule 19)
}

}  // namespace base
