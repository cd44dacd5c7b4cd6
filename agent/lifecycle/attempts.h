// The last renewal attempt of each certificate, for `acme-agent certificates`: `run` (the
// daemon and --once) records each attempt to issue or renew in STATE/attempts/NAME.json,
// {"at": ISO-8601, "ok": bool, "error": {...} (when not ok)}. One small file per
// certificate, replaced whole. The record is this node's (a fleet's nodes each keep their
// own, beside their shared storage). A missing or unreadable one means "none recorded".
#pragma once

#include "base/error.h"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>

namespace lifecycle {

// Records an attempt of `name` in `state_dir` (made 0700 when missing) that ended now:
// `error` null for success.
base::Result<void> record_attempt(const std::string& state_dir, const std::string& name,
                                  const base::Error* error);
// The last attempt recorded for `name`: {"at", "ok"[, "error": {"code", "where",
// "message"}]}, only those fields, each string bounded; nullopt when none can be read.
std::optional<nlohmann::json> last_attempt(const std::string& state_dir, const std::string& name);

}  // namespace lifecycle
