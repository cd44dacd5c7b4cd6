#include "lifecycle/due.h"

#include "base/log.h"

namespace lifecycle {

Due due_for_renewal(const x509::CertInfo& leaf, unsigned before_days, const AriSource& ari,
                    std::chrono::system_clock::time_point now) {
    if (before_days > 0) {
        const auto at = leaf.not_after - std::chrono::hours(24) * before_days;
        return Due{now >= at, at, std::to_string(before_days) + " days before it expires", {}};
    }
    if (ari) {
        auto window = ari();
        if (!window)
            base::log::warning("renewalInfo: " + window.error().describe() +
                               "; using the certificate's lifetime instead");
        if (window && *window) {
            const auto span = (*window)->end - (*window)->start;
            unsigned spread = 0;
            for (auto b : leaf.serial_der) spread = spread * 31 + b;
            const auto at = (*window)->start + span * (spread % 1000) / 1000;
            std::string why = "the CA's renewal window (ARI)";
            if (const auto& u = (*window)->explanation_url; !u.empty()) {
                std::string shown;  // server text: no control characters, bounded
                for (unsigned char c : u.substr(0, 300))
                    shown += (c < 0x20 || c == 0x7f) ? '?' : char(c);
                why += ", see " + shown;
            }
            return Due{now >= at, at, why, (*window)->check_again};
        }
    }
    const auto at = leaf.not_before + (leaf.not_after - leaf.not_before) * 2 / 3;
    return Due{now >= at, at, "two thirds of its lifetime", {}};
}

base::Result<Due> due_for_renewal(acme::Client& client, const x509::CertInfo& leaf,
                                  unsigned before_days) {
    return due_for_renewal(leaf, before_days, [&] { return acme::renewal_info(client, leaf); });
}

std::string replaces_id(const acme::Client& client, const x509::CertInfo& leaf) {
    return client.directory().renewal_info && !leaf.aki.empty()
               ? acme::ari_cert_id(leaf.aki, leaf.serial_der)
               : "";
}

}  // namespace lifecycle
