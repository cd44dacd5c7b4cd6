// The conformance suite on the tpm2: backend (key files and persistent handles) against a
// TPM 2.0 simulator started for this process by scripts/swtpm-setup.sh, plus what only a
// TPM can show: attributes read back from the TPM, auth values in salted sessions, DA
// lockout, object slots, and key files that tpm2-openssl reads (docs/SECURITY.md rules 2, 11,
// 12; docs/TESTING.md "swtpm").
//
// swtpm serves one connection at a time and has no resource manager: while a Keystore of
// this process is connected, tpm2-tools and openssl cannot reach the TPM. Tests that run
// those tools first drop every Keystore and Key of theirs (which closes the connection).
#include "conformance/suite.h"

#include "base/files.h"
#include "base/ossl.h"
#include "keystore/ecdsa.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "tpm/tpm_keystore.h"

#include <openssl/rand.h>
#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

namespace conformance {
namespace {

namespace fs = std::filesystem;
using base::Bytes;
using base::Errc;
using keystore::KeyAlgorithm;
using keystore::KeyPtr;
using keystore::KeyUri;

constexpr unsigned long kSimulatorManufacturer = 0x49424D00;  // "IBM": swtpm (libtpms)

// A tool run bounded by `timeout`: a TPM still held by this process must fail the test,
// not hang it.
testsupport::Outcome tool(std::vector<std::string> argv) {
    argv.insert(argv.begin(), {"timeout", "60"});
    return testsupport::run(argv);
}

// ---- one swtpm per test process (ctest runs every case in its own process) ----------

class Swtpm {
  public:
    // Starts the simulator on first use and refuses anything that is not swtpm.
    static void ensure() {
        if (!tcti_.empty()) return;
        // tcti-swtpm uses write(2): a dead swtpm must not kill us
        (void)std::signal(SIGPIPE, SIG_IGN);
        dir_ = testsupport::scratch_dir("tpm");
        start();
        if (::testing::Test::HasFatalFailure()) return;
        // These tests create, evict and lock out keys: never on a real TPM.
        auto caps = tool({"tpm2_getcap", "properties-fixed"});
        ASSERT_EQ(caps.code, 0) << caps.out << caps.err << " (apt-get install -y tpm2-tools)";
        std::smatch m;
        const std::regex manufacturer(R"(TPM2_PT_MANUFACTURER:\s*\n\s*raw:\s*(0x[0-9A-Fa-f]+))");
        ASSERT_TRUE(std::regex_search(caps.out, m, manufacturer)) << caps.out;
        if (std::stoul(m[1].str(), nullptr, 16) != kSimulatorManufacturer) {
            const std::string found = m[1].str();
            tcti_.clear();
            FAIL() << "the TPM behind " << found << " is not swtpm; refusing to run";
        }
    }
    // Starts swtpm on the state in dir()/swtpm (a fresh port each time).
    static void start() {
        auto up =
            testsupport::run({ACME_AGENT_SOURCE_DIR "/scripts/swtpm-setup.sh", dir_ + "/swtpm"});
        ASSERT_EQ(up.code, 0) << "scripts/swtpm-setup.sh failed (apt-get install -y swtpm "
                                 "swtpm-tools tpm2-tools):\n"
                              << up.err;
        std::smatch m;
        ASSERT_TRUE(std::regex_search(up.out, m, std::regex(R"(ACME_AGENT_TCTI=(\S+))"))) << up.out;
        tcti_ = m[1].str();
        for (const char* var : {"ACME_AGENT_TCTI", "TPM2TOOLS_TCTI", "TPM2OPENSSL_TCTI"})
            ::setenv(var, tcti_.c_str(), 1);
    }
    static void stop() {
        if (!dir_.empty())
            testsupport::run({ACME_AGENT_SOURCE_DIR "/scripts/swtpm-down.sh", dir_ + "/swtpm"});
    }
    static const std::string& tcti() { return tcti_; }
    static const std::string& dir() { return dir_; }

