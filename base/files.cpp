#include "base/files.h"

#include "base/fd.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <utility>

namespace base {

namespace {
std::string dir_of(const std::string& path) {
    auto parent = std::filesystem::path(path).parent_path();
    return parent.empty() ? "." : parent.string();
}
std::string errno_text(int e) {
    return std::strerror(e);
}
std::string join(const std::string& dir, std::string_view name) {
    if (dir == ".") return std::string(name);
    return dir.ends_with('/') ? dir + std::string(name) : dir + "/" + std::string(name);
}
std::string octal(mode_t mode) {
    std::string out = "0000";
    for (int i = 3; i >= 0; --i, mode >>= 3)
        out[static_cast<std::size_t>(i)] = static_cast<char>('0' + (mode & 7));
    return out;
}

// The one atomic-write implementation: a temp file beside `name` in the directory `dirfd`
// (`dir` names it in errors), then rename or link, then fsync of the directory.
Result<void> write_at(int dirfd, const std::string& dir, std::string_view name,
                      std::string_view data, mode_t mode, Overwrite overwrite) {
    const std::string path = join(dir, name);
    std::random_device rd;
    std::string tmp;
    int fd = -1;
    for (int attempt = 0; attempt < 16 && fd < 0; ++attempt) {
        tmp = std::string(name) + ".tmp." + std::to_string(rd());
        fd = ::openat(dirfd, tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      mode);
        if (fd < 0 && errno != EEXIST)
            return fail(Errc::io, "create " + join(dir, tmp), errno_text(errno));
    }
    if (fd < 0) return fail(Errc::io, "create " + path, "no free temporary name");
    Fd file(fd);
    auto abandon = [&](const std::string& where, int e) {
        ::unlinkat(dirfd, tmp.c_str(), 0);
        return fail(Errc::io, where, errno_text(e));
    };
    if (::fchmod(fd, mode) != 0) return abandon("chmod " + join(dir, tmp), errno);  // umask
    for (std::size_t off = 0; off < data.size();) {
        const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return abandon("write " + join(dir, tmp), errno);
        off += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) return abandon("fsync " + join(dir, tmp), errno);
    const std::string target(name);
    if (overwrite == Overwrite::yes) {
        if (::renameat(dirfd, tmp.c_str(), dirfd, target.c_str()) != 0)
            return abandon("rename to " + path, errno);
    } else {
        if (::linkat(dirfd, tmp.c_str(), dirfd, target.c_str(), 0) != 0) {
            const int e = errno;
            ::unlinkat(dirfd, tmp.c_str(), 0);
            if (e == EEXIST) return fail(Errc::exists, path, "file exists; refusing to overwrite");
            return fail(Errc::io, "link " + path, errno_text(e));
        }
        ::unlinkat(dirfd, tmp.c_str(), 0);
    }
    if (::fsync(dirfd) != 0) return fail(Errc::io, "fsync " + dir, errno_text(errno));
    return {};
}

Result<std::string> read_fd(int fd, const std::string& path, std::size_t max_size) {
    std::string out;
    char buf[8192];
    for (;;) {
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(Errc::io, path, errno_text(errno));
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > max_size)
            return fail(Errc::io, path, "larger than " + std::to_string(max_size) + " bytes");
    }
    return out;
}

std::unexpected<Error> symlink_refused(const std::string& path) {
    return fail(Errc::usage, path,
                "a symlink; acme-agent does not follow symlinks where it reads secrets or "
                "writes (SECURITY.md): name the real path (readlink -f " +
                    path + ")");
}

// Opens a regular file (relative to `dirfd`) without following a symlink, O_NONBLOCK so a
// FIFO cannot hang the open (unless `fifo_ok`: then a FIFO is read, blocking); `st` gets
// the descriptor's fstat.
Result<int> open_regular(int dirfd, const std::string& name, const std::string& path,
                         struct stat& st, bool fifo_ok = false) {
    Fd fd(::openat(dirfd, name.c_str(),
                   O_RDONLY | O_NOFOLLOW | O_CLOEXEC | (fifo_ok ? 0 : O_NONBLOCK)));
    if (fd.get() < 0) {
        const int e = errno;
        if (e == ENOENT) return fail(Errc::not_found, path, errno_text(e));
        if (e == ELOOP) return symlink_refused(path);
        return fail(Errc::io, path, errno_text(e));
    }
    if (::fstat(fd.get(), &st) != 0) return fail(Errc::io, path, errno_text(errno));
    const bool readable = S_ISREG(st.st_mode) || (fifo_ok && S_ISFIFO(st.st_mode));
    if (!readable) return fail(Errc::usage, path, "not a regular file");
    return fd.release();
}
}  // namespace

