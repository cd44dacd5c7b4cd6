#include "store/state.h"

#include "keystore/files.h"
#include "keystore/log.h"
#include "store/failpoint.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace store {

using keystore::Errc;
using keystore::fail;
namespace fs = std::filesystem;

namespace {
Result<void> make_dir(const std::string& dir, mode_t mode) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return fail(Errc::io, dir, "cannot create: " + ec.message());
    if (::chmod(dir.c_str(), mode) != 0) return fail(Errc::io, dir, std::strerror(errno));
    return {};
}

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

Result<StateDir> StateDir::open(const std::string& dir) {
    if (auto r = make_dir(dir, 0700); !r) return std::unexpected(r.error());
    const std::string lock = dir + "/lock";
    const int fd = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return fail(Errc::io, lock, std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ::close(fd);
        return fail(Errc::state, dir,
                    "another acme-agent is using this state dir; wait for it or use --state-dir");
    }
    return StateDir(dir, fd);
}

StateDir::StateDir(StateDir&& other) noexcept
    : dir_(std::move(other.dir_)), lock_fd_(other.lock_fd_) {
    other.lock_fd_ = -1;
}

StateDir::~StateDir() {
    if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

std::string StateDir::account_path(const std::string& server) const {
    return dir_ + "/accounts/" + server_id(server) + ".json";
}

Result<std::optional<Account>> StateDir::account(const std::string& server) const {
    auto text = keystore::read_file(account_path(server), 64 * 1024);
    if (!text) {
        if (text.error().code == Errc::not_found) return std::optional<Account>{};
        return std::unexpected(text.error());
    }
    auto j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.contains("url") || !j.contains("key"))
        return fail(Errc::state, account_path(server), "damaged account record");
    return Account{j.value("server", server), j["url"].get<std::string>(),
                   j["key"].get<std::string>()};
}

Result<void> StateDir::save_account(const Account& a) {
    if (auto r = make_dir(dir_ + "/accounts", 0700); !r) return r;
    nlohmann::json j{{"server", a.server}, {"url", a.url}, {"key", a.key_uri}};
    return keystore::write_file_atomic(account_path(a.server), j.dump(2) + "\n", 0600);
}

Result<void> StateDir::remove_account(const std::string& server) {
    return keystore::remove_file_durable(account_path(server));
}

Result<void> StateDir::write_pems(const std::string& dir, const Certificate& cert) {
    if (auto r = make_dir(dir, 0755); !r) return r;
    using keystore::write_file_atomic;
    if (auto r = write_file_atomic(dir + "/chain.pem", cert.chain_pem, 0644); !r) return r;
    if (auto r = write_file_atomic(dir + "/fullchain.pem", cert.cert_pem + cert.chain_pem, 0644);
        !r)
        return r;
    failpoint("store-partial");
    return write_file_atomic(dir + "/cert.pem", cert.cert_pem, 0644);
}

Result<void> StateDir::save_certificate(const std::string& name, const Certificate& cert) {
    const keystore::log::TraceSpan trace("write certificate files");
    const std::string dir = dir_ + "/live/" + safe_name(name);
    if (auto r = make_dir(dir_ + "/live", 0700); !r) return r;
    if (auto r = make_dir(dir, 0700); !r) return r;
    if (!cert.renewal.empty())
        if (auto r = keystore::write_file_atomic(dir + "/renewal.json", cert.renewal + "\n", 0600);
            !r)
            return r;
    if (auto r = keystore::write_file_atomic(dir + "/key.uri", cert.key_uri + "\n", 0600); !r)
        return r;
    return write_pems(dir, cert);
}

Result<std::optional<Certificate>> StateDir::certificate(const std::string& name) const {
    const std::string dir = dir_ + "/live/" + safe_name(name);
    auto cert = keystore::read_file(dir + "/cert.pem");
    if (!cert) {
        if (cert.error().code == Errc::not_found) return std::optional<Certificate>{};
        return std::unexpected(cert.error());
    }
    auto chain = keystore::read_file(dir + "/chain.pem");
    auto key = keystore::read_file(dir + "/key.uri", 4096);
    if (!chain || !key) return fail(Errc::state, dir, "incomplete certificate directory");
    std::string uri = *key;
    while (!uri.empty() && (uri.back() == '\n' || uri.back() == '\r')) uri.pop_back();
    auto renewal = keystore::read_file(dir + "/renewal.json", 64 * 1024);
    return Certificate{*cert, *chain, uri, renewal ? *renewal : std::string()};
}

Result<void> StateDir::save_order(const std::string& name, const std::string& json_text) {
    if (auto r = make_dir(dir_ + "/orders", 0700); !r) return r;
    return keystore::write_file_atomic(dir_ + "/orders/" + safe_name(name) + ".json",
                                       json_text + "\n", 0600);
}

Result<std::optional<std::string>> StateDir::order(const std::string& name) const {
    auto text = keystore::read_file(dir_ + "/orders/" + safe_name(name) + ".json", 64 * 1024);
    if (!text) {
        if (text.error().code == Errc::not_found) return std::optional<std::string>{};
        return std::unexpected(text.error());
    }
    return std::optional<std::string>(std::move(*text));
}

Result<void> StateDir::remove_order(const std::string& name) {
    return keystore::remove_file_durable(dir_ + "/orders/" + safe_name(name) + ".json");
}

Result<void> StateDir::set_deploy_pending(const std::string& name, bool pending) {
    const std::string path = dir_ + "/orders/" + safe_name(name) + ".deploy-pending";
    if (!pending) return keystore::remove_file_durable(path);
    if (auto r = make_dir(dir_ + "/orders", 0700); !r) return r;
    return keystore::write_file_atomic(path, name + "\n", 0600);
}

bool StateDir::deploy_pending(const std::string& name) const {
    struct stat st{};
    return ::stat((dir_ + "/orders/" + safe_name(name) + ".deploy-pending").c_str(), &st) == 0;
}

Result<std::vector<std::string>> StateDir::certificate_names() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_ + "/live", ec))
        if (e.is_directory()) out.push_back(e.path().filename().string());
    std::ranges::sort(out);
    return out;
}

}  // namespace store
