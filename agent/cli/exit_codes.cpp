#include "cli/exit_codes.h"

namespace cli {

int exit_code(keystore::Errc code) {
    using keystore::Errc;
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

}  // namespace cli