  private:
    static inline std::string dir_;
    static inline std::string tcti_;
};

class SwtpmCleanup : public ::testing::Environment {
  public:
    void TearDown() override {
        Swtpm::stop();
        if (!Swtpm::dir().empty() && !::testing::UnitTest::GetInstance()->Failed()) {
            std::error_code ec;
            fs::remove_all(Swtpm::dir(), ec);
        }
    }
};
[[maybe_unused]] ::testing::Environment* const kCleanup =
    ::testing::AddGlobalTestEnvironment(new SwtpmCleanup);

// ---- the shared suite ----------------------------------------------------------------

const std::vector<KeyAlgorithm> kTpmAlgorithms{KeyAlgorithm::ec_p256, KeyAlgorithm::ec_p384,
                                               KeyAlgorithm::rsa_2048, KeyAlgorithm::rsa_3072};

std::map<std::string, std::string> tpm_properties() {
    return {{"backend", "tpm2"},      {"sensitive", "true"},   {"extractable", "false"},
            {"fixedTPM", "true"},     {"fixedParent", "true"}, {"sensitiveDataOrigin", "true"},
            {"userWithAuth", "true"}, {"sign", "true"},        {"decrypt", "false"},
            {"restricted", "false"},  {"noDA", "false"}};
}

struct TpmFileBackend {
    static inline std::string dir;
    static inline std::unique_ptr<keystore::Keystore> ks;
    static void set_up() {
        Swtpm::ensure();
        if (::testing::Test::HasFatalFailure()) return;
        dir = Swtpm::dir() + "/suite-files";
        fs::create_directories(dir);
        ks = tpm::make_keystore(Swtpm::tcti());
    }
    static void tear_down() { ks.reset(); }  // flush while swtpm is still there
    static keystore::Keystore& store() { return *ks; }
    static KeyUri uri(const std::string& name) {
        return *KeyUri::parse("tpm2:path=" + dir + "/" + name + ".tss");
    }
    static KeyUri container() { return *KeyUri::parse("tpm2:path=" + dir); }
    static std::vector<KeyAlgorithm> algorithms() { return kTpmAlgorithms; }
    static std::map<std::string, std::string> expected_properties() { return tpm_properties(); }
    static constexpr bool hardware = true;
};

struct TpmHandleBackend {
    static inline std::unique_ptr<keystore::Keystore> ks;
    static inline std::uint32_t next = 0x81000400;
    static void set_up() {
        Swtpm::ensure();
        if (::testing::Test::HasFatalFailure()) return;
        ks = tpm::make_keystore(Swtpm::tcti());
    }
    static void tear_down() { ks.reset(); }
    static keystore::Keystore& store() { return *ks; }
    static KeyUri uri(const std::string&) {
        char buf[32];
        (void)std::snprintf(buf, sizeof buf, "tpm2:handle=0x%08x", next++);
        return *KeyUri::parse(buf);
    }
    static KeyUri container() { return *KeyUri::parse("tpm2:handle=0x81000000"); }
    static std::vector<KeyAlgorithm> algorithms() { return kTpmAlgorithms; }
    static std::map<std::string, std::string> expected_properties() { return tpm_properties(); }
    static constexpr bool hardware = true;
};

using TpmBackends = ::testing::Types<TpmFileBackend, TpmHandleBackend>;
INSTANTIATE_TYPED_TEST_SUITE_P(Tpm, KeystoreConformance, TpmBackends);

// ---- TPM only ------------------------------------------------------------------------

Bytes random_bytes(std::size_t n) {
    Bytes b(n);
    EXPECT_EQ(RAND_bytes(b.data(), static_cast<int>(n)), 1);
    return b;
}

std::string read_all(const std::string& path) {
    auto r = base::read_file(path, 1 << 20);
    return r ? *r : std::string();
}

KeyUri uri(const std::string& text) {
    auto u = KeyUri::parse(text);
    EXPECT_TRUE(u) << text << ": " << (u ? "" : u.error().describe());
    return u ? *u : KeyUri{};
}

std::string prop(const KeyPtr& key, const std::string& name) {
    auto props = key->properties();
    EXPECT_TRUE(props) << (props ? "" : props.error().describe());
    if (!props) return {};
    for (const auto& p : *props)
        if (p.name == name) return p.value;
    return "<absent>";
}

void expect_signs(const KeyPtr& key, std::size_t times = 1) {
    for (std::size_t i = 0; i < times; ++i) {
        const Bytes msg = random_bytes(1 + i % 200);
        auto sig = key->sign(msg);
        ASSERT_TRUE(sig) << sig.error().describe();
        ASSERT_TRUE(keystore::verify_jws_signature(key->public_key_der(), msg, *sig))
            << key->uri().to_string();
    }
}

// A number tpm2_getcap prints (this process must be disconnected).
long getcap_value(const std::string& what, const std::string& name) {
    auto r = tool({"tpm2_getcap", what});
    EXPECT_EQ(r.code, 0) << r.err;
    std::smatch m;
    if (!std::regex_search(r.out, m, std::regex(name + R"(:\s*(0x[0-9A-Fa-f]+|\d+))"))) {
        ADD_FAILURE() << name << " not in: " << r.out;
        return -1;
    }
    return std::stol(m[1].str(), nullptr, 0);
}

long transient_handles() {
    auto r = tool({"tpm2_getcap", "handles-transient"});
    EXPECT_EQ(r.code, 0) << r.err;
    long n = 0;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) n += line.find("0x80") != std::string::npos;
    return n;
}

bool contains(const std::string& haystack, std::span<const std::uint8_t> needle) {
    const std::string_view bytes(reinterpret_cast<const char*>(needle.data()), needle.size());
    return haystack.find(bytes) != std::string::npos;
}

class TpmOnly : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { Swtpm::ensure(); }

