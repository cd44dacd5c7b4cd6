#include "store/open.h"

#include "store/pg.h"
#include "store/pg_storage.h"
#include "store/state.h"

#include <sys/stat.h>

namespace store {

Result<std::unique_ptr<Storage>> open_storage(const std::string& dir, const std::string& url) {
    if (url.empty()) {
        auto s = StateDir::open(dir);
        if (!s) return std::unexpected(s.error());
        return std::make_unique<StateDir>(std::move(*s));
    }
    if (!pg::is_url(url))
        // Not echoed: another database's URL may carry a password.
        return base::fail(base::Errc::usage, "--storage",
                          "give a postgresql:// URL (docs/fleet.md); the state dir is --state-dir");
    if (auto r = pg::refuse_password(url); !r) return std::unexpected(r.error());
    auto s = PgStorage::open(url);
    if (!s) return std::unexpected(s.error());
    return std::unique_ptr<Storage>(std::move(*s));
}

bool storage_absent(const std::string& dir, const std::string& url) {
    struct stat st{};
    return url.empty() && ::stat(dir.c_str(), &st) != 0;
}

}  // namespace store
