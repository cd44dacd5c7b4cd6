// Test support: an in-process ACME CA (RFC 8555) on the TlsServer of tls_server.h, small
// enough to read: a directory, nonces, newOrder, authorizations with http-01 / dns-01
// challenges that validate when answered, finalize that issues a leaf for the CSR's key
// from the test CA, and the certificate download. JWS signatures are not verified (the
// client's signing has its own tests); the protected header's url and nonce are checked.
// Tests steer it through its public fields and `intercept`, which sees every request first
// and may answer it instead (faults, hostile JSON).
#pragma once

#include "base/bytes.h"
#include "support/tls_server.h"

#include <nlohmann/json.hpp>

#include <openssl/x509.h>

#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace testsupport {

using X509Req = std::unique_ptr<X509_REQ, base::Deleter<X509_REQ_free>>;

// A JSON (or any) answer with the headers an ACME server sends.
inline Reply http_reply(int status, const std::string& body, const std::string& headers = "",
                        const std::string& content_type = "application/json") {
    static const std::map<int, std::string> reasons{
        {200, "OK"},           {201, "Created"},
        {400, "Bad Request"},  {403, "Forbidden"},
        {404, "Not Found"},    {429, "Too Many Requests"},
        {500, "Server Error"}, {503, "Service Unavailable"}};
    const auto reason = reasons.contains(status) ? reasons.at(status) : std::string("Status");
    return {
        "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: " + content_type +
            "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n" + headers + "\r\n" + body,
        false, false};
}

// An RFC 7807 problem document.
inline Reply problem_reply(int status, const std::string& type, const std::string& detail,
                           const std::string& headers = "") {
    return http_reply(
        status,
        nlohmann::json{{"type", "urn:ietf:params:acme:error:" + type}, {"detail", detail}}.dump(),
        headers, "application/problem+json");
}

class FakeCa {
  public:
    struct Authz {
        nlohmann::json identifier;
        bool wildcard = false;
        std::string status = "pending";
        std::string token;
        std::string challenge_status = "pending";
        bool answered = false;
    };
    struct Order {
        std::string status = "pending";
        nlohmann::json identifiers;
        std::vector<int> authzs;
        std::string certificate;   // PEM chain once valid
        int processing_polls = 0;  // POST-as-GETs still answered `processing`
    };

    // Knobs, set by the test before the client runs.
    std::set<std::string> failing;        // identifier values whose validation fails
    std::set<std::string> valid_already;  // identifier values with a valid authorization
    int processing_polls = 0;             // each finalized order stays processing this long
    int finalize_errors = 0;              // finalize calls that take the CSR, then answer 500
    std::vector<std::string> challenge_types{"http-01", "dns-01", "tls-alpn-01"};
    // Sees each request (path without the origin) first; a Reply answers it instead.
    std::function<std::optional<Reply>(const Request&)> intercept;
    // Changes each resource's JSON just before it is sent: (path, json&).
    std::function<void(const std::string&, nlohmann::json&)> tamper;

    FakeCa() : server_(pki_, [this](const Request& r) { return handle(r); }) {}

    [[nodiscard]] std::string url(const std::string& path, const char* host = "127.0.0.1") const {
        return server_.url(path, host);
    }
    [[nodiscard]] std::string directory_url() const { return url("/dir"); }
    [[nodiscard]] const Pki& pki() const { return pki_; }

    // "METHOD /path" of every request so far, in order.
    [[nodiscard]] std::vector<std::string> requests() const {
        std::lock_guard lock(mutex_);
        return log_;
    }
    [[nodiscard]] int count(const std::string& method_and_prefix) const {
        std::lock_guard lock(mutex_);
        int n = 0;
        for (const auto& r : log_) n += r.starts_with(method_and_prefix) ? 1 : 0;
        return n;
    }
    // The nonces the client sent, in order.
    [[nodiscard]] std::vector<std::string> nonces_used() const {
        std::lock_guard lock(mutex_);
        return used_;
    }
    // A fresh nonce the CA will accept, for a test's own Replay-Nonce header.
    std::string fresh_nonce() {
        std::lock_guard lock(mutex_);
        return next_nonce();
    }
    [[nodiscard]] Order order(int i) const {
        std::lock_guard lock(mutex_);
        return orders_.at(static_cast<std::size_t>(i));
    }
    [[nodiscard]] Authz authz(int i) const {
        std::lock_guard lock(mutex_);
        return authzs_.at(static_cast<std::size_t>(i));
    }
    [[nodiscard]] std::size_t order_count() const {
        std::lock_guard lock(mutex_);
        return orders_.size();
    }
    // Creates an order as newOrder would, without a request: for resume tests.
    std::string make_order(const std::vector<std::string>& names) {
        std::lock_guard lock(mutex_);
        nlohmann::json ids = nlohmann::json::array();
        for (const auto& n : names) ids.push_back({{"type", "dns"}, {"value", n}});
        return url("/order/" + std::to_string(create_order(ids)));
    }

