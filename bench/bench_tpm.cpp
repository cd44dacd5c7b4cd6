// bench_tpm: TPM signatures per second through the keystore versus raw Esys_Sign on the
// same key, and TPM commands per keystore signature, in one process and one run (see
// bench/README.md).
//
//   sign/<ALG>/keystore_tpm     keystore::Key::sign of a tpm2:path= key file (generated
//                               through the keystore; no auth value: password session)
//   sign/<ALG>/raw_Esys_Sign    the same key file, own ESYS context: CreatePrimary(SRK
//                               template) + Load once, then per signature host SHA-256
//                               (EVP_MD fetched once) + Esys_Sign(ESYS_TR_PASSWORD)
//   paired/<ALG>/keystore_vs_raw  the two alternating in batches of a few ms
//
// swtpm serves one connection at a time and the keystore keeps its connection, so the
// benchmark runs TWO swtpm processes started from the same state (the second one's state
// directory is a copy of the first's, made after the first manufactured its seeds): the
// keystore talks to A, the raw baseline to B, and the same key file loads in both. That is
// what makes the paired (alternating) measurement possible.
//
// Before timing, the keystore signs N times on B through the pcap TCTI
// ("pcap:swtpm:host=...,port=..." with TCTI_PCAP_FILE) and the capture is parsed to count
// the TPM commands per signature (target: exactly 1, TPM2_Sign).
//
// Everything lives in a temporary directory under the build directory; both swtpm are
// stopped and the directory removed at exit (BENCH_KEEP_TPM=1 keeps the directory).
#include "base/ossl.h"
#include "keystore/ecdsa.h"
#include "keystore/keystore.h"
#include "tpm/key_file.h"
#include "tpm/templates.h"
#include "tpm/tpm_keystore.h"

#include <benchmark/benchmark.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#ifndef ACME_AGENT_SOURCE_DIR
#error "ACME_AGENT_SOURCE_DIR must be defined (bench/CMakeLists.txt)"
#endif
#ifndef BENCH_BINARY_DIR
#error "BENCH_BINARY_DIR must be defined (bench/CMakeLists.txt)"
#endif

namespace {

using base::Bytes;
using keystore::KeyAlgorithm;
using keystore::KeyPtr;

void stop_all();

[[noreturn]] void die(const std::string& what) {
    std::fprintf(stderr, "bench_tpm: %s\n", what.c_str());
    stop_all();
    std::exit(1);
}

template <typename T>
T must(base::Result<T> r, const std::string& what) {
    if (!r) die(what + ": " + r.error().describe());
    return std::move(*r);
}

std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

std::string script(const char* name) {
    return std::string(ACME_AGENT_SOURCE_DIR) + "/scripts/" + name;
}

// ---- the simulators ------------------------------------------------------------------

std::vector<std::string> g_running;  // swtpm directories to stop at exit

// scripts/swtpm-setup.sh DIR, eval'd; returns its ACME_AGENT_TCTI.
std::string swtpm_up(const std::string& dir) {
    const std::string cmd =
        "bash -c 'set -e; eval \"$(\"$0\" \"$1\")\"; printf %s \"$ACME_AGENT_TCTI\"' " +
        shell_quote(script("swtpm-setup.sh")) + " " + shell_quote(dir) + " 2>>" +
        shell_quote(dir + ".setup.log");
    FILE* p = ::popen(cmd.c_str(), "r");
    if (!p) die("popen swtpm-setup.sh");
    std::string out;
    char chunk[256];
    for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, p)) > 0;) out.append(chunk, n);
    const int rc = ::pclose(p);
    g_running.push_back(dir);
    if (rc != 0 || !out.starts_with("swtpm:"))
        die("scripts/swtpm-setup.sh failed; see " + dir + ".setup.log");
    return out;
}

void swtpm_down(const std::string& dir) {
    const std::string cmd = shell_quote(script("swtpm-down.sh")) + " " + shell_quote(dir);
    if (std::system(cmd.c_str()) != 0)
        std::fprintf(stderr, "bench_tpm: swtpm-down.sh %s failed\n", dir.c_str());
    std::erase(g_running, dir);
}

