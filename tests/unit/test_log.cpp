// The log line formats (base/log.h): today's default lines byte for byte, the daemon's
// stamped lines with their certificate context, JSON lines, journald priorities, and the
// pin-value mask.
#include "base/log.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace {

namespace log = base::log;
using log::Level;

// 2026-12-07T06:02:17.123Z
constexpr std::int64_t kNow = 1'796'623'337'123;

// Restores the process-wide format settings a test changes.
struct Settings {
    Settings() = default;
    Settings(const Settings&) = delete;
    Settings& operator=(const Settings&) = delete;
    ~Settings() {
        log::set_format(log::Format::text);
        log::set_timestamps(false);
        log::set_level(Level::info);
    }
};

TEST(Log, DefaultLinesAreTodaysByteForByte) {
    EXPECT_EQ(log::format_line(Level::error, "boom", "", false, kNow), "acme-agent: error: boom\n");
    EXPECT_EQ(log::format_line(Level::warning, "careful", "www", false, kNow),
              "acme-agent: warning: careful\n");
    EXPECT_EQ(log::format_line(Level::info, "run: www: renewed", "www", false, kNow),
              "run: www: renewed\n");
    EXPECT_EQ(log::format_line(Level::debug, "badNonce", "", false, kNow), "debug: badNonce\n");
    // The one escaper still applies.
    EXPECT_EQ(log::format_line(Level::info, "a\x1b[31mb", "", false, kNow), "a\\x1b[31mb\n");
}

TEST(Log, DaemonLinesCarryTimeLevelAndCertificate) {
    const Settings restore;
    log::set_timestamps(true);
    EXPECT_EQ(log::format_line(Level::warning, "renewal failed", "www", false, kNow),
              "2026-12-07T06:02:17.123Z warning [www] renewal failed\n");
    EXPECT_EQ(log::format_line(Level::info, "next check at 07:00", "", false, kNow),
              "2026-12-07T06:02:17.123Z info next check at 07:00\n");
    // A name from the configuration cannot break the line.
    EXPECT_EQ(log::format_line(Level::info, "x", "w\nw", false, kNow),
              "2026-12-07T06:02:17.123Z info [w\\x0aw] x\n");
}

TEST(Log, JournalLinesStartWithTheirPriority) {
    const Settings restore;
    EXPECT_EQ(log::format_line(Level::error, "boom", "", true, kNow),
              "<3>acme-agent: error: boom\n");
    EXPECT_EQ(log::format_line(Level::warning, "w", "", true, kNow), "<4>acme-agent: warning: w\n");
    EXPECT_EQ(log::format_line(Level::info, "i", "", true, kNow), "<6>i\n");
    EXPECT_EQ(log::format_line(Level::debug, "d", "", true, kNow), "<7>debug: d\n");
    // A message of several lines (a hook's output) is several journal entries, all warnings.
    EXPECT_EQ(log::format_line(Level::warning, "hook failed:\nline 1\nline 2", "", true, kNow),
              "<4>acme-agent: warning: hook failed:\n<4>line 1\n<4>line 2\n");
    // The journal stamps each line itself.
    log::set_timestamps(true);
    EXPECT_EQ(log::format_line(Level::info, "renewed", "www", true, kNow),
              "<6>info [www] renewed\n");
}

TEST(Log, JsonLinesAreOneObjectEach) {
    const Settings restore;
    log::set_format(log::Format::json);
    const std::string line = log::format_line(
        Level::warning, "hook said \"no\"\nsecond line \\ \x01", "www", false, kNow);
    ASSERT_TRUE(line.ends_with("}\n"));
    EXPECT_EQ(line.find('\n'), line.size() - 1) << line;
    const auto j = nlohmann::json::parse(line);
    EXPECT_EQ(j.at("time"), "2026-12-07T06:02:17.123Z");
    EXPECT_EQ(j.at("level"), "warning");
    EXPECT_EQ(j.at("certificate"), "www");
    EXPECT_EQ(j.at("message"), "hook said \"no\"\nsecond line \\ \\x01");
    EXPECT_EQ(log::format_line(Level::info, "x", "", false, kNow),
              "{\"time\":\"2026-12-07T06:02:17.123Z\",\"level\":\"info\",\"message\":\"x\"}\n");
    EXPECT_TRUE(log::format_line(Level::error, "x", "", true, kNow).starts_with("<3>{\"time\""));
    EXPECT_TRUE(log::format_line(Level::error, "a\nb", "", true, kNow)
                    .ends_with(",\"message\":\"a\\nb\"}\n"));
    // Invalid UTF-8 is escaped before it could make the object unparsable.
    const auto odd =
        nlohmann::json::parse(log::format_line(Level::info, "\xff\xfe", "", false, kNow));
    EXPECT_EQ(odd.at("message"), "\\xff\\xfe");
}

