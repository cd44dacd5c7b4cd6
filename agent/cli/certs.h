// One certificate's life, shared by the commands that issue and renew (issue, enroll,
// renew, run): ordering and storing it, describing it, renewing it when due.
#pragma once

#include "acme/order.h"
#include "challenge/solver.h"
#include "cli/common.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace cli {

// The challenge solver the options ask for (--challenge and its settings).
Result<std::unique_ptr<challenge::Solver>> make_solver(const Options& o);

// The challenge responders that concurrent orders share: a port can be bound once, so all
// orders answering http-01 (built-in server) or tls-alpn-01 on one port go through one
// solver, whose present() and cleanup() are serialized; it listens while any of their
// challenges is live. Other kinds (webroot, dns-01) get a solver per order. Thread-safe.
class SharedSolvers {
  public:
    // The shared solver for o's challenge settings, or nullptr when each order makes its own.
    Result<challenge::Solver*> get(const Options& o);

  private:
    std::mutex mutex_;
    std::map<std::string, std::unique_ptr<challenge::Solver>> solvers_;
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

json describe(const IssueResult& r, const std::string& key_uri);
std::string describe_text(const IssueResult& r, const std::string& key_uri);

// When a certificate is due: inside the CA's ARI window (at a point spread by the serial),
// else `before_days` before it expires, else in the last third of its lifetime.
struct Due {
    bool due;
    std::chrono::system_clock::time_point at;
    std::string why;
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