    void SetUp() override {
        ASSERT_FALSE(Swtpm::tcti().empty());
        keys_ =
            Swtpm::dir() + "/" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
        fs::create_directories(keys_);
    }
    void TearDown() override { ks_.reset(); }

    keystore::Keystore& ks() {
        if (!ks_) ks_ = tpm::make_keystore(Swtpm::tcti());
        return *ks_;
    }
    // Closes this test's connection so tpm2-tools / openssl reach swtpm. Keys must be gone.
    void disconnect() { ks_.reset(); }

    std::string file_uri(const std::string& name, const std::string& query = "") const {
        return "tpm2:path=" + keys_ + "/" + name + query;
    }
    std::string pin_file(const std::string& name, const std::string& value) const {
        const std::string path = keys_ + "/" + name;
        EXPECT_TRUE(base::write_file_atomic(path, value, 0600));
        return path;
    }

    std::string keys_;
    std::unique_ptr<keystore::Keystore> ks_;
};

TEST_F(TpmOnly, KeyFilesArePrivatePemAndKeysSurviveANewConnection) {
    std::vector<std::pair<std::string, Bytes>> made;  // URI, SubjectPublicKeyInfo
    std::uint32_t handle = 0x81000100;
    for (KeyAlgorithm alg : kTpmAlgorithms) {
        const std::string name(keystore::algorithm_name(alg));
        char h[32];
        (void)std::snprintf(h, sizeof h, "tpm2:handle=0x%08x", handle++);
        for (const std::string& u : {file_uri(name + ".tss"), std::string(h)}) {
            auto key = ks().generate(uri(u), alg);
            ASSERT_TRUE(key) << u << ": " << key.error().describe();
            made.emplace_back((*key)->uri().to_string(), (*key)->public_key_der());
        }
    }
    const std::string path = keys_ + "/ec-p256.tss";
    EXPECT_TRUE(read_all(path).starts_with("-----BEGIN TSS2 PRIVATE KEY-----\n"));
    struct stat st{};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    disconnect();  // the same keys through a new connection (and new transient SRK)
    for (auto& [u, spki] : made) {
        auto key = ks().open(uri(u));
        ASSERT_TRUE(key) << u << ": " << key.error().describe();
        EXPECT_EQ((*key)->public_key_der(), spki) << u;
        expect_signs(*key, 2);
    }
    for (auto& [u, spki] : made) EXPECT_TRUE(ks().destroy(uri(u))) << u;
}

TEST_F(TpmOnly, Rsa4096IsUnsupportedAndLeavesNothingBehind) {
    auto f = ks().generate(uri(file_uri("rsa4096.tss")), KeyAlgorithm::rsa_4096);
    ASSERT_FALSE(f);
    EXPECT_EQ(f.error().code, Errc::unsupported);
    EXPECT_NE(f.error().message.find("3072"), std::string::npos) << f.error().message;
    EXPECT_FALSE(fs::exists(keys_ + "/rsa4096.tss"));
    auto h = ks().generate(uri("tpm2:handle=0x81000180"), KeyAlgorithm::rsa_4096);
    ASSERT_FALSE(h);
    EXPECT_EQ(h.error().code, Errc::unsupported);
    auto open = ks().open(uri("tpm2:handle=0x81000180"));
    ASSERT_FALSE(open);
    EXPECT_EQ(open.error().code, Errc::not_found);
}

