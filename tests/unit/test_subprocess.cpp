// base::printable (SECURITY.md rule 19) and base::subprocess (rule 21).
#include "base/log.h"
#include "base/subprocess.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>

namespace {

using namespace std::chrono_literals;
namespace sp = base::subprocess;

TEST(Printable, EscapesControlsKeepsText) {
    using base::printable;
    EXPECT_EQ(printable("plain text, ünïcödé 日本\nline two"),
              "plain text, ünïcödé 日本\nline two");
    EXPECT_EQ(printable("\x1b]0;pwned\x07\x1b[2J"), "\\x1b]0;pwned\\x07\\x1b[2J");
    EXPECT_EQ(printable("a\rb\tc\x7f"), "a\\x0db\\x09c\\x7f");
    EXPECT_EQ(printable("csi \xc2\x9b"
                        "31m"),
              "csi \\u{9b}31m");                                              // C1 as UTF-8
    EXPECT_EQ(printable("rlo \xe2\x80\xae"), "rlo \\u{202e}");                // bidi override
    EXPECT_EQ(printable("bad \xff\xc0\xaf end"), "bad \\xff\\xc0\\xaf end");  // not UTF-8
    EXPECT_EQ(printable(std::string("nul\0x", 5)), "nul\\x00x");
    // Idempotent: a message escaped once (Error::describe) and logged is not mangled.
    const std::string once = printable("\x1b[2J");
    EXPECT_EQ(printable(once), once);
}

TEST(Subprocess, OnlyStandardDescriptorsAndTheDocumentedEnvironment) {
    const int leak = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC: would be inherited
    ASSERT_GE(leak, 3);
    ::setenv("SECRET_OF_THE_AGENT", "1", 1);
    sp::Command c;
    c.argv = {"/bin/sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '; echo; env | sort"};
    c.env = {"ACME_AGENT_TEST=yes"};
    auto r = sp::run(c);
    ::close(leak);
    ::unsetenv("SECRET_OF_THE_AGENT");
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_TRUE(r->ok()) << r->output;
    // ls: 0, 1 (the pipe to sort), 2 and its directory fd 3.
    EXPECT_EQ(r->output.substr(0, r->output.find('\n')), "0 1 2 3 ");
    EXPECT_NE(r->output.find("\nACME_AGENT_TEST=yes\n"), std::string::npos) << r->output;
    EXPECT_NE(r->output.find("\nPATH="), std::string::npos) << r->output;
    EXPECT_EQ(r->output.find("SECRET_OF_THE_AGENT"), std::string::npos) << r->output;
}

TEST(Subprocess, OutputIsCutToItsBound) {
    sp::Command c;
    c.argv = sp::shell("i=0; while [ $i -lt 5000 ]; do echo \"line $i\"; i=$((i+1)); done");
    c.max_output = 1000;
    auto r = sp::run(c);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->output.size(), 1000u);
    EXPECT_GT(r->output_cut, 30000u);
    EXPECT_NE(r->output.find("line 4999\n"), std::string::npos);
    EXPECT_NE(r->quoted_output().find(" bytes cut] "), std::string::npos);
}

TEST(Subprocess, StatusAndTimeout) {
    sp::Command c;
    c.argv = sp::shell("exit 3");
    auto r = sp::run(c);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->ok());
    EXPECT_EQ(r->status(c.timeout), "exited with status 3");

    c.argv = sp::shell("sleep 30 & wait");
    c.timeout = std::chrono::milliseconds(300);  // not 300ms: cppcheck 2.10 cannot parse it
    const auto start = std::chrono::steady_clock::now();
    r = sp::run(c);
    ASSERT_TRUE(r);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
    EXPECT_TRUE(r->timed_out);
    EXPECT_EQ(r->status(c.timeout), "timed out after 300 ms and was killed");

    c.argv = {"/nonexistent/program"};
    EXPECT_FALSE(sp::run(c));
}

}  // namespace
