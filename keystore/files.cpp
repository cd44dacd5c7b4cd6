#include "keystore/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>

namespace keystore {

namespace {
std::string dir_of(const std::string& path) {
    auto parent = std::filesystem::path(path).parent_path();
    return parent.empty() ? "." : parent.string();
}
std::string errno_text(int e) {
    return std::strerror(e);
}

struct Fd {
    int fd = -1;
    explicit Fd(int f) : fd(f) {}
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() {
        if (fd >= 0) ::close(fd);
    }
};
}  // namespace

Result<void> fsync_dir(const std::string& dir) {
    Fd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (d.fd < 0 || ::fsync(d.fd) != 0) return fail(Errc::io, "fsync " + dir, errno_text(errno));
    return {};
}

Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode,
                               Overwrite overwrite) {
    const std::string dir = dir_of(path);
    std::random_device rd;
    std::string tmp;
    int fd = -1;
    for (int attempt = 0; attempt < 16 && fd < 0; ++attempt) {
        tmp = path + ".tmp." + std::to_string(rd());
        fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
        if (fd < 0 && errno != EEXIST) return fail(Errc::io, "create " + tmp, errno_text(errno));
    }
    if (fd < 0) return fail(Errc::io, "create " + tmp, "no free temporary name");
    Fd file(fd);
    auto abandon = [&](const std::string& where, int e) {
        ::unlink(tmp.c_str());
        return fail(Errc::io, where, errno_text(e));
    };
    if (::fchmod(fd, mode) != 0) return abandon("chmod " + tmp, errno);  // umask-independent
    for (std::size_t off = 0; off < data.size();) {
        const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return abandon("write " + tmp, errno);
        off += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) return abandon("fsync " + tmp, errno);
    if (overwrite == Overwrite::yes) {
        if (::rename(tmp.c_str(), path.c_str()) != 0) return abandon("rename to " + path, errno);
    } else {
        if (::link(tmp.c_str(), path.c_str()) != 0) {
            const int e = errno;
            ::unlink(tmp.c_str());
            if (e == EEXIST) return fail(Errc::exists, path, "file exists; refusing to overwrite");
            return fail(Errc::io, "link " + path, errno_text(e));
        }
        ::unlink(tmp.c_str());
    }
    return fsync_dir(dir);
}

Result<std::string> read_file(const std::string& path, std::size_t max_size) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.fd < 0) {
        const int e = errno;
        return fail(e == ENOENT ? Errc::not_found : Errc::io, path, errno_text(e));
    }
    std::string out;
    char buf[8192];
    for (;;) {
        const ssize_t n = ::read(fd.fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(Errc::io, path, errno_text(errno));
        if (n == 0) break;
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > max_size)
            return fail(Errc::io, path, "larger than " + std::to_string(max_size) + " bytes");
    }
    return out;
}

Result<void> remove_file_durable(const std::string& path) {
    if (::unlink(path.c_str()) != 0) {
        if (errno == ENOENT) return {};
        return fail(Errc::io, "remove " + path, errno_text(errno));
    }
    return fsync_dir(dir_of(path));
}

}  // namespace keystore
