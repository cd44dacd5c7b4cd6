#include "lifecycle/report.h"

#include <ctime>

namespace lifecycle {

std::string iso_time(std::chrono::system_clock::time_point t) {
    const std::time_t tt = std::chrono::system_clock::to_time_t(t);
    char buf[32] = {};
    (void)std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&tt));  // 20 chars
    return buf;
}

json error_json(const Error& e) {
    json err{{"code", base::errc_name(e.code)}, {"where", e.where}, {"message", e.message}};
    if (e.native) err["native"] = *e.native;
    if (e.retry_at)  // the CA asked to wait (Retry-After): not before then
        err["retry_at"] =
            iso_time(std::chrono::system_clock::time_point(std::chrono::seconds(*e.retry_at)));
    return err;
}

std::optional<Error> Failures::summary(std::size_t total, std::string_view noun) const {
    if (!first) return std::nullopt;
    Error e = *first;
    e.message = std::to_string(count) + " of " + std::to_string(total) + std::string(noun) +
                " failed; the first: " + first_label + ": " + first->describe();
    e.where = "";
    e.native.reset();
    return e;
}

json describe(const IssueResult& r, const std::string& key_uri) {
    const auto& leaf = r.issued.leaf;
    return {{"name", leaf.names.empty() ? "" : leaf.names.front()},
            {"domains", leaf.names},
            {"serial", leaf.serial_hex},
            {"subject", leaf.subject},
            {"issuer", leaf.issuer},
            {"not_before", iso_time(leaf.not_before)},
            {"not_after", iso_time(leaf.not_after)},
            {"key", key_uri},
            {"order", r.issued.order_url},
            {"directory", r.where}};
}

std::string describe_text(const IssueResult& r, const std::string& key_uri) {
    const auto& leaf = r.issued.leaf;
    std::string names;
    for (const auto& n : leaf.names) names += (names.empty() ? "" : ", ") + n;
    return "certificate: " + r.where + "/cert.pem\n" + "subject:     " + leaf.subject + "\n" +
           "names:       " + names + "\n" + "issuer:      " + leaf.issuer + "\n" +
           "valid:       " + iso_time(leaf.not_before) + " .. " + iso_time(leaf.not_after) + "\n" +
           "serial:      " + leaf.serial_hex + "\n" + "key:         " + key_uri + "\n";
}

}  // namespace lifecycle
