// acme::parse_directory, the parser Client::connect runs on the directory document (RFC
// 8555 §7.1.1) it fetched. The first byte picks the directory URL (default port, explicit
// port, upper-case host, a path with a query), the rest is the body as the server sent it.
// Properties of every accepted directory:
//   - newNonce, newAccount and newOrder are on the directory's origin (SECURITY.md rule 6);
//   - no entry is longer than the body it came from (nothing is invented or grown);
//   - a body over the HTTP cap (HttpOptions::max_body) never gets this far in the client,
//     but parsing it must not fail differently: only Errc::protocol on rejection.
#include "acme/client.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 1) return 0;
    static const std::string kUrls[] = {
        "https://acme.example/dir",
        "https://acme.example:14000/dir",
        "https://ACME.Example:443/directory",
        "https://127.0.0.1:14000/dir?x=1#f",
    };
    const std::string& url = kUrls[data[0] % std::size(kUrls)];
    const auto body = fuzz_text(data + 1, size - 1);
    auto d = acme::parse_directory(url, body);
    if (!d) {
        FUZZ_CHECK(d.error().code == base::Errc::protocol, "code %d",
                   static_cast<int>(d.error().code));
        FUZZ_CHECK(d.error().message.size() <= url.size() + 512, "error message of %zu bytes",
                   d.error().message.size());
        return 0;
    }
    const std::string origin = acme::origin_of(url);
    FUZZ_CHECK(!origin.empty());
    FUZZ_CHECK(d->url == url);
    for (const std::string* u : {&d->new_nonce, &d->new_account, &d->new_order})
        FUZZ_CHECK(acme::origin_of(*u) == origin, "off-origin entry accepted: '%s' (origin %s)",
                   u->c_str(), origin.c_str());
    for (const std::string* u :
         {&d->new_nonce, &d->new_account, &d->new_order, &d->revoke_cert, &d->key_change})
        FUZZ_CHECK(u->size() <= body.size(), "entry of %zu bytes from a body of %zu", u->size(),
                   body.size());
    for (const auto* o : {&d->new_authz, &d->renewal_info, &d->terms_of_service})
        FUZZ_CHECK(!*o || (*o)->size() <= body.size());
    FUZZ_CHECK(d->profiles.is_null() || d->profiles.dump().size() <= body.size() * 6 + 16,
               "profiles grew to %zu bytes", d->profiles.dump().size());
    // The same body under another origin: the required entries cannot be on both.
    const std::string other = "https://elsewhere.example/dir";
    FUZZ_CHECK(!acme::parse_directory(other, body) || origin == acme::origin_of(other));
    return 0;
}
