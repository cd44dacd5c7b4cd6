#include "acme/resources.h"

#include "acme/client.h"
#include "base/log.h"
#include "challenge/http01.h"

#include <array>
#include <utility>

namespace acme {

using base::Errc;
using base::fail;
using nlohmann::json;

namespace {

constexpr std::array kOrderStatus{
    std::pair{OrderStatus::pending, "pending"}, std::pair{OrderStatus::ready, "ready"},
    std::pair{OrderStatus::processing, "processing"}, std::pair{OrderStatus::valid, "valid"},
    std::pair{OrderStatus::invalid, "invalid"}};
constexpr std::array kAuthorizationStatus{
    std::pair{AuthorizationStatus::pending, "pending"},
    std::pair{AuthorizationStatus::valid, "valid"},
    std::pair{AuthorizationStatus::invalid, "invalid"},
    std::pair{AuthorizationStatus::deactivated, "deactivated"},
    std::pair{AuthorizationStatus::expired, "expired"},
    std::pair{AuthorizationStatus::revoked, "revoked"}};
constexpr std::array kChallengeStatus{std::pair{ChallengeStatus::pending, "pending"},
                                      std::pair{ChallengeStatus::processing, "processing"},
                                      std::pair{ChallengeStatus::valid, "valid"},
                                      std::pair{ChallengeStatus::invalid, "invalid"}};
constexpr std::array kChallengeType{std::pair{ChallengeType::http01, "http-01"},
                                    std::pair{ChallengeType::dns01, "dns-01"},
                                    std::pair{ChallengeType::tls_alpn01, "tls-alpn-01"}};

template <typename Table, typename E>
std::string_view name_of(const Table& table, E e, std::string_view fallback) {
    for (const auto& [value, name] : table)
        if (value == e) return name;
    return fallback;
}

// Server text in a message: bounded, every control character (newlines too) escaped.
std::string shown(std::string_view s) {
    return base::printable(s.substr(0, 100), base::Lines::escape);
}

// Reads the members of one JSON object of the server's, failing with Errc::protocol that
// names `what` and the member.
class Fields {
  public:
    Fields(const std::string& origin, const json& j, std::string what)
        : origin_(origin), j_(j), what_(std::move(what)) {}

    Result<void> object() const {
        if (j_.is_object()) return {};
        return fail(Errc::protocol, what_, "the server's " + what_ + " is not a JSON object");
    }
    [[nodiscard]] bool has(const char* key) const { return j_.contains(key); }

    // A string member of at most `max` bytes; "" when absent and not `required`.
    Result<std::string> string(const char* key, std::size_t max, bool required) const {
        if (!j_.contains(key)) {
            if (!required) return std::string();
            return bad(std::string("has no ") + key);
        }
        const json& v = j_[key];
        if (!v.is_string()) return bad(std::string("has a ") + key + " that is not a string");
        const auto& s = v.get_ref<const std::string&>();
        if (s.size() > max)
            return bad(std::string("has a ") + key + " longer than " + std::to_string(max) +
                       " bytes");
        return s;
    }

    // A URL on the CA's origin.
    Result<std::string> url(const char* key, bool required) const {
        auto u = string(key, kMaxUrlLength, required);
        if (!u) return u;
        if (u->empty()) {
            if (required) return bad(std::string("has an empty ") + key);
            return u;
        }
        if (auto ok = check_origin(origin_, *u, what_ + " " + key); !ok)
            return std::unexpected(ok.error());
        return u;
    }

    template <typename Table>
    auto status(const Table& table) const -> Result<typename Table::value_type::first_type> {
        auto s = string("status", 32, true);
        if (!s) return std::unexpected(s.error());
        for (const auto& [value, name] : table)
            if (*s == name) return value;
        return bad("has an unknown status '" + shown(*s) + "'");
    }

    Result<bool> boolean(const char* key) const {
        if (!j_.contains(key)) return false;
        if (!j_[key].is_boolean())
            return bad(std::string("has a ") + key + " that is not true/false");
        return j_[key].get<bool>();
    }

    // An array member of at most `max` entries.
    Result<const json*> array(const char* key, std::size_t max) const {
        if (!j_.contains(key)) return bad(std::string("has no ") + key);
        const json& v = j_[key];
        if (!v.is_array()) return bad(std::string("has a ") + key + " that is not a list");
        if (v.size() > max)
            return bad(std::string("has more than ") + std::to_string(max) + " " + key);
        return &v;
    }

    // `error` (RFC 8555 §7.1.3, §8): optional, an object; its texts are cut, not refused.
    Result<std::optional<Problem>> problem() const {
        if (!j_.contains("error")) return std::nullopt;
        const json& e = j_["error"];
        if (!e.is_object()) return bad("has an error that is not a JSON object");
        Problem p{json_string(e, "type"), json_string(e, "detail"), json_string(e, "instance")};
        p.type.resize(std::min<std::size_t>(p.type.size(), 300));
        p.detail.resize(std::min<std::size_t>(p.detail.size(), 1024));
        p.instance.resize(std::min<std::size_t>(p.instance.size(), 300));
        return p;
    }

    [[nodiscard]] const std::string& what() const { return what_; }

    [[nodiscard]] base::Error error(const std::string& text) const {
        return base::Error{Errc::protocol, what_, "the server's " + what_ + " " + text,
                           std::nullopt};
    }

  private:
    [[nodiscard]] std::unexpected<base::Error> bad(const std::string& text) const {
        return std::unexpected(error(text));
    }

