// challenge::parse_dns_server ("HOST[:PORT]", --rfc2136) and the DnsServer::to_string
// round trip: parse(to_string(s)) == s for every accepted input.
#include "challenge/dns01.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(fuzz_text(data, size));
    auto s = challenge::parse_dns_server(text);
    if (!s) return 0;
    FUZZ_CHECK(s->port != 0);
    const std::string printed = s->to_string();
    auto again = challenge::parse_dns_server(printed);
    FUZZ_CHECK(again.has_value(), "to_string() gave an unparsable server: '%s'", printed.c_str());
    FUZZ_CHECK(again->address == s->address && again->port == s->port,
               "round trip changed '%s' -> '%s'", printed.c_str(), again->to_string().c_str());
    return 0;
}