TEST_F(TpmOnly, PropertiesComeFromTheTpm) {
    auto file_key = ks().generate(uri(file_uri("props.tss")), KeyAlgorithm::ec_p256);
    ASSERT_TRUE(file_key) << file_key.error().describe();
    auto handle_key = ks().generate(uri("tpm2:handle=0x81000203"), KeyAlgorithm::rsa_2048);
    ASSERT_TRUE(handle_key) << handle_key.error().describe();
    for (const KeyPtr& key : {*file_key, *handle_key}) {
        SCOPED_TRACE(key->uri().to_string());
        for (auto& [name, want] : tpm_properties()) EXPECT_EQ(prop(key, name), want) << name;
        EXPECT_EQ(prop(key, "tcti"), Swtpm::tcti());
        EXPECT_EQ(prop(key, "manufacturer"), "IBM");
        EXPECT_EQ(prop(key, "manufacturer-id"), "0x49424d00");
        EXPECT_NE(prop(key, "firmware-version"), "<absent>");
        EXPECT_EQ(prop(key, "auth"), "none (password session)");
    }
    EXPECT_EQ(prop(*handle_key, "storage"), "persistent handle 0x81000203");
    handle_key->reset();
    EXPECT_TRUE(ks().destroy(uri("tpm2:handle=0x81000203")));
}

TEST_F(TpmOnly, RefusesToOverwriteOrToEvictWhatIsNotAKey) {
    const std::string path = keys_ + "/taken.tss";
    ASSERT_TRUE(base::write_file_atomic(path, "not a key\n", 0600));
    auto over_file = ks().generate(uri("tpm2:path=" + path), KeyAlgorithm::ec_p256);
    ASSERT_FALSE(over_file);
    EXPECT_EQ(over_file.error().code, Errc::exists);
    EXPECT_EQ(read_all(path), "not a key\n");
    auto not_key = ks().destroy(uri("tpm2:path=" + path));  // not a TSS2 key file
    ASSERT_FALSE(not_key);
    EXPECT_EQ(read_all(path), "not a key\n");
    auto srk = ks().generate(uri("tpm2:handle=0x81000001"), KeyAlgorithm::ec_p256);
    ASSERT_FALSE(srk);
    EXPECT_EQ(srk.error().code, Errc::usage);
    auto platform = ks().generate(uri("tpm2:handle=0x81800000"), KeyAlgorithm::ec_p256);
    ASSERT_FALSE(platform);
    EXPECT_EQ(platform.error().code, Errc::usage);
    auto range = ks().open(uri("tpm2:handle=0x80000000"));
    ASSERT_FALSE(range);
    EXPECT_EQ(range.error().code, Errc::usage);
}