void stop_all() {
    auto dirs = g_running;
    for (const auto& d : dirs) swtpm_down(d);
}

// ---- the raw ESAPI baseline ------------------------------------------------------------

// What a program using ESAPI directly does: its own context, the key file loaded once under
// a primary from the same template (flushed after the load), and per signature a host
// SHA-256 plus one Esys_Sign with a password session.
class RawTpm {
  public:
    explicit RawTpm(const std::string& tcti)
        : md_(EVP_MD_fetch(nullptr, "SHA256", "provider=default")) {
        if (!md_) die("EVP_MD_fetch SHA256");
        check("Tss2_TctiLdr_Initialize", Tss2_TctiLdr_Initialize(tcti.c_str(), &tcti_));
        check("Esys_Initialize", Esys_Initialize(&esys_, tcti_, nullptr));
    }
    ~RawTpm() {
        for (auto& [alg, tr] : keys_) Esys_FlushContext(esys_, tr);
        if (esys_) Esys_Finalize(&esys_);
        if (tcti_) Tss2_TctiLdr_Finalize(&tcti_);
        EVP_MD_free(md_);
    }
    RawTpm(const RawTpm&) = delete;
    RawTpm& operator=(const RawTpm&) = delete;

    void load(KeyAlgorithm alg, const std::string& path) {
        std::ifstream in(path);
        std::stringstream ss;
        ss << in.rdbuf();
        auto file = must(tpm::decode_key_file(ss.str(), path), "decode " + path);
        auto pub = must(tpm::unmarshal_public(file.pub), "unmarshal public");
        auto priv = must(tpm::unmarshal_private(file.priv), "unmarshal private");
        if (file.parent != tpm::kOwnerParent) die(path + ": expected parent 0x40000001");
        TPM2B_SENSITIVE_CREATE sensitive{};
        TPM2B_PUBLIC tmpl = tpm::srk_template();
        TPM2B_DATA outside{};
        TPML_PCR_SELECTION pcrs{};
        ESYS_TR primary = ESYS_TR_NONE;
        check("Esys_CreatePrimary",
              Esys_CreatePrimary(esys_, ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                 ESYS_TR_NONE, &sensitive, &tmpl, &outside, &pcrs, &primary,
                                 nullptr, nullptr, nullptr, nullptr));
        ESYS_TR key = ESYS_TR_NONE;
        const TSS2_RC rc = Esys_Load(esys_, primary, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
                                     &priv, &pub, &key);
        Esys_FlushContext(esys_, primary);
        check("Esys_Load", rc);
        keys_[alg] = key;
    }

    // One signature; the TPMT_SIGNATURE is freed unless `out` takes it.
    TSS2_RC sign(KeyAlgorithm alg, std::span<const std::uint8_t> message,
                 TPMT_SIGNATURE** out = nullptr) const {
        TPM2B_DIGEST digest{};
        unsigned int len = 0;
        if (!EVP_Digest(message.data(), message.size(), digest.buffer, &len, md_, nullptr))
            return TSS2_BASE_RC_GENERAL_FAILURE;
        digest.size = static_cast<UINT16>(len);
        const TPMT_SIG_SCHEME scheme = tpm::sig_scheme(alg);
        TPMT_TK_HASHCHECK ticket{};
        ticket.tag = TPM2_ST_HASHCHECK;
        ticket.hierarchy = TPM2_RH_NULL;
        TPMT_SIGNATURE* sig = nullptr;
        const TSS2_RC rc = Esys_Sign(esys_, keys_.at(alg), ESYS_TR_PASSWORD, ESYS_TR_NONE,
                                     ESYS_TR_NONE, &digest, &scheme, &ticket, &sig);
        if (out)
            *out = sig;
        else
            Esys_Free(sig);
        return rc;
    }

    static void check(const char* call, TSS2_RC rc) {
        if (rc != TSS2_RC_SUCCESS) die(std::string(call) + ": " + Tss2_RC_Decode(rc));
    }

  private:
    EVP_MD* md_;
    TSS2_TCTI_CONTEXT* tcti_ = nullptr;
    ESYS_CONTEXT* esys_ = nullptr;
    std::map<KeyAlgorithm, ESYS_TR> keys_;
};