  private:
    std::string next_nonce() {
        const std::string n = "nonce" + std::to_string(++nonce_counter_);
        live_.insert(n);
        return n;
    }

    Reply json_reply(int status, const nlohmann::json& j, const std::string& path,
                     const std::string& headers = "") {
        nlohmann::json out = j;
        if (tamper) tamper(path, out);
        return http_reply(status, out.dump(), headers + "Replay-Nonce: " + next_nonce() + "\r\n");
    }

    int create_order(const nlohmann::json& identifiers) {
        Order o;
        o.identifiers = identifiers;
        for (const auto& id : identifiers) {
            Authz a;
            std::string value = id.value("value", "");
            if (value.starts_with("*.")) {
                a.wildcard = true;
                value = value.substr(2);
            }
            a.identifier = {{"type", id.value("type", "dns")}, {"value", value}};
            a.token = "tok" + std::to_string(authzs_.size()) + "_" + std::string(40, 'x');
            if (valid_already.contains(value)) a.status = a.challenge_status = "valid";
            o.authzs.push_back(static_cast<int>(authzs_.size()));
            authzs_.push_back(std::move(a));
        }
        orders_.push_back(std::move(o));
        const int i = static_cast<int>(orders_.size()) - 1;
        update(orders_.back());
        return i;
    }

    // An order whose authorizations are all valid is ready; one with an invalid one, invalid.
    void update(Order& o) {
        if (o.status != "pending") return;
        bool all_valid = true;
        for (int i : o.authzs) {
            const auto& a = authzs_[static_cast<std::size_t>(i)];
            if (a.status == "invalid" || a.status == "deactivated") {
                o.status = "invalid";
                return;
            }
            all_valid = all_valid && a.status == "valid";
        }
        if (all_valid) o.status = "ready";
    }

    nlohmann::json order_json(int i) {
        Order& o = orders_[static_cast<std::size_t>(i)];
        nlohmann::json j{{"status", o.status},
                         {"identifiers", o.identifiers},
                         {"authorizations", nlohmann::json::array()},
                         {"finalize", url("/finalize/" + std::to_string(i))}};
        for (int a : o.authzs) j["authorizations"].push_back(url("/authz/" + std::to_string(a)));
        if (o.status == "valid") j["certificate"] = url("/cert/" + std::to_string(i));
        if (o.status == "invalid")
            j["error"] = {{"type", "urn:ietf:params:acme:error:unauthorized"},
                          {"detail", "an authorization failed"}};
        return j;
    }

    nlohmann::json authz_json(int i) {
        const Authz& a = authzs_[static_cast<std::size_t>(i)];
        nlohmann::json j{{"identifier", a.identifier},
                         {"status", a.status},
                         {"challenges", nlohmann::json::array()}};
        if (a.wildcard) j["wildcard"] = true;
        for (std::size_t t = 0; t < challenge_types.size(); ++t) {
            nlohmann::json c{{"type", challenge_types[t]},
                             {"url", url("/chal/" + std::to_string(i) + "/" + std::to_string(t))},
                             {"status", a.challenge_status},
                             {"token", a.token}};
            if (a.challenge_status == "invalid")
                c["error"] = {{"type", "urn:ietf:params:acme:error:connection"},
                              {"detail", "could not connect"}};
            j["challenges"].push_back(std::move(c));
        }
        return j;
    }

    // The issued leaf for the CSR's key, then the test CA, as PEM.
    std::string issue_for(const base::Bytes& csr_der) {
        const unsigned char* p = csr_der.data();
        X509Req req(d2i_X509_REQ(nullptr, &p, static_cast<long>(csr_der.size())));
        if (!req) return "";
        PKey key(X509_REQ_get_pubkey(req.get()));
        Cert leaf = make_cert(key.get(), "fake-ca leaf", pki_.ca.get(), pki_.ca_key.get(), false);
        std::string out;
        for (X509* c : {leaf.get(), pki_.ca.get()}) {
            Bio bio(BIO_new(BIO_s_mem()));
            PEM_write_bio_X509(bio.get(), c);
            char* data = nullptr;
            const long n = BIO_get_mem_data(bio.get(), &data);
            out.append(data, static_cast<std::size_t>(n));
        }
        return out;
    }