TEST_F(TpmOnly, AuthValueSignsAndAWrongOneReachesTheTpmOnce) {
    const std::string good = pin_file("good.pin", "correct horse");
    const std::string bad = pin_file("bad.pin", "wrong horse");
    const std::string with_good = "?pin-source=file:" + good;
    auto key = ks().generate(uri(file_uri("auth.tss", with_good)), KeyAlgorithm::ec_p256);
    ASSERT_TRUE(key) << key.error().describe();
    expect_signs(*key, 5);
    EXPECT_NE(prop(*key, "auth").find("salted HMAC"), std::string::npos);
    auto hkey = ks().generate(uri("tpm2:handle=0x81000205" + with_good), KeyAlgorithm::ec_p384);
    ASSERT_TRUE(hkey) << hkey.error().describe();
    expect_signs(*hkey, 5);
    key->reset();
    hkey->reset();
    disconnect();
    const long failures_before = getcap_value("properties-variable", "TPM2_PT_LOCKOUT_COUNTER");

    for (const std::string& u : {file_uri("auth.tss"), std::string("tpm2:handle=0x81000205")}) {
        SCOPED_TRACE(u);
        auto right = ks().open(uri(u + with_good));
        ASSERT_TRUE(right) << right.error().describe();
        expect_signs(*right, 3);
    }
    auto wrong = ks().open(uri(file_uri("auth.tss", "?pin-source=file:" + bad)));
    ASSERT_TRUE(wrong) << wrong.error().describe();  // loading needs no auth; signing does
    auto sig = (*wrong)->sign(random_bytes(10));
    ASSERT_FALSE(sig);
    EXPECT_EQ(sig.error().code, Errc::pin_incorrect) << sig.error().describe();
    EXPECT_TRUE(sig.error().native.has_value());
    // Never retried: the same Key answers again without sending the wrong value.
    auto sig2 = (*wrong)->sign(random_bytes(10));
    ASSERT_FALSE(sig2);
    EXPECT_EQ(sig2.error().code, Errc::pin_incorrect);
    wrong->reset();
    disconnect();
    EXPECT_EQ(getcap_value("properties-variable", "TPM2_PT_LOCKOUT_COUNTER"), failures_before + 1)
        << "a wrong auth value must reach the TPM exactly once";

    // Without its auth value the key fails the same way, and the message says what to add.
    auto no_pin = ks().open(uri("tpm2:handle=0x81000205"));
    ASSERT_TRUE(no_pin);
    auto sig3 = (*no_pin)->sign(random_bytes(10));
    ASSERT_FALSE(sig3);
    EXPECT_EQ(sig3.error().code, Errc::pin_incorrect);
    EXPECT_NE(sig3.error().message.find("pin-source"), std::string::npos) << sig3.error().message;
    no_pin->reset();
    EXPECT_TRUE(ks().destroy(uri("tpm2:handle=0x81000205")));
    disconnect();
    EXPECT_EQ(tool({"tpm2_dictionarylockout", "--clear-lockout"}).code, 0);  // for later tests
}

TEST_F(TpmOnly, TooManyWrongAuthValuesGivePinLocked) {
    const std::string good = pin_file("good.pin", "1234");
    const std::string bad = pin_file("bad.pin", "0000");
    auto key =
        ks().generate(uri(file_uri("lock.tss", "?pin-source=file:" + good)), KeyAlgorithm::ec_p256);
    ASSERT_TRUE(key) << key.error().describe();
    key->reset();
    disconnect();
    const long max_tries = getcap_value("properties-variable", "TPM2_PT_MAX_AUTH_FAIL");
    ASSERT_GT(max_tries, 0);
    Errc last = Errc::internal;
    for (long i = 0; i <= max_tries; ++i) {  // a Key tries once, so a new Key per attempt
        auto k = ks().open(uri(file_uri("lock.tss", "?pin-source=file:" + bad)));
        ASSERT_TRUE(k);
        auto sig = (*k)->sign(random_bytes(10));
        ASSERT_FALSE(sig);
        last = sig.error().code;
        if (i < max_tries) {
            EXPECT_EQ(last, Errc::pin_incorrect) << i << ": " << sig.error().describe();
        }
    }
    EXPECT_EQ(last, Errc::pin_locked);
    auto right = ks().open(uri(file_uri("lock.tss", "?pin-source=file:" + good)));
    ASSERT_TRUE(right);
    auto sig = (*right)->sign(random_bytes(10));  // even the right value, while locked out
    ASSERT_FALSE(sig);
    EXPECT_EQ(sig.error().code, Errc::pin_locked) << sig.error().describe();
    right->reset();
    disconnect();
    EXPECT_EQ(tool({"tpm2_dictionarylockout", "--clear-lockout"}).code, 0);
}

