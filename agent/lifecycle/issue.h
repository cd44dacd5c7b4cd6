// The commands that get a new certificate, as a library: `issue` (one order), `issue
// --batch` (many, side by side), `enroll` (a device's first boot, safe at every boot) and
// `revoke`. Each checks what is local first (the solver, ports, keys, the account's
// presence), then talks to the CA; and `renew` (certificate.h's renew_one for each).
#pragma once

#include "keystore/keystore.h"
#include "lifecycle/account.h"
#include "lifecycle/certificate.h"
#include "lifecycle/report.h"
#include "lifecycle/settings.h"

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace lifecycle {

// issue: the certificate, and what it took.
struct Issued {
    IssueResult r;
    std::string key_uri, name, account;
    unsigned long requests;
    long connections;
};
// One order for `domains` with the key at `key` (--key). Refused (Errc::usage) when the
// stored certificate of that name is on another key, unless s.force.
Result<Issued> issue(const Globals& g, const Settings& s, const AccountChoice& a,
                     const std::string& key, const std::vector<std::string>& domains,
                     keystore::Registry& reg);

// issue --batch: one order's outcome.
struct BatchItem {
    std::string name;   // the order's first name
    std::string where;  // FILE:LINE
    std::string key_uri;
    std::size_t line;
    Result<IssueResult> result;
};
// The orders of `file` (batch.h): every line checked and every key opened before any
// order starts, then `jobs` at a time on one client, one account and shared responders.
// One order that fails does not stop the others.
Result<std::vector<BatchItem>> issue_batch(const Globals& g, const Settings& s,
                                           const AccountChoice& a, const std::string& file,
                                           unsigned jobs, keystore::Registry& reg);

// enroll: the certificate just issued, or (issued empty) the valid one already there.
struct Enrolled {
    std::string name, key_uri, account;
    std::chrono::system_clock::time_point not_after;  // without `issued`
    std::optional<IssueResult> issued;
    struct NewKeys {
        bool account, device;
    } new_keys;
};
// Nothing to do while the certificate of domains[0] is stored and not due (the lifetime
// rule, no network) unless s.force; else the account (the stored one, a.account_key, or
// tpm2:path=STATE/keys/account.tss) and the device key (`key`, or
// tpm2:path=STATE/keys/NAME.tss), each generated on the first run, and an order.
Result<Enrolled> enroll(const Globals& g, const Settings& s, const AccountChoice& a,
                        const std::string& key, const std::vector<std::string>& domains,
                        keystore::Registry& reg);

// renew: the stored certificate `name`, or (all) every stored certificate, `jobs` at a time
// (one that fails does not stop the others); each one only when due, unless s.force.
struct Renewed {
    std::vector<std::string> names;
    std::vector<Result<Renewal>> results;  // one per name
};
Result<Renewed> renew(const Globals& g, const Settings& s, const AccountChoice& a,
                      const std::string& name, bool all, unsigned jobs, keystore::Registry& reg);

// revoke: the certificate in cert_file (PEM), signed by the account or, with_cert_key, by
// its own key at `key`.
struct RevokeRequest {
    std::string cert_file;
    std::string reason;  // "" or a name or RFC 5280 code (acme::parse_reason)
    bool with_cert_key = false;
    std::string key;
};
struct Revoked {
    std::string serial, signed_by;
    std::optional<int> reason;
};
Result<Revoked> revoke(const Globals& g, const RevokeRequest& r, const AccountChoice& a,
                       keystore::Registry& reg);

}  // namespace lifecycle
