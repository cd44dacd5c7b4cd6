// The PostgreSQL that tests/pg/CMakeLists.txt's fixture started (scripts/postgres-setup.sh):
// its URL for the agent's role, and a fresh database per test made by the superuser over the
// Unix socket, so that tests never see each other's schema.
#pragma once

#include "base/bytes.h"
#include "store/pg.h"

#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
#include <regex>
#include <string>

namespace pgtest {

inline std::string read_line(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    return line;
}

// The agent's URL with `db` as the database.
inline std::string url_for(const std::string& db) {
    const std::string url = read_line(ACME_AGENT_PG_DIR "/url");
    return std::regex_replace(url, std::regex(R"(/acme\?)"), "/" + db + "?");
}

inline std::string port() {
    return std::regex_replace(read_line(ACME_AGENT_PG_DIR "/url"),
                              std::regex(R"(^.*@localhost:([0-9]+)/.*$)"), "$1");
}

// A superuser connection over the Unix socket (trust), for setting up and inspecting.
inline store::pg::Connection admin() {
    auto c = store::pg::Connection::open(
        "postgresql://postgres@/postgres?host=" ACME_AGENT_PG_DIR "/sock&port=" + port());
    if (!c) throw std::runtime_error("admin connection: " + c.error().describe());
    return std::move(*c);
}

// A new empty database owned by the agent's role, named after the running test; returns
// the agent's URL for it.
inline std::string fresh_database() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string db = std::string("t_") + info->test_suite_name() + "_" + info->name();
    for (char& ch : db)
        if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
    db = base::ascii_lower(db).substr(0, 60);
    auto a = admin();
    if (auto r = a.exec("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)"); !r)
        throw std::runtime_error(r.error().describe());
    if (auto r = a.exec("CREATE DATABASE " + db + " OWNER acme_agent"); !r)
        throw std::runtime_error(r.error().describe());
    return url_for(db);
}

}  // namespace pgtest