    Reply handle(const Request& req) {
        std::lock_guard lock(mutex_);
        log_.push_back(req.method + " " + req.target);
        if (intercept) {
            if (auto r = intercept(req)) return *r;
        }
        const std::string& path = req.target;
        if (path == "/dir")
            return http_reply(200, nlohmann::json{{"newNonce", url("/nonce")},
                                                  {"newAccount", url("/account")},
                                                  {"newOrder", url("/new-order")}}
                                       .dump());
        if (path == "/nonce")
            return {"HTTP/1.1 200 OK\r\nReplay-Nonce: " + next_nonce() +
                        "\r\nContent-Length: 0\r\n\r\n",
                    false, false};
        if (req.method != "POST") return http_reply(404, "");

        // A flattened JWS: check the nonce and url, take the payload.
        auto jws = nlohmann::json::parse(req.body, nullptr, false);
        auto header_bytes = base::base64url_decode(jws.value("protected", ""));
        auto payload_bytes = base::base64url_decode(jws.value("payload", ""));
        if (!header_bytes || !payload_bytes) return problem_reply(400, "malformed", "not a JWS");
        auto header = nlohmann::json::parse(std::string(header_bytes->begin(), header_bytes->end()),
                                            nullptr, false);
        const std::string payload(payload_bytes->begin(), payload_bytes->end());
        const std::string nonce = header.value("nonce", "");
        used_.push_back(nonce);
        if (live_.erase(nonce) == 0)
            return problem_reply(400, "badNonce", "stale nonce",
                                 "Replay-Nonce: " + next_nonce() + "\r\n");
        if (header.value("url", "") != url(path))
            return problem_reply(400, "unauthorized", "url mismatch");
        const auto body =
            payload.empty() ? nlohmann::json() : nlohmann::json::parse(payload, nullptr, false);

        auto number = [&](const std::string& prefix) {
            return std::stoi(path.substr(prefix.size()));
        };
        if (path == "/account")
            return json_reply(200, {{"status", "valid"}, {"orders", url("/account/1/orders")}},
                              path, "Location: " + url("/account/1") + "\r\n");
        if (path == "/account/1")
            return json_reply(200, {{"status", "valid"}, {"orders", url("/account/1/orders")}},
                              path);
        if (path == "/account/1/orders") {
            nlohmann::json list = nlohmann::json::array();
            for (std::size_t i = 0; i < orders_.size(); ++i)
                list.push_back(url("/order/" + std::to_string(i)));
            return json_reply(200, {{"orders", list}}, path);
        }
        if (path == "/new-order") {
            const int i = create_order(body.value("identifiers", nlohmann::json::array()));
            return json_reply(201, order_json(i), path,
                              "Location: " + url("/order/" + std::to_string(i)) + "\r\n");
        }
        if (path.starts_with("/order/")) {
            const int i = number("/order/");
            Order& o = orders_[static_cast<std::size_t>(i)];
            if (o.status == "processing" && o.processing_polls-- <= 0) o.status = "valid";
            return json_reply(200, order_json(i), path);
        }
        if (path.starts_with("/authz/")) {
            const int i = number("/authz/");
            if (body.is_object() && body.value("status", "") == "deactivated")
                authzs_[static_cast<std::size_t>(i)].status = "deactivated";
            return json_reply(200, authz_json(i), path);
        }
        if (path.starts_with("/chal/")) {
            const int i = number("/chal/");
            Authz& a = authzs_[static_cast<std::size_t>(i)];
            a.answered = true;
            const bool ok = !failing.contains(a.identifier.value("value", ""));
            a.status = a.challenge_status = ok ? "valid" : "invalid";
            for (auto& o : orders_) update(o);
            const std::size_t t = std::stoul(path.substr(path.rfind('/') + 1));
            return json_reply(200,
                              {{"type", challenge_types.at(t)},
                               {"url", url(path)},
                               {"status", a.challenge_status},
                               {"token", a.token}},
                              path);
        }
        if (path.starts_with("/finalize/")) {
            const int i = number("/finalize/");
            Order& o = orders_[static_cast<std::size_t>(i)];
            if (o.status != "ready")
                return problem_reply(403, "orderNotReady", "order is " + o.status);
            auto csr = base::base64url_decode(body.value("csr", ""));
            if (!csr) return problem_reply(400, "badCSR", "no CSR");
            o.certificate = issue_for(*csr);
            if (o.certificate.empty()) return problem_reply(400, "badCSR", "unparsable CSR");
            o.processing_polls = processing_polls;
            o.status = processing_polls > 0 ? "processing" : "valid";
            if (finalize_errors > 0) {
                --finalize_errors;
                return problem_reply(500, "serverInternal", "lost the answer",
                                     "Replay-Nonce: " + next_nonce() + "\r\n");
            }
            return json_reply(200, order_json(i), path);
        }
        if (path.starts_with("/cert/")) {
            const Order& o = orders_[static_cast<std::size_t>(number("/cert/"))];
            return http_reply(200, o.certificate, "Replay-Nonce: " + next_nonce() + "\r\n",
                              "application/pem-certificate-chain");
        }
        return problem_reply(404, "malformed", "no such resource");
    }

    Pki pki_;
    mutable std::recursive_mutex mutex_;  // intercept may call fresh_nonce()
    std::vector<std::string> log_;
    std::vector<std::string> used_;
    std::set<std::string> live_;
    int nonce_counter_ = 0;
    std::vector<Order> orders_;
    std::vector<Authz> authzs_;
    TlsServer server_;  // last: it stops before the state it serves goes
};

}  // namespace testsupport
