// What the lifecycle needs to know about one certificate's order and renewal, built by the
// caller (the command line, or a config file's [[certificate]]): no CLI11 here.
#pragma once

#include "config/config.h"

#include <string>

namespace lifecycle {

// The ACME directory used when none is given.
inline constexpr const char* kDefaultServer = "https://acme-v02.api.letsencrypt.org/directory";
// The state dir used when none is given.
inline constexpr const char* kDefaultStateDir = "/var/lib/acme-agent";

// What every command and the daemon start from (the command line's global options, or run's
// config over them): the CA and how long it may take, where the state is kept, whether a
// weak key is accepted. The defaults here are the command line's.
struct Globals {
    std::string server = kDefaultServer;
    std::string ca_file;           // an extra trusted CA (PEM) for the CA's TLS
    unsigned order_timeout = 900;  // seconds an order may stay `processing`
    unsigned http_timeout = 60;    // seconds one request to the CA may take
    std::string state_dir = kDefaultStateDir;
    // postgresql://... shares accounts, orders and certificates with other agents
    // (docs/fleet.md); "" keeps them in the state dir.
    std::string storage;
    bool allow_weak_key = false;  // open a key weaknesses() objects to
    std::string user_agent = "acme-agent";
};

// The challenge settings (their defaults are config::CertificateSettings', the one place
// for "http-01", "80" and "443") and what else an order or a renewal takes.
struct Settings : config::CertificateSettings {
    std::string server = kDefaultServer;  // recorded in renewal.json
    std::string name;                     // live/NAME/; "" for the first domain
    std::string out;                      // also write the PEM files here ("" for none)
    bool tag_progress = false;            // orders run side by side: prefix progress with NAME
    bool allow_weak_key = false;          // open keys that weaknesses() objects to
    bool force = false;                   // renew even when not due
    bool new_key = false;                 // renew onto a freshly generated key
    // Fleet mode (storage in PostgreSQL, lifecycle/fleet.h): this node's copies of the
    // certificates go under FLEET_LIVE/NAME/, where deploy hooks find them; "" otherwise.
    std::string fleet_live;
    // Fleet mode, in the daemon: its own responders answer every node's challenges, so an
    // order only publishes them.
    bool publish_only = false;
};

}  // namespace lifecycle
