// store::pg against a real PostgreSQL 15: connecting over TLS (verify-full) with the
// password in a passfile, the errors a user sees for each misconfiguration, and schema
// migrations that several nodes may start at once.
#include "pg_fixture.h"
#include "support/socket.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using base::Errc;
using store::pg::Connection;

TEST(PgConnection, ConnectsOverVerifiedTlsWithThePasswordFromThePassfile) {
    const std::string url = pgtest::fresh_database();
    auto c = Connection::open(url);
    ASSERT_TRUE(c) << c.error().describe();
    auto r = c->exec("SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ(r->text(0, 0), "acme_agent");
    EXPECT_EQ(r->text(0, 1), "t");
    // Nothing of the passfile's path or the password in what the agent shows.
    EXPECT_EQ(c->redacted_url().find("passfile"), std::string::npos) << c->redacted_url();
    EXPECT_NE(c->redacted_url().find("acme_agent@localhost:" + pgtest::port()), std::string::npos)
        << c->redacted_url();
}

TEST(PgConnection, MigrationsRunOnceWhenNodesStartTogether) {
    const std::string url = pgtest::fresh_database();
    constexpr int kNodes = 4;
    std::vector<std::thread> nodes;
    nodes.reserve(kNodes);
    std::vector<std::string> results(kNodes);
    for (int i = 0; i < kNodes; ++i)
        nodes.emplace_back([&, i] {
            auto c = Connection::open(url);
            if (!c) {
                results[i] = c.error().describe();
                return;
            }
            auto v = store::pg::migrate(*c);
            results[i] = v ? std::to_string(*v) : v.error().describe();
        });
    for (auto& t : nodes) t.join();
    for (const auto& r : results) EXPECT_EQ(r, std::to_string(store::pg::kSchemaVersion));
    auto c = Connection::open(url);
    ASSERT_TRUE(c);
    auto n = c->exec("SELECT count(*), max(version) FROM acme_agent_schema");
    ASSERT_TRUE(n) << n.error().describe();
    EXPECT_EQ(n->text(0, 0), std::to_string(store::pg::kSchemaVersion));
    EXPECT_EQ(n->text(0, 1), std::to_string(store::pg::kSchemaVersion));
    // The tables are there.
    auto t = c->exec(
        "SELECT count(*) FROM information_schema.tables WHERE table_name IN "
        "('accounts','certificates','orders','leases','challenges','deploy_pending')");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->text(0, 0), "6");
}

TEST(PgConnection, ASchemaFromANewerAgentIsRefused) {
    const std::string url = pgtest::fresh_database();
    auto c = Connection::open(url);
    ASSERT_TRUE(c);
    ASSERT_TRUE(store::pg::migrate(*c));
    ASSERT_TRUE(c->exec("INSERT INTO acme_agent_schema (version) VALUES (99)"));
    auto v = store::pg::migrate(*c);
    ASSERT_FALSE(v);
    EXPECT_EQ(v.error().code, Errc::state);
    EXPECT_NE(v.error().message.find("version 99"), std::string::npos) << v.error().message;
    EXPECT_NE(v.error().message.find("upgrade acme-agent"), std::string::npos) << v.error().message;
    // The refused migration changed nothing: the connection still works, the schema is as it was.
    auto n = c->exec("SELECT max(version) FROM acme_agent_schema");
    ASSERT_TRUE(n) << n.error().describe();
    EXPECT_EQ(n->text(0, 0), "99");
}

TEST(PgConnection, AWrongPasswordIsTheUsersSettingToFix) {
    const std::string url = pgtest::fresh_database();
    const fs::path pass = fs::path(ACME_AGENT_PG_DIR) / "wrong.pgpass";
    {
        std::ofstream out(pass);
        out << "*:*:*:acme_agent:not-the-password\n";
    }
    fs::permissions(pass, fs::perms::owner_read | fs::perms::owner_write);
    const std::string wrong =
        std::regex_replace(url, std::regex(R"(passfile=[^&]*)"), "passfile=" + pass.string());
    auto c = Connection::open(wrong);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, Errc::usage);
    EXPECT_NE(c.error().message.find("password authentication failed"), std::string::npos)
        << c.error().message;
    EXPECT_EQ(c.error().describe().find("not-the-password"), std::string::npos);
}

TEST(PgConnection, AnUnreachableServerIsANetworkError) {
    // A port nothing listens on: a fresh one from the kernel, bound but not listening.
    const auto closed = testsupport::bind_loopback(false);
    ASSERT_NE(closed.port, 0);
    const std::string url = std::regex_replace(pgtest::url_for("acme"), std::regex(":[0-9]+/"),
                                               ":" + std::to_string(closed.port) + "/");
    auto c = Connection::open(url, 2);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, Errc::network);
    EXPECT_NE(c.error().message.find("Connection refused"), std::string::npos) << c.error().message;
}

TEST(PgConnection, AServerCertificateFromAnotherCaIsRefused) {
    const fs::path other = fs::path(ACME_AGENT_PG_DIR) / "other-ca.pem";
    // Any self-signed CA that did not sign the server's certificate: the server's own leaf.
    fs::copy_file(fs::path(ACME_AGENT_PG_DIR) / "tls/server.crt", other,
                  fs::copy_options::overwrite_existing);
    const std::string url =
        std::regex_replace(pgtest::url_for("acme"), std::regex(R"(sslrootcert=[^&]*)"),
                           "sslrootcert=" + other.string());
    auto c = Connection::open(url);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().code, Errc::network);
    EXPECT_NE(c.error().message.find("certificate verify failed"), std::string::npos)
        << c.error().message;
}

TEST(PgUrl, APasswordOnTheCommandLineIsRefusedWithTheFix) {
    for (const char* url : {"postgresql://agent:s3cret@db.example/acme",
                            "postgresql://agent@db.example/acme?password=s3cret"}) {
        auto r = store::pg::refuse_password(url);
        ASSERT_FALSE(r) << url;
        EXPECT_EQ(r.error().code, Errc::usage);
        EXPECT_NE(r.error().message.find("passfile"), std::string::npos) << r.error().message;
        EXPECT_EQ(r.error().describe().find("s3cret"), std::string::npos);
        EXPECT_EQ(store::pg::redact(url).find("s3cret"), std::string::npos)
            << store::pg::redact(url);
    }
    EXPECT_TRUE(
        store::pg::refuse_password("postgresql://agent@db.example:5433/acme?sslmode=verify-full"));
    EXPECT_EQ(store::pg::redact("postgresql://agent@db.example:5433/acme?passfile=/etc/x"),
              "postgresql://agent@db.example:5433/acme");
    auto bad = store::pg::refuse_password("postgresql://[::1");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().code, Errc::usage);
}

}  // namespace