TEST(Log, APinValueNeverReachesALine) {
    const std::string line = log::format_line(
        Level::debug, "opening pkcs11:token=t;object=k?pin-value=1234&module-path=/x", "", false,
        kNow);
    EXPECT_EQ(line.find("1234"), std::string::npos) << line;
    EXPECT_NE(line.find("pin-value=***&module-path=/x"), std::string::npos) << line;
    EXPECT_EQ(log::format_line(Level::info, "pin-value=secret", "", false, kNow),
              "pin-value=***\n");
}

TEST(Log, LevelsAndFormatsParseWithClearErrors) {
    EXPECT_EQ(log::parse_level("error"), Level::error);
    EXPECT_EQ(log::parse_level("warn"), Level::warning);
    EXPECT_EQ(log::parse_level("warning"), Level::warning);
    EXPECT_EQ(log::parse_level("info"), Level::info);
    EXPECT_EQ(log::parse_level("debug"), Level::debug);
    const auto bad = log::parse_level("verbose");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, base::Errc::usage);
    EXPECT_EQ(bad.error().describe(),
              "--log-level: 'verbose' is not a level; use error, warn, info or debug");
    EXPECT_EQ(log::parse_format("json"), log::Format::json);
    EXPECT_EQ(log::parse_format("text"), log::Format::text);
    const auto bad_format = log::parse_format("JSON\n");
    ASSERT_FALSE(bad_format);
    EXPECT_EQ(bad_format.error().describe(),
              "--log-format: 'JSON\\x0a' is not a format; use text or json");
}

TEST(Log, ContextIsPerThreadAndScoped) {
    EXPECT_EQ(log::context(), "");
    {
        const log::Context outer("www");
        {
            const log::Context inner("mail");
            EXPECT_EQ(log::context(), "mail");
        }
        EXPECT_EQ(log::context(), "www");
        std::string seen = "unset";
        std::thread([&] { seen = log::context(); }).join();
        EXPECT_EQ(seen, "") << "another thread's lines are not www's";
    }
    EXPECT_EQ(log::context(), "");
}

// The real path: a process whose stderr is the stream JOURNAL_STREAM names writes "<N>"
// lines; the same process with stderr elsewhere would not (sd-daemon(3)).
std::string child_stderr(bool journal) {
    char path[] = "/tmp/test_log_XXXXXX";
    const int fd = ::mkstemp(path);
    EXPECT_GE(fd, 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
        struct stat st{};
        (void)::fstat(fd, &st);
        const std::string stream =
            journal ? std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) : "1:1";
        (void)::setenv("JOURNAL_STREAM", stream.c_str(), 1);
        (void)::dup2(fd, STDERR_FILENO);
        log::set_level(Level::info);
        log::warning("token is gone");
        log::debug("not at info");
        log::info("renewed");
        std::fflush(stderr);
        ::_exit(0);
    }
    int status = 0;
    (void)::waitpid(pid, &status, 0);
    ::close(fd);
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    ::unlink(path);
    return text.str();
}

TEST(Log, UnderSystemdJournaldGetsPriorities) {
    EXPECT_EQ(child_stderr(true), "<4>acme-agent: warning: token is gone\n<6>renewed\n");
    EXPECT_EQ(child_stderr(false), "acme-agent: warning: token is gone\nrenewed\n");
}

}  // namespace
