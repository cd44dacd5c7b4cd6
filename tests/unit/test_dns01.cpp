// dns-01: the TXT value, the hook contract (lego's exec provider), identifier checks
// (docs/SECURITY.md rule 8: nothing from the server reaches a shell), the TSIG key-file parser
// and the RFC 2136 solver's failures that need no DNS server.
#include "challenge/dns01.h"
#include "support/socket.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using base::Errc;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* kToken = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA";
constexpr const char* kKeyAuth =
    "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.9jg46WB3rR_AHD-EBXdN7cBkH1WOu0tA3M9fm21mqTI";
// base64url(SHA-256(kKeyAuth)), computed independently (Python hashlib).
constexpr const char* kKeyAuthTxt = "lCM7cZyQXcVHK2nnW3jjAhNT3Fvm18UN-kWZZknKoYM";

std::string slurp(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

using testsupport::TempDir;

// Records each call as "ARG|ARG|...|" and then the three variables, one line each.
constexpr const char* kRecorder =
    "out=\"$(dirname \"$0\")/calls\"\n"
    "{ for a in \"$@\"; do printf '%s|' \"$a\"; done; printf '\\n';\n"
    "  printf 'domain=%s\\nname=%s\\nvalue=%s\\n' \"$ACME_AGENT_DOMAIN\" \"$ACME_AGENT_TXT_NAME\" "
    "\"$ACME_AGENT_TXT_VALUE\"; } >>\"$out\"\n";

TEST(Dns01, TxtValueIsBase64urlOfSha256) {
    EXPECT_EQ(challenge::dns01_txt_value("token.thumbprint"),
              "61rBZ_4knHblO0MNoxFsXZ_eTFUHum0B6IVRbhvUn5I");
    EXPECT_EQ(challenge::dns01_txt_value(kKeyAuth), kKeyAuthTxt);
    EXPECT_EQ(challenge::dns01_record_name("www.example.com"), "_acme-challenge.www.example.com.");
}

TEST(Dns01, IdentifierCheck) {
    for (const char* good :
         {"example.com", "a", "x-1.example.org", "127.0.0.1", "XN--BCHER-KVA.example"})
        EXPECT_TRUE(challenge::valid_dns01_identifier(good)) << good;
    for (const char* bad :
         {"", ".", "example.com.", ".example.com", "a..b", "*.example.com", "example.com;id",
          "$(id).example.com", "a b", "a/b", "`id`", "a\nb", "under_score.example", "a'b", "a\"b"})
        EXPECT_FALSE(challenge::valid_dns01_identifier(bad)) << bad;
    EXPECT_TRUE(challenge::valid_dns01_identifier(std::string(63, 'a') + ".com"));
    EXPECT_FALSE(challenge::valid_dns01_identifier(std::string(64, 'a') + ".com"));
    std::string long_name;
    while (long_name.size() < 254) long_name += "abcdefgh.";
    EXPECT_FALSE(challenge::valid_dns01_identifier(long_name + "com"));
}

TEST(Dns01Hook, PresentAndCleanupFollowLegoContract) {
    TempDir dir;
    const fs::path hook = dir.script("hook", kRecorder);
    ::setenv("ACME_AGENT_TXT_VALUE", "stale-from-the-parent", 1);
    auto solver = challenge::make_dns01_hook(hook.string());
    EXPECT_EQ(solver->type(), "dns-01");
    auto r = solver->present("example.com", kToken, kKeyAuth);
    ::unsetenv("ACME_AGENT_TXT_VALUE");
    ASSERT_TRUE(r) << r.error().describe();
    const std::string value = kKeyAuthTxt;
    EXPECT_EQ(slurp(dir.path() / "calls"),
              "present|_acme-challenge.example.com.|" + value +
                  "|\ndomain=example.com\nname=_acme-challenge.example.com.\n"
                  "value=" +
                  value + "\n");
    solver->cleanup("example.com", kToken);
    EXPECT_EQ(slurp(dir.path() / "calls"),
              "present|_acme-challenge.example.com.|" + value +
                  "|\ndomain=example.com\nname=_acme-challenge.example.com.\nvalue=" + value +
                  "\n" + "cleanup|_acme-challenge.example.com.|" + value +
                  "|\ndomain=example.com\nname=_acme-challenge.example.com.\nvalue=" + value +
                  "\n");
    // A second cleanup, or one for a challenge never presented, runs nothing.
    solver->cleanup("example.com", kToken);
    solver->cleanup("other.example.com", kToken);
    const std::string all = slurp(dir.path() / "calls");
    EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 8);
}

