// One certificate's life, shared by the commands that issue and renew (issue, enroll,
// renew, run): ordering and storing it, describing it, renewing it when due.
#pragma once

#include "acme/order.h"
#include "challenge/solver.h"
#include "cli/common.h"

#include <memory>
#include <string>
#include <vector>

namespace cli {

// The challenge solver the options ask for (--challenge and its settings).
Result<std::unique_ptr<challenge::Solver>> make_solver(const Options& o);

struct IssueResult {
    acme::Issued issued;
    std::string where;  // the directory the PEM files were written to
};

// Orders, validates, finalizes and stores one certificate for `domains` with `cert_key`,
// resuming an order a crashed run left in the state dir. `replaces` is an ARI CertID or "".
Result<IssueResult> obtain(const Options& o, store::StateDir& state, acme::Client& client,
                           const AccountCtx& account, const keystore::KeyPtr& cert_key,
                           const std::vector<std::string>& domains, const std::string& replaces);

json describe(const IssueResult& r, const std::string& key_uri);
std::string describe_text(const IssueResult& r, const std::string& key_uri);

struct Renewal {
    json entry;        // {"name", "renewed", ...} as `renew --json` prints it
    std::string text;  // the lines `renew` prints
};
// Renews the stored certificate `name` when it is due (or o.force), with the settings it was
// issued with unless `o` gives others; o.renew_new_key puts the new certificate on a new key.
Result<Renewal> renew_one(const Options& o, keystore::Registry& reg, store::StateDir& state,
                          acme::Client& client, const AccountCtx& account, const std::string& name);

}  // namespace cli
