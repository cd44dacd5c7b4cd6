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
    auto dir = child("accounts", Create::yes);
    if (!dir) return std::unexpected(dir.error());
    nlohmann::json j{{"server", a.server}, {"url", a.url}, {"key", a.key_uri}};
    return dir->write_file(server_id(a.server) + ".json", j.dump(2) + "\n", 0600);
}

Result<void> StateDir::remove_account(const std::string& server) {
    auto dir = absent_ok(child("accounts", Create::no));
    if (!dir || !*dir) return dir ? Result<void>{} : std::unexpected(dir.error());
    return (*dir)->remove_file(server_id(server) + ".json");
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

Result<void> StateDir::save_certificate(const std::string& name, const Certificate& cert) {
    const base::log::TraceSpan trace("write certificate files");
    auto live = child("live", Create::yes);
    if (!live) return std::unexpected(live.error());
    auto dir = live->sub(safe_name(name), Create::yes, 0700);
    if (!dir) return std::unexpected(dir.error());
    if (!cert.renewal.empty())
        if (auto r = dir->write_file("renewal.json", cert.renewal + "\n", 0600); !r) return r;
    if (auto r = dir->write_file("key.uri", cert.key_uri + "\n", 0600); !r) return r;
    return write_pems_in(*dir, cert);
}

Result<std::optional<Certificate>> StateDir::certificate(const std::string& name) const {
    auto live = absent_ok(child("live", Create::no));
    if (!live) return std::unexpected(live.error());
    if (!*live) return std::optional<Certificate>{};
    auto dir = absent_ok((*live)->sub(safe_name(name)));
    if (!dir) return std::unexpected(dir.error());
    if (!*dir) return std::optional<Certificate>{};
    const Dir& d = **dir;
    auto cert = absent_ok(d.read_file("cert.pem"));
    if (!cert) return std::unexpected(cert.error());
    if (!*cert) return std::optional<Certificate>{};
    auto chain = d.read_file("chain.pem");
    auto key = d.read_file("key.uri", 4096);
    if (!chain || !key) return fail(Errc::state, d.path(), "incomplete certificate directory");
    std::string uri = *key;
    while (!uri.empty() && (uri.back() == '\n' || uri.back() == '\r')) uri.pop_back();
    auto renewal = d.read_file("renewal.json", 64 * 1024);
    return Certificate{**cert, *chain, uri, renewal ? *renewal : std::string()};
}

Result<void> StateDir::save_order(const std::string& name, const std::string& json_text) {
    auto dir = child("orders", Create::yes);
    if (!dir) return std::unexpected(dir.error());
    return dir->write_file(safe_name(name) + ".json", json_text + "\n", 0600);
}

Result<std::optional<std::string>> StateDir::order(const std::string& name) const {
    auto dir = absent_ok(child("orders", Create::no));
    if (!dir) return std::unexpected(dir.error());
    if (!*dir) return std::optional<std::string>{};
    return absent_ok((*dir)->read_file(safe_name(name) + ".json", 64 * 1024));
}

Result<void> StateDir::remove_order(const std::string& name) {
    auto dir = absent_ok(child("orders", Create::no));
    if (!dir || !*dir) return dir ? Result<void>{} : std::unexpected(dir.error());
    return (*dir)->remove_file(safe_name(name) + ".json");
}

Result<void> StateDir::set_deploy_pending(const std::string& name, bool pending) {
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
        out = std::move(*names);
    }
    std::ranges::sort(out);
    return out;
}

}  // namespace store
