// Durable file writes (SECURITY.md rule 14), bounded reads, the owner-only secret-file
// reader (rule 18) and the symlink-refusing directory walker (rule 17), shared by the
// backends, the agent's state dir, --out and the webroot.
#pragma once

#include "base/bytes.h"
#include "base/error.h"

#include <sys/types.h>
#include <string>
#include <string_view>
#include <vector>

namespace base {

enum class Overwrite { no, yes };
enum class Create { no, yes };

// Writes `data` to `path` so that a reader sees either the old file or the whole new one:
// a temp file in the same directory (O_EXCL|O_NOFOLLOW, `mode`), fsync, rename (or link,
// which fails with Errc::exists, when overwrite is no), then fsync of the directory.
// Nothing is left behind on failure.
Result<void> write_file_atomic(const std::string& path, std::string_view data, mode_t mode,
                               Overwrite overwrite = Overwrite::yes);
// Reads a whole file of at most `max_size` bytes (Errc::not_found, Errc::io).
Result<std::string> read_file(const std::string& path, std::size_t max_size = 1 << 20);
Result<void> fsync_dir(const std::string& dir);
// Removes a file and fsyncs its directory; a missing file is not an error.
Result<void> remove_file_durable(const std::string& path);

// What fstat said of a file read by read_file_nofollow.
struct FileInfo {
    uid_t uid = 0;
    mode_t mode = 0;
};
// Opens `path` without following a symlink (O_NOFOLLOW), then checks the descriptor
// (fstat): a regular file (or, with `fifo_ok`, a FIFO, read as it comes) of at most
// `max_size` bytes. A symlink is Errc::usage (named).
Result<std::string> read_file_nofollow(const std::string& path, std::size_t max_size,
                                       FileInfo* info = nullptr, bool fifo_ok = false);
// A secret (PIN, TSIG key, EAB key, file: private key): as read_file_nofollow, and refused
// (Errc::usage, the fix named) unless owner-only (no group/other bits) and owned by the
// effective user or root. `what` names it in errors ("PIN file", "TSIG key file").
Result<Secret> read_secret_file(const std::string& path, std::string_view what,
                                std::size_t max_size = 4096);

// A directory held open by descriptor. Every step beneath it is openat(O_NOFOLLOW |
// O_DIRECTORY), and files are made and replaced relative to the descriptor, so a symlink
// or a rename planted in the tree cannot redirect a write, a removal or a chmod.
class Dir {
  public:
    // Opens `path`. The path up to its parent is taken as given (the admin's choice);
    // the directory itself and anything created below the deepest existing ancestor is
    // walked with O_NOFOLLOW, and a symlink there is refused (Errc::usage, naming it).
    // With Create::yes, missing directories are made with exactly `mode`; an existing
    // directory's mode is never changed. Errc::not_found when missing and Create::no.
    static Result<Dir> open(const std::string& path, Create create = Create::no,
                            mode_t mode = 0755);
    // The subdirectory `name` (one component), likewise.
    Result<Dir> sub(std::string_view name, Create create = Create::no, mode_t mode = 0755) const;

    Dir(Dir&& other) noexcept;
    Dir& operator=(Dir&& other) noexcept;
    Dir(const Dir&) = delete;
    Dir& operator=(const Dir&) = delete;
    ~Dir();

    [[nodiscard]] const std::string& path() const { return path_; }
    [[nodiscard]] int fd() const { return fd_; }
    // Whether the call that returned this Dir created it (only those are ever removed).
    [[nodiscard]] bool created() const { return created_; }
    [[nodiscard]] uid_t owner() const;

    // As write_file_atomic, in this directory.
    Result<void> write_file(std::string_view name, std::string_view data, mode_t mode,
                            Overwrite overwrite = Overwrite::yes) const;
    // A regular file in this directory, not through a symlink (Errc::not_found when absent).
    Result<std::string> read_file(std::string_view name, std::size_t max_size = 1 << 20) const;
    [[nodiscard]] bool has_file(std::string_view name) const;
    // Removes a file (or, remove_dir, an empty directory) and fsyncs; missing is no error.
    Result<void> remove_file(std::string_view name) const;
    Result<void> remove_dir(std::string_view name) const;
    // The names of the subdirectories (symlinks are not listed).
    Result<std::vector<std::string>> subdirs() const;
    // The names of the regular files (not symlinks).
    Result<std::vector<std::string>> files() const;

  private:
    Result<std::vector<std::string>> entries(mode_t type) const;  // S_IFDIR or S_IFREG
    Dir(int fd, std::string path, bool created)
        : fd_(fd), path_(std::move(path)), created_(created) {}
    int fd_ = -1;
    std::string path_;
    bool created_ = false;
};

}  // namespace base