TEST(Dns01Hook, WildcardAndBaseNameKeepTheirOwnValues) {
    TempDir dir;
    auto solver = challenge::make_dns01_hook(dir.script("hook", kRecorder).string());
    ASSERT_TRUE(solver->present("example.com", "tokenA", "tokenA.thumb"));
    ASSERT_TRUE(solver->present("example.com", "tokenB", "tokenB.thumb"));
    solver->cleanup("example.com", "tokenB");
    solver->cleanup("example.com", "tokenA");
    const std::string calls = slurp(dir.path() / "calls");
    const std::string a = challenge::dns01_txt_value("tokenA.thumb");
    const std::string b = challenge::dns01_txt_value("tokenB.thumb");
    EXPECT_NE(calls.find("cleanup|_acme-challenge.example.com.|" + b + "|"), std::string::npos)
        << calls;
    EXPECT_NE(calls.find("cleanup|_acme-challenge.example.com.|" + a + "|"), std::string::npos)
        << calls;
    EXPECT_LT(calls.find("cleanup|_acme-challenge.example.com.|" + b),
              calls.find("cleanup|_acme-challenge.example.com.|" + a));
}

TEST(Dns01Hook, FailingHookIsAnIoErrorNamingItWithItsStderr) {
    TempDir dir;
    const fs::path hook =
        dir.script("failing-hook",
                   "echo 'starting' ; echo 'zone example.com not found at provider' >&2; exit 3\n");
    auto solver = challenge::make_dns01_hook(hook.string());
    auto r = solver->present("example.com", kToken, kKeyAuth);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::io);
    const std::string msg = r.error().describe();
    EXPECT_NE(msg.find(hook.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("present"), std::string::npos) << msg;
    EXPECT_NE(msg.find("exited with status 3"), std::string::npos) << msg;
    EXPECT_NE(msg.find("zone example.com not found at provider"), std::string::npos) << msg;
    // Nothing was presented, so nothing is cleaned up.
    solver->cleanup("example.com", kToken);
}

TEST(Dns01Hook, HookOutputInTheErrorIsBounded) {
    TempDir dir;
    const fs::path hook = dir.script("noisy",
                                     "i=0; while [ $i -lt 3000 ]; do echo \"line $i of noise from "
                                     "the hook\" >&2; i=$((i+1)); done\n"
                                     "printf 'last words \\033[31m red\\n' >&2; exit 1\n");
    auto r = challenge::make_dns01_hook(hook.string())->present("example.com", kToken, kKeyAuth);
    ASSERT_FALSE(r);
    const std::string msg = r.error().message;
    EXPECT_LT(msg.size(), 2048u + 512u);
    EXPECT_NE(msg.find("last words \\x1b[31m red"), std::string::npos) << msg;  // ESC made visible
    EXPECT_EQ(msg.find('\x1b'), std::string::npos) << msg;
    EXPECT_EQ(msg.find("line 0 of noise"), std::string::npos);
}

TEST(Dns01Hook, IdentifierWithShellMetacharactersIsRefusedBeforeAnythingRuns) {
    TempDir dir;
    const fs::path hook = dir.script("hook", kRecorder);
    auto solver = challenge::make_dns01_hook(hook.string());
    for (const char* bad :
         {"example.com; touch /tmp/pwned", "$(id).example.com", "`id`.example.com",
          "a|b.example.com", "*.example.com", "a b.example.com", ""}) {
        auto r = solver->present(bad, kToken, kKeyAuth);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().code, Errc::protocol) << bad;
    }
    EXPECT_FALSE(fs::exists(dir.path() / "calls"));
}