// The JWS form of a raw signature (r || s, or the RSA signature), for the sanity check.
Bytes jws_form(const TPMT_SIGNATURE& sig, KeyAlgorithm alg) {
    if (keystore::is_ec(alg)) {
        const std::size_t w = keystore::ec_field_size(alg);
        const auto& r = sig.signature.ecdsa.signatureR;
        const auto& s = sig.signature.ecdsa.signatureS;
        Bytes out(2 * w, 0);
        std::copy(r.buffer, r.buffer + r.size,
                  out.begin() + static_cast<std::ptrdiff_t>(w - r.size));
        std::copy(s.buffer, s.buffer + s.size,
                  out.begin() + static_cast<std::ptrdiff_t>(2 * w - s.size));
        return out;
    }
    const auto& rs = sig.signature.rsassa.sig;
    return Bytes(rs.buffer, rs.buffer + rs.size);
}

// ---- counting TPM commands in a pcap TCTI capture ----------------------------------------

struct Command {
    std::uint32_t code = 0;
    std::uint32_t rc = 0xFFFFFFFF;  // the response code of the response that followed
};
struct Capture {
    std::vector<Command> commands;  // in order
};

std::uint32_t le32(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
           static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}
std::uint32_t be32(const std::uint8_t* p) {
    return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
           static_cast<std::uint32_t>(p[2]) << 8 | static_cast<std::uint32_t>(p[3]);
}
std::uint16_t be16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>(p[0] << 8 | p[1]);
}

// The tpm2-tss pcap TCTI writes pcapng (little endian as written here): one Enhanced
// Packet Block per transmit/receive, link type 228 (raw IPv4), a fake TCP segment whose
// destination port is 2321 for commands and source port 2321 for responses. A command's
// payload starts with tag 0x8001/0x8002, a 4-byte size and the 4-byte command code.
Capture parse_pcap(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    const std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto* d = reinterpret_cast<const std::uint8_t*>(raw.data());
    const std::size_t n = raw.size();
    if (n < 12 || le32(d) != 0x0A0D0D0A || le32(d + 8) != 0x1A2B3C4D)
        die(path + ": not a little-endian pcapng capture");
    Capture c;
    for (std::size_t off = 0; off + 12 <= n;) {
        const std::uint32_t type = le32(d + off), len = le32(d + off + 4);
        if (len < 12 || off + len > n) die(path + ": truncated block");
        if (type == 6 && len >= 28 + 40) {  // Enhanced Packet Block
            const std::uint8_t* pkt = d + off + 28;
            const std::size_t caplen = le32(d + off + 20);
            if (caplen > len - 28) die(path + ": bad captured length");
            const std::size_t ihl = (pkt[0] & 0x0F) * 4u;
            if ((pkt[0] >> 4) != 4 || caplen < ihl + 20) die(path + ": not IPv4/TCP");
            const std::uint8_t* tcp = pkt + ihl;
            const std::size_t thl = (tcp[12] >> 4) * 4u;
            const std::uint16_t dport = be16(tcp + 2);
            const std::uint8_t* payload = tcp + thl;
            const std::size_t plen = caplen - ihl - thl;
            const std::uint16_t tag = plen >= 10 ? be16(payload) : 0;
            if (tag == 0x8001 || tag == 0x8002) {
                if (dport == 2321)
                    c.commands.push_back({be32(payload + 6)});
                else if (be16(tcp) == 2321 && !c.commands.empty())
                    c.commands.back().rc = be32(payload + 6);
            }
        }
        off += len;
    }
    return c;
}

std::string cc_name(std::uint32_t cc) {
    switch (cc) {
        case 0x15D:
            return "Sign";
        case 0x157:
            return "Load";
        case 0x131:
            return "CreatePrimary";
        case 0x165:
            return "FlushContext";
        case 0x17A:
            return "GetCapability";
        case 0x173:
            return "ReadPublic";
        case 0x176:
            return "StartAuthSession";
        case 0x186:
            return "HashSequenceStart";
        case 0x15B:
            return "SequenceUpdate";
        case 0x13E:
            return "SequenceComplete";
        case 0x17D:
            return "Hash";
        case 0x144:
            return "Startup";
        default: {
            char buf[16];
            std::snprintf(buf, sizeof buf, "0x%03X", cc);
            return buf;
        }
    }
}

