// PostgreSQL for shared state (fleet mode): a libpq connection with parameterized queries,
// the errors a user can act on, and versioned schema migrations that two nodes may run at
// once. No private key ever goes into the database: only URIs, certificates and metadata.
#pragma once

#include "base/deleter.h"
#include "base/error.h"

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace store::pg {

using base::Result;

// Whether `url` is a PostgreSQL connection URI (postgresql:// or postgres://).
bool is_url(std::string_view url);
// Errc::usage when `url` carries a password (user:password@ or password=): anything on a
// command line is visible to every local user (ps). The message names the fix (libpq's
// passfile=, PGPASSFILE or ~/.pgpass; a client certificate).
Result<void> refuse_password(std::string_view url);
// `url` with its password (if any) and passfile path removed: safe for logs and --json.
std::string redact(std::string_view url);

using ResultPtr = std::unique_ptr<PGresult, base::Deleter<PQclear>>;

// The rows of a query: text values, NULL as nullopt.
class Rows {
  public:
    explicit Rows(ResultPtr r) : r_(std::move(r)) {}
    [[nodiscard]] int size() const { return PQntuples(r_.get()); }
    [[nodiscard]] bool empty() const { return size() == 0; }
    [[nodiscard]] std::optional<std::string> get(int row, int col) const;
    // Column `col` of row `row`, "" when NULL.
    [[nodiscard]] std::string text(int row, int col) const { return get(row, col).value_or(""); }
    // Rows changed by an INSERT/UPDATE/DELETE.
    [[nodiscard]] std::int64_t affected() const;

  private:
    ResultPtr r_;
};

class Connection {
  public:
    // Connects (libpq reads the password from passfile=/PGPASSFILE/~/.pgpass, never from
    // us) with a connect timeout of `timeout_s`. Errors: Errc::network (unreachable, TLS),
    // Errc::usage (a malformed URL, a role or password the server refuses, a missing
    // database), each naming what to check; the URL in messages is redacted.
    static Result<Connection> open(const std::string& url, unsigned timeout_s = 10);

    // One statement with $1..$n text parameters. A lost connection is Errc::network; any
    // other server error Errc::state with the server's message and SQLSTATE.
    Result<Rows> exec(const std::string& sql,
                      const std::vector<std::optional<std::string>>& params = {});
    // Whether the connection is still up (after a failed exec: reconnect or give up).
    [[nodiscard]] bool ok() const;
    // Re-establishes a lost connection with the same URL.
    Result<void> reset();
    // The socket, for poll() while waiting for notifications.
    [[nodiscard]] int socket() const;
    // LISTEN notifications received so far (channel, payload); consumes input first.
    Result<std::vector<std::pair<std::string, std::string>>> notifications();

    [[nodiscard]] const std::string& redacted_url() const { return shown_; }
    [[nodiscard]] PGconn* get() const { return conn_.get(); }

  private:
    Connection(PGconn* c, std::string url, std::string shown)
        : conn_(c), url_(std::move(url)), shown_(std::move(shown)) {}
    std::unique_ptr<PGconn, base::Deleter<PQfinish>> conn_;
    std::string url_;
    std::string shown_;
};

// Schema versions this agent knows; migrations run in order inside one transaction under
// an advisory lock, so nodes starting at once apply each exactly once. A database at a
// newer version than kSchemaVersion is refused (Errc::state: upgrade acme-agent).
inline constexpr int kSchemaVersion = 1;
Result<int> migrate(Connection& c);

}  // namespace store::pg