TEST(Dns01Hook, CommandIsOneProgramPathEvenWithSpaces) {
    TempDir dir;
    const fs::path hook = dir.script("my hooks/the hook", kRecorder);
    auto r = challenge::make_dns01_hook(hook.string())->present("example.com", kToken, kKeyAuth);
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_TRUE(fs::exists(dir.path() / "my hooks" / "calls"));
    // A shell line is not run as one: "sh -c ..." names no program.
    auto line =
        challenge::make_dns01_hook("/bin/sh -c 'touch " + (dir.path() / "ran").string() + "'")
            ->present("example.com", kToken, kKeyAuth);
    ASSERT_FALSE(line);
    EXPECT_EQ(line.error().code, Errc::io);
    EXPECT_FALSE(fs::exists(dir.path() / "ran"));
}

TEST(Dns01Hook, MissingOrEmptyCommand) {
    auto r = challenge::make_dns01_hook("/nonexistent/dns-hook")
                 ->present("example.com", kToken, kKeyAuth);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::io);
    EXPECT_NE(r.error().message.find("/nonexistent/dns-hook"), std::string::npos);
    auto e = challenge::make_dns01_hook("")->present("example.com", kToken, kKeyAuth);
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().code, Errc::usage);
}

TEST(Dns01Hook, HungHookIsKilledAtTheTimeout) {
    TempDir dir;
    // The child `sleep` is killed too (the hook's process group), else it would hold the pipe.
    const fs::path hook = dir.script(
        "slow", "echo waiting >&2; sleep 30; echo done >\"$(dirname \"$0\")/finished\"\n");
    const auto start = std::chrono::steady_clock::now();
    auto r =
        challenge::make_dns01_hook(hook.string(), 300ms)->present("example.com", kToken, kKeyAuth);
    const auto took = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::io);
    EXPECT_NE(r.error().message.find("timed out after 300 ms and was killed"), std::string::npos)
        << r.error().message;
    EXPECT_NE(r.error().message.find("waiting"), std::string::npos) << r.error().message;
    EXPECT_LT(took, 5s);
    EXPECT_FALSE(fs::exists(dir.path() / "finished"));
}

TEST(Dns01Hook, BackgroundChildHoldingThePipeDoesNotHoldPresent) {
    TempDir dir;
    const fs::path hook = dir.script("bg", "sleep 3 &\necho published\nexit 0\n");
    const auto start = std::chrono::steady_clock::now();
    auto r =
        challenge::make_dns01_hook(hook.string(), 20s)->present("example.com", kToken, kKeyAuth);
    EXPECT_TRUE(r) << r.error().describe();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 2500ms);
}

// ---- TSIG key files ----

constexpr const char* kSecret = "K9Bnw+AOoxN3UtFnc+zRK9VFkhezI3waX6bC/mQ+XBQ=";

struct KeyCase {
    const char* name;
    std::string text;
    bool ok;
    const char* expect;  // name (ok) or a piece of the message
};

