#include "store/pg_storage.h"

#include "base/log.h"
#include "store/failpoint.h"
#include "store/state.h"

#include <unistd.h>

#include <array>
#include <map>
#include <thread>

namespace store {

using base::Errc;
using base::fail;
using std::chrono::milliseconds;

namespace {

// What a PostgreSQL lease holds locally: the steady-clock deadline after which the holder
// must assume the lease lost, whatever the database says (it may be unreachable).
struct PgHold final : Lease::Hold {
    std::chrono::steady_clock::time_point deadline;
};

std::string ms(milliseconds d) {
    return std::to_string(d.count());
}

Clock::time_point from_epoch_ms(const std::string& text) {
    return Clock::time_point(milliseconds(std::stoll(text)));
}

Result<void> check_ttl(const std::string& owner, milliseconds ttl) {
    if (owner.empty()) return fail(Errc::usage, "lease", "no owner");
    if (ttl < milliseconds(1)) return fail(Errc::usage, "lease", "a ttl under a millisecond");
    return {};
}

}  // namespace

Result<std::unique_ptr<PgStorage>> PgStorage::open(const std::string& url, std::string node) {
    auto c = pg::Connection::open(url);
    if (!c) return std::unexpected(c.error());
    if (auto v = pg::migrate(*c); !v) return std::unexpected(v.error());
    if (node.empty()) node = node_name();
    return std::unique_ptr<PgStorage>(new PgStorage(std::move(*c), url, std::move(node)));
}

std::string PgStorage::location() const {
    return pg::redact(url_);
}

Result<pg::Rows> PgStorage::exec(const std::string& sql,
                                 const std::vector<std::optional<std::string>>& params) const {
    const std::lock_guard lock(mutex_);
    if (!conn_.ok()) {
        if (auto r = conn_.reset(); !r) return std::unexpected(r.error());
        base::log::info("storage: reconnected to " + conn_.redacted_url());
    }
    auto r = conn_.exec(sql, params);
    // A connection that dropped since the last call: once more on a fresh one. Only
    // statements that are safe to repeat come here (each is one idempotent statement).
    if (!r && r.error().code == Errc::network && conn_.reset()) return conn_.exec(sql, params);
    return r;
}

Result<std::optional<Account>> PgStorage::account(const std::string& server) const {
    if (auto ok = check_server(server); !ok) return std::unexpected(ok.error());
    auto r = exec("SELECT url, key_uri FROM accounts WHERE server = $1", {server});
    if (!r) return std::unexpected(r.error());
    if (r->empty()) return std::nullopt;
    return Account{server, r->text(0, 0), r->text(0, 1)};
}

Result<void> PgStorage::save_account(const Account& a) {
    if (auto ok = check_server(a.server); !ok) return ok;
    auto r = exec(
        "INSERT INTO accounts (server, url, key_uri) VALUES ($1, $2, $3) "
        "ON CONFLICT (server) DO UPDATE SET url = excluded.url, "
        "key_uri = excluded.key_uri, updated_at = now()",
        {a.server, a.url, a.key_uri});
    if (!r) return std::unexpected(r.error());
    return {};
}

Result<void> PgStorage::remove_account(const std::string& server) {
    if (auto ok = check_server(server); !ok) return ok;
    auto r = exec("DELETE FROM accounts WHERE server = $1", {server});
    if (!r) return std::unexpected(r.error());
    return {};
}

Result<std::vector<std::string>> PgStorage::account_servers() const {
    return column("SELECT server FROM accounts ORDER BY server COLLATE \"C\"");
}

Result<void> PgStorage::save_certificate(const std::string& name, const Certificate& c) {
    if (auto ok = check_name(name); !ok) return ok;
    failpoint("pg-certificate-before");
    // One statement: the row and the notification that tells every node's daemon about it
    // (delivered when it commits).
    auto r = exec(
        "WITH up AS ("
        " INSERT INTO certificates (name, cert_pem, chain_pem, key_uri, renewal)"
        " VALUES ($1, $2, $3, $4, $5)"
        " ON CONFLICT (name) DO UPDATE SET cert_pem = excluded.cert_pem,"
        "  chain_pem = excluded.chain_pem, key_uri = excluded.key_uri,"
        "  renewal = CASE WHEN excluded.renewal = '' THEN certificates.renewal"
        "            ELSE excluded.renewal END,"
        "  generation = certificates.generation + 1, updated_at = now()"
        " RETURNING name, generation)"
        "SELECT pg_notify('acme_agent_certificates', name || ' ' || generation) FROM up",
        {safe_name(name), c.cert_pem, c.chain_pem, c.key_uri, c.renewal});
    failpoint("pg-certificate-stored");  // committed, the caller not yet told
    if (!r) return std::unexpected(r.error());
    return {};
}

Result<std::optional<Certificate>> PgStorage::certificate(const std::string& name) const {
    if (auto ok = check_name(name); !ok) return std::unexpected(ok.error());
    auto r = exec("SELECT cert_pem, chain_pem, key_uri, renewal FROM certificates WHERE name = $1",
                  {safe_name(name)});
    if (!r) return std::unexpected(r.error());
    if (r->empty()) return std::nullopt;
    return Certificate{r->text(0, 0), r->text(0, 1), r->text(0, 2), r->text(0, 3)};
}

Result<std::vector<std::optional<Certificate>>> PgStorage::certificates(
    const std::vector<std::string>& names) const {
    // One query for all: a text[] literal of the stored names ('"' and '\\' escaped).
    std::string array = "{";
    std::vector<std::string> stored;
    stored.reserve(names.size());
    for (const auto& name : names) {
        if (auto ok = check_name(name); !ok) return std::unexpected(ok.error());
        stored.push_back(safe_name(name));
        array += array.size() > 1 ? ",\"" : "\"";
        for (const char c : stored.back()) {
            if (c == '"' || c == '\\') array += '\\';
            array += c;
        }
        array += '"';
    }
    array += '}';
    auto r = exec(
        "SELECT name, cert_pem, chain_pem, key_uri, renewal FROM certificates "
        "WHERE name = ANY($1::text[])",
        {array});
    if (!r) return std::unexpected(r.error());
    std::map<std::string, Certificate, std::less<>> found;
    for (int i = 0; i < r->size(); ++i)
        found.emplace(r->text(i, 0),
                      Certificate{r->text(i, 1), r->text(i, 2), r->text(i, 3), r->text(i, 4)});
    std::vector<std::optional<Certificate>> out;
    out.reserve(names.size());
    for (const auto& name : stored) {
        auto it = found.find(name);
        out.push_back(it == found.end() ? std::nullopt : std::optional<Certificate>(it->second));
    }
    return out;
}

Result<std::vector<std::string>> PgStorage::column(const std::string& sql) const {
    auto r = exec(sql);
    if (!r) return std::unexpected(r.error());
    std::vector<std::string> values;
    values.reserve(static_cast<std::size_t>(r->size()));
    for (int i = 0; i < r->size(); ++i) values.push_back(r->text(i, 0));
    return values;
}

Result<std::vector<std::string>> PgStorage::certificate_names() const {
    return column("SELECT name FROM certificates ORDER BY name COLLATE \"C\"");
}

Result<std::vector<std::string>> PgStorage::order_names() const {
    return column("SELECT name FROM orders ORDER BY name COLLATE \"C\"");
}

Result<std::int64_t> PgStorage::generation(const std::string& name) const {
    if (auto ok = check_name(name); !ok) return std::unexpected(ok.error());
    auto r = exec("SELECT generation FROM certificates WHERE name = $1", {safe_name(name)});
    if (!r) return std::unexpected(r.error());
    return r->empty() ? 0 : std::stoll(r->text(0, 0));
}

Result<void> PgStorage::save_order(const std::string& name, const std::string& json_text) {
    if (auto ok = check_name(name); !ok) return ok;
    auto r = exec(
        "INSERT INTO orders (name, body) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE "
        "SET body = excluded.body, updated_at = now()",
        {safe_name(name), json_text});
    if (!r) return std::unexpected(r.error());
    return {};
}

Result<std::optional<std::string>> PgStorage::order(const std::string& name) const {
    if (auto ok = check_name(name); !ok) return std::unexpected(ok.error());
    auto r = exec("SELECT body FROM orders WHERE name = $1", {safe_name(name)});
    if (!r) return std::unexpected(r.error());
    if (r->empty()) return std::nullopt;
    return r->text(0, 0);
}

Result<void> PgStorage::remove_order(const std::string& name) {
    if (auto ok = check_name(name); !ok) return ok;
    auto r = exec("DELETE FROM orders WHERE name = $1", {safe_name(name)});
    if (!r) return std::unexpected(r.error());
    return {};
}

Result<void> PgStorage::set_deploy_pending(const std::string& name, bool pending) {
    if (auto ok = check_name(name); !ok) return ok;
    auto r = pending ? exec(
                           "INSERT INTO deploy_pending (node, name) VALUES ($1, $2) "
                           "ON CONFLICT DO NOTHING",
                           {node_, safe_name(name)})
                     : exec("DELETE FROM deploy_pending WHERE node = $1 AND name = $2",
                            {node_, safe_name(name)});
    if (!r) return std::unexpected(r.error());
    return {};
}

bool PgStorage::deploy_pending(const std::string& name) const {
    if (!check_name(name)) return false;
    auto r = exec("SELECT 1 FROM deploy_pending WHERE node = $1 AND name = $2",
                  {node_, safe_name(name)});
    return r && !r->empty();
}

Result<Lease> PgStorage::acquire_lease(const std::string& name, const std::string& owner,
                                       milliseconds ttl, milliseconds wait) {
    if (auto ok = check_name(name); !ok) return std::unexpected(ok.error());
    if (auto ok = check_ttl(owner, ttl); !ok) return std::unexpected(ok.error());
    const auto give_up = std::chrono::steady_clock::now() + wait;
    auto pause = milliseconds(20);
    for (;;) {
        const auto asked = std::chrono::steady_clock::now();
        // Granted when there is no row, the row's lease expired, or it is already ours;
        // every grant takes a new fence from one sequence, so fences only grow.
        auto r = exec(
            "INSERT INTO leases (name, holder, expires_at, fence)"
            " VALUES ($1, $2, now() + make_interval(secs => $3::double precision / 1000),"
            "  nextval('lease_fence'))"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
            "  expires_at = excluded.expires_at, fence = excluded.fence"
            " WHERE leases.expires_at <= now() OR leases.holder = excluded.holder"
            " RETURNING fence, (extract(epoch FROM expires_at) * 1000)::bigint",
            {safe_name(name), owner, ms(ttl)});
        if (!r) return std::unexpected(r.error());
        failpoint("pg-lease-granted");  // the row is ours, the holder dies before using it
        if (!r->empty()) {
            auto hold = std::make_unique<PgHold>();
            hold->deadline = asked + ttl;
            return Lease{name, owner, std::stoull(r->text(0, 0)), from_epoch_ms(r->text(0, 1)),
                         std::move(hold)};
        }
        if (std::chrono::steady_clock::now() + pause > give_up) break;
        std::this_thread::sleep_for(pause);  // polling the row: another node holds it
        pause = std::min(pause * 2, milliseconds(500));
    }
    auto h = exec(
        "SELECT holder, (extract(epoch FROM expires_at - now()))::bigint FROM leases "
        "WHERE name = $1",
        {safe_name(name)});
    const std::string holder = h && !h->empty() ? h->text(0, 0) : "another node";
    const std::string left = h && !h->empty() ? h->text(0, 1) : "?";
    return fail(
        Errc::state, "lease " + name,
        "held by " + base::printable(holder, base::Lines::escape) + " for another " + left + " s");
}

Result<void> PgStorage::extend_lease(Lease& lease, milliseconds ttl) {
    if (auto ok = check_ttl(lease.owner, ttl); !ok) return ok;
    const auto asked = std::chrono::steady_clock::now();
    if (auto local = check_lease(lease); !local) return local;
    auto r = exec(
        "UPDATE leases SET expires_at = now() + make_interval(secs => $4::double "
        "precision / 1000) WHERE name = $1 AND holder = $2 AND fence = $3 AND "
        "expires_at > now() RETURNING (extract(epoch FROM expires_at) * 1000)::bigint",
        {safe_name(lease.name), lease.owner, std::to_string(lease.fence), ms(ttl)});
    if (!r) return std::unexpected(r.error());
    if (r->empty())
        return fail(Errc::state, "lease " + lease.name,
                    "lost (expired or taken over): stop acting on this certificate");
    lease.expires = from_epoch_ms(r->text(0, 0));
    if (auto* hold = dynamic_cast<PgHold*>(lease.hold.get())) hold->deadline = asked + ttl;
    return {};
}

Result<void> PgStorage::check_lease(const Lease& lease) const {
    const auto* hold = dynamic_cast<const PgHold*>(lease.hold.get());
    if (!hold || std::chrono::steady_clock::now() >= hold->deadline)
        return fail(Errc::state, "lease " + lease.name,
                    "expired here (not extended in time): stop acting on this certificate");
    auto r = exec(
        "SELECT 1 FROM leases WHERE name = $1 AND holder = $2 AND fence = $3 AND "
        "expires_at > now()",
        {safe_name(lease.name), lease.owner, std::to_string(lease.fence)});
    if (!r) return std::unexpected(r.error());
    if (r->empty())
        return fail(Errc::state, "lease " + lease.name,
                    "lost (expired or taken over): stop acting on this certificate");
    return {};
}

Result<void> PgStorage::release_lease(Lease& lease) {
    auto r = exec("DELETE FROM leases WHERE name = $1 AND holder = $2 AND fence = $3",
                  {safe_name(lease.name), lease.owner, std::to_string(lease.fence)});
    lease.hold.reset();
    if (!r) return std::unexpected(r.error());
    return {};
}

Result<void> PgStorage::publish_challenge(const std::string& kind, const std::string& token,
                                          const std::string& domain, const std::string& value,
                                          milliseconds ttl) {
    auto r = exec(
        "INSERT INTO challenges (kind, token, domain, value, expires_at) VALUES "
        "($1, $2, $3, $4, now() + make_interval(secs => $5::double precision / 1000)) "
        "ON CONFLICT (kind, token, domain) DO UPDATE SET value = excluded.value, "
        "expires_at = excluded.expires_at",
        {kind, token, domain, value, ms(ttl)});
    if (!r) return std::unexpected(r.error());
    return {};
}

Result<void> PgStorage::withdraw_challenge(const std::string& kind, const std::string& token,
                                           const std::string& domain) {
    auto r = exec(
        "DELETE FROM challenges WHERE (kind = $1 AND token = $2 AND domain = $3) OR "
        "expires_at <= now()",
        {kind, token, domain});
    if (!r) return std::unexpected(r.error());
    return {};
}

Result<std::optional<std::string>> PgStorage::challenge(const std::string& kind,
                                                        const std::string& token,
                                                        const std::string& domain) const {
    auto r = exec(
        "SELECT value FROM challenges WHERE kind = $1 AND ($2 = '' OR token = $2) "
        "AND ($3 = '' OR domain = $3) AND expires_at > now() LIMIT 1",
        {kind, token, domain});
    if (!r) return std::unexpected(r.error());
    if (r->empty()) return std::nullopt;
    return r->text(0, 0);
}

}  // namespace store
