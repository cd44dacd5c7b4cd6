// acme::problem_error (RFC 7807 / RFC 8555 §6.7 problem documents from the server) and
// acme::problem_type. The first two bytes pick the HTTP status.
#include "acme/client.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const long status = 100 + (data[0] << 8 | data[1]) % 500;
    const std::string body(fuzz_text(data + 2, size - 2));
    const base::Error e = acme::problem_error(status, body);
    FUZZ_CHECK(e.code == base::Errc::server || e.code == base::Errc::protocol);
    FUZZ_CHECK(e.message.size() <= 64 * 1024 + 4096, "message of %zu bytes", e.message.size());
    (void)acme::problem_type(e);
    (void)e.describe();
    return 0;
}
