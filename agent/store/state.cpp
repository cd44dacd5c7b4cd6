#include "store/state.h"

#include "base/files.h"
#include "base/log.h"
#include "store/failpoint.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>  // renameat2
#include <cstring>

namespace store {

using base::Errc;
using base::fail;

namespace {
std::string server_id(const std::string& server) {
    std::string id = server;
    if (auto p = id.find("://"); p != std::string::npos) id.erase(0, p + 3);
    for (auto& c : id)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.') c = '_';
    return id;
}
}  // namespace

std::string safe_name(const std::string& name) {
    std::string out = name.starts_with("*.") ? "_wildcard." + name.substr(2) : name;
    for (auto& c : out)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '.' && c != '_')
            c = '_';
    // A char, not the string "_": GCC 12 -O3 warns on insert(0, "_") (-Wrestrict, PR105329),
    // which fails a Release build with ACME_AGENT_WERROR=ON.
    if (out.empty() || out[0] == '.') out.insert(out.begin(), '_');
    return out;
}

namespace {
using base::Create;
using base::Dir;

// A read of an optional record: a missing file (or directory) is nullopt.
template <typename T>
Result<std::optional<T>> absent_ok(Result<T> r) {
    if (r) return std::optional<T>(std::move(*r));
    if (r.error().code == Errc::not_found) return std::optional<T>{};
    return std::unexpected(r.error());
}
}  // namespace

Result<StateDir> StateDir::open(const std::string& dir) {
    auto d = Dir::open(dir, Create::yes, 0700);
    if (!d) return std::unexpected(d.error());
    // Another user's state dir could hold their symlinks and records: never write there.
    if (d->owner() != ::geteuid())
        return fail(Errc::state, dir,
                    "the state dir is owned by uid " + std::to_string(d->owner()) +
                        ", not by this user (uid " + std::to_string(::geteuid()) +
                        "); run: chown -R " + std::to_string(::geteuid()) + " " + dir +
                        ", or use --state-dir");
    const int fd = ::openat(d->fd(), "lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return fail(Errc::io, dir + "/lock", std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ::close(fd);
        return fail(Errc::state, dir,
                    "another acme-agent is using this state dir; wait for it or use --state-dir");
    }
    return StateDir(std::move(*d), fd);
}

StateDir::StateDir(StateDir&& other) noexcept
    : dir_(std::move(other.dir_)), lock_fd_(other.lock_fd_) {
    other.lock_fd_ = -1;
}