// docs/SECURITY.md rule 12, on the wire: with the pcap TCTI between us and swtpm, the auth value
// never appears (creation and signing run in the salted session, inSensitive and the digest
// parameter-encrypted); without an auth value the digest does appear (the capture works).
TEST_F(TpmOnly, AuthValueAndDigestNeverCrossTheWireInClear) {
    const std::string capture = keys_ + "/tpm.pcap";
    ::setenv("TCTI_PCAP_FILE", capture.c_str(), 1);
    std::string secret(24, 'x');
    for (char& c : secret) c = static_cast<char>('a' + random_bytes(1)[0] % 26);
    const std::string pin = pin_file("s.pin", secret);
    const Bytes msg_auth = random_bytes(64), msg_plain = random_bytes(64);
    {
        auto pcap = tpm::make_keystore("pcap:" + Swtpm::tcti());
        auto with = pcap->generate(uri(file_uri("secret.tss", "?pin-source=file:" + pin)),
                                   KeyAlgorithm::ec_p256);
        ASSERT_TRUE(with) << with.error().describe();
        ASSERT_TRUE((*with)->sign(msg_auth));
        auto without = pcap->generate(uri(file_uri("plain.tss")), KeyAlgorithm::ec_p256);
        ASSERT_TRUE(without) << without.error().describe();
        ASSERT_TRUE((*without)->sign(msg_plain));
    }
    ::unsetenv("TCTI_PCAP_FILE");
    const std::string wire = read_all(capture);
    ASSERT_GT(wire.size(), 1000u);
    EXPECT_FALSE(contains(wire, base::as_bytes(secret))) << "the auth value went over the wire";
    EXPECT_FALSE(contains(wire, base::ossl::digest("SHA256", msg_auth)))
        << "the digest signed with an auth value went unencrypted";
    EXPECT_TRUE(contains(wire, base::ossl::digest("SHA256", msg_plain)))
        << "control: the capture should show a password-session digest";
}

TEST_F(TpmOnly, ManySignaturesAndKeysLeaveNoTransientObjects) {
    const long baseline = transient_handles();
    {
        auto a = ks().generate(uri(file_uri("a.tss")), KeyAlgorithm::ec_p256);
        ASSERT_TRUE(a) << a.error().describe();
        expect_signs(*a, 500);
        // Four key files open at once on a TPM with 3 object slots and no resource manager,
        // one with an auth value (salted session), plus a persistent key.
        auto b = ks().generate(uri(file_uri("b.tss")), KeyAlgorithm::ec_p384);
        auto c = ks().generate(uri(file_uri("c.tss")), KeyAlgorithm::rsa_2048);
        const std::string pin = pin_file("p.pin", "pw");
        auto d =
            ks().generate(uri(file_uri("d.tss", "?pin-source=file:" + pin)), KeyAlgorithm::ec_p256);
        auto e = ks().generate(uri("tpm2:handle=0x81000206"), KeyAlgorithm::ec_p256);
        ASSERT_TRUE(b && c && d && e);
        for (int round = 0; round < 20; ++round)
            for (const KeyPtr& k : {*a, *b, *c, *d, *e}) expect_signs(k);
        for (const KeyPtr& k : {*a, *b, *c, *d}) {  // opened keys load at once
            auto again = ks().open(k->uri());
            ASSERT_TRUE(again) << again.error().describe();
            expect_signs(*again);
        }
        e->reset();
        EXPECT_TRUE(ks().destroy(uri("tpm2:handle=0x81000206")));
    }
    disconnect();
    EXPECT_EQ(transient_handles(), baseline);
}

TEST_F(TpmOnly, SignsFromSeveralThreads) {
    auto key = ks().generate(uri(file_uri("mt.tss")), KeyAlgorithm::ec_p256);
    ASSERT_TRUE(key);
    std::atomic<int> good{0};
    std::vector<std::thread> threads;
    threads.reserve(4);
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 250; ++i) {
                const Bytes msg = random_bytes(40);
                auto sig = (*key)->sign(msg);
                if (sig && keystore::verify_jws_signature((*key)->public_key_der(), msg, *sig))
                    ++good;
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(good.load(), 1000);
}

