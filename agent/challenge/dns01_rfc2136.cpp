// dns-01 through RFC 2136 dynamic updates signed with TSIG (RFC 8945), built and signed by
// ldns. Every exchange is a fresh resolver over TCP: ldns marks a server that timed out
// once as unreachable for the rest of a resolver's life, and TCP rules out a forged UDP
// answer to the propagation poll.
#include "base/deleter.h"
#include "base/log.h"
#include "challenge/dns01.h"

#include <ldns/ldns.h>
#include <openssl/crypto.h>

#include <cstring>
#include <map>
#include <thread>
#include <utility>

namespace challenge {

using base::Errc;
using base::fail;

namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kWait = std::chrono::seconds(60);
constexpr auto kQueryTimeout = std::chrono::seconds(5);
constexpr auto kPollInterval = std::chrono::milliseconds(200);
constexpr std::uint32_t kTtl = 60;

using base::Deleter;
using Pkt = std::unique_ptr<ldns_pkt, Deleter<ldns_pkt_free>>;
using Rdf = std::unique_ptr<ldns_rdf, Deleter<ldns_rdf_deep_free>>;
using Rr = std::unique_ptr<ldns_rr, Deleter<ldns_rr_free>>;
using RrList = std::unique_ptr<ldns_rr_list, Deleter<ldns_rr_list_deep_free>>;

// ldns copies the TSIG secret into the resolver; wipe that copy before it is freed.
void free_resolver(ldns_resolver* r) {
    if (const char* data = ldns_resolver_tsig_keydata(r))
        OPENSSL_cleanse(const_cast<char*>(data), std::strlen(data));
    ldns_resolver_deep_free(r);
}
using Resolver = std::unique_ptr<ldns_resolver, Deleter<free_resolver>>;

std::string status_text(ldns_status s) {
    const char* text = ldns_get_errorstr_by_id(s);
    return text ? text : "ldns status " + std::to_string(static_cast<int>(s));
}

std::string rcode_name(ldns_pkt_rcode rcode) {
    if (const ldns_lookup_table* t = ldns_lookup_by_id(ldns_rcodes, static_cast<int>(rcode)))
        return t->name;
    return "RCODE " + std::to_string(static_cast<int>(rcode));
}

std::string dname_text(const ldns_rdf* d) {
    const std::unique_ptr<char, base::Deleter<std::free>> s(ldns_rdf2str(d));
    return s ? s.get() : "?";
}

// The TSIG error field (RFC 8945 §4.3) of a reply, 0 when there is none.
unsigned tsig_error(const ldns_pkt* reply) {
    const ldns_rr* tsig = ldns_pkt_tsig(reply);
    if (!tsig || ldns_rr_rd_count(tsig) < 6) return 0;
    const ldns_rdf* e = ldns_rr_rdf(tsig, 5);
    if (!e || ldns_rdf_size(e) != 2) return 0;
    return ldns_rdf2native_int16(e);
}

std::string tsig_error_text(unsigned code) {
    switch (code) {
        case 16:
            return "BADSIG: the signature does not verify (wrong secret?)";
        case 17:
            return "BADKEY: the server does not know this key (name or algorithm differ?)";
        case 18:
            return "BADTIME: the clocks differ by more than the fudge";
        case 22:
            return "BADTRUNC";
        default:
            return "TSIG error " + std::to_string(code);
    }
}

class Rfc2136 final : public Solver {
  public:
    Rfc2136(std::string server, std::string key_file, std::chrono::milliseconds wait,
            std::chrono::milliseconds query_timeout)
        : server_text_(std::move(server)),
          key_file_(std::move(key_file)),
          wait_(wait),
          query_timeout_(query_timeout) {}

    std::string type() const override { return "dns-01"; }

    Result<void> present(const std::string& identifier, const std::string& token,
                         const std::string& key_authorization) override {
        if (!valid_dns01_identifier(identifier))
            return fail(Errc::protocol, "dns-01",
                        "the server sent an identifier that is not a DNS name");
        if (auto ok = load(); !ok) return ok;
        Record rec;
        rec.fqdn = dns01_record_name(identifier);
        rec.value = dns01_txt_value(key_authorization);
        auto zone = find_zone(rec.fqdn);
        if (!zone) return std::unexpected(zone.error());
        rec.zone = std::move(*zone);
        if (auto r = update(rec, /*add=*/true); !r) return r;
        live_.insert_or_assign({identifier, token}, rec);
        base::log::info("dns-01: added TXT " + rec.fqdn + " in zone " + rec.zone + " at " +
                        server_->to_string() + " (key " + key_->name + ")");
        return wait_for(rec);
    }