Result<void> fsync_dir(const std::string& dir) {
    Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d.get() < 0 || ::fsync(d.get()) != 0)
        return fail(Errc::io, "fsync " + dir, errno_text(errno));
    return {};
}

Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode,
                               Overwrite overwrite) {
    const std::string dir = dir_of(path);
    Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d.get() < 0) return fail(Errc::io, "open " + dir, errno_text(errno));
    return write_at(d.get(), dir, std::filesystem::path(path).filename().string(), data, mode,
                    overwrite);
}

Result<std::string> read_file(const std::string& path, std::size_t max_size) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
        const int e = errno;
        return fail(e == ENOENT ? Errc::not_found : Errc::io, path, errno_text(e));
    }
    return read_fd(fd.get(), path, max_size);
}

Result<std::string> read_file_nofollow(const std::string& path, std::size_t max_size,
                                       FileInfo* info, bool fifo_ok) {
    struct stat st{};
    auto fd = open_regular(AT_FDCWD, path, path, st, fifo_ok);
    if (!fd) return std::unexpected(fd.error());
    Fd held(*fd);
    if (info) *info = {st.st_uid, st.st_mode};
    return read_fd(held.get(), path, max_size);
}

Result<Secret> read_secret_file(const std::string& path, std::string_view what,
                                std::size_t max_size) {
    struct stat st{};
    auto fd = open_regular(AT_FDCWD, path, path, st);
    if (!fd) {  // "PIN file: /etc/x.pin: a symlink; ..."
        Error e = fd.error();
        e.message = (e.code == Errc::not_found ? "cannot read " : "") + path + ": " + e.message;
        e.where = std::string(what);
        return std::unexpected(e);
    }
    Fd held(*fd);
    if (st.st_mode & 077)
        return fail(Errc::usage, std::string(what),
                    path + " is open to group or others (mode " + octal(st.st_mode) +
                        "); run: chmod 600 " + path);
    if (st.st_uid != ::geteuid() && st.st_uid != 0)
        return fail(Errc::usage, std::string(what),
                    path + " is owned by uid " + std::to_string(st.st_uid) +
                        ", not by this user (uid " + std::to_string(::geteuid()) +
                        ") or root; run: chown " + std::to_string(::geteuid()) + " " + path);
    auto text = read_fd(held.get(), path, max_size);
    if (!text) return std::unexpected(text.error());
    return Secret(std::move(*text));
}

Result<void> remove_file_durable(const std::string& path) {
    if (::unlink(path.c_str()) != 0) {
        if (errno == ENOENT) return {};
        return fail(Errc::io, "remove " + path, errno_text(errno));
    }
    return fsync_dir(dir_of(path));
}

// --- Dir ---

