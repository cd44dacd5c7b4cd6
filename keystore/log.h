// Minimal leveled logging to stderr. Callers never pass secrets (SECURITY.md rule 13).
#pragma once

#include <string_view>

namespace keystore::log {

enum class Level { quiet = 0, warning = 1, info = 2, debug = 3 };

void set_level(Level level);
Level level();
void warning(std::string_view message);
void info(std::string_view message);
void debug(std::string_view message);

}  // namespace keystore::log
