// The storage conformance suite (tests/conformance/storage/suite.h) over PostgreSQL: the
// same contract the state dir passes, each test on a fresh database of the fixture's
// cluster; a forked child reaches it over a connection of its own, as another node would.
#include "conformance/storage/suite.h"
#include "pg_fixture.h"

#include "store/pg_storage.h"

#include <map>

namespace storage_conformance {
namespace {

struct PgStorageFactory {
    // The URL each store was opened with: a child opens its own connection to it.
    static std::map<const Storage*, std::string>& urls() {
        static std::map<const Storage*, std::string> m;
        return m;
    }
    static std::unique_ptr<Storage> make() {
        const std::string url = pgtest::fresh_database();
        auto s = store::PgStorage::open(url, "test-node");
        if (!s) {
            ADD_FAILURE() << s.error().describe();
            return nullptr;
        }
        urls()[s->get()] = url;
        return std::move(*s);
    }
    static Storage& in_child(Storage& s) {
        static std::unique_ptr<store::PgStorage> own;
        auto opened = store::PgStorage::open(urls().at(&s), "child-node");
        if (!opened) ::_exit(99);
        own = std::move(*opened);
        return *own;
    }
    static std::vector<std::string> certificate_crash_points() {
        return {"pg-certificate-before", "pg-certificate-stored"};
    }
    static std::vector<std::string> lease_crash_points() { return {"pg-lease-granted"}; }
};

INSTANTIATE_TYPED_TEST_SUITE_P(PostgreSQL, StorageConformance, PgStorageFactory);

}  // namespace
}  // namespace storage_conformance
