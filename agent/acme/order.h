// Orders (RFC 8555 §7.4): newOrder, authorizations solved through a challenge::Solver,
// finalize with a CSR signed by the certificate Key, download and check the chain.
#pragma once

#include "acme/certificate.h"
#include "acme/client.h"
#include "acme/resources.h"
#include "challenge/solver.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace acme {

struct OrderRequest {
    std::vector<std::string> names;  // DNS names and IP literals (RFC 8738)
    const keystore::Key* cert_key = nullptr;
    challenge::Solver* solver = nullptr;
    std::string profile;          // newOrder "profile" (checked against meta.profiles)
    std::string replaces;         // ARI CertID of the certificate this one replaces
    std::string preferred_chain;  // issuer CN of the preferred chain's top certificate
    std::string resume_url;       // an order of a crashed run to continue, if still usable
    // Called with the order URL once the CA has created (or resumed) it, before any
    // challenge is answered: the caller records it (SECURITY.md rule 15).
    std::function<Result<void>(const std::string&)> on_order;
    // Asked before each step that acts on the order at the CA (answering its challenges,
    // finalizing it): an error stops the order there (a lease lost while the agent was cut
    // off or paused: another agent may be finishing this order now).
    std::function<Result<void>()> still_ours;
};

struct Issued {
    std::string order_url;
    std::string cert_pem;   // the leaf
    std::string chain_pem;  // the issuers, in order
    x509::CertInfo leaf;
};

// An identifier as sent to the CA: an IPv6 literal in RFC 5952 form, anything else in
// lower case.
std::string normalize_identifier(const std::string& name);

// One line per step for the user ("order ...", "authorization ...", ...).
using Progress = std::function<void(const std::string&)>;

// An order at the CA as the steps see it: its URL and its last state.
struct PlacedOrder {
    std::string url;
    Order order;
};

// The steps of issue() (lego's certifier), each usable alone: place the order, solve its
// authorizations, finalize, download. Each step signs as the account `kid` and reports to
// `progress`; errors name the step. The Client, key and progress outlive the Certifier.
class Certifier {
  public:
    Certifier(Client& client, const keystore::Key& account_key, std::string kid, Progress progress);

    // Resumes request.resume_url while the CA still has it pending, ready, processing or
    // valid; otherwise sends newOrder (with the request's profile, checked against the
    // directory, and `replaces`; once more without `replaces` after alreadyReplaced; after a
    // timeout, looks in the account's orders list for the order the CA may have created
    // instead of ordering twice). Then calls request.on_order with the order's URL.
    Result<PlacedOrder> place_order(const OrderRequest& request);

    // For a pending order: reads and checks every authorization against `names` (the CA may
    // not make the agent publish a proof for a name it did not ask for), presents and answers
    // the solver's challenge of each pending one, waits for each to turn valid, takes every
    // proof down again, and waits for the order to leave `pending`. After a failure the next
    // run cannot resume from (anything but Errc::network or a wait the CA asked for), the
    // order's pending authorizations are given up (RFC 8555 §7.5.2).
    Result<void> solve_authorizations(PlacedOrder& placed, const std::vector<std::string>& names,
                                      challenge::Solver& solver);

    // Brings the order to `valid`: a ready order is finalized with a CSR for `names` signed by
    // `cert_key` (not sent twice while the CA may have taken it), a processing one waited for
    // (the options' order deadline). Errc::server for an order that ends invalid, with the
    // CA's error.
    Result<void> finalize(PlacedOrder& placed, const keystore::Key& cert_key,
                          const std::vector<std::string>& names);

    // Downloads the certificate of a valid order (with `preferred_chain`, see
    // download_certificate) and checks that the chain holds only CERTIFICATE blocks and that
    // the leaf's public key is `cert_key`'s.
    Result<Issued> download(const PlacedOrder& placed, const keystore::Key& cert_key,
                            const std::string& preferred_chain);

  private:
    // Re-reads the order at `url` and parses it.
    Result<Order> fetch_order(const std::string& url);
    Result<PlacedOrder> create(const OrderRequest& request);
    Result<PlacedOrder> find_created(const std::vector<std::string>& names, const base::Error& why);
    Result<void> solve(PlacedOrder& placed, const std::vector<std::string>& names,
                       challenge::Solver& solver, std::vector<std::string>& pending_authz);
    void deactivate(const std::vector<std::string>& authz_urls);

    Client& client_;
    const keystore::Key& account_key_;
    std::string kid_;
    Progress progress_;
};

// The four steps in a row. Errors name the step and, for a failed authorization, the
// identifier and the CA's problem detail.
Result<Issued> issue(Client& client, const keystore::Key& account_key, const std::string& kid,
                     const OrderRequest& request, const Progress& progress);

}  // namespace acme
