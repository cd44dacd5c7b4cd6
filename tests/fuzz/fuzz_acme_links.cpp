// acme::parse_links on Link header values (one value per input line, as libcurl hands
// each header over), and acme::origin_of on every URL it yields and on each line.
#include "acme/client.h"
#include "acme/http.h"
#include "fuzz_common.h"

#include <algorithm>
#include <cctype>

namespace {
// origin_of(u) is "" or a lower-cased prefix of u (minus a default ":443").
void check_origin(const std::string& url) {
    const std::string o = acme::origin_of(url);
    if (o.empty()) return;
    std::string low = url.substr(0, std::min(url.size(), o.size() + 4));
    std::transform(low.begin(), low.end(), low.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    FUZZ_CHECK(low.starts_with(o), "origin_of('%s') = '%s' is not its prefix", url.c_str(),
               o.c_str());
    FUZZ_CHECK(o.find("://") != std::string::npos);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto text = fuzz_text(data, size);
    std::vector<std::string> values;
    for (std::size_t pos = 0; pos <= text.size();) {
        const auto nl = std::min(text.find('\n', pos), text.size());
        values.emplace_back(text.substr(pos, nl - pos));
        pos = nl + 1;
    }
    for (const auto& [url, rel] : acme::parse_links(values)) check_origin(url);
    for (const std::string& v : values) check_origin(v);
    return 0;
}