    const std::string& origin_;
    const json& j_;
    std::string what_;
};

Result<Identifier> parse_identifier(const std::string& origin, const json& j,
                                    const std::string& of) {
    Fields f(origin, j, of + " identifier");
    if (auto ok = f.object(); !ok) return std::unexpected(ok.error());
    auto type = f.string("type", 32, true);
    if (!type) return std::unexpected(type.error());
    auto value = f.string("value", kMaxIdentifierLength, true);
    if (!value) return std::unexpected(value.error());
    return Identifier{std::move(*type), std::move(*value)};
}

}  // namespace

std::string_view to_string(OrderStatus s) {
    return name_of(kOrderStatus, s, "?");
}
std::string_view to_string(AuthorizationStatus s) {
    return name_of(kAuthorizationStatus, s, "?");
}
std::string_view to_string(ChallengeStatus s) {
    return name_of(kChallengeStatus, s, "?");
}
std::string_view to_string(ChallengeType t) {
    return name_of(kChallengeType, t, "other");
}

ChallengeType challenge_type(std::string_view name) {
    for (const auto& [value, spelling] : kChallengeType)
        if (name == spelling) return value;
    return ChallengeType::other;
}

const Challenge* Authorization::challenge(std::string_view type_name) const {
    for (const auto& c : challenges)
        if (c.type_name == type_name) return &c;
    return nullptr;
}

std::string Authorization::name() const {
    return wildcard ? "*." + identifier.value : identifier.value;
}

Result<Challenge> parse_challenge(const std::string& origin, const json& j) {
    Fields f(origin, j, "challenge");
    if (auto ok = f.object(); !ok) return std::unexpected(ok.error());
    Challenge c;
    auto type = f.string("type", 64, true);
    if (!type) return std::unexpected(type.error());
    c.type_name = std::move(*type);
    c.type = challenge_type(c.type_name);
    auto url = f.url("url", true);
    if (!url) return std::unexpected(url.error());
    c.url = std::move(*url);
    // The agent never reads a challenge's status (the authorization's tells): checked when
    // sent, `pending` when not.
    if (f.has("status")) {
        auto status = f.status(kChallengeStatus);
        if (!status) return std::unexpected(status.error());
        c.status = *status;
    }
    // The known types all carry a token (RFC 8555 §8.3, §8.4, RFC 8737 §3); another type
    // may not, and its token is never used.
    const bool known = c.type != ChallengeType::other;
    auto token = f.string("token", 256, known);
    if (!token) return std::unexpected(token.error());
    if (known && !challenge::valid_token(*token))
        return std::unexpected(f.error("has a malformed token"));
    c.token = std::move(*token);
    auto error = f.problem();
    if (!error) return std::unexpected(error.error());
    c.error = std::move(*error);
    return c;
}

Result<Authorization> parse_authorization(const std::string& origin, const json& j) {
    Fields f(origin, j, "authorization");
    if (auto ok = f.object(); !ok) return std::unexpected(ok.error());
    Authorization a;
    if (!f.has("identifier")) return std::unexpected(f.error("has no identifier"));
    auto id = parse_identifier(origin, j["identifier"], "authorization");
    if (!id) return std::unexpected(id.error());
    a.identifier = std::move(*id);
    auto status = f.status(kAuthorizationStatus);
    if (!status) return std::unexpected(status.error());
    a.status = *status;
    auto wildcard = f.boolean("wildcard");
    if (!wildcard) return std::unexpected(wildcard.error());
    a.wildcard = *wildcard;
    auto challenges = f.array("challenges", kMaxChallenges);
    if (!challenges) return std::unexpected(challenges.error());
    for (const auto& cj : **challenges) {
        auto c = parse_challenge(origin, cj);
        if (!c) return std::unexpected(c.error());
        a.challenges.push_back(std::move(*c));
    }
    return a;
}

Result<Order> parse_order(const std::string& origin, const json& j) {
    Fields f(origin, j, "order");
    if (auto ok = f.object(); !ok) return std::unexpected(ok.error());
    Order o;
    auto status = f.status(kOrderStatus);
    if (!status) return std::unexpected(status.error());
    o.status = *status;
    // A member is required in the states that use it (an invalid order is read for its
    // error alone); present in any other, it is checked all the same.
    if (f.has("identifiers")) {
        auto ids = f.array("identifiers", kMaxAuthorizations);
        if (!ids) return std::unexpected(ids.error());
        for (const auto& ij : **ids) {
            auto id = parse_identifier(origin, ij, "order");
            if (!id) return std::unexpected(id.error());
            o.identifiers.push_back(std::move(*id));
        }
    }
    if (f.has("authorizations") || o.status == OrderStatus::pending) {
        auto authzs = f.array("authorizations", kMaxAuthorizations);
        if (!authzs) return std::unexpected(authzs.error());
        for (const auto& aj : **authzs) {
            if (!aj.is_string() || aj.get_ref<const std::string&>().size() > kMaxUrlLength)
                return std::unexpected(f.error("has a malformed authorization URL"));
            if (auto ok = check_origin(origin, aj.get<std::string>(), "order authorizations"); !ok)
                return std::unexpected(ok.error());
            o.authorizations.push_back(aj.get<std::string>());
        }
    }
    auto finalize = f.url("finalize", o.status == OrderStatus::ready);
    if (!finalize) return std::unexpected(finalize.error());
    o.finalize = std::move(*finalize);
    auto certificate = f.url("certificate", o.status == OrderStatus::valid);
    if (!certificate) return std::unexpected(certificate.error());
    if (!certificate->empty()) o.certificate = std::move(*certificate);
    auto error = f.problem();
    if (!error) return std::unexpected(error.error());
    o.error = std::move(*error);
    return o;
}

}  // namespace acme
