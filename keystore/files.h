// Durable file writes (SECURITY.md rule 14) and bounded reads, shared by the file: and
// tpm2: backends and the agent's state dir.
#pragma once

#include "keystore/error.h"

#include <sys/types.h>
#include <string>
#include <string_view>

namespace keystore {

enum class Overwrite { no, yes };

// Writes `data` to `path` so that a reader sees either the old file or the whole new one:
// a temp file in the same directory (O_EXCL|O_NOFOLLOW, `mode`), fsync, rename (or link,
// which fails with Errc::exists, when overwrite is no), then fsync of the directory.
// Nothing is left behind on failure.
Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode,
                               Overwrite overwrite = Overwrite::yes);
// Reads a whole file of at most `max_size` bytes (Errc::not_found, Errc::io).
Result<std::string> read_file(const std::string& path, std::size_t max_size = 1 << 20);
Result<void> fsync_dir(const std::string& dir);
// Removes a file and fsyncs its directory; a missing file is not an error.
Result<void> remove_file_durable(const std::string& path);

}  // namespace keystore
