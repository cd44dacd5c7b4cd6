// Challenge solvers: the one a certificate's settings ask for, the local checks before an
// order, and the responders that concurrent orders share.
#pragma once

#include "base/error.h"
#include "challenge/solver.h"
#include "config/config.h"
#include "lifecycle/settings.h"

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

namespace lifecycle {

// The challenge solver the settings ask for (--challenge and its settings).
base::Result<std::unique_ptr<challenge::Solver>> make_solver(const config::CertificateSettings& s);

// The local prerequisites of an order, checked before any request to the CA: the --webroot
// directory exists, --out can be written, and (when `ports`) the built-in responder's port
// can be bound. Errc::io naming the option and what to do.
base::Result<void> check_local(const Settings& s, bool ports = true);

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
    // The shared solver for these challenge settings, or nullptr when each order makes its
    // own. The first for a port checks it can be bound (check_local).
    base::Result<challenge::Solver*> get(const Settings& s);

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

}  // namespace lifecycle
