// keystore/files: the directory walker never follows a symlink and never changes the mode
// of a directory it did not create (SECURITY.md rule 17); secret files are checked on the
// opened descriptor (rule 18).
#include "base/files.h"
#include "support/temp_dir.h"

#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

namespace {

namespace fs = std::filesystem;
using base::Create;
using base::Dir;
using base::Errc;

class Files : public testing::Test {
  protected:
    static unsigned mode_of(const fs::path& p) {
        struct stat st{};
        EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
        return st.st_mode & 07777;
    }
    static void write(const fs::path& p, const std::string& text, unsigned mode) {
        std::ofstream(p) << text;
        ::chmod(p.c_str(), mode);
    }
    testsupport::TempDir tmp_{"acme-agent-test-files"};
    fs::path root_ = tmp_.path();
};

TEST_F(Files, CreatesMissingDirectoriesWithExactlyTheMode) {
    const mode_t old = ::umask(027);
    auto d = Dir::open((root_ / "a/b/c").string(), Create::yes, 0755);
    ::umask(old);
    ASSERT_TRUE(d) << d.error().describe();
    EXPECT_TRUE(d->created());
    EXPECT_EQ(d->path(), (root_ / "a/b/c").string());
    EXPECT_EQ(mode_of(root_ / "a/b/c"), 0755u);
    EXPECT_EQ(mode_of(root_ / "a"), 0755u);
    ASSERT_TRUE(d->write_file("x.pem", "data", 0644));
    EXPECT_EQ(mode_of(root_ / "a/b/c/x.pem"), 0644u);
}

TEST_F(Files, NeverChangesTheModeOfAnExistingDirectory) {
    fs::create_directory(root_ / "out");
    ::chmod((root_ / "out").c_str(), 0700);
    auto d = Dir::open((root_ / "out").string(), Create::yes, 0755);
    ASSERT_TRUE(d);
    EXPECT_FALSE(d->created());
    EXPECT_EQ(mode_of(root_ / "out"), 0700u);
    auto sub = d->sub("inner", Create::yes, 0755);
    ASSERT_TRUE(sub);
    EXPECT_TRUE(sub->created());
    EXPECT_FALSE(d->sub("inner", Create::yes, 0700)->created());
}

TEST_F(Files, RefusesASymlinkedDirectoryNamingIt) {
    fs::create_directory(root_ / "target");
    ::chmod((root_ / "target").c_str(), 0700);
    fs::create_directory_symlink(root_ / "target", root_ / "link");
    auto top = Dir::open((root_ / "link").string(), Create::yes, 0755);
    ASSERT_FALSE(top);
    EXPECT_EQ(top.error().code, Errc::usage);
    EXPECT_EQ(top.error().where, (root_ / "link").string());
    EXPECT_NE(top.error().message.find("symlink"), std::string::npos);

    auto d = Dir::open(root_.string());
    ASSERT_TRUE(d);
    auto sub = d->sub("link", Create::yes, 0755);
    ASSERT_FALSE(sub);
    EXPECT_NE(sub.error().message.find("symlink"), std::string::npos);
    EXPECT_EQ(mode_of(root_ / "target"), 0700u);  // not chmodded through the link
    EXPECT_TRUE(fs::is_empty(root_ / "target"));
    // A symlinked parent of a created path is the admin's choice, and followed.
    auto below = Dir::open((root_ / "link/new").string(), Create::yes, 0755);
    ASSERT_TRUE(below) << below.error().describe();
    EXPECT_TRUE(fs::is_directory(root_ / "target/new"));
}

TEST_F(Files, ReadsAndRemovesOnlyWhatIsThere) {
    auto d = Dir::open(root_.string());
    ASSERT_TRUE(d);
    fs::create_symlink("/etc/passwd", root_ / "link.json");
    auto link = d->read_file("link.json");
    ASSERT_FALSE(link);
    EXPECT_EQ(link.error().code, Errc::usage);
    auto missing = d->read_file("missing.json");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, Errc::not_found);
    EXPECT_TRUE(d->remove_file("missing.json"));
    fs::create_directory(root_ / "full");
    write(root_ / "full/f", "x", 0600);
    EXPECT_TRUE(d->remove_dir("full"));  // someone's files in it: left alone
    EXPECT_TRUE(fs::exists(root_ / "full/f"));
    fs::create_directory(root_ / "dir2");
    fs::create_directory_symlink(root_ / "dir2", root_ / "dirlink");
    auto subs = d->subdirs();
    ASSERT_TRUE(subs);
    EXPECT_EQ(std::ranges::count(*subs, std::string("dirlink")), 0);
    EXPECT_EQ(std::ranges::count(*subs, std::string("dir2")), 1);
}

TEST_F(Files, SecretFilesMustBeOwnerOnlyRegularFilesNotSymlinks) {
    write(root_ / "ok.pin", "1234", 0600);
    auto ok = base::read_secret_file((root_ / "ok.pin").string(), "PIN file");
    ASSERT_TRUE(ok) << ok.error().describe();
    EXPECT_EQ(ok->reveal(), "1234");

    write(root_ / "loose.pin", "1234", 0640);
    auto loose = base::read_secret_file((root_ / "loose.pin").string(), "PIN file");
    ASSERT_FALSE(loose);
    EXPECT_EQ(loose.error().code, Errc::usage);
    EXPECT_NE(loose.error().message.find("mode 0640"), std::string::npos);
    EXPECT_NE(loose.error().message.find("chmod 600 " + (root_ / "loose.pin").string()),
              std::string::npos);
    EXPECT_EQ(loose.error().message.find("1234"), std::string::npos);

    fs::create_symlink(root_ / "ok.pin", root_ / "link.pin");
    auto link = base::read_secret_file((root_ / "link.pin").string(), "PIN file");
    ASSERT_FALSE(link);
    EXPECT_NE(link.error().message.find("symlink"), std::string::npos);

    ASSERT_EQ(::mkfifo((root_ / "fifo.pin").c_str(), 0600), 0);
    auto fifo = base::read_secret_file((root_ / "fifo.pin").string(), "PIN file");
    ASSERT_FALSE(fifo);  // and did not hang waiting for a writer
    EXPECT_NE(fifo.error().message.find("not a regular file"), std::string::npos);

    auto missing = base::read_secret_file((root_ / "none.pin").string(), "PIN file");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().code, Errc::not_found);
}

}  // namespace