Result<Dir> Dir::open(const std::string& path, Create create, mode_t mode) {
    namespace fs = std::filesystem;
    std::string text = fs::path(path).lexically_normal().string();
    while (text.size() > 1 && text.ends_with('/')) text.pop_back();
    const fs::path p(text);
    const std::string last = p.filename().string();
    if (text.empty() || text == "/" || last == "." || last == "..") {
        const int fd =
            ::open(text.empty() ? "." : text.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
            return fail(errno == ENOENT ? Errc::not_found : Errc::io, path, errno_text(errno));
        return Dir(fd, text, false);
    }
    // The deepest existing ancestor is opened as given; what lies below it is walked.
    std::vector<std::string> rest{last};
    fs::path base = p.parent_path();
    struct stat st{};
    while (create == Create::yes && !base.empty() && base != base.root_path() &&
           ::stat(base.c_str(), &st) != 0 && errno == ENOENT) {
        rest.insert(rest.begin(), base.filename().string());
        base = base.parent_path();
    }
    const std::string base_text = base.empty() ? "." : base.string();
    const int fd = ::open(base_text.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        const int e = errno;
        return fail(e == ENOENT ? Errc::not_found : Errc::io, path,
                    "cannot open " + base_text + ": " + errno_text(e));
    }
    Dir d(fd, base_text, false);
    for (const auto& name : rest) {
        auto next = d.sub(name, create, mode);
        if (!next) return std::unexpected(next.error());
        d = std::move(*next);
    }
    d.path_ = text;
    return d;
}

Result<Dir> Dir::sub(std::string_view name, Create create, mode_t mode) const {
    const std::string n(name);
    const std::string path = join(path_, name);
    if (n.empty() || n == "." || n == ".." || n.find('/') != std::string::npos)
        return fail(Errc::internal, path, "not a single path component");
    constexpr int kFlags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    int fd = ::openat(fd_, n.c_str(), kFlags);
    bool made = false;
    if (fd < 0 && errno == ENOENT && create == Create::yes) {
        if (::mkdirat(fd_, n.c_str(), mode) == 0)
            made = true;
        else if (errno != EEXIST)
            return fail(Errc::io, path, "cannot create: " + errno_text(errno));
        fd = ::openat(fd_, n.c_str(), kFlags);
        // Exactly `mode` whatever the umask, and only on a directory made here.
        if (fd >= 0 && made && ::fchmod(fd, mode) != 0) {
            const int e = errno;
            ::close(fd);
            return fail(Errc::io, path, "chmod: " + errno_text(e));
        }
    }
    if (fd < 0) {
        const int e = errno;
        struct stat st{};
        if (e == ENOENT) return fail(Errc::not_found, path, "no such directory");
        if ((e == ELOOP || e == ENOTDIR) &&
            ::fstatat(fd_, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
            return S_ISLNK(st.st_mode) ? symlink_refused(path)
                                       : fail(Errc::usage, path, "not a directory");
        return fail(Errc::io, path, errno_text(e));
    }
    return Dir(fd, path, made);
}

Dir::Dir(Dir&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), path_(std::move(other.path_)), created_(other.created_) {}

Dir& Dir::operator=(Dir&& other) noexcept {
    if (this != &other) {
        if (fd_ >= 0) ::close(fd_);
        fd_ = std::exchange(other.fd_, -1);
        path_ = std::move(other.path_);
        created_ = other.created_;
    }
    return *this;
}

Dir::~Dir() {
    if (fd_ >= 0) ::close(fd_);
}

uid_t Dir::owner() const {
    struct stat st{};
    return ::fstat(fd_, &st) == 0 ? st.st_uid : static_cast<uid_t>(-1);
}

Result<void> Dir::write_file(std::string_view name, std::string_view data, mode_t mode,
                             Overwrite overwrite) const {
    return write_at(fd_, path_, name, data, mode, overwrite);
}

Result<std::string> Dir::read_file(std::string_view name, std::size_t max_size) const {
    struct stat st{};
    const std::string path = join(path_, name);
    auto fd = open_regular(fd_, std::string(name), path, st);
    if (!fd) return std::unexpected(fd.error());
    Fd held(*fd);
    return read_fd(held.get(), path, max_size);
}

bool Dir::has_file(std::string_view name) const {
    struct stat st{};
    return ::fstatat(fd_, std::string(name).c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
           S_ISREG(st.st_mode);
}

Result<void> Dir::remove_file(std::string_view name) const {
    if (::unlinkat(fd_, std::string(name).c_str(), 0) != 0) {
        if (errno == ENOENT) return {};
        return fail(Errc::io, "remove " + join(path_, name), errno_text(errno));
    }
    if (::fsync(fd_) != 0) return fail(Errc::io, "fsync " + path_, errno_text(errno));
    return {};
}

Result<void> Dir::remove_dir(std::string_view name) const {
    if (::unlinkat(fd_, std::string(name).c_str(), AT_REMOVEDIR) != 0) {
        // Missing, or someone else's files in it: not ours to remove.
        if (errno == ENOENT || errno == ENOTEMPTY || errno == EEXIST) return {};
        return fail(Errc::io, "remove " + join(path_, name), errno_text(errno));
    }
    if (::fsync(fd_) != 0) return fail(Errc::io, "fsync " + path_, errno_text(errno));
    return {};
}

Result<std::vector<std::string>> Dir::subdirs() const {
    return entries(S_IFDIR);
}

Result<std::vector<std::string>> Dir::files() const {
    return entries(S_IFREG);
}

Result<std::vector<std::string>> Dir::entries(mode_t type) const {
    // A descriptor of its own: readdir moves the offset of the one it is given.
    const int fd = ::openat(fd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR* d = fd < 0 ? nullptr : ::fdopendir(fd);
    if (!d) {
        const int e = errno;
        if (fd >= 0) ::close(fd);
        return fail(Errc::io, path_, errno_text(e));
    }
    std::vector<std::string> out;
    // cppcheck-suppress readdirCalled ; readdir_r is deprecated; glibc's readdir is safe on a
    // stream that only this call reads
    while (const dirent* e = ::readdir(d)) {
        const std::string n = e->d_name;
        struct stat st{};
        if (n == "." || n == "..") continue;
        if (::fstatat(fd_, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 &&
            (st.st_mode & S_IFMT) == type)
            out.push_back(n);
    }
    ::closedir(d);
    return out;
}

}  // namespace base