// Our key files sign through `openssl pkeyutl -provider tpm2` (tpm2-openssl 1.1.1), with
// and without an auth value, and a file made by `openssl genpkey -provider tpm2` signs here.
TEST_F(TpmOnly, KeyFilesInteroperateWithTpm2Openssl) {
    struct Made {
        std::string path;
        std::string digest;
        Bytes spki;
        std::string pin;  // pin file, empty for keys without an auth value
    };
    std::vector<Made> made;
    struct Case {
        KeyAlgorithm alg;
        const char* digest;
        bool auth;
    };
    for (Case c : {Case{KeyAlgorithm::ec_p256, "sha256", false},
                   Case{KeyAlgorithm::ec_p384, "sha384", false},
                   Case{KeyAlgorithm::rsa_2048, "sha256", false},
                   Case{KeyAlgorithm::ec_p256, "sha256", true}}) {
        const std::string name =
            "ossl-" + std::string(keystore::algorithm_name(c.alg)) + (c.auth ? "-auth" : "");
        const std::string pin = c.auth ? pin_file(name + ".pin", "open sesame") : "";
        const std::string path = keys_ + "/" + name + ".tss";
        auto key = ks().generate(
            uri("tpm2:path=" + path + (c.auth ? "?pin-source=file:" + pin : "")), c.alg);
        ASSERT_TRUE(key) << key.error().describe();
        made.push_back({path, c.digest, (*key)->public_key_der(), pin});
    }
    disconnect();
    const std::string msg_path = keys_ + "/msg.bin";
    const Bytes msg = random_bytes(300);
    ASSERT_TRUE(base::write_file_atomic(msg_path, std::string(msg.begin(), msg.end()), 0600));
    for (const Made& m : made) {
        SCOPED_TRACE(m.path);
        std::vector<std::string> argv{"openssl",   "pkeyutl", "-provider", "tpm2",
                                      "-provider", "default", "-sign",     "-inkey",
                                      m.path,      "-rawin",  "-digest",   m.digest,
                                      "-in",       msg_path,  "-out",      m.path + ".sig"};
        if (!m.pin.empty()) argv.insert(argv.end(), {"-passin", "file:" + m.pin});
        auto r = tool(argv);
        ASSERT_EQ(r.code, 0) << r.err;
        const std::string der = read_all(m.path + ".sig");
        Bytes sig(der.begin(), der.end());
        auto pkey = base::ossl::pkey_from_spki(m.spki);
        ASSERT_TRUE(pkey);
        if (EVP_PKEY_get_base_id(pkey->get()) == EVP_PKEY_EC) {
            auto raw = keystore::ecdsa_der_to_raw(
                sig, static_cast<std::size_t>(EVP_PKEY_get_bits(pkey->get()) / 8));
            ASSERT_TRUE(raw);
            sig = *raw;
        }
        EXPECT_TRUE(keystore::verify_jws_signature(m.spki, msg, sig))
            << "tpm2-openssl's signature with our key file does not verify with our public key";
    }

    const std::string theirs = keys_ + "/theirs.tss";
    auto g = tool({"openssl", "genpkey", "-provider", "tpm2", "-provider", "default", "-algorithm",
                   "EC", "-pkeyopt", "group:P-256", "-out", theirs});
    ASSERT_EQ(g.code, 0) << g.err;
    auto key = ks().open(uri("tpm2:path=" + theirs));
    ASSERT_TRUE(key) << key.error().describe();
    EXPECT_EQ((*key)->algorithm(), KeyAlgorithm::ec_p256);
    expect_signs(*key, 20);
    key->reset();
    disconnect();
    EXPECT_EQ(transient_handles(), 0);
}

// With a persistent SRK at 0x81000001 (TCG template: unique = 32 zero bytes per coordinate)
// new key files name it as their parent, and tpm2-openssl still loads them.
TEST_F(TpmOnly, UsesThePersistentSrkWhenPresent) {
    const std::string ctx = keys_ + "/srk.ctx";
    const std::string unique = keys_ + "/unique.bin";
    std::string u;  // tpm2-tools reads TPMU_PUBLIC_ID with little-endian sizes
    for (int i = 0; i < 2; ++i) u += std::string("\x20\x00", 2) + std::string(32, '\0');
    ASSERT_TRUE(base::write_file_atomic(unique, u, 0600));
    auto mk = tool({"tpm2_createprimary", "-C", "o", "-g", "sha256", "-G", "ecc256:aes128cfb", "-a",
                    "fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt",
                    "-u", unique, "-c", ctx});
    ASSERT_EQ(mk.code, 0) << mk.err;
    auto ev = tool({"tpm2_evictcontrol", "-C", "o", "-c", ctx, "0x81000001"});
    ASSERT_EQ(ev.code, 0) << ev.err;
    ASSERT_EQ(tool({"tpm2_flushcontext", "-t"}).code, 0);

    const std::string path = keys_ + "/under-srk.tss";
    auto key = ks().generate(uri("tpm2:path=" + path), KeyAlgorithm::ec_p256);
    ASSERT_TRUE(key) << key.error().describe();
    expect_signs(*key, 3);
    EXPECT_NE(prop(*key, "storage").find("parent 0x81000001"), std::string::npos)
        << prop(*key, "storage");
    const Bytes spki = (*key)->public_key_der();
    key->reset();
    disconnect();
    const std::string msg_path = keys_ + "/m.bin";
    ASSERT_TRUE(base::write_file_atomic(msg_path, "hello", 0600));
    auto r =
        tool({"openssl", "pkeyutl", "-provider", "tpm2", "-provider", "default", "-sign", "-inkey",
              path, "-rawin", "-digest", "sha256", "-in", msg_path, "-out", path + ".sig"});
    ASSERT_EQ(r.code, 0) << r.err;
    const std::string der = read_all(path + ".sig");
    auto raw = keystore::ecdsa_der_to_raw(Bytes(der.begin(), der.end()), 32);
    ASSERT_TRUE(raw);
    EXPECT_TRUE(keystore::verify_jws_signature(spki, base::as_bytes("hello"), *raw));
    EXPECT_EQ(tool({"tpm2_evictcontrol", "-C", "o", "-c", "0x81000001"}).code, 0);
}

