// The ACME resources an order goes through (RFC 8555 §7.1.3-§7.1.5), read from the
// server's JSON in one place. Server JSON is hostile until checked: every field the agent
// uses is checked for its JSON type and size, and every URL for the CA's origin (SECURITY.md
// rule 6); a violation is Errc::protocol naming the resource and the field. Challenge types
// the agent does not know are kept as ChallengeType::other, never an error.
#pragma once

#include "base/error.h"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace acme {

enum class OrderStatus { pending, ready, processing, valid, invalid };
enum class AuthorizationStatus { pending, valid, invalid, deactivated, expired, revoked };
enum class ChallengeStatus { pending, processing, valid, invalid };
enum class ChallengeType { http01, dns01, tls_alpn01, other };

// "pending", "http-01", ...: the RFC's spelling. For ChallengeType::other, "other" (the
// server's own spelling is Challenge::type_name).
std::string_view to_string(OrderStatus s);
std::string_view to_string(AuthorizationStatus s);
std::string_view to_string(ChallengeStatus s);
std::string_view to_string(ChallengeType t);
// "http-01" -> http01; anything unknown -> other.
ChallengeType challenge_type(std::string_view name);

// An RFC 7807 problem as the CA sent it inside a resource (`error`), texts cut to bounds.
struct Problem {
    std::string type, detail, instance;
};

// RFC 8555 §9.7.7: "dns" or "ip" (or a type the agent never asks for, kept as sent).
struct Identifier {
    std::string type, value;
};

struct Challenge {
    ChallengeType type = ChallengeType::other;
    std::string type_name;  // as sent: "http-01", or an unknown type's name
    std::string url;        // on the CA's origin
    ChallengeStatus status = ChallengeStatus::pending;  // when the server sent none too
    std::string token;  // a valid token (challenge::valid_token) for the known types
    std::optional<Problem> error;
};

struct Authorization {
    Identifier identifier;
    AuthorizationStatus status = AuthorizationStatus::pending;
    bool wildcard = false;
    std::vector<Challenge> challenges;

    // The challenge of `type` (the server's spelling), or nullptr.
    [[nodiscard]] const Challenge* challenge(std::string_view type_name) const;
    // The identifier as the user wrote it ("*.example.org" for a wildcard).
    [[nodiscard]] std::string name() const;
};

struct Order {
    OrderStatus status = OrderStatus::pending;
    // Each member is required in the states that use it, and checked whenever present.
    std::vector<Identifier> identifiers;
    std::vector<std::string> authorizations;  // URLs on the CA's origin; required if pending
    std::string finalize;                     // on the CA's origin; required if ready
    std::optional<std::string> certificate;   // on the CA's origin; required if valid
    std::optional<Problem> error;
};

// Bounds on what the server may send.
inline constexpr std::size_t kMaxAuthorizations = 100;
inline constexpr std::size_t kMaxChallenges = 16;
inline constexpr std::size_t kMaxUrlLength = 2048;
inline constexpr std::size_t kMaxIdentifierLength = 255;

// Each checks `j` and every URL in it against `origin`, the CA's (Client::origin()).
// Errc::protocol with `where` naming the resource and the message naming the field.
base::Result<Order> parse_order(const std::string& origin, const nlohmann::json& j);
base::Result<Authorization> parse_authorization(const std::string& origin, const nlohmann::json& j);
base::Result<Challenge> parse_challenge(const std::string& origin, const nlohmann::json& j);

}  // namespace acme
