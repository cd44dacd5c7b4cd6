#include "acme/certificate.h"

#include "base/log.h"

#include <array>
#include <ctime>
#include <random>

namespace acme {

using base::Errc;
using base::fail;
using nlohmann::json;

namespace {
constexpr std::size_t kMaxChainBytes = 1 << 20;
constexpr std::size_t kMaxAlternates = 5;

Result<Chain> fetch_chain(Client& client, const keystore::Key& account_key, const std::string& kid,
                          const std::string& url, const base::Bytes& spki, HttpResponse* response) {
    auto r = client.post(url, account_key, kid, "", kMaxChainBytes);
    if (!r) return std::unexpected(r.error());
    auto blocks = x509::split_chain(r->body);
    if (!blocks) return std::unexpected(blocks.error());
    auto leaf = x509::inspect(blocks->front());
    if (!leaf) return std::unexpected(leaf.error());
    if (leaf->spki != spki)
        return fail(Errc::protocol, "certificate",
                    "the certificate's public key is not the certificate key's; nothing stored");
    Chain out{blocks->front(), "", std::move(*leaf)};
    for (std::size_t i = 1; i < blocks->size(); ++i) out.chain_pem += (*blocks)[i];
    if (response) *response = std::move(*r);
    return out;
}

// The CN of the issuer of the chain's top certificate ("" for a bare leaf).
std::string top_issuer_cn(const Chain& c) {
    auto blocks = x509::split_chain(c.cert_pem + c.chain_pem);
    if (!blocks) return "";
    auto top = x509::inspect(blocks->back());
    return top ? top->issuer_cn : "";
}

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(const std::string& s) {
    struct tm tm{};
    const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
    if (!end) return std::nullopt;
    return std::chrono::system_clock::from_time_t(timegm(&tm));  // fractions and "Z" ignored
}
}  // namespace

Result<Chain> download_certificate(Client& client, const keystore::Key& account_key,
                                   const std::string& kid, const std::string& url,
                                   const base::Bytes& spki, const std::string& preferred_issuer) {
    HttpResponse r;
    auto chain = fetch_chain(client, account_key, kid, url, spki, &r);
    if (!chain || preferred_issuer.empty() || top_issuer_cn(*chain) == preferred_issuer)
        return chain;
    std::size_t tried = 0;
    for (auto& [link, rel] : parse_links(r.links)) {
        if (rel != "alternate") continue;
        if (++tried > kMaxAlternates) break;
        auto alt = fetch_chain(client, account_key, kid, link, spki, nullptr);
        if (!alt) return alt;
        if (top_issuer_cn(*alt) == preferred_issuer) return alt;
    }
    return chain;  // no chain matches: the default one (RFC 8555 leaves the choice to us)
}

std::optional<int> parse_reason(const std::string& text) {
    static constexpr std::array<std::pair<const char*, int>, 9> kReasons{
        {{"unspecified", 0},
         {"keyCompromise", 1},
         {"cACompromise", 2},
         {"affiliationChanged", 3},
         {"superseded", 4},
         {"cessationOfOperation", 5},
         {"certificateHold", 6},
         {"privilegeWithdrawn", 9},
         {"aACompromise", 10}}};
    for (const auto& [name, code] : kReasons)
        if (text == name) return code;
    if (!text.empty() && text.size() <= 2 && std::ranges::all_of(text, ::isdigit)) {
        const int code = std::stoi(text);
        if (code >= 0 && code <= 10 && code != 7) return code;
    }
    return std::nullopt;
}

Result<void> revoke(Client& client, const keystore::Key& signer,
                    const std::optional<std::string>& kid, const base::Bytes& cert_der,
                    std::optional<int> reason) {
    if (client.directory().revoke_cert.empty())
        return fail(Errc::unsupported, "revoke", "the CA's directory has no revokeCert");
    json payload{{"certificate", base::base64url_encode(cert_der)}};
    if (reason) payload["reason"] = *reason;
    if (reason && *reason != 0 && *reason != 1 && *reason != 4 && *reason != 5)
        base::log::warning("revoke: reason " + std::to_string(*reason) +
                           " is refused by some CAs (Let's Encrypt accepts only 0 "
                           "unspecified, 1 keyCompromise, 4 superseded, 5 "
                           "cessationOfOperation)");
    auto r = client.post(client.directory().revoke_cert, signer, kid, payload.dump());
    if (!r && problem_type(r.error()) == "alreadyRevoked") {
        // What was asked for is true: success (exit 0), said plainly.
        base::log::warning("revoke: the CA says the certificate was already revoked");
        return {};
    }
    if (!r) return std::unexpected(r.error());
    return {};
}

std::string ari_cert_id(const base::Bytes& aki, const base::Bytes& serial_der) {
    return base::base64url_encode(aki) + "." + base::base64url_encode(serial_der);
}

Result<std::optional<RenewalWindow>> renewal_info(Client& client, const x509::CertInfo& cert) {
    const auto& base = client.directory().renewal_info;
    if (!base) return std::optional<RenewalWindow>{};
    if (cert.aki.empty())
        return fail(Errc::protocol, "renewalInfo",
                    "the certificate has no authority key identifier");
    std::string url = *base;
    if (!url.ends_with("/")) url += "/";
    auto r = client.get(url + ari_cert_id(cert.aki, cert.serial_der));
    if (!r) return std::unexpected(r.error());
    auto j = json::parse(r->body, nullptr, false);
    if (j.is_discarded() || !j.contains("suggestedWindow") || !j["suggestedWindow"].is_object())
        return fail(Errc::protocol, "renewalInfo", "no suggestedWindow in the answer");
    const json& w = j["suggestedWindow"];
    auto start = parse_rfc3339(json_string(w, "start"));
    auto end = parse_rfc3339(json_string(w, "end"));
    if (!start || !end || *end < *start)
        return fail(Errc::protocol, "renewalInfo", "malformed suggestedWindow");
    RenewalWindow window{*start, *end, json_string(j, "explanationURL"), std::nullopt};
    if (r->retry_after)
        if (auto wait = parse_retry_after(*r->retry_after, std::chrono::system_clock::now()))
            window.check_again = std::chrono::system_clock::now() + *wait;
    return std::optional<RenewalWindow>(clamp_window(window, cert.not_before, cert.not_after));
}

RenewalWindow clamp_window(RenewalWindow w, std::chrono::system_clock::time_point not_before,
                           std::chrono::system_clock::time_point not_after) {
    const auto latest = not_after - (not_after - not_before) / 10;
    w.start = std::min(w.start, latest);
    w.end = std::min(w.end, latest);
    return w;
}

}  // namespace acme
