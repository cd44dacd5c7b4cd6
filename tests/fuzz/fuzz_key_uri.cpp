// keystore::KeyUri::parse on arbitrary text; every accepted URI must survive
// parse(to_string(u)) == u. to_string() never prints a pin-value (by design), so that
// attribute is left out of the comparison.
#include "fuzz_common.h"
#include "keystore/key_uri.h"

#include <algorithm>

using keystore::KeyUri;

namespace {
KeyUri::Attrs without_pin_value(KeyUri::Attrs attrs) {
    std::erase_if(attrs, [](const auto& a) { return a.first == "pin-value"; });
    return attrs;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto text = fuzz_text(data, size);
    auto u = KeyUri::parse(text);
    if (!u) {
        FUZZ_CHECK(!u.error().describe().empty());
        return 0;
    }
    // Accessors must hold for whatever was accepted.
    (void)u->path_attr("token");
    (void)u->query_attr("pin-source");
    const std::string printed = u->to_string();
    auto again = KeyUri::parse(printed);
    FUZZ_CHECK(again.has_value(), "to_string() gave an unparsable URI: '%s' (%s)", printed.c_str(),
               again ? "" : again.error().describe().c_str());
    FUZZ_CHECK(again->scheme() == u->scheme(), "scheme changed: '%s'", printed.c_str());
    FUZZ_CHECK(again->path_attrs() == u->path_attrs(), "path attributes changed: '%s'",
               printed.c_str());
    FUZZ_CHECK(again->query_attrs() == without_pin_value(u->query_attrs()),
               "query attributes changed: '%s'", printed.c_str());
    // The printed form is a fixed point.
    FUZZ_CHECK(again->to_string() == printed, "to_string() not stable: '%s' -> '%s'",
               printed.c_str(), again->to_string().c_str());
    // Without a pin-value the round trip is exact (operator==).
    if (!u->query_attr("pin-value")) FUZZ_CHECK(*again == *u, "'%s'", printed.c_str());
    return 0;
}