TEST(TsigKeyFile, Table) {
    const std::string s = kSecret;
    const std::vector<KeyCase> cases = {
        {"tsig-keygen",
         "key \"acme-test\" {\n\talgorithm hmac-sha256;\n\tsecret \"" + s + "\";\n};\n", true,
         "acme-test"},
        {"ddns-confgen style, comments, unquoted name, upper case",
         "# generated\n// another\n/* block\n comment */ KEY acme.example. {\n ALGORITHM "
         "HMAC-SHA512.; SECRET \"" +
             s + "\"; };",
         true, "acme.example."},
        {"missing secret", "key \"k\" { algorithm hmac-sha256; };", false, "key 'k' has no secret"},
        {"missing algorithm", "key \"k\" { secret \"" + s + "\"; };", false,
         "key 'k' has no algorithm"},
        {"unknown algorithm", "key \"k\" { algorithm hmac-md5; secret \"" + s + "\"; };", false,
         "unsupported TSIG algorithm 'hmac-md5'"},
        {"truncated algorithm", "key \"k\" { algorithm hmac-sha256-128; secret \"" + s + "\"; };",
         false, "unsupported TSIG algorithm"},
        {"secret not base64",
         "key \"k\" { algorithm hmac-sha256; secret \"" + s.substr(0, 20) + "!!\"; };", false,
         "not valid base64"},
        {"secret unquoted", "key \"k\" { algorithm hmac-sha256; secret " + s + "; };", false,
         "must be a quoted base64 string"},
        {"unterminated secret", "key \"k\" { algorithm hmac-sha256; secret \"" + s + ";\n};", false,
         "unterminated string"},
        {"not closed", "key \"k\" { algorithm hmac-sha256; secret \"" + s + "\";", false,
         "not closed"},
        {"missing semicolon", "key \"k\" { algorithm hmac-sha256 secret \"" + s + "\"; };", false,
         "expected ';' after the algorithm"},
        {"two keys",
         "key \"a\" { algorithm hmac-sha256; secret \"" + s +
             "\"; };\nkey \"b\" { algorithm hmac-sha256; secret \"" + s + "\"; };",
         false, "line 2: more than one key statement"},
        {"empty", "# nothing\n", false, "no key statement"},
        {"named.conf, not a key file", "options { directory \"/tmp\"; };", false,
         "expected a key statement"},
        {"unknown clause", "key \"k\" { algorithm hmac-sha256; secrets \"" + s + "\"; };", false,
         "unknown clause 'secrets'"},
        {"bad key name", "key \"a b\" { algorithm hmac-sha256; secret \"" + s + "\"; };", false,
         "not a DNS name"},
    };
    for (const auto& c : cases) {
        auto k = challenge::parse_tsig_key(c.text, "/etc/acme/tsig.key");
        if (c.ok) {
            ASSERT_TRUE(k) << c.name << ": " << k.error().describe();
            EXPECT_EQ(k->name, c.expect) << c.name;
            EXPECT_EQ(k->secret.reveal(), s) << c.name;
            EXPECT_TRUE(k->algorithm == "hmac-sha256." || k->algorithm == "hmac-sha512.") << c.name;
        } else {
            ASSERT_FALSE(k) << c.name;
            EXPECT_EQ(k.error().code, Errc::usage) << c.name;
            const std::string msg = k.error().describe();
            EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << ": " << msg;
            EXPECT_NE(msg.find("/etc/acme/tsig.key"), std::string::npos) << c.name << ": " << msg;
            // The secret, or any piece of it, never appears in an error.
            EXPECT_EQ(msg.find(s.substr(0, 12)), std::string::npos) << c.name << ": " << msg;
        }
    }
    auto good = challenge::parse_tsig_key(cases[0].text, "f");
    ASSERT_TRUE(good);
    EXPECT_EQ(good->algorithm, "hmac-sha256.");
}

TEST(TsigKeyFile, ReadFromDisk) {
    TempDir dir;
    const fs::path p = dir.path() / "tsig.key";
    std::ofstream(p) << "key \"acme-test\" {\n\talgorithm hmac-sha256;\n\tsecret \"" << kSecret
                     << "\";\n};\n";
    fs::permissions(p, fs::perms::owner_read | fs::perms::owner_write);  // a secret: owner-only
    auto k = challenge::read_tsig_key_file(p.string());
    ASSERT_TRUE(k) << k.error().describe();
    EXPECT_EQ(k->name, "acme-test");
    auto missing = challenge::read_tsig_key_file((dir.path() / "absent.key").string());
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, Errc::not_found);
}

