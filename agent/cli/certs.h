// One certificate's life, shared by the commands that issue and renew (issue, enroll,
// renew, run): ordering and storing it, describing it, renewing it when due.
#pragma once

#include "acme/order.h"
#include "challenge/solver.h"
#include "cli/common.h"

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace cli {

// The challenge solver the options ask for (--challenge and its settings).
Result<std::unique_ptr<challenge::Solver>> make_solver(const Options& o);

// The challenge responders that concurrent orders share: a port can be bound once, so all
// orders answering http-01 (built-in server) or tls-alpn-01 on one port go through one
// solver, whose present() and cleanup() are serialized; it listens while any of their
// challenges is live. Other kinds (webroot, dns-01) get a solver per order. Thread-safe.
//
// Orders that share a name run one after the other (a Claim): the tls-alpn-01 responder
// answers a name with one certificate, and dns-01 has one _acme-challenge name per domain
// (shared by its wildcard), so two live challenges for a name would overwrite each other.
class SharedSolvers {
  public:
    // The shared solver for o's challenge settings, or nullptr when each order makes its own.
    Result<challenge::Solver*> get(const Options& o);

    // Holds an order's names (case-insensitively, "*." dropped) while it lives. Constructing
    // one waits until no other live Claim holds any of `domains`, then holds them all at once
    // (all or nothing, so two orders can never wait for each other).
    class Claim {
      public:
        Claim(SharedSolvers& owner, const std::vector<std::string>& domains);
        Claim(const Claim&) = delete;
        Claim& operator=(const Claim&) = delete;
        ~Claim();

      private:
        SharedSolvers& owner_;
        std::vector<std::string> names_;
    };

  private:
    std::mutex mutex_;
    std::map<std::string, std::unique_ptr<challenge::Solver>> solvers_;
    std::condition_variable released_;
    std::set<std::string> claimed_;
};

struct IssueResult {
    acme::Issued issued;
    std::string where;  // the directory the PEM files were written to
};

// Orders, validates, finalizes and stores one certificate for `domains` with `cert_key` in
// live/NAME/ (NAME: o.name, else the first domain), resuming an order a crashed run left in
// the state dir. `replaces` is an ARI CertID or "".
// Orders for different names may run concurrently on one client and state dir when they
// take their challenge solver from one `shared` (else each makes its own).
Result<IssueResult> obtain(const Options& o, store::StateDir& state, acme::Client& client,
                           const AccountCtx& account, const keystore::KeyPtr& cert_key,
                           const std::vector<std::string>& domains, const std::string& replaces,
                           SharedSolvers* shared = nullptr);

// What a stored certificate was ordered for: the names its renewal record (renewal.json)
// lists, else the leaf's names.
std::vector<std::string> stored_domains(const json& record, const x509::CertInfo& leaf);
// A stored certificate's renewal record as an object ({} when it has none or it is not JSON).
json stored_record(const store::Certificate& c);

json describe(const IssueResult& r, const std::string& key_uri);
std::string describe_text(const IssueResult& r, const std::string& key_uri);

// When a certificate is due: `before_days` before it expires when given (an explicit
// choice wins), else inside the CA's ARI window (at a point spread by the serial), else in
// the last third of its lifetime. A failed renewalInfo request falls back to the lifetime
// rule with a warning (RFC 9773 §4.2).
struct Due {
    bool due;
    std::chrono::system_clock::time_point at;
    std::string why;
    std::optional<std::chrono::system_clock::time_point> check_again;  // ARI Retry-After
};
Result<Due> due_for_renewal(acme::Client& client, const x509::CertInfo& leaf, unsigned before_days);

struct Renewal {
    json entry;        // {"name", "renewed", ...} as `renew --json` prints it
    std::string text;  // the lines `renew` prints
};
// Renews the stored certificate `name` when it is due (or o.force), with the settings it was
// issued with unless `o` gives others; o.renew_new_key puts the new certificate on a new key.
Result<Renewal> renew_one(const Options& o, keystore::Registry& reg, store::StateDir& state,
                          acme::Client& client, const AccountCtx& account, const std::string& name,
                          SharedSolvers* shared = nullptr);

}  // namespace cli
