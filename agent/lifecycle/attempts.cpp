#include "lifecycle/attempts.h"

#include "base/files.h"
#include "lifecycle/report.h"
#include "store/state.h"

#include <unistd.h>

#include <chrono>

namespace lifecycle {

namespace {
constexpr const char* kDir = "attempts";
// An attempt record is a few hundred bytes; anything bigger is not ours.
constexpr std::size_t kMaxRecord = 64 * 1024;
constexpr std::size_t kMaxField = 4096;

std::string file_of(const std::string& name) {
    return store::safe_name(name) + ".json";
}

// The string `key` of `j`, cut to kMaxField; nullopt when absent or not a string.
std::optional<std::string> text_field(const nlohmann::json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>().substr(0, kMaxField);
}
}  // namespace

base::Result<void> record_attempt(const std::string& state_dir, const std::string& name,
                                  const base::Error* error) {
    if (auto ok = store::check_name(name); !ok) return ok;
    // Made when missing: an attempt that failed before the CA was ever reached is worth
    // keeping too (StateDir::open makes the dir the same way).
    auto dir = base::Dir::open(state_dir, base::Create::yes, 0700);
    if (!dir) return std::unexpected(dir.error());
    // Another user's state dir is never written to (StateDir::open refuses it the same way).
    if (dir->owner() != ::geteuid())
        return base::fail(base::Errc::state, state_dir,
                          "owned by uid " + std::to_string(dir->owner()) + ": no attempt recorded");
    auto sub = dir->sub(kDir, base::Create::yes, 0700);
    if (!sub) return std::unexpected(sub.error());
    nlohmann::json j{{"at", lifecycle::iso_time(std::chrono::system_clock::now())},
                     {"ok", error == nullptr}};
    if (error) j["error"] = lifecycle::error_json(*error);
    return sub->write_file(file_of(name),
                           j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n",
                           0600);
}

std::optional<nlohmann::json> last_attempt(const std::string& state_dir, const std::string& name) {
    auto dir = base::Dir::open(state_dir);
    if (!dir) return std::nullopt;
    auto sub = dir->sub(kDir);
    if (!sub) return std::nullopt;
    auto text = sub->read_file(file_of(name), kMaxRecord);
    if (!text) return std::nullopt;
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (!j.is_object()) return std::nullopt;
    auto at = text_field(j, "at");
    auto ok = j.find("ok");
    if (!at || ok == j.end() || !ok->is_boolean()) return std::nullopt;
    // Only the fields we wrote, so that what a file holds beyond them is never printed.
    nlohmann::json out{{"at", *at}, {"ok", ok->get<bool>()}};
    if (!out["ok"].get<bool>()) {
        nlohmann::json e = nlohmann::json::object();
        if (auto it = j.find("error"); it != j.end() && it->is_object())
            for (const char* k : {"code", "where", "message"})
                if (auto v = text_field(*it, k)) e[k] = *v;
        out["error"] = e;
    }
    return out;
}

}  // namespace lifecycle