StateDir::~StateDir() {
    if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

Result<Dir> StateDir::child(const char* name, Create create) const {
    return dir_.sub(name, create, 0700);
}

Result<std::string> StateDir::key_dir() const {
    auto dir = child("keys", Create::yes);
    if (!dir) return std::unexpected(dir.error());
    return dir->path();
}

Result<std::optional<Account>> StateDir::account(const std::string& server) const {
    if (auto r = check_server(server); !r) return std::unexpected(r.error());
    const std::string file = server_id(server) + ".json";
    auto dir = absent_ok(child("accounts", Create::no));
    if (!dir) return std::unexpected(dir.error());
    if (!*dir) return std::optional<Account>{};
    auto text = absent_ok((*dir)->read_file(file, 64 * 1024));
    if (!text) return std::unexpected(text.error());
    if (!*text) return std::optional<Account>{};
    auto j = nlohmann::json::parse(**text, nullptr, false);
    if (j.is_discarded() || !j.contains("url") || !j.contains("key"))
        return fail(Errc::state, path() + "/accounts/" + file, "damaged account record");
    return Account{j.value("server", server), j["url"].get<std::string>(),
                   j["key"].get<std::string>()};
}

Result<void> StateDir::save_account(const Account& a) {
    if (auto r = check_server(a.server); !r) return r;
    auto dir = child("accounts", Create::yes);
    if (!dir) return std::unexpected(dir.error());
    nlohmann::json j{{"server", a.server}, {"url", a.url}, {"key", a.key_uri}};
    return dir->write_file(server_id(a.server) + ".json", j.dump(2) + "\n", 0600);
}

Result<void> StateDir::remove_account(const std::string& server) {
    if (auto r = check_server(server); !r) return r;
    auto dir = absent_ok(child("accounts", Create::no));
    if (!dir || !*dir) return dir ? Result<void>{} : std::unexpected(dir.error());
    return (*dir)->remove_file(server_id(server) + ".json");
}

std::string StateDir::certificate_location(const std::string& name) const {
    return path() + "/live/" + safe_name(name);
}

Result<std::vector<std::string>> StateDir::account_servers() const {
    auto dir = absent_ok(child("accounts", Create::no));
    if (!dir) return std::unexpected(dir.error());
    std::vector<std::string> out;
    if (!*dir) return out;
    auto files = (*dir)->files();
    if (!files) return std::unexpected(files.error());
    for (const auto& f : *files) {
        if (!f.ends_with(".json") || f.starts_with('.')) continue;  // not a temp file
        auto text = (*dir)->read_file(f, 64 * 1024);
        if (!text) return std::unexpected(text.error());
        auto j = nlohmann::json::parse(*text, nullptr, false);
        if (j.is_discarded() || !j.contains("server") || !j["server"].is_string())
            return fail(Errc::state, path() + "/accounts/" + f, "damaged account record");
        out.push_back(j["server"].get<std::string>());
    }
    std::ranges::sort(out);
    return out;
}

namespace {
Result<void> write_pems_in(const Dir& dir, const Certificate& cert) {
    if (auto r = dir.write_file("chain.pem", cert.chain_pem, 0644); !r) return r;
    if (auto r = dir.write_file("fullchain.pem", cert.cert_pem + cert.chain_pem, 0644); !r)
        return r;
    failpoint("store-partial");
    return dir.write_file("cert.pem", cert.cert_pem, 0644);
}
}  // namespace

Result<void> StateDir::write_pems(const std::string& dir, const Certificate& cert) {
    auto d = Dir::open(dir, Create::yes, 0755);
    if (!d) return std::unexpected(d.error());
    return write_pems_in(*d, cert);
}

namespace {
// The record's files, cert.pem last (a reader of a directory written in place that finds
// the new cert.pem finds the rest).
Result<void> write_record(const Dir& dir, const Certificate& cert, const std::string& renewal) {
    if (!renewal.empty())
        if (auto r = dir.write_file("renewal.json", renewal + "\n", 0600); !r) return r;
    if (auto r = dir.write_file("key.uri", cert.key_uri + "\n", 0600); !r) return r;
    return write_pems_in(dir, cert);
}

// Removes a directory of files this code made (a staged or swapped-out certificate):
// its files, then itself. Never follows a symlink; anything else in it (not ours) is left,
// and with it the directory.
Result<void> remove_tree(const Dir& parent, const std::string& name) {
    auto d = absent_ok(parent.sub(name));
    if (!d) return std::unexpected(d.error());
    if (!*d) return {};
    auto files = (*d)->files();
    if (!files) return std::unexpected(files.error());
    for (const auto& f : *files)
        if (::unlinkat((*d)->fd(), f.c_str(), 0) != 0 && errno != ENOENT)
            return fail(Errc::io, (*d)->path() + "/" + f, std::strerror(errno));
    return parent.remove_dir(name);
}

// The stored renewal record (renewal.json less the newline written after it).
std::string read_renewal(const Dir& dir) {
    auto text = dir.read_file("renewal.json", 64 * 1024);
    if (!text) return {};
    if (text->ends_with('\n')) text->pop_back();
    return *text;
}
}  // namespace

Result<void> StateDir::save_certificate(const std::string& name, const Certificate& cert) {
    if (auto r = check_name(name); !r) return r;
    const base::log::TraceSpan trace("write certificate files");
    auto live = child("live", Create::yes);
    if (!live) return std::unexpected(live.error());
    // Writers take turns (this descriptor is this call's own), so the staging directory
    // and whatever a crashed writer left there are this writer's.
    while (::flock(live->fd(), LOCK_EX) != 0)
        if (errno != EINTR) return fail(Errc::io, live->path(), std::strerror(errno));
    const std::string safe = safe_name(name);
    const std::string staged = "." + safe + ".new";
    auto current = absent_ok(live->sub(safe));
    if (!current) return std::unexpected(current.error());  // a symlink: refused
    const std::string renewal =
        cert.renewal.empty() && *current ? read_renewal(**current) : cert.renewal;
    if (auto r = remove_tree(*live, staged); !r) return r;
    auto dir = live->sub(staged, Create::yes, 0700);
    if (!dir) return std::unexpected(dir.error());
    if (*current) {
        // The directory keeps the mode and group it was given (a web server's group).
        struct stat st{};
        if (::fstat((**current).fd(), &st) == 0) {
            (void)::fchown(dir->fd(), static_cast<uid_t>(-1), st.st_gid);
            (void)::fchmod(dir->fd(), st.st_mode & 07777);
        }
    }
    if (auto r = write_record(*dir, cert, renewal); !r) return r;
    const int at = live->fd();
    const unsigned flags = *current ? RENAME_EXCHANGE : RENAME_NOREPLACE;
    if (::renameat2(at, staged.c_str(), at, safe.c_str(), flags) != 0) {
        if (errno != EINVAL && errno != ENOSYS)
            return fail(Errc::io, "rename " + dir->path(), std::strerror(errno));
        // A file system that cannot swap directories: write in place, as before.
        if (auto r = remove_tree(*live, staged); !r) return r;
        auto in_place = live->sub(safe, Create::yes, 0700);
        if (!in_place) return std::unexpected(in_place.error());
        return write_record(*in_place, cert, renewal);
    }
    if (::fsync(at) != 0) return fail(Errc::io, "fsync " + live->path(), std::strerror(errno));
    failpoint("store-swapped");
    return remove_tree(*live, staged);  // now the old record
}

namespace {
struct Identity {
    dev_t dev = 0;
    ino_t ino = 0;
    bool operator==(const Identity&) const = default;
};
std::optional<Identity> identity_at(int dirfd, const char* name, int flags) {
    struct stat st{};
    if (::fstatat(dirfd, name, &st, flags) != 0) return std::nullopt;
    return Identity{st.st_dev, st.st_ino};
}
}  // namespace

Result<std::optional<Certificate>> StateDir::certificate(const std::string& name) const {
    if (auto r = check_name(name); !r) return std::unexpected(r.error());
    auto live = absent_ok(child("live", Create::no));
    if (!live) return std::unexpected(live.error());
    if (!*live) return std::optional<Certificate>{};
    const std::string safe = safe_name(name);
    // A writer may swap live/NAME while it is read: a read counts when the directory read
    // is still live/NAME afterwards (else it was the old record, being removed).
    for (int attempt = 0;; ++attempt) {
        auto dir = absent_ok((*live)->sub(safe));
        if (!dir) return std::unexpected(dir.error());
        if (!*dir) return std::optional<Certificate>{};
        const Dir& d = **dir;
        auto read = [&d]() -> Result<std::optional<Certificate>> {
            auto cert = absent_ok(d.read_file("cert.pem"));
            if (!cert) return std::unexpected(cert.error());
            if (!*cert) return std::optional<Certificate>{};
            auto chain = d.read_file("chain.pem");
            auto key = d.read_file("key.uri", 4096);
            if (!chain || !key)
                return fail(Errc::state, d.path(), "incomplete certificate directory");
            std::string uri = *key;
            while (!uri.empty() && (uri.back() == '\n' || uri.back() == '\r')) uri.pop_back();
            return Certificate{**cert, *chain, uri, read_renewal(d)};
        };
        auto got = read();
        const bool still_live = identity_at(d.fd(), "", AT_EMPTY_PATH) ==
                                identity_at((*live)->fd(), safe.c_str(), AT_SYMLINK_NOFOLLOW);
        if (still_live || attempt == 8) return got;
    }
}

Result<void> StateDir::save_order(const std::string& name, const std::string& json_text) {
    if (auto r = check_name(name); !r) return r;
    auto dir = child("orders", Create::yes);
    if (!dir) return std::unexpected(dir.error());
    return dir->write_file(safe_name(name) + ".json", json_text + "\n", 0600);
}

Result<std::optional<std::string>> StateDir::order(const std::string& name) const {
    if (auto r = check_name(name); !r) return std::unexpected(r.error());
    auto dir = absent_ok(child("orders", Create::no));
    if (!dir) return std::unexpected(dir.error());
    if (!*dir) return std::optional<std::string>{};
    auto text = absent_ok((*dir)->read_file(safe_name(name) + ".json", 64 * 1024));
    if (text && *text && (*text)->ends_with('\n')) (*text)->pop_back();  // written after it
    return text;
}

Result<void> StateDir::remove_order(const std::string& name) {
    if (auto r = check_name(name); !r) return r;
    auto dir = absent_ok(child("orders", Create::no));
    if (!dir || !*dir) return dir ? Result<void>{} : std::unexpected(dir.error());
    return (*dir)->remove_file(safe_name(name) + ".json");
}

Result<std::vector<std::string>> StateDir::order_names() const {
    auto dir = absent_ok(child("orders", Create::no));
    if (!dir) return std::unexpected(dir.error());
    std::vector<std::string> out;
    if (!*dir) return out;
    auto files = (*dir)->files();
    if (!files) return std::unexpected(files.error());
    for (const auto& f : *files)
        if (f.ends_with(".json") && !f.starts_with('.')) out.push_back(f.substr(0, f.size() - 5));
    std::ranges::sort(out);
    return out;
}

Result<void> StateDir::set_deploy_pending(const std::string& name, bool pending) {
    if (auto r = check_name(name); !r) return r;
    const std::string file = safe_name(name) + ".deploy-pending";
    if (!pending) {
        auto dir = absent_ok(child("orders", Create::no));
        if (!dir || !*dir) return dir ? Result<void>{} : std::unexpected(dir.error());
        return (*dir)->remove_file(file);
    }
    auto dir = child("orders", Create::yes);
    if (!dir) return std::unexpected(dir.error());
    return dir->write_file(file, name + "\n", 0600);
}

bool StateDir::deploy_pending(const std::string& name) const {
    if (!check_name(name)) return false;
    auto dir = child("orders", Create::no);
    return dir && dir->has_file(safe_name(name) + ".deploy-pending");
}

Result<std::vector<std::string>> StateDir::certificate_names() const {
    auto live = absent_ok(child("live", Create::no));
    if (!live) return std::unexpected(live.error());
    std::vector<std::string> out;
    if (*live) {
        auto names = (*live)->subdirs();
        if (!names) return std::unexpected(names.error());
        // Not the staging directories of a write (safe_name never starts with '.').
        for (auto& n : *names)
            if (!n.starts_with('.')) out.push_back(std::move(n));
    }
    std::ranges::sort(out);
    return out;
}

}  // namespace store
