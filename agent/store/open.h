// The one place that picks the storage: PostgreSQL for a postgresql:// URL, else the state dir.
#pragma once

#include "store/storage.h"

#include <memory>
#include <string>

namespace store {

// `url` (from --storage or the config's `storage`) when given, else the state dir `dir`.
// A URL with a password in it is refused (Errc::usage, naming passfile= as the fix).
Result<std::unique_ptr<Storage>> open_storage(const std::string& dir, const std::string& url);

// Whether that storage is a state dir that does not exist: it holds nothing, and opening it
// would make it (a command that only reads says so instead).
bool storage_absent(const std::string& dir, const std::string& url);

}  // namespace store
