// Minimal leveled logging to stderr. Callers never pass secrets (SECURITY.md rule 13).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace base {

// Text for a terminal or a log line (SECURITY.md rule 19): the one escaper every message
// passes (the logger, Error::describe(), the CLI's text output). Valid printable UTF-8 is
// kept, and so is '\n' (messages have lines: a hook's output). Every other C0 control
// (ESC, CR, TAB, BEL...), DEL and bytes that are not valid UTF-8 become \xNN; C1 controls
// and the Unicode bidi/line-separator format characters become \u{NNNN}. A backslash is
// kept as it is, so escaping twice changes nothing.
// Lines::escape also escapes '\n' (as \x0a): for text from a server, which must not start
// a line of its own that looks like the agent's.
enum class Lines { keep, escape };
std::string printable(std::string_view text, Lines lines = Lines::keep);

}  // namespace base

namespace base::log {

enum class Level { quiet = 0, warning = 1, info = 2, debug = 3 };

void set_level(Level level);
Level level();
// Each message goes through printable().
void warning(std::string_view message);
void info(std::string_view message);
void debug(std::string_view message);

// ACME_AGENT_TRACE=FILE appends one line "START_US END_US WHAT" (CLOCK_REALTIME, in
// microseconds) per traced phase of the run, for bench/e2e.sh's phase breakdown. Off (the
// variable unset), trace_now() is one load of a static and nothing is written.
std::int64_t trace_now();                                  // 0 when tracing is off
void trace(std::int64_t start_us, std::string_view what);  // a phase from start_us to now

// Traces the scope it lives in as WHAT.
class TraceSpan {
  public:
    explicit TraceSpan(const char* what) : what_(what), start_(trace_now()) {}
    ~TraceSpan() {
        if (start_ != 0) trace(start_, what_);
    }
    TraceSpan(const TraceSpan&) = delete;
    TraceSpan& operator=(const TraceSpan&) = delete;

  private:
    const char* what_;
    std::int64_t start_;
};

}  // namespace base::log