struct CountResult {
    std::size_t total = 0;
    std::size_t per_sig_window = 0;  // commands after the warm-up signature, up to the last Sign
    std::size_t signs_in_window = 0;
    std::size_t retries = 0;  // commands ESAPI resent after TPM_RC_RETRY / YIELDED / TESTING
    std::size_t retries_before_window = 0;
    std::map<std::string, std::size_t> by_code;  // whole capture
    std::map<std::string, std::size_t> window_by_code;
};

// Opens the key files through a keystore on the pcap TCTI, signs once (the load), then
// n times, and counts the commands of the n signatures.
CountResult count_commands(const std::string& tcti, const std::string& pcap,
                           const std::vector<std::pair<std::string, std::string>>& keys_by_name,
                           const std::string& which, int n, const Bytes& msg) {
    ::setenv("TCTI_PCAP_FILE", pcap.c_str(), 1);
    {
        auto ks = tpm::make_keystore("pcap:" + tcti);
        for (const auto& [name, uri] : keys_by_name) {
            if (name != which) continue;
            KeyPtr k =
                must(ks->open(must(keystore::KeyUri::parse(uri), "KeyUri::parse")), "open " + uri);
            (void)must(k->sign(msg), "warm-up sign");
            for (int i = 0; i < n; ++i) (void)must(k->sign(msg), "counted sign");
        }
    }  // closes the connection and the capture
    ::unsetenv("TCTI_PCAP_FILE");
    const Capture c = parse_pcap(pcap);
    CountResult r;
    r.total = c.commands.size();
    auto is_retry = [](std::uint32_t rc) { return rc == 0x922 || rc == 0x908 || rc == 0x90A; };
    for (const auto& cmd : c.commands) {
        ++r.by_code[cc_name(cmd.code)];
        if (is_retry(cmd.rc)) ++r.retries;
    }
    // The window starts after the warm-up signature's successful TPM2_Sign (the TPM may
    // answer the first Sign after a load with TPM_RC_RETRY, which ESAPI resends itself).
    const auto first = std::find_if(c.commands.begin(), c.commands.end(),
                                    [](const Command& x) { return x.code == 0x15D && x.rc == 0; });
    if (first == c.commands.end()) return r;
    for (auto it = c.commands.begin(); it != first; ++it)
        if (is_retry(it->rc)) ++r.retries_before_window;
    auto last = c.commands.end();
    while (last != first && (last - 1)->code != 0x15D) --last;
    for (auto it = first + 1; it != last; ++it) {
        ++r.per_sig_window;
        ++r.window_by_code[cc_name(it->code)];
        if (it->code == 0x15D) ++r.signs_in_window;
    }
    return r;
}

// ---- benchmark bodies ---------------------------------------------------------------

Bytes make_message() {
    Bytes m(330);
    RAND_bytes(m.data(), static_cast<int>(m.size()));
    for (auto& b : m) b = static_cast<std::uint8_t>('A' + b % 26);
    return m;
}

void bm_keystore_sign(benchmark::State& state, const KeyPtr& key, const Bytes& msg) {
    for (auto _ : state) {
        auto sig = key->sign(msg);
        if (!sig) {
            state.SkipWithError(sig.error().describe().c_str());
            break;
        }
        benchmark::DoNotOptimize(sig->data());
    }
    state.SetItemsProcessed(state.iterations());
}

void bm_raw_sign(benchmark::State& state, const RawTpm& raw, KeyAlgorithm alg, const Bytes& msg) {
    for (auto _ : state) {
        if (TSS2_RC rc = raw.sign(alg, msg); rc != TSS2_RC_SUCCESS) {
            state.SkipWithError((std::string("raw Esys_Sign: ") + Tss2_RC_Decode(rc)).c_str());
            break;
        }
    }
    state.SetItemsProcessed(state.iterations());
}

