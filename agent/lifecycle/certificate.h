// One certificate's life, shared by the commands that issue and renew (issue, enroll,
// renew, run): ordering and storing it, renewing it when due.
#pragma once

#include "acme/client.h"
#include "keystore/keystore.h"
#include "lifecycle/lease.h"
#include "lifecycle/report.h"
#include "lifecycle/settings.h"
#include "lifecycle/solvers.h"
#include "store/state.h"
#include "x509/cert.h"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace lifecycle {

// The ACME account orders are signed with.
struct Account {
    keystore::KeyPtr key;
    std::string url;
};

// Orders, validates, finalizes and stores one certificate for `domains` with `cert_key` in
// live/NAME/ (NAME: s.name, else the first domain), resuming an order a crashed run left in
// the state dir; its settings go to live/NAME/renewal.json. `replaces` is an ARI CertID or "".
// Orders for different names may run concurrently on one client and state dir when they
// take their challenge solver from one `shared` (else each makes its own).
Result<IssueResult> obtain(const Settings& s, store::Storage& state, acme::Client& client,
                           const Account& account, const keystore::KeyPtr& cert_key,
                           const std::vector<std::string>& domains, const std::string& replaces,
                           SharedSolvers* shared = nullptr, const HeldLease* held = nullptr);

// A stored certificate's renewal record as an object ({} when it has none or it is not JSON).
json stored_record(const store::Certificate& c);
// What a stored certificate was ordered for: the names its renewal record (renewal.json)
// lists, else the leaf's names.
std::vector<std::string> stored_domains(const json& record, const x509::CertInfo& leaf);
// The renew_before_days it was ordered with (a config's or --renew-before-days), 0 when none
// or not a whole number of days up to 3650 (the config's bound).
unsigned stored_renew_before_days(const json& record);

// What `state` holds for `name` now, and whether that is no longer `before`: checked after
// taking the certificate's lease, since another agent may have stored one meanwhile.
struct LookedAgain {
    std::optional<store::Certificate> now;
    bool changed = false;
};
Result<LookedAgain> look_again(const store::Storage& state, const std::string& name,
                               const std::optional<store::Certificate>& before);

// What renew_one did: renewed (`issued`) or not due yet (until `due_at`).
struct Renewal {
    std::string name;
    std::optional<IssueResult> issued;
    std::chrono::system_clock::time_point due_at;  // when not renewed
    std::string key_uri;                           // the new certificate's key
    std::string old_key;  // with Settings::new_key: the key it no longer uses
};
// Renews the stored certificate `name` when it is due (or s.force), with the settings it was
// issued with unless `s` gives others (differs from the defaults); s.new_key puts the new
// certificate on a new key.
Result<Renewal> renew_one(const Settings& s, keystore::Registry& reg, store::Storage& state,
                          acme::Client& client, const Account& account, const std::string& name,
                          SharedSolvers* shared = nullptr);
// renew_one for each of `names`, `jobs` at a time, sharing responders; one that fails does
// not stop the others. The records are read in batches (one round trip each on a database).
std::vector<Result<Renewal>> renew_each(const Settings& s, keystore::Registry& reg,
                                        store::Storage& state, acme::Client& client,
                                        const Account& account,
                                        const std::vector<std::string>& names, unsigned jobs);

}  // namespace lifecycle