TEST_F(TpmOnly, ListsOnlyKeyFilesAndSigningKeys) {
    auto a = ks().generate(uri(file_uri("one.tss")), KeyAlgorithm::ec_p256);
    auto b = ks().generate(uri(file_uri("two.tss")), KeyAlgorithm::ec_p384);
    ASSERT_TRUE(a && b);
    ASSERT_TRUE(base::write_file_atomic(keys_ + "/notes.txt", "x", 0600));
    ASSERT_TRUE(base::write_file_atomic(keys_ + "/junk.tss", "x", 0600));
    auto files = ks().list(uri("tpm2:path=" + keys_));
    ASSERT_TRUE(files) << files.error().describe();
    ASSERT_EQ(files->size(), 2u);
    EXPECT_EQ(*(*files)[0].uri.path_attr("path"), keys_ + "/one.tss");
    EXPECT_EQ((*files)[1].algorithm, KeyAlgorithm::ec_p384);
}

TEST_F(TpmOnly, NoTpmIsNeededUntilAKeyIsUsed) {
    auto a = ks().generate(uri(file_uri("lazy.tss")), KeyAlgorithm::ec_p256);
    ASSERT_TRUE(a);
    a->reset();
    // Nothing listens on port 1: listing key files still works, a TPM operation names the
    // TCTI it could not reach.
    auto offline = tpm::make_keystore("swtpm:host=127.0.0.1,port=1");
    auto files = offline->list(uri("tpm2:path=" + keys_));
    ASSERT_TRUE(files) << files.error().describe();
    EXPECT_EQ(files->size(), 1u);
    auto open = offline->open(uri("tpm2:handle=0x81000002"));
    ASSERT_FALSE(open);
    EXPECT_EQ(open.error().code, Errc::module_load);
    EXPECT_NE(open.error().message.find("swtpm:host=127.0.0.1,port=1"), std::string::npos)
        << open.error().message;
}

TEST_F(TpmOnly, StoppedTpmGivesAClearErrorAndTheKeyFileSurvives) {
    const std::string path = keys_ + "/survivor.tss";
    auto key = ks().generate(uri("tpm2:path=" + path), KeyAlgorithm::ec_p256);
    ASSERT_TRUE(key) << key.error().describe();
    expect_signs(*key);
    const std::string before = read_all(path);
    const Bytes spki = (*key)->public_key_der();
    const std::string old_tcti = Swtpm::tcti();

    Swtpm::stop();
    auto sig = (*key)->sign(random_bytes(10));
    ASSERT_FALSE(sig);
    EXPECT_TRUE(sig.error().code == Errc::hardware || sig.error().code == Errc::module_load)
        << sig.error().describe();
    auto sig2 = (*key)->sign(random_bytes(10));  // reconnects, finds nobody
    ASSERT_FALSE(sig2);
    EXPECT_EQ(sig2.error().code, Errc::module_load) << sig2.error().describe();
    EXPECT_NE(sig2.error().message.find(old_tcti), std::string::npos) << sig2.error().message;
    key->reset();
    disconnect();
    EXPECT_EQ(read_all(path), before);

    Swtpm::start();  // the same TPM state on a new port: the file is still the key
    ASSERT_FALSE(HasFatalFailure());
    auto again = ks().open(uri("tpm2:path=" + path));
    ASSERT_TRUE(again) << again.error().describe();
    EXPECT_EQ((*again)->public_key_der(), spki);
    expect_signs(*again);
}

}  // namespace
}  // namespace conformance