    void cleanup(const std::string& identifier, const std::string& token) override {
        auto it = live_.find({identifier, token});
        if (it == live_.end()) return;
        const Record rec = std::move(it->second);
        live_.erase(it);
        if (auto r = update(rec, /*add=*/false); !r)
            base::log::warning("dns-01 cleanup: " + r.error().describe());
        else
            base::log::debug("dns-01: deleted TXT " + rec.fqdn + " from zone " + rec.zone);
    }

  private:
    struct Record {
        std::string zone;  // "example.test."
        std::string fqdn;  // "_acme-challenge.x.example.test."
        std::string value;
    };

    Result<void> load() {
        if (!server_) {
            auto s = parse_dns_server(server_text_);
            if (!s) return std::unexpected(s.error());
            server_ = std::move(*s);
        }
        if (!key_) {
            auto k = read_tsig_key_file(key_file_);
            if (!k) return std::unexpected(k.error());
            key_ = std::move(*k);
        }
        return {};
    }

    Result<Resolver> resolver(std::chrono::milliseconds timeout, bool sign) const {
        Resolver r(ldns_resolver_new());
        if (!r) return fail(Errc::internal, "ldns_resolver_new", "out of memory");
        const bool v6 = server_->address.find(':') != std::string::npos;
        Rdf addr(ldns_rdf_new_frm_str(v6 ? LDNS_RDF_TYPE_AAAA : LDNS_RDF_TYPE_A,
                                      server_->address.c_str()));
        if (!addr || ldns_resolver_push_nameserver(r.get(), addr.get()) != LDNS_STATUS_OK)
            return fail(Errc::internal, "ldns_resolver_push_nameserver", server_->address);
        ldns_resolver_set_port(r.get(), server_->port);
        ldns_resolver_set_usevc(r.get(), true);
        ldns_resolver_set_recursive(r.get(), false);
        ldns_resolver_set_retry(r.get(), 1);
        ldns_resolver_set_retrans(r.get(), 0);
        ldns_resolver_set_random(r.get(), false);
        const auto ms = std::max<std::chrono::milliseconds::rep>(timeout.count(), 1);
        timeval tv{};
        tv.tv_sec = static_cast<time_t>(ms / 1000);
        tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
        ldns_resolver_set_timeout(r.get(), tv);
        if (sign) {
            ldns_resolver_set_tsig_keyname(r.get(), key_->name.c_str());
            ldns_resolver_set_tsig_algorithm(r.get(), key_->algorithm.c_str());
            ldns_resolver_set_tsig_keydata(r.get(), key_->secret.reveal().c_str());
        }
        return r;
    }

    // One exchange. ldns_send, not ldns_resolver_send_pkt: the latter drops the reply when
    // its TSIG does not verify, and an unsigned NOTAUTH/BADKEY reply is exactly what tells
    // the user which key the server rejected. `bogus` reports that case.
    Result<Pkt> exchange(ldns_resolver* r, const ldns_pkt* query, const std::string& what,
                         bool* bogus) const {
        ldns_pkt* raw = nullptr;
        const ldns_status s = ldns_send(&raw, r, query);
        Pkt reply(raw);
        if (bogus) *bogus = (s == LDNS_STATUS_CRYPTO_TSIG_BOGUS);
        if (!reply || (s != LDNS_STATUS_OK && s != LDNS_STATUS_CRYPTO_TSIG_BOGUS))
            return fail(Errc::network, "dns-01 " + server_->to_string(),
                        "no answer to " + what + ": " + status_text(s));
        if (ldns_pkt_id(reply.get()) != ldns_pkt_id(query) || !ldns_pkt_qr(reply.get()))
            return fail(Errc::protocol, "dns-01 " + server_->to_string(),
                        "a reply to " + what + " that is not ours");
        return reply;
    }

    Result<Pkt> query(const std::string& name, ldns_rr_type type,
                      std::chrono::milliseconds timeout) const {
        const std::string what =
            "the " + std::string(type == LDNS_RR_TYPE_SOA ? "SOA" : "TXT") + " query for " + name;
        auto r = resolver(timeout, /*sign=*/false);
        if (!r) return std::unexpected(r.error());
        ldns_rdf* qname = ldns_dname_new_frm_str(name.c_str());
        if (!qname) return fail(Errc::internal, "dns-01", "cannot make a DNS name of " + name);
        Pkt q(ldns_pkt_query_new(qname, type, LDNS_RR_CLASS_IN, 0));  // takes qname
        if (!q) return fail(Errc::internal, "ldns_pkt_query_new", what);
        ldns_pkt_set_random_id(q.get());
        return exchange(r->get(), q.get(), what, nullptr);
    }