TEST(DnsServer, Parse) {
    struct Case {
        const char* text;
        const char* address;  // nullptr: rejected
        unsigned port;
    };
    for (const Case& c : std::vector<Case>{{"127.0.0.1", "127.0.0.1", 53},
                                           {"127.0.0.1:5353", "127.0.0.1", 5353},
                                           {"[::1]:5300", "::1", 5300},
                                           {"[::1]", "::1", 53},
                                           {"::1", "::1", 53},
                                           {"2001:db8::53", "2001:db8::53", 53},
                                           {"localhost", nullptr, 0},
                                           {"ns1.example.com:53", nullptr, 0},
                                           {"127.0.0.1:0", nullptr, 0},
                                           {"127.0.0.1:65536", nullptr, 0},
                                           {"127.0.0.1:", nullptr, 0},
                                           {"127.0.0.1:53x", nullptr, 0},
                                           {"[127.0.0.1]:53", nullptr, 0},
                                           {"[::1", nullptr, 0},
                                           {"[::1]53", nullptr, 0},
                                           {"", nullptr, 0}}) {
        auto s = challenge::parse_dns_server(c.text);
        if (c.address) {
            ASSERT_TRUE(s) << c.text << ": " << s.error().describe();
            EXPECT_EQ(s->address, c.address) << c.text;
            EXPECT_EQ(s->port, c.port) << c.text;
        } else {
            ASSERT_FALSE(s) << c.text;
            EXPECT_EQ(s.error().code, Errc::usage) << c.text;
        }
    }
    EXPECT_EQ(challenge::parse_dns_server("[::1]:5300")->to_string(), "[::1]:5300");
    EXPECT_EQ(challenge::parse_dns_server("10.0.0.1")->to_string(), "10.0.0.1:53");
}

// ---- RFC 2136 failures that need no DNS server (tests/integration/issue_dns01.sh runs BIND) ----

TEST(Dns01Rfc2136, BadKeyFileOrServerFailsBeforeAnyNetwork) {
    TempDir dir;
    const fs::path key = dir.path() / "tsig.key";
    std::ofstream(key) << "key \"k\" { algorithm hmac-md5; secret \"" << kSecret << "\"; };\n";
    fs::permissions(key, fs::perms::owner_read | fs::perms::owner_write);
    auto r = challenge::make_dns01_rfc2136("127.0.0.1:53", key.string())
                 ->present("example.com", kToken, kKeyAuth);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::usage);
    EXPECT_EQ(r.error().describe().find(kSecret), std::string::npos);

    auto absent = challenge::make_dns01_rfc2136("127.0.0.1:53", (dir.path() / "none").string())
                      ->present("example.com", kToken, kKeyAuth);
    ASSERT_FALSE(absent);
    EXPECT_EQ(absent.error().code, Errc::not_found);

    auto host = challenge::make_dns01_rfc2136("ns.example.com", key.string())
                    ->present("example.com", kToken, kKeyAuth);
    ASSERT_FALSE(host);
    EXPECT_EQ(host.error().code, Errc::usage);

    auto id =
        challenge::make_dns01_rfc2136("127.0.0.1", key.string())->present("a;b", kToken, kKeyAuth);
    ASSERT_FALSE(id);
    EXPECT_EQ(id.error().code, Errc::protocol);
}

TEST(Dns01Rfc2136, UnreachableServerIsANetworkError) {
    // A port with nothing listening: bind without listen, so connects are refused.
    const auto refusing = testsupport::bind_loopback(/*listen=*/false);
    ASSERT_NE(refusing.port, 0);
    const unsigned port = refusing.port;

    TempDir dir;
    const fs::path key = dir.path() / "tsig.key";
    std::ofstream(key) << "key \"k\" { algorithm hmac-sha256; secret \"" << kSecret << "\"; };\n";
    fs::permissions(key, fs::perms::owner_read | fs::perms::owner_write);
    const auto start = std::chrono::steady_clock::now();
    auto r =
        challenge::make_dns01_rfc2136("127.0.0.1:" + std::to_string(port), key.string(), 2s, 1s)
            ->present("example.com", kToken, kKeyAuth);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::network) << r.error().describe();
    EXPECT_NE(r.error().describe().find("127.0.0.1:" + std::to_string(port)), std::string::npos)
        << r.error().describe();
    EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
}

}  // namespace
