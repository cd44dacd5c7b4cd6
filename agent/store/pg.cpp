#include "store/pg.h"

#include "base/log.h"

#include <array>
#include <cstring>

namespace store::pg {

using base::Errc;
using base::fail;

namespace {

using ConninfoPtr = std::unique_ptr<PQconninfoOption, base::Deleter<PQconninfoFree>>;

// libpq's parse of a URL or key=value string; nullopt and `error` when malformed.
std::optional<ConninfoPtr> parse(std::string_view url, std::string& error) {
    char* err = nullptr;
    ConninfoPtr opts(PQconninfoParse(std::string(url).c_str(), &err));
    if (!opts) {
        error = err ? err : "out of memory";
        PQfreemem(err);
        while (!error.empty() && (error.back() == '\n' || error.back() == ' ')) error.pop_back();
        return std::nullopt;
    }
    return opts;
}

bool has_value(const PQconninfoOption* opts, const char* key) {
    for (const auto* o = opts; o->keyword; ++o)
        if (std::strcmp(o->keyword, key) == 0) return o->val && *o->val;
    return false;
}

std::string sqlstate(const PGresult* r) {
    const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return s ? s : "";
}

std::string message_of(const PGconn* c) {
    std::string m = PQerrorMessage(c);
    while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
    return base::printable(m, base::Lines::escape);
}

}  // namespace

bool is_url(std::string_view url) {
    return url.starts_with("postgresql://") || url.starts_with("postgres://");
}

Result<void> refuse_password(std::string_view url) {
    std::string error;
    auto opts = parse(url, error);
    if (!opts) return fail(Errc::usage, "storage URL", error);
    if (has_value(opts->get(), "password"))
        return fail(Errc::usage, "storage URL",
                    "holds a password, which every local user can read on a command line: put "
                    "it in a passfile (passfile=FILE in the URL, PGPASSFILE, or ~/.pgpass, mode "
                    "0600) or use a client certificate (sslcert=, sslkey=)");
    return {};
}

std::string redact(std::string_view url) {
    std::string error;
    auto opts = parse(url, error);
    if (!opts) return "(a malformed storage URL)";
    std::string out = "postgresql://";
    std::string user, host, port, db;
    for (const auto* o = opts->get(); o->keyword; ++o) {
        if (!o->val || !*o->val) continue;
        const std::string_view k = o->keyword;
        if (k == "user") user = o->val;
        if (k == "host") host = o->val;
        if (k == "port") port = o->val;
        if (k == "dbname") db = o->val;
    }
    if (!user.empty()) out += user + "@";
    out += host;
    if (!port.empty()) out += ":" + port;
    out += "/" + db;
    return base::printable(out, base::Lines::escape);
}

std::optional<std::string> Rows::get(int row, int col) const {
    if (row >= size() || col >= PQnfields(r_.get()) || PQgetisnull(r_.get(), row, col))
        return std::nullopt;
    return std::string(PQgetvalue(r_.get(), row, col),
                       static_cast<std::size_t>(PQgetlength(r_.get(), row, col)));
}

std::int64_t Rows::affected() const {
    const char* n = PQcmdTuples(r_.get());
    return n && *n ? std::stoll(n) : 0;
}

Result<Connection> Connection::open(const std::string& url, unsigned timeout_s) {
    std::string error;
    if (!parse(url, error)) return fail(Errc::usage, "storage URL", error);
    const std::string shown = redact(url);
    const std::string timeout = std::to_string(timeout_s);
    const std::array<const char*, 4> keys{"dbname", "connect_timeout", "application_name", nullptr};
    const std::array<const char*, 4> values{url.c_str(), timeout.c_str(), "acme-agent", nullptr};
    // expand_dbname=1: the URL is parsed as a connection string, the other keys add to it.
    PGconn* c = PQconnectdbParams(keys.data(), values.data(), 1);
    if (!c) return fail(Errc::internal, "PQconnectdbParams", "out of memory");
    Connection conn(c, url, shown);
    // The server's NOTICEs (e.g. "relation ... already exists, skipping" from a migration)
    // would go to stderr raw: -v shows them, escaped.
    PQsetNoticeProcessor(
        c,
        [](void*, const char* m) {
            base::log::debug("postgresql: " + base::printable(m, base::Lines::escape));
        },
        nullptr);
    if (PQstatus(c) == CONNECTION_OK) return conn;
    const std::string m = message_of(c);
    // Authentication and a missing database or role are the user's settings to fix; the
    // rest (refused, timed out, TLS) is the network or the server.
    const bool settings = m.find("password authentication failed") != std::string::npos ||
                          m.find("no password supplied") != std::string::npos ||
                          m.find("does not exist") != std::string::npos ||
                          m.find("no pg_hba.conf entry") != std::string::npos;
    if (settings)
        return fail(Errc::usage, "connect " + shown,
                    m + " (check the role, the database and the password in the passfile)");
    return fail(Errc::network, "connect " + shown, m);
}

bool Connection::ok() const {
    return PQstatus(conn_.get()) == CONNECTION_OK;
}

Result<void> Connection::reset() {
    auto fresh = open(url_);
    if (!fresh) return std::unexpected(fresh.error());
    conn_ = std::move(fresh->conn_);
    return {};
}

int Connection::socket() const {
    return PQsocket(conn_.get());
}

Result<Rows> Connection::exec(const std::string& sql,
                              const std::vector<std::optional<std::string>>& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    // Without parameters the simple protocol, which also runs a script of several statements.
    ResultPtr r(params.empty()
                    ? PQexec(conn_.get(), sql.c_str())
                    : PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(values.size()),
                                   nullptr, values.data(), nullptr, nullptr, 0));
    const auto status = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return Rows(std::move(r));
    if (!ok())
        return fail(Errc::network, "PostgreSQL " + shown_,
                    "connection lost: " + message_of(conn_.get()));
    const std::string state = r ? sqlstate(r.get()) : "";
    return fail(Errc::state, "PostgreSQL " + shown_,
                message_of(conn_.get()) + (state.empty() ? "" : " (SQLSTATE " + state + ")"));
}

