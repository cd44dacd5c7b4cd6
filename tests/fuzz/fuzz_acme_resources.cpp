// acme::parse_order / parse_authorization / parse_challenge (resources.h), the one place
// where the agent reads the resources of an order from the CA's JSON. The first byte picks
// the parser, the rest is the body as the server sent it. Properties:
//   - a refusal is Errc::protocol and its message is bounded;
//   - every URL accepted is on the CA's origin (SECURITY.md rule 6), within its bound;
//   - lists and strings stay within their bounds; a known challenge type has a valid token.
#include "acme/client.h"
#include "acme/resources.h"
#include "challenge/http01.h"
#include "fuzz_common.h"

namespace {

const std::string kOrigin = "https://acme.example:14000";

void check_url(const std::string& url) {
    FUZZ_CHECK(acme::origin_of(url) == kOrigin, "off-origin URL accepted: '%s'", url.c_str());
    FUZZ_CHECK(url.size() <= acme::kMaxUrlLength);
}

void check(const acme::Challenge& c) {
    check_url(c.url);
    FUZZ_CHECK(c.type == acme::challenge_type(c.type_name));
    FUZZ_CHECK(c.type == acme::ChallengeType::other || challenge::valid_token(c.token),
               "challenge %s with token '%s'", c.type_name.c_str(), c.token.c_str());
}

template <typename T>
void refused_or(const base::Result<T>& r, void (*ok)(const T&)) {
    if (r) {
        ok(*r);
        return;
    }
    FUZZ_CHECK(r.error().code == base::Errc::protocol, "code %d", static_cast<int>(r.error().code));
    FUZZ_CHECK(r.error().message.size() <= 600, "error message of %zu bytes",
               r.error().message.size());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    auto j = nlohmann::json::parse(fuzz_text(data + 1, size - 1), nullptr, false);
    switch (data[0] % 3) {
        case 0:
            refused_or<acme::Order>(acme::parse_order(kOrigin, j), [](const acme::Order& o) {
                FUZZ_CHECK(o.authorizations.size() <= acme::kMaxAuthorizations);
                for (const auto& a : o.authorizations) check_url(a);
                FUZZ_CHECK(o.status != acme::OrderStatus::ready || !o.finalize.empty());
                if (!o.finalize.empty()) check_url(o.finalize);
                FUZZ_CHECK(o.status != acme::OrderStatus::valid || o.certificate);
                if (o.certificate) check_url(*o.certificate);
                for (const auto& id : o.identifiers)
                    FUZZ_CHECK(id.value.size() <= acme::kMaxIdentifierLength);
            });
            break;
        case 1:
            refused_or<acme::Authorization>(
                acme::parse_authorization(kOrigin, j), [](const acme::Authorization& a) {
                    FUZZ_CHECK(a.challenges.size() <= acme::kMaxChallenges);
                    FUZZ_CHECK(a.identifier.value.size() <= acme::kMaxIdentifierLength);
                    for (const auto& c : a.challenges) check(c);
                });
            break;
        default:
            refused_or<acme::Challenge>(acme::parse_challenge(kOrigin, j), check);
    }
    return 0;
}
