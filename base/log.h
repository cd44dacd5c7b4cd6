// Leveled logging to stderr. Callers never pass secrets (SECURITY.md rule 13); as a safety
// net a key URI's pin-value is masked in every line.
#pragma once

#include "base/error.h"

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

// A message is written when its level is at or below the level set (default info).
enum class Level { quiet = 0, error = 1, warning = 2, info = 3, debug = 4 };

void set_level(Level level);
Level level();
// "error", "warn" (or "warning"), "info", "debug" (--log-level); Errc::usage naming the
// choices otherwise.
Result<Level> parse_level(std::string_view text);

// How each line looks.
//   text (default), timestamps off: today's lines, byte for byte: "acme-agent: error: ",
//     "acme-agent: warning: ", "" (info) or "debug: " and the message.
//   text, timestamps on (the daemon): "2026-12-07T06:02:17.123Z warning [www] message";
//     " [CONTEXT]" only when the thread set one.
//   json (--log-format json): one object per line for log shippers:
//     {"time":"2026-12-07T06:02:17.123Z","level":"info","certificate":"www","message":"..."}
//     with "certificate" only when the thread set a context.
// Under systemd (stderr is the stream named by JOURNAL_STREAM, sd-daemon(3)) each line
// starts with the "<N>" priority journald reads (3 err, 4 warning, 6 info, 7 debug), and
// text lines carry no timestamp: the journal stamps each line itself.
enum class Format { text, json };
void set_format(Format format);
// "text" or "json" (--log-format); Errc::usage naming the choices otherwise.
Result<Format> parse_format(std::string_view text);
void set_timestamps(bool on);

// Each message goes through printable().
void error(std::string_view message);
void warning(std::string_view message);
void info(std::string_view message);
void debug(std::string_view message);

// The context of the lines this thread writes (the certificate a daemon worker handles),
// from construction to the end of the scope, where the one before is restored.
class Context {
  public:
    explicit Context(std::string name);
    ~Context();
    Context(const Context&) = delete;
    Context& operator=(const Context&) = delete;

  private:
    std::string previous_;
};
// This thread's context ("" when none is set).
const std::string& context();

// One line as emit() writes it, without writing it (for tests): `journal` as if stderr
// were the journal, `now_ms` the time in milliseconds since the epoch.
std::string format_line(Level at, std::string_view message, std::string_view context, bool journal,
                        std::int64_t now_ms);

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