Result<std::vector<std::pair<std::string, std::string>>> Connection::notifications() {
    if (PQconsumeInput(conn_.get()) == 0)
        return fail(Errc::network, "PostgreSQL " + shown_,
                    "connection lost: " + message_of(conn_.get()));
    std::vector<std::pair<std::string, std::string>> out;
    while (PGnotify* n = PQnotifies(conn_.get())) {
        out.emplace_back(n->relname, n->extra ? n->extra : "");
        PQfreemem(n);
    }
    return out;
}

namespace {

// Migration N takes the schema from version N-1 to N. Append only; never edit one that
// has shipped.
constexpr std::array<const char*, kSchemaVersion> kMigrations{
    R"sql(
CREATE TABLE accounts (
    server      text PRIMARY KEY,
    url         text NOT NULL,
    key_uri     text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE certificates (
    name        text PRIMARY KEY,
    cert_pem    text NOT NULL,
    chain_pem   text NOT NULL,
    key_uri     text NOT NULL,
    renewal     text NOT NULL,
    generation  bigint NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE orders (
    name        text PRIMARY KEY,
    body        text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE deploy_pending (
    node        text NOT NULL,
    name        text NOT NULL,
    PRIMARY KEY (node, name)
);
CREATE SEQUENCE lease_fence;
CREATE TABLE leases (
    name        text PRIMARY KEY,
    holder      text NOT NULL,
    expires_at  timestamptz NOT NULL,
    fence       bigint NOT NULL
);
CREATE TABLE challenges (
    kind        text NOT NULL,
    token       text NOT NULL,
    domain      text NOT NULL,
    value       text NOT NULL,
    expires_at  timestamptz NOT NULL,
    PRIMARY KEY (kind, token, domain)
);
)sql"};

}  // namespace

Result<int> migrate(Connection& c) {
    // One transaction under a transaction-scoped advisory lock: a second node starting at
    // the same time waits here, then finds the schema current.
    auto begin = c.exec("BEGIN");
    if (!begin) return std::unexpected(begin.error());
    auto body = [&]() -> Result<int> {
        // 0x61636d65 = "acme": the lock key, the same on every node.
        if (auto r = c.exec("SELECT pg_advisory_xact_lock(1633905765)"); !r)
            return std::unexpected(r.error());
        if (auto r =
                c.exec("CREATE TABLE IF NOT EXISTS acme_agent_schema (version integer NOT NULL)");
            !r)
            return std::unexpected(r.error());
        auto v = c.exec("SELECT coalesce(max(version), 0) FROM acme_agent_schema");
        if (!v) return std::unexpected(v.error());
        const int have = std::stoi(v->text(0, 0));
        if (have > kSchemaVersion)
            return fail(Errc::state, "storage " + c.redacted_url(),
                        "the database schema is version " + std::to_string(have) +
                            ", newer than this acme-agent knows (" +
                            std::to_string(kSchemaVersion) + "): upgrade acme-agent on this node");
        for (int n = have + 1; n <= kSchemaVersion; ++n) {
            if (auto r = c.exec(kMigrations.at(static_cast<std::size_t>(n - 1))); !r)
                return std::unexpected(r.error());
            if (auto r = c.exec("INSERT INTO acme_agent_schema (version) VALUES ($1)",
                                {std::to_string(n)});
                !r)
                return std::unexpected(r.error());
            base::log::info("storage: schema migrated to version " + std::to_string(n));
        }
        return kSchemaVersion;
    };
    auto result = body();
    if (!result) {
        (void)c.exec("ROLLBACK");
        return result;
    }
    if (auto r = c.exec("COMMIT"); !r) return std::unexpected(r.error());
    return result;
}

}  // namespace store::pg
