// The configuration file of `acme-agent run` (TOML): the account and the certificates to
// keep issued and fresh. Parsing only: nothing here talks to a CA or a keystore.
//
//   server = "https://acme.example/directory"     # optional: ACME directory URL
//   ca_file = "/etc/acme-agent/ca.pem"            # optional: extra trusted CA
//   state_dir = "/var/lib/acme-agent"             # optional
//   storage = "postgresql://agent@db/acme?passfile=/etc/acme-agent/pgpass"   # optional: fleet
//   account_key = "pkcs11:token=t;object=acct?..."
//   email = "ops@example.com"                     # or a list of addresses
//   agree_tos = true
//   eab_kid = "kid"                               # with eab_hmac_key: a 0600 file or pkcs11: URI
//   eab_hmac_key = "/etc/acme-agent/eab.key"
//   deploy_hook_timeout = 300                     # seconds
//   metrics = "127.0.0.1:9464"                    # optional: [ADDR:]PORT of GET /metrics
//
//   [[certificate]]
//   name = "www"                                  # optional: default the first domain
//   domains = ["www.example.com", "example.com"]
//   key = "pkcs11:token=t;object=www?..."
//   challenge = "http-01"                         # http-01 | dns-01 | tls-alpn-01
//   http_port = 80  | webroot = "/var/www"        # http-01
//   tls_alpn_port = 443                           # tls-alpn-01
//   dns_hook = "/usr/local/bin/dns" | rfc2136 = "ns:53" + tsig_key = "FILE"   # dns-01
//   deploy_hook = "systemctl reload nginx"        # run by /bin/sh -c after a new certificate
//   renew_before_days = 30                        # optional; wins over the CA's ARI window
//   profile = "tlsserver"                         # optional
//   preferred_chain = "ISRG Root X1"              # optional
//
// Relative paths (ca_file, state_dir, eab_hmac_key, webroot, tsig_key, and the files in
// key URIs) are taken relative to the directory of the configuration file.
#pragma once

#include "base/error.h"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace config {

using base::Result;

// How one certificate is validated, ordered and renewed: set on the command line
// (cli::Options) or per [[certificate]] here, with the same defaults.
struct CertificateSettings {
    std::string challenge = "http-01";
    std::string http_port = "80";
    std::string webroot;
    std::string tls_alpn_port = "443";
    std::string dns_hook;
    std::string rfc2136;
    std::string tsig_key;
    std::string profile;
    std::string preferred_chain;
    unsigned renew_before_days = 0;  // 0: the last third of the lifetime
};

struct Certificate : CertificateSettings {
    std::string name;  // the live/NAME/ directory; the first domain unless given
    std::vector<std::string> domains;
    std::string key;  // a key URI, as written (syntax checked)
    std::string deploy_hook;
    unsigned line = 0;  // where its [[certificate]] starts
};

struct Config {
    std::string path;  // the file it was read from
    std::optional<std::string> server;
    std::optional<std::string> ca_file;
    std::optional<std::string> state_dir;
    std::optional<std::string> storage;  // postgresql://... (docs/fleet.md)
    std::string account_key;
    std::vector<std::string> emails;
    bool agree_tos = false;
    std::string eab_kid;
    std::string eab_hmac_key;
    unsigned deploy_hook_timeout = 300;  // seconds
    // Where `run` serves /metrics ("[ADDR:]PORT", ADDR 127.0.0.1 by default); checked when
    // it is bound (metrics::Endpoint::start).
    std::optional<std::string> metrics;
    std::vector<Certificate> certificates;
};

// Reads and checks a configuration file. Every problem is an Errc::usage error whose
// `where` is "FILE:LINE" (or FILE when the file cannot be read: Errc::not_found/io): an
// unknown key, a value of the wrong type, a malformed key URI, a duplicate name, a TOML
// syntax error. The file itself (SECURITY.md rule 18): not a symlink, owned by this user
// or root, not writable by group or others (its deploy_hook runs as this user); a key
// URI's pin-value only when the file is owner-only (0600/0400).
Result<Config> load(const std::string& path);
// The same from text; `path` names it in errors and anchors relative paths (key URI paths
// too). `owner_only`: the file is readable by its owner only, so it may hold a pin-value.
Result<Config> parse(std::string_view text, const std::string& path, bool owner_only = false);

}  // namespace config
