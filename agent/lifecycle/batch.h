// Several orders in one run: `issue --batch FILE` reads them from a file (the orders of a
// batch, or of `renew --all`, run --jobs N at a time: lifecycle::run_parallel).
//
// The batch file: one order per line,
//
//     KEY-URI NAME [NAME...]
//
// fields separated by spaces or tabs; the first NAME names the certificate (live/NAME/).
// Blank lines are skipped, and a field that starts with '#' starts a comment that runs to
// the end of the line. Every line is checked before any order starts; an error names
// FILE:LINE. A key URI's relative paths are taken relative to FILE's directory; a
// pin-value is refused (use pin-source=file:).
#pragma once

#include "base/error.h"
#include "keystore/key_uri.h"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace lifecycle {

struct BatchOrder {
    std::size_t line = 0;  // 1-based line number in the file
    keystore::KeyUri key;
    std::vector<std::string> names;
};

// Parses the text of a batch file; `file` names it in errors ("FILE:LINE: ..."). Every
// error is Errc::usage: a malformed key URI, a line with a key but no name, a name given
// twice on one line, two lines for the same certificate (the same first name), a second key
// URI where a name belongs, no order at all.
base::Result<std::vector<BatchOrder>> parse_batch(std::string_view text, const std::string& file);
// Reads FILE (at most 1 MiB) and parses it; Errc::not_found / Errc::io when it cannot be read.
base::Result<std::vector<BatchOrder>> read_batch(const std::string& file);

// The bounds of --jobs.
inline constexpr unsigned kMinJobs = 1;
inline constexpr unsigned kMaxJobs = 64;

}  // namespace lifecycle