// keystore (swtpm A) and raw Esys_Sign (swtpm B) in alternating batches, order swapped every
// round. Counters keystore_per_s, raw_per_s, ks/raw (wall clock).
void bm_paired(benchmark::State& state, const KeyPtr& key, const RawTpm& raw, const Bytes& msg) {
    using clock = std::chrono::steady_clock;
    const KeyAlgorithm alg = key->algorithm();
    const int batch = keystore::is_ec(alg) ? 16 : 2;
    double wall[2] = {0, 0};
    std::int64_t count[2] = {0, 0};
    std::int64_t round = 0;
    bool ok = true;
    for (auto _ : state) {
        for (int k = 0; k < 2 && ok; ++k) {
            const int which = (round % 2 == 0) ? k : 1 - k;
            const auto w0 = clock::now();
            for (int i = 0; i < batch; ++i) {
                if (which == 0) {
                    auto r = key->sign(msg);
                    if (!r) {
                        state.SkipWithError(r.error().describe().c_str());
                        ok = false;
                        break;
                    }
                    benchmark::DoNotOptimize(r->data());
                } else if (TSS2_RC rc = raw.sign(alg, msg); rc != TSS2_RC_SUCCESS) {
                    state.SkipWithError(
                        (std::string("raw Esys_Sign: ") + Tss2_RC_Decode(rc)).c_str());
                    ok = false;
                    break;
                }
            }
            wall[which] += std::chrono::duration<double>(clock::now() - w0).count();
            count[which] += batch;
        }
        if (!ok) break;
        ++round;
    }
    if (!ok || wall[0] <= 0 || wall[1] <= 0) return;
    const double ks = static_cast<double>(count[0]) / wall[0];
    const double rw = static_cast<double>(count[1]) / wall[1];
    state.counters["keystore_per_s"] = ks;
    state.counters["raw_per_s"] = rw;
    state.counters["ks/raw"] = ks / rw;
    state.SetItemsProcessed(count[0] + count[1]);
}

// ---- reporting ----------------------------------------------------------------------

// The console reporter, keeping per benchmark the medians over its repetitions of every
// counter (or the "median" aggregates with --benchmark_display_aggregates_only=true).
class Collector : public benchmark::ConsoleReporter {
  public:
    using benchmark::ConsoleReporter::ConsoleReporter;
    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const auto& r : runs) {
            if (r.error_occurred) continue;
            const std::string& name = r.run_name.function_name;
            if (r.run_type == Run::RT_Aggregate) {
                if (r.aggregate_name != "median") continue;
                for (const auto& [c, v] : r.counters) aggregate_[{name, c}] = v.value;
                continue;
            }
            for (const auto& [c, v] : r.counters) samples_[{name, c}].push_back(v.value);
        }
    }
    double get(const std::string& name, const std::string& counter) const {
        if (auto it = samples_.find({name, counter}); it != samples_.end())
            return median(it->second);
        auto it = aggregate_.find({name, counter});
        return it == aggregate_.end() ? 0 : it->second;
    }

  private:
    static double median(std::vector<double> v) {
        if (v.empty()) return 0;
        std::sort(v.begin(), v.end());
        const std::size_t n = v.size();
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    }
    using Key = std::pair<std::string, std::string>;
    std::map<Key, double> aggregate_;
    std::map<Key, std::vector<double>> samples_;
};

bool has_flag(int argc, char** argv, const char* prefix) {
    for (int i = 1; i < argc; ++i)
        if (std::strncmp(argv[i], prefix, std::strlen(prefix)) == 0) return true;
    return false;
}

}  // namespace

