// The `run` configuration file: what a good one yields, and that every bad one is refused
// with FILE:LINE and a message naming the problem.
#include "config/config.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

const char* kGood = R"(# the account
server = "https://ca.example/dir"
ca_file = "ca.pem"
state_dir = "/var/lib/acme-agent"
account_key = "pkcs11:token=t;object=acct?pin-source=file:/etc/pin"
email = ["a@example.com", "b@example.com"]
agree_tos = true
eab_kid = "kid-1"
eab_hmac_key = "pkcs11:token=t;object=mac"
deploy_hook_timeout = 60

[[certificate]]
name = "www"
domains = ["www.example.com", "example.com"]
key = "pkcs11:token=t;object=www"
http_port = 5002
deploy_hook = "systemctl reload nginx"
renew_before_days = 30
profile = "tlsserver"
preferred_chain = "Root X1"

[[certificate]]
domains = ["*.example.org"]
key = "file:/keys/org.pem"
challenge = "dns-01"
rfc2136 = "127.0.0.1:53"
tsig_key = "tsig.key"

[[certificate]]
domains = ["web.example.net"]
key = "tpm2:path=/keys/web.tss"
webroot = "/srv/www"
)";

TEST(Config, GoodFileYieldsEverySetting) {
    auto c = config::parse(kGood, "/etc/acme-agent/agent.toml");
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_EQ(c->server, "https://ca.example/dir");
    EXPECT_EQ(c->ca_file, "/etc/acme-agent/ca.pem");  // relative to the file
    EXPECT_EQ(c->state_dir, "/var/lib/acme-agent");
    EXPECT_EQ(c->emails, (std::vector<std::string>{"a@example.com", "b@example.com"}));
    EXPECT_TRUE(c->agree_tos);
    EXPECT_EQ(c->eab_kid, "kid-1");
    EXPECT_EQ(c->eab_hmac_key, "pkcs11:token=t;object=mac");
    EXPECT_EQ(c->deploy_hook_timeout, 60u);
    ASSERT_EQ(c->certificates.size(), 3u);
    const auto& www = c->certificates[0];
    EXPECT_EQ(www.name, "www");
    EXPECT_EQ(www.domains, (std::vector<std::string>{"www.example.com", "example.com"}));
    EXPECT_EQ(www.challenge, "http-01");
    EXPECT_EQ(www.http_port, "5002");
    EXPECT_EQ(www.deploy_hook, "systemctl reload nginx");
    EXPECT_EQ(www.renew_before_days, 30u);
    EXPECT_EQ(www.profile, "tlsserver");
    EXPECT_EQ(www.preferred_chain, "Root X1");
    EXPECT_EQ(www.line, 12u);
    const auto& org = c->certificates[1];
    EXPECT_EQ(org.name, "*.example.org");  // the first domain
    EXPECT_EQ(org.challenge, "dns-01");
    EXPECT_EQ(org.tsig_key, "/etc/acme-agent/tsig.key");
    EXPECT_EQ(c->certificates[2].webroot, "/srv/www");
    EXPECT_EQ(c->certificates[2].http_port, "80");
}

TEST(Config, MinimalFileLeavesGlobalsUnset) {
    auto c = config::parse("[[certificate]]\ndomains = [\"a.example\"]\nkey = \"file:/k.pem\"\n",
                           "x.toml");
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_FALSE(c->server);
    EXPECT_FALSE(c->state_dir);
    EXPECT_FALSE(c->ca_file);
    EXPECT_EQ(c->deploy_hook_timeout, 300u);
    EXPECT_EQ(c->certificates.at(0).name, "a.example");
}

