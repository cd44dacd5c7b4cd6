// storage migrate: a machine joins a fleet by copying its state dir into PostgreSQL.
#include "cli/common.h"
#include "store/copy.h"
#include "store/pg.h"

namespace cli {

namespace {
struct Migrated {
    std::string from, to;
    store::Copied n;
};
json json_of(const Migrated& r) {
    return {{"from", r.from},           {"to", r.to},
            {"accounts", r.n.accounts}, {"certificates", r.n.certificates},
            {"orders", r.n.orders},     {"unchanged", r.n.unchanged}};
}
std::string text_of(const Migrated& r) {
    return "copied " + std::to_string(r.n.accounts) + " account(s), " +
           std::to_string(r.n.certificates) + " certificate(s) and " + std::to_string(r.n.orders) +
           " order(s) in flight from " + r.from + " to " + r.to +
           (r.n.unchanged ? " (" + std::to_string(r.n.unchanged) + " already there as they are)"
                          : "") +
           "\n";
}
}  // namespace

Result<Output> storage_migrate(const Global& /*g*/, const StorageArgs& a,
                               keystore::Registry& /*reg*/) {
    if (!store::pg::is_url(a.to))
        return fail(Errc::usage, "--to", "give a postgresql:// URL (docs/fleet.md)");
    auto from = store::open_storage(a.from, "");
    if (!from) return std::unexpected(from.error());
    auto to = store::open_storage("", a.to);
    if (!to) return std::unexpected(to.error());
    auto n = store::copy_state(**from, **to, a.overwrite);
    if (!n) return std::unexpected(n.error());
    return render(Migrated{(*from)->location(), (*to)->location(), *n}, json_of, text_of);
}

}  // namespace cli
