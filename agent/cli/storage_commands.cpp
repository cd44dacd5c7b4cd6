// storage migrate: a machine joins a fleet by copying its state dir into PostgreSQL.
#include "cli/common.h"
#include "store/copy.h"
#include "store/pg.h"

namespace cli {

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
    Output out;
    out.data = {{"from", (*from)->location()}, {"to", (*to)->location()},
                {"accounts", n->accounts},     {"certificates", n->certificates},
                {"orders", n->orders},         {"unchanged", n->unchanged}};
    out.text =
        "copied " + std::to_string(n->accounts) + " account(s), " +
        std::to_string(n->certificates) + " certificate(s) and " + std::to_string(n->orders) +
        " order(s) in flight from " + (*from)->location() + " to " + (*to)->location() +
        (n->unchanged ? " (" + std::to_string(n->unchanged) + " already there as they are)" : "") +
        "\n";
    return out;
}

}  // namespace cli