    // The zone holding `fqdn`: the closest enclosing name for which `server` answers an
    // SOA with authority, found by walking up the labels. An authoritative negative
    // answer's SOA (RFC 2308) names the zone at once.
    Result<std::string> find_zone(const std::string& fqdn) const {
        Rdf name(ldns_dname_new_frm_str(fqdn.c_str()));
        if (!name) return fail(Errc::internal, "dns-01", "cannot make a DNS name of " + fqdn);
        while (ldns_dname_label_count(name.get()) > 0) {
            std::string candidate = dname_text(name.get());
            auto reply = query(candidate, LDNS_RR_TYPE_SOA, query_timeout_);
            if (!reply) return std::unexpected(reply.error());
            const ldns_pkt_rcode rc = ldns_pkt_get_rcode(reply->get());
            if (ldns_pkt_aa(reply->get()) &&
                (rc == LDNS_RCODE_NOERROR || rc == LDNS_RCODE_NXDOMAIN)) {
                const ldns_rr_list* an = ldns_pkt_answer(reply->get());
                for (std::size_t i = 0; i < ldns_rr_list_rr_count(an); ++i) {
                    const ldns_rr* rr = ldns_rr_list_rr(an, i);
                    if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA &&
                        ldns_dname_compare(ldns_rr_owner(rr), name.get()) == 0)
                        return candidate;
                }
                const ldns_rr_list* ns = ldns_pkt_authority(reply->get());
                for (std::size_t i = 0; i < ldns_rr_list_rr_count(ns); ++i) {
                    const ldns_rr* rr = ldns_rr_list_rr(ns, i);
                    if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA &&
                        (ldns_dname_is_subdomain(name.get(), ldns_rr_owner(rr)) ||
                         ldns_dname_compare(ldns_rr_owner(rr), name.get()) == 0))
                        return dname_text(ldns_rr_owner(rr));
                }
            }
            Rdf parent(ldns_dname_left_chop(name.get()));
            if (!parent) break;
            name = std::move(parent);
        }
        return fail(Errc::server, "dns-01 " + server_->to_string(),
                    "the server is authoritative for no zone that holds " + fqdn);
    }

    // Adds (RFC 2136 §2.5.1) or deletes exactly (§2.5.4: class NONE, TTL 0) the TXT record.
    Result<void> update(const Record& rec, bool add) const {
        const std::string where = "dns-01 update " + server_->to_string();
        const std::string what = std::string(add ? "adding" : "deleting") + " TXT " + rec.fqdn +
                                 " in zone " + rec.zone + " with key '" + key_->name + "'";
        Rr rr(ldns_rr_new());
        ldns_rdf* owner = ldns_dname_new_frm_str(rec.fqdn.c_str());
        ldns_rdf* txt = ldns_rdf_new_frm_str(LDNS_RDF_TYPE_STR, rec.value.c_str());
        if (!rr || !owner || !txt) {
            ldns_rdf_deep_free(owner);
            ldns_rdf_deep_free(txt);
            return fail(Errc::internal, where, "cannot build the record for " + what);
        }
        ldns_rr_set_owner(rr.get(), owner);  // takes owner
        ldns_rr_set_type(rr.get(), LDNS_RR_TYPE_TXT);
        ldns_rr_set_class(rr.get(), add ? LDNS_RR_CLASS_IN : LDNS_RR_CLASS_NONE);
        ldns_rr_set_ttl(rr.get(), add ? kTtl : 0);
        if (!ldns_rr_push_rdf(rr.get(), txt)) {  // takes txt
            ldns_rdf_deep_free(txt);
            return fail(Errc::internal, where, "cannot build the record for " + what);
        }
        RrList updates(ldns_rr_list_new());
        if (!updates || !ldns_rr_list_push_rr(updates.get(), rr.get()))
            return fail(Errc::internal, where, "cannot build the update for " + what);
        (void)rr.release();  // the list owns it now

        ldns_rdf* zone = ldns_dname_new_frm_str(rec.zone.c_str());
        if (!zone) return fail(Errc::internal, where, "cannot make a DNS name of " + rec.zone);
        Pkt pkt(ldns_update_pkt_new(zone, LDNS_RR_CLASS_IN, nullptr, updates.get(),
                                    nullptr));  // takes zone
        if (!pkt) {
            ldns_rdf_deep_free(zone);
            return fail(Errc::internal, "ldns_update_pkt_new", what);
        }
        ldns_pkt_set_rd(pkt.get(), false);
        ldns_pkt_set_random_id(pkt.get());  // before signing: the MAC covers the ID

        auto r = resolver(query_timeout_, /*sign=*/true);
        if (!r) return std::unexpected(r.error());
        if (ldns_status s = ldns_update_pkt_tsig_add(pkt.get(), r->get()); s != LDNS_STATUS_OK)
            return fail(Errc::internal, "ldns_update_pkt_tsig_add", what + ": " + status_text(s));

        bool bogus = false;
        auto reply = exchange(r->get(), pkt.get(), what, &bogus);
        if (!reply) return std::unexpected(reply.error());
        const ldns_pkt_rcode rc = ldns_pkt_get_rcode(reply->get());
        const unsigned terr = tsig_error(reply->get());
        const std::string tsig_note = terr ? " (" + tsig_error_text(terr) + ")" : "";
        if (rc == LDNS_RCODE_NOTAUTH)
            return fail(
                Errc::server, where,
                "NOTAUTH " + what + tsig_note +
                    ": the server does not accept this key for the zone, or is not its primary");
        if (rc == LDNS_RCODE_REFUSED)
            return fail(
                Errc::server, where,
                "REFUSED " + what + tsig_note +
                    ": the zone's allow-update / update-policy does not grant this key that name");
        if (rc != LDNS_RCODE_NOERROR)
            return fail(Errc::server, where, rcode_name(rc) + " " + what + tsig_note);
        if (bogus)
            return fail(Errc::protocol, where,
                        "the reply to " + what + " carries no valid TSIG signature of that key");
        return {};
    }

    static bool answers(const Record& rec, const ldns_pkt* reply) {
        if (ldns_pkt_get_rcode(reply) != LDNS_RCODE_NOERROR) return false;
        Rdf owner(ldns_dname_new_frm_str(rec.fqdn.c_str()));
        const ldns_rr_list* an = ldns_pkt_answer(reply);
        for (std::size_t i = 0; i < ldns_rr_list_rr_count(an); ++i) {
            const ldns_rr* rr = ldns_rr_list_rr(an, i);
            if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_TXT || !owner ||
                ldns_dname_compare(ldns_rr_owner(rr), owner.get()) != 0)
                continue;
            std::string text;  // a TXT's character-strings, joined (RFC 8555 §8.4 uses one)
            for (std::size_t j = 0; j < ldns_rr_rd_count(rr); ++j) {
                const ldns_rdf* s = ldns_rr_rdf(rr, j);
                const std::size_t size = ldns_rdf_size(s);
                if (size < 1) continue;
                const std::uint8_t* data = ldns_rdf_data(s);
                text.append(reinterpret_cast<const char*>(data + 1),
                            std::min<std::size_t>(data[0], size - 1));
            }
            if (text == rec.value) return true;
        }
        return false;
    }

    // Polls `server` until it answers the new record, bounded by wait_.
    Result<void> wait_for(const Record& rec) const {
        const auto deadline = Clock::now() + wait_;
        std::string last = "no answer yet";
        for (;;) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
            auto reply =
                query(rec.fqdn, LDNS_RR_TYPE_TXT,
                      std::min(query_timeout_, std::max(left, std::chrono::milliseconds(1))));
            if (reply && answers(rec, reply->get())) {
                base::log::debug("dns-01: " + server_->to_string() + " answers TXT " + rec.fqdn);
                return {};
            }
            last = reply ? rcode_name(ldns_pkt_get_rcode(reply->get())) + " without the value"
                         : reply.error().message;
            if (Clock::now() + kPollInterval >= deadline) break;
            std::this_thread::sleep_for(kPollInterval);
        }
        return fail(
            Errc::network, "dns-01 " + server_->to_string(),
            "the server does not answer the new TXT " + rec.fqdn + " after " +
                std::to_string(std::chrono::duration_cast<std::chrono::seconds>(wait_).count()) +
                " s (last: " + last + ")");
    }

    std::string server_text_;
    std::string key_file_;
    std::chrono::milliseconds wait_;
    std::chrono::milliseconds query_timeout_;
    std::optional<DnsServer> server_;
    std::optional<TsigKey> key_;
    std::map<std::pair<std::string, std::string>, Record> live_;  // (identifier, token)
};

}  // namespace

std::unique_ptr<Solver> make_dns01_rfc2136(std::string server, std::string tsig_key_file,
                                           std::chrono::milliseconds wait,
                                           std::chrono::milliseconds query_timeout) {
    return std::make_unique<Rfc2136>(std::move(server), std::move(tsig_key_file), wait,
                                     query_timeout);
}

std::unique_ptr<Solver> make_dns01_rfc2136(std::string server, std::string tsig_key_file) {
    return make_dns01_rfc2136(std::move(server), std::move(tsig_key_file), kWait, kQueryTimeout);
}

}  // namespace challenge