int main(int argc, char** argv) {
    std::vector<std::string> extra;
    if (!has_flag(argc, argv, "--benchmark_repetitions"))
        extra.emplace_back("--benchmark_repetitions=5");
    if (!has_flag(argc, argv, "--benchmark_enable_random_interleaving"))
        extra.emplace_back("--benchmark_enable_random_interleaving=true");
    if (!has_flag(argc, argv, "--benchmark_min_time"))
        extra.emplace_back("--benchmark_min_time=0.5");
    std::vector<char*> args(argv, argv + argc);
    for (auto& e : extra) args.push_back(e.data());
    int nargs = static_cast<int>(args.size());
    args.push_back(nullptr);
    benchmark::Initialize(&nargs, args.data());
    if (benchmark::ReportUnrecognizedArguments(nargs, args.data())) return 1;

    const char* count_env = std::getenv("BENCH_TPM_COUNT");
    const int n_count = count_env ? std::max(1, std::atoi(count_env)) : 100;

    // Two simulators with the same seeds: A manufactures, is stopped, its state is copied
    // to B, then both start.
    std::string tmpl = std::string(BENCH_BINARY_DIR) + "/bench-tpm-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (!::mkdtemp(buf.data())) die("mkdtemp " + tmpl + ": " + std::strerror(errno));
    const std::string dir = buf.data();
    const std::string dir_a = dir + "/swtpm-a", dir_b = dir + "/swtpm-b";
    std::fprintf(stderr, "bench_tpm: working in %s\n", dir.c_str());
    swtpm_up(dir_a);
    swtpm_down(dir_a);
    std::error_code ec;
    std::filesystem::create_directories(dir_b, ec);
    std::filesystem::copy(dir_a + "/state", dir_b + "/state",
                          std::filesystem::copy_options::recursive, ec);
    if (ec) die("copying the swtpm state: " + ec.message());
    const std::string tcti_a = swtpm_up(dir_a);
    const std::string tcti_b = swtpm_up(dir_b);
    std::fprintf(stderr, "bench_tpm: keystore on %s, raw baseline on %s\n", tcti_a.c_str(),
                 tcti_b.c_str());

    struct Alg {
        const char* jws;
        KeyAlgorithm alg;
    };
    const Alg algs[] = {{"ES256", KeyAlgorithm::ec_p256}, {"RS256", KeyAlgorithm::rsa_2048}};
    const Bytes msg = make_message();
    std::map<std::string, CountResult> counts;
    {
        auto ks = tpm::make_keystore(tcti_a);
        std::vector<std::pair<std::string, std::string>> uris;
        std::map<std::string, KeyPtr> keys;
        for (const auto& a : algs) {
            const std::string uri = "tpm2:path=" + dir + "/" + a.jws + ".tss";
            keys[a.jws] =
                must(ks->generate(must(keystore::KeyUri::parse(uri), "KeyUri::parse"), a.alg),
                     std::string("generate ") + a.jws);
            uris.emplace_back(a.jws, uri);
        }
        // Commands per signature, on B (before the raw baseline connects to it).
        for (const auto& a : algs)
            counts[a.jws] =
                count_commands(tcti_b, dir + "/" + a.jws + ".pcap", uris, a.jws, n_count, msg);

        auto raw = std::make_unique<RawTpm>(tcti_b);
        for (const auto& a : algs) raw->load(a.alg, dir + "/" + a.jws + ".tss");
        // Sanity before timing: both paths give signatures the public key verifies.
        for (const auto& a : algs) {
            const KeyPtr& k = keys[a.jws];
            auto ks_sig = must(k->sign(msg), std::string("keystore sign ") + a.jws);
            TPMT_SIGNATURE* rs = nullptr;
            RawTpm::check("raw Esys_Sign", raw->sign(a.alg, msg, &rs));
            const Bytes raw_sig = jws_form(*rs, a.alg);
            Esys_Free(rs);
            if (!keystore::verify_jws_signature(k->public_key_der(), msg, ks_sig) ||
                !keystore::verify_jws_signature(k->public_key_der(), msg, raw_sig))
                die(std::string(a.jws) + ": a TPM signature does not verify");
        }
        const RawTpm& r = *raw;
        for (const auto& a : algs) {
            const std::string name = a.jws;
            KeyPtr k = keys[name];
            const KeyAlgorithm alg = a.alg;
            benchmark::RegisterBenchmark(
                ("sign/" + name + "/keystore_tpm").c_str(),
                [k, &msg](benchmark::State& s) { bm_keystore_sign(s, k, msg); })
                ->UseRealTime();
            benchmark::RegisterBenchmark(
                ("sign/" + name + "/raw_Esys_Sign").c_str(),
                [&r, alg, &msg](benchmark::State& s) { bm_raw_sign(s, r, alg, msg); })
                ->UseRealTime();
            benchmark::RegisterBenchmark(
                ("paired/" + name + "/keystore_vs_raw").c_str(),
                [k, &r, &msg](benchmark::State& s) { bm_paired(s, k, r, msg); })
                ->UseRealTime();
        }
        const bool tty = ::isatty(STDOUT_FILENO) != 0;
        Collector collector(tty ? benchmark::ConsoleReporter::OO_ColorTabular
                                : benchmark::ConsoleReporter::OO_Tabular);
        benchmark::RunSpecifiedBenchmarks(&collector);

        double load[3] = {0, 0, 0};
        ::getloadavg(load, 3);
        std::printf(
            "\nTPM signatures per second (swtpm), medians of the repetitions, wall clock "
            "(load average at end: %.2f %.2f %.2f)\n",
            load[0], load[1], load[2]);
        std::printf("%-6s %-10s %13s %13s %8s\n", "alg", "measure", "keystore_tpm", "raw_Esys_Sign",
                    "ks/raw");
        for (const auto& a : algs) {
            const std::string n = a.jws;
            const double ks_s = collector.get("sign/" + n + "/keystore_tpm", "items_per_second");
            const double raw_s = collector.get("sign/" + n + "/raw_Esys_Sign", "items_per_second");
            if (ks_s > 0 && raw_s > 0)
                std::printf("%-6s %-10s %13.0f %13.0f %8.3f\n", a.jws, "separate", ks_s, raw_s,
                            ks_s / raw_s);
            const std::string p = "paired/" + n + "/keystore_vs_raw";
            if (collector.get(p, "ks/raw") > 0)
                std::printf("%-6s %-10s %13.0f %13.0f %8.3f\n", a.jws, "paired",
                            collector.get(p, "keystore_per_s"), collector.get(p, "raw_per_s"),
                            collector.get(p, "ks/raw"));
        }
        std::printf(
            "\nTPM commands per keystore signature (pcap TCTI, %d signatures after a "
            "warm-up one):\n",
            n_count);
        for (const auto& a : algs) {
            const CountResult& c = counts[a.jws];
            std::string all, window;
            for (const auto& [name, k] : c.by_code) all += " " + name + "=" + std::to_string(k);
            for (const auto& [name, k] : c.window_by_code)
                window += " " + name + "=" + std::to_string(k);
            // The window holds the commands of signatures 2..n+1 (after the warm-up's
            // successful Sign up to the last Sign): n Sign commands expected, nothing else.
            const double per = static_cast<double>(c.per_sig_window) / n_count;
            std::printf(
                "  %s: %.3f commands per signature (%zu commands for %d signatures:%s); "
                "whole capture %zu commands:%s; TPM retries (resent by ESAPI): %zu, of "
                "them %zu before the counted signatures\n",
                a.jws, per, c.per_sig_window, n_count, window.c_str(), c.total, all.c_str(),
                c.retries, c.retries_before_window);
        }
        std::printf(
            "\nTargets: keystore >= 0.90 x raw Esys_Sign (paired run); exactly 1 TPM command "
            "(TPM2_Sign) per signature:\n");
        for (const auto& a : algs) {
            const double w =
                collector.get(std::string("paired/") + a.jws + "/keystore_vs_raw", "ks/raw");
            const CountResult& c = counts[a.jws];
            const bool one = c.per_sig_window == static_cast<std::size_t>(n_count) &&
                             c.signs_in_window == static_cast<std::size_t>(n_count);
            if (w <= 0)
                std::printf("  %s: paired benchmark did not run; ", a.jws);
            else
                std::printf("  %s: ratio %.3f: %s; ", a.jws, w, w >= 0.90 ? "met" : "MISSED");
            std::printf("commands per signature: %s\n",
                        one ? "exactly 1 (TPM2_Sign): met" : "MISSED");
        }
        std::fflush(stdout);
        benchmark::ClearRegisteredBenchmarks();
        raw.reset();
    }
    benchmark::Shutdown();
    stop_all();
    const char* keep = std::getenv("BENCH_KEEP_TPM");
    if (!keep || std::string(keep) != "1") std::filesystem::remove_all(dir, ec);
    return 0;
}