TEST(Config, MetricsListenAddress) {
    const std::string cert = "[[certificate]]\ndomains = [\"a.example\"]\nkey = \"file:/k.pem\"\n";
    auto c = config::parse("metrics = \"127.0.0.1:9464\"\n" + cert, "x.toml");
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_EQ(c->metrics, "127.0.0.1:9464");
    c = config::parse(cert, "x.toml");
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_FALSE(c->metrics);
    for (const char* bad : {"metrics = \"\"\n", "metrics = 9464\n"}) {
        c = config::parse(bad + cert, "x.toml");
        ASSERT_FALSE(c) << bad;
        EXPECT_EQ(c.error().code, base::Errc::usage);
        EXPECT_EQ(c.error().where, "x.toml:1") << c.error().describe();
        EXPECT_NE(c.error().describe().find("metrics"), std::string::npos) << c.error().describe();
    }
}

struct Bad {
    const char* text;
    const char* where;    // "FILE:LINE"
    const char* message;  // a part of the message
};

class BadConfig : public testing::TestWithParam<Bad> {};

TEST_P(BadConfig, IsAUsageErrorWithFileAndLine) {
    auto c = config::parse(GetParam().text, "conf.toml");
    ASSERT_FALSE(c) << GetParam().text;
    EXPECT_EQ(c.error().code, base::Errc::usage);
    EXPECT_EQ(c.error().where, GetParam().where) << c.error().describe();
    EXPECT_NE(c.error().message.find(GetParam().message), std::string::npos)
        << c.error().describe();
}

constexpr const char* kCert = "[[certificate]]\ndomains = [\"a.example\"]\nkey = \"file:/k.pem\"\n";

INSTANTIATE_TEST_SUITE_P(
    Config, BadConfig,
    testing::Values(
        Bad{"server = \"x\"\nsevrer = \"y\"\n", "conf.toml:2", "unknown key 'sevrer' (top level)"},
        Bad{"[[certificate]]\ndomains = [\"a.example\"]\nkey = \"file:/k.pem\"\nx = 1\n",
            "conf.toml:4", "unknown key 'x' in [[certificate]]"},
        Bad{"agree_tos = \"yes\"\n", "conf.toml:1", "agree_tos must be true or false"},
        Bad{"agree_tos = tru\n", "conf.toml:1", "TOML syntax"},
        Bad{"[[certificate]]\ndomains = \"a.example\"\nkey = \"file:/k.pem\"\n", "conf.toml:2",
            "domains must be a list"},
        Bad{"[[certificate]]\ndomains = []\nkey = \"file:/k.pem\"\n", "conf.toml:2",
            "domains must not be empty"},
        Bad{"\n[[certificate]]\nkey = \"file:/k.pem\"\n", "conf.toml:2", "needs domains"},
        Bad{"[[certificate]]\ndomains = [\"a.example\"]\n", "conf.toml:1", "needs key"},
        Bad{"[[certificate]]\ndomains = [\"a.example\"]\nkey = \"nope:x\"\n", "conf.toml:3",
            "key:"},
        Bad{"[[certificate]]\ndomains = [\"a\"]\nkey = \"file:/k\"\nchallenge = \"http-02\"\n",
            "conf.toml:4", "not one of http-01"},
        Bad{"[[certificate]]\ndomains = [\"a\"]\nkey = \"file:/k\"\nhttp_port = 70000\n",
            "conf.toml:4", "port number"},
        Bad{"[[certificate]]\ndomains = [\"a\"]\nkey = \"file:/k\"\nrenew_before_days = -1\n",
            "conf.toml:4", "whole number"},
        Bad{"[[certificate]]\ndomains = [\"*.a\"]\nkey = \"file:/k\"\n", "conf.toml:1",
            "needs challenge = \"dns-01\""},
        Bad{"[[certificate]]\ndomains = [\"a\"]\nkey = \"file:/k\"\nchallenge = \"dns-01\"\n",
            "conf.toml:1", "dns_hook or rfc2136"},
        Bad{"[[certificate]]\ndomains = [\"a\"]\nkey = \"file:/k\"\nname = \"../x\"\n",
            "conf.toml:4", "directory name"},
        Bad{"[certificate]\ndomains = [\"a\"]\n", "conf.toml:1", "[[certificate]] tables"},
        Bad{"[[certificate]]\ndomains = [\"a\"]\nkey = \"file:/k\"\n"
            "[[certificate]]\ndomains = [\"a\"]\nkey = \"file:/k2\"\n",
            "conf.toml:4", "a second certificate named 'a'"},
        Bad{"[[certificate]]\ndomains = [\"a\"]\nkey = \"file:/k\"\n[certificate.extra]\nx = 1\n",
            "conf.toml:4", "unknown key 'extra' in [[certificate]]"},
        Bad{"server = \"x\"\nserver = \"y\"\n", "conf.toml:2", "TOML syntax"},
        Bad{"account_key = \"pkcs11:bogus=1\"\n", "conf.toml:1", "account_key:"}));

