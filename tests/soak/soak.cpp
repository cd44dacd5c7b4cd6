// Soak: many issuances in one process, watching for leaks. Driven by tests/soak/soak.sh,
// which starts Pebble (PEBBLE_VA_ALWAYS_VALID=1), SoftHSM (through tests/tools/p11shim, which
// counts open sessions) and swtpm, and passes them in the environment:
//
//   SOAK_SERVER, SOAK_CA_FILE, SOAK_STATE_DIR, SOAK_HTTP_PORT   as --server, --ca-file, ...
//   SOAK_ACCOUNT_KEY    pkcs11: URI of the account key
//   SOAK_CERT_KEYS      certificate key URIs, space separated (SoftHSM and TPM keys); issuance
//                       i uses key i mod n, opened afresh each time as a long-running agent would
//   SOAK_SHIM           the p11shim module path the pkcs11: URIs name (for the session count)
//   SOAK_COUNT          issuances (default 300); SOAK_FROM: the baseline issuance (default 50)
//   SOAK_RSS_KIB        allowed RSS growth from the baseline to the end (default 512: about
//                       2 KiB per issuance over 250, less than one leaked certificate, CSR
//                       or key object per issuance; measured growth is under 100 KiB, from
//                       heap fragmentation and caches that settle)
//
// After every issuance it samples RSS (/proc/self/statm), open descriptors (/proc/self/fd),
// PKCS#11 sessions open on the token (C_GetTokenInfo through the shim) and TPM transient
// objects (TPM2_GetCapability on the agent's own connection: swtpm serves one connection at
// a time, so no outside tool can ask while the agent holds it). It prints the samples at the
// baseline and every 50 issuances, and fails when descriptors, sessions or transient objects
// differ from the baseline at any later issuance, or RSS grew by more than SOAK_RSS_KIB.
#include "base/log.h"
#include "cli/common.h"
#include "lifecycle/certificate.h"
#include "pkcs11/module.h"
#include "tpm/tpm_keystore.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

std::string env(const char* name, const char* dflt = nullptr) {
    const char* v = std::getenv(name);
    if (v && *v) return v;
    if (dflt) return dflt;
    std::fprintf(stderr, "soak: %s is not set (tests/soak/soak.sh sets it)\n", name);
    std::exit(2);
}

struct Sample {
    long rss_kib = 0;
    long fds = 0;
    long sessions = 0;
    long transient = 0;
};

long rss_kib() {
    std::ifstream f("/proc/self/statm");
    long size = 0;
    long resident = 0;
    f >> size >> resident;
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

long open_fds() {
    long n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n - 1;  // the iterator's own descriptor
}

// Sessions open through the shim, summed over the slots with a token.
long pkcs11_sessions(const std::string& shim) {
    auto m = pkcs11::Module::get(shim);
    if (!m) return -1;
    CK_ULONG n = 0;
    (*m)->fn()->C_GetSlotList(CK_TRUE, nullptr, &n);
    std::vector<CK_SLOT_ID> slots(n);
    (*m)->fn()->C_GetSlotList(CK_TRUE, slots.data(), &n);
    long total = 0;
    for (CK_ULONG i = 0; i < n; ++i) {
        CK_TOKEN_INFO info{};
        if ((*m)->fn()->C_GetTokenInfo(slots[i], &info) != CKR_OK) return -1;
        total += static_cast<long>(info.ulSessionCount);
    }
    return total;
}

int die(const base::Error& e, const std::string& when) {
    std::fprintf(stderr, "soak: %s: %s\n", when.c_str(), e.describe().c_str());
    return 1;
}

}  // namespace

int main() {
    cli::Global g;
    g.server = env("SOAK_SERVER");
    g.ca_file = env("SOAK_CA_FILE");
    g.state_dir = env("SOAK_STATE_DIR");
    g.quiet = true;
    cli::CertArgs o;
    o.http_port = env("SOAK_HTTP_PORT");
    o.account_key = env("SOAK_ACCOUNT_KEY");
    o.agree_tos = true;
    const std::string shim = env("SOAK_SHIM");
    const int count = std::stoi(env("SOAK_COUNT", "300"));
    const int from = std::stoi(env("SOAK_FROM", "50"));
    const long rss_budget = std::stol(env("SOAK_RSS_KIB", "512"));
    std::vector<std::string> keys;
    {
        std::istringstream in(env("SOAK_CERT_KEYS"));
        for (std::string k; in >> k;) keys.push_back(k);
    }

    base::log::set_level(base::log::Level::warning);
    auto reg = cli::make_registry(g);
    auto session = cli::open_session(g, o, reg, true);
    if (!session) return die(session.error(), "account");
    keystore::Keystore* tpm_store = nullptr;
    for (auto& k : keys)
        if (k.starts_with("tpm2:"))
            if (auto ks = reg.keystore_for(*keystore::KeyUri::parse(k))) tpm_store = *ks;
    if (!tpm_store) {
        std::fprintf(stderr, "soak: no tpm2: key in SOAK_CERT_KEYS\n");
        return 2;
    }

    std::printf("%9s %9s %5s %9s %10s\n", "issuance", "rss_kib", "fds", "sessions", "transient");
    Sample base;
    int failures = 0;
    for (int i = 1; i <= count; ++i) {
        auto uri = keystore::KeyUri::parse(keys[static_cast<std::size_t>(i) % keys.size()]);
        if (!uri) return die(uri.error(), "key URI");
        auto key = reg.open(*uri);
        if (!key) return die(key.error(), "issuance " + std::to_string(i) + ": open");
        auto r = lifecycle::obtain(cli::settings(g, o), *session->state, *session->client,
                                   session->account, *key,
                                   {"soak-" + std::to_string(i) + ".example.com"}, "");
        if (!r) return die(r.error(), "issuance " + std::to_string(i));
        key->reset();  // as a long-running agent lets go of a key between renewals

        auto transient = tpm::transient_handles(*tpm_store);
        if (!transient) return die(transient.error(), "transient handles");
        const Sample s{rss_kib(), open_fds(), pkcs11_sessions(shim), static_cast<long>(*transient)};
        if (i == from) base = s;
        if (i == from || (i % 50 == 0 && i >= from) || i == count) {
            std::printf("%9d %9ld %5ld %9ld %10ld\n", i, s.rss_kib, s.fds, s.sessions, s.transient);
            std::fflush(stdout);
        }
        if (i <= from) continue;
        auto check = [&](const char* what, long now, long then) {
            if (now == then) return;
            std::fprintf(stderr, "soak: FAIL: %s %ld after issuance %d, %ld after issuance %d\n",
                         what, now, i, then, from);
            ++failures;
        };
        check("open descriptors", s.fds, base.fds);
        check("PKCS#11 sessions", s.sessions, base.sessions);
        check("TPM transient objects", s.transient, base.transient);
        if (i == count && s.rss_kib - base.rss_kib > rss_budget) {
            std::fprintf(stderr,
                         "soak: FAIL: RSS grew by %ld KiB from issuance %d to %d (%ld allowed)\n",
                         s.rss_kib - base.rss_kib, from, i, rss_budget);
            ++failures;
        }
        if (failures > 10) break;
    }
    if (base.sessions < 0) {
        std::fprintf(stderr, "soak: FAIL: could not read the session count from %s\n",
                     shim.c_str());
        ++failures;
    }
    std::printf("soak: %d issuances, %s\n", count, failures ? "FAILED" : "flat");
    return failures ? 1 : 0;
}
