// Shared by the command implementations: options, output, and the steps several commands
// take (open a key, connect, find the account).
#pragma once

#include "acme/client.h"
#include "keystore/keystore.h"
#include "store/state.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#ifndef ACME_AGENT_VERSION
#define ACME_AGENT_VERSION "dev"
#endif

namespace cli {

using keystore::Errc;
using keystore::Error;
using keystore::fail;
using keystore::Result;
using nlohmann::json;

inline constexpr const char* kDefaultServer = "https://acme-v02.api.letsencrypt.org/directory";

struct Options {
    std::string server = kDefaultServer;
    std::string ca_file;
    std::string state_dir = "/var/lib/acme-agent";
    bool json_out = false;
    int verbose = 0;
    bool quiet = false;

    std::string key;
    std::string type;
    std::string account_key;
    std::vector<std::string> emails;
    bool agree_tos = false;
    std::vector<std::string> domains;
    std::string challenge = "http-01";
    std::string http_port = "80";
    std::string webroot;
    std::string out;
};

// What a command returns: JSON for --json, and the text a person reads.
struct Output {
    json data = json::object();
    std::string text;
};

using Command = Result<Output> (*)(const Options&, keystore::Registry&);

// The one place that knows every backend: URI scheme -> keystore.
keystore::Registry make_registry(const Options& o);
// Parses a key URI given to `option`; errors name the option.
Result<keystore::KeyUri> parse_uri(const std::string& text, const char* option);
std::string pem_public_key(const keystore::Bytes& spki);
std::string iso_time(std::chrono::system_clock::time_point t);

Result<std::unique_ptr<acme::Client>> connect(const Options& o);

struct AccountCtx {
    keystore::KeyPtr key;
    std::string url;
};
// The account for --server: the stored one, else the one of --account-key (found again
// or, when may_register, registered). Stores what it learns.
Result<AccountCtx> account_for(const Options& o, keystore::Registry& reg, store::StateDir& state,
                               acme::Client& client, bool may_register);

Result<Output> key_generate(const Options& o, keystore::Registry& reg);
Result<Output> key_list(const Options& o, keystore::Registry& reg);
Result<Output> key_show(const Options& o, keystore::Registry& reg);
Result<Output> key_delete(const Options& o, keystore::Registry& reg);
Result<Output> account_register(const Options& o, keystore::Registry& reg);
Result<Output> account_show(const Options& o, keystore::Registry& reg);
Result<Output> issue(const Options& o, keystore::Registry& reg);

}  // namespace cli