TEST(Config, EabNeedsBothHalves) {
    auto c = config::parse(std::string("eab_kid = \"k\"\n") + kCert, "conf.toml");
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().where, "conf.toml");
    EXPECT_NE(c.error().message.find("eab_hmac_key"), std::string::npos);
}

TEST(Config, LoadReadsTheFileAndNamesItInErrors) {
    const testsupport::TempDir dir;
    const auto path = dir.write("config.toml", std::string(kCert) + "deploy_hook = 42\n");
    auto c = config::load(path.string());
    std::filesystem::remove(path);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().describe(),
              path.string() + ":4: deploy_hook must be a string (in double quotes)");
    auto missing = config::load(path.string());
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, base::Errc::not_found);
}

// Key URIs are stored as given after parsing (key.uri, account records): their files are
// made absolute relative to the config file, like every other path in it (issue #14 #11).
TEST(Config, KeyUriPathsAreRelativeToTheFile) {
    auto c = config::parse(
        "account_key = \"tpm2:path=keys/acct.tss?pin-source=file:acct.auth\"\n"
        "[[certificate]]\ndomains = [\"a\"]\nkey = \"file:keys/a.pem\"\n",
        "/etc/acme-agent/agent.toml");
    ASSERT_TRUE(c) << c.error().describe();
    EXPECT_EQ(c->account_key,
              "tpm2:path=/etc/acme-agent/keys/acct.tss?pin-source=file:/etc/acme-agent/acct.auth");
    EXPECT_EQ(c->certificates[0].key, "file:/etc/acme-agent/keys/a.pem");
}

// A pin-value only in a file no one else can read (SECURITY.md rule 18).
TEST(Config, PinValueOnlyInAnOwnerOnlyFile) {
    const std::string cert_only =
        "[[certificate]]\ndomains = [\"a\"]\n"
        "key = \"pkcs11:token=t;object=o?pin-value=1234\"\n";
    auto open = config::parse(cert_only, "conf.toml", false);
    ASSERT_FALSE(open);
    EXPECT_EQ(open.error().where, "conf.toml:3");
    EXPECT_NE(open.error().message.find("chmod 600 conf.toml"), std::string::npos);
    EXPECT_EQ(open.error().message.find("1234"), std::string::npos);
    auto owner_only = config::parse(cert_only, "conf.toml", true);
    ASSERT_TRUE(owner_only) << owner_only.error().describe();
    // kept in memory for the backend to log in with
    EXPECT_NE(owner_only->certificates[0].key.find("pin-value=1234"), std::string::npos);
}

// load() checks the file itself: group/other-writable or symlinked config is refused.
TEST(Config, LoadRefusesAFileOthersCanWriteOrASymlink) {
    const testsupport::TempDir tmp;
    const auto& dir = tmp.path();
    const auto path = tmp.write("agent.toml", kCert);
    namespace fs = std::filesystem;
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read |
                              fs::perms::group_write);
    auto writable = config::load(path.string());
    ASSERT_FALSE(writable);
    EXPECT_NE(writable.error().message.find("chmod go-w"), std::string::npos);
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write | fs::perms::others_read);
    EXPECT_TRUE(config::load(path.string()));
    fs::create_symlink(path, dir / "link.toml");
    auto link = config::load((dir / "link.toml").string());
    ASSERT_FALSE(link);
    EXPECT_NE(link.error().message.find("symlink"), std::string::npos);
}

}  // namespace
