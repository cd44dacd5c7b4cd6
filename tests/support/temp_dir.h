// Test support: directories a test writes into.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>

namespace testsupport {

// A fresh directory (mkdtemp under TMPDIR, named after `prefix`), removed with everything in
// it when the object goes. Throws when it cannot be made: GoogleTest reports the exception as
// the test's failure, and non-GoogleTest drivers die with the message.
class TempDir {
  public:
    explicit TempDir(const std::string& prefix = "acme-agent-test") {
        std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
        if (::mkdtemp(tmpl.data()) == nullptr)
            throw std::runtime_error("mkdtemp " + tmpl + ": " + std::strerror(errno));
        path_ = tmpl;
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    [[nodiscard]] const std::filesystem::path& path() const { return path_; }

    // Writes `text` to path()/name (parent directories made) with `mode`; returns its path.
    std::filesystem::path write(const std::string& name, const std::string& text,
                                mode_t mode = 0644) const {
        const std::filesystem::path p = path_ / name;
        std::filesystem::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
        ::chmod(p.c_str(), mode);
        return p;
    }
    // An executable /bin/sh script path()/name with `body`; returns its path.
    std::filesystem::path script(const std::string& name, const std::string& body) const {
        return write(name, "#!/bin/sh\n" + body, 0755);
    }

  private:
    std::filesystem::path path_;
};

// The scratch directory of a conformance or soak test that starts servers (SoftHSM, swtpm,
// tpm2-pkcs11): build/test-scratch/NAME-PID, emptied first and kept afterwards, so the logs
// of a failed run can be read. ACME_AGENT_BINARY_DIR comes from tests/CMakeLists.txt.
#ifdef ACME_AGENT_BINARY_DIR
inline std::string scratch_dir(const std::string& name) {
    const std::string dir = std::string(ACME_AGENT_BINARY_DIR) + "/test-scratch/" + name + "-" +
                            std::to_string(::getpid());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    return dir;
}
#endif

}  // namespace testsupport
