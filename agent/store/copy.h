// `acme-agent storage migrate`: copies one store's accounts, certificates and orders in
// flight into another (the state dir into PostgreSQL when a machine joins a fleet).
#pragma once

#include "store/storage.h"

#include <cstddef>

namespace store {

struct Copied {
    std::size_t accounts = 0;
    std::size_t certificates = 0;
    std::size_t orders = 0;
    std::size_t unchanged = 0;  // accounts and certificates `to` already held as they are
};

// Copies everything `from` holds into `to`, record by record (each one whole: a failure
// leaves `to` with the records copied so far, and a rerun copies the rest again). A record
// `to` already holds as it is is left alone (counted in `unchanged`); one with other content is not
// overwritten unless `overwrite`: Errc::exists naming it, before anything is written.
// Deploy-pending markers stay behind: they belong to the machine that owes the hook.
Result<Copied> copy_state(const Storage& from, Storage& to, bool overwrite = false);

}  // namespace store
