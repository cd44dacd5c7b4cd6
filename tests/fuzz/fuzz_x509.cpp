// x509::split_chain and x509::inspect on a PEM "chain" as the CA's certificate URL returns
// it. Every block split_chain accepts must be inspectable, and splitting it again gives
// just itself.
#include "fuzz_common.h"
#include "x509/cert.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(fuzz_text(data, size));
    (void)x509::inspect(text);
    auto chain = x509::split_chain(text);
    if (!chain) return 0;
    FUZZ_CHECK(!chain->empty(), "split_chain accepted a chain of no certificate");
    FUZZ_CHECK(chain->size() <= 10, "split_chain returned %zu > max_certs", chain->size());
    for (const std::string& pem : *chain) {
        auto info = x509::inspect(pem);
        FUZZ_CHECK(info.has_value(), "split_chain accepted a block inspect rejects: %s",
                   info ? "" : info.error().describe().c_str());
        FUZZ_CHECK(!info->der.empty());
        auto one = x509::split_chain(pem);
        FUZZ_CHECK(one && one->size() == 1 && one->front() == pem,
                   "split_chain(block) is not the block");
    }
    (void)x509::split_chain(text, 1);
    return 0;
}
