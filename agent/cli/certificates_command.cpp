// `acme-agent certificates [--name N]`: the inventory of lifecycle/inventory.h, rendered.
#include "base/log.h"
#include "cli/common.h"
#include "lifecycle/inventory.h"

namespace cli {

namespace {

// Text from storage or the CA, for one line of the text output.
std::string shown(std::string_view s) {
    return base::printable(s, base::Lines::escape);
}

std::string attempt_text(const json& a) {
    if (a["ok"].get<bool>()) return a["at"].get<std::string>() + " succeeded";
    const json& e = a["error"];
    std::string why = e.contains("message") ? e["message"].get<std::string>() : "?";
    if (e.contains("where")) why = e["where"].get<std::string>() + ": " + why;
    return a["at"].get<std::string>() + " failed: " + why;
}

json json_of(const lifecycle::InventoryItem& item) {
    if (!item.entry) return {{"name", item.name}, {"error", error_json(item.entry.error())}};
    const lifecycle::InventoryEntry& e = *item.entry;
    const bool reachable = e.ca_error.empty();
    return {
        {"name", item.name},
        {"domains", e.domains},
        {"key_uri", e.key_uri},
        {"backend", e.backend},
        {"serial", e.serial},
        {"not_before", iso_time(e.not_before)},
        {"not_after", iso_time(e.not_after)},
        {"days_left", e.days_left},
        {"due",
         {{"at", iso_time(e.due.at)}, {"now", e.due.due}, {"rule", e.rule}, {"why", e.due.why}}},
        {"ca",
         {{"server", e.server},
          {"reachable", reachable},
          {"error", reachable ? json(nullptr) : json(e.ca_error)}}},
        {"last_attempt", e.last_attempt ? *e.last_attempt : json(nullptr)},
        {"account", e.account ? json{{"server", e.server}, {"url", *e.account}} : json(nullptr)}};
}

std::string text_of(const lifecycle::InventoryItem& item) {
    if (!item.entry) return shown(item.name) + "\n  error: " + item.entry.error().describe() + "\n";
    const lifecycle::InventoryEntry& e = *item.entry;
    std::string domains;
    for (const auto& n : e.domains) domains += (domains.empty() ? "" : ", ") + n;
    std::string text = shown(item.name) + "\n";
    text += "  names:        " + shown(domains) + "\n";
    text += "  key:          " + shown(e.key_uri) + " (" + shown(e.backend) + ")\n";
    text += "  serial:       " + e.serial + "\n";
    text += "  not after:    " + iso_time(e.not_after) + " (" + std::to_string(e.days_left) +
            " days left)\n";
    text += "  due:          " + iso_time(e.due.at) + (e.due.due ? ", now" : "") + " (" +
            shown(e.due.why) + ")\n";
    if (!e.ca_error.empty())
        text += "  CA:           " + shown(e.server) +
                (e.rule == "renew_before_days" ? " did not answer: "
                                               : " did not answer, so the lifetime rule: ") +
                shown(e.ca_error) + "\n";
    text += "  last attempt: " +
            (e.last_attempt ? shown(attempt_text(*e.last_attempt)) : "none recorded") + "\n";
    text += "  account:      " +
            (e.account ? shown(*e.account) + " at " + shown(e.server)
                       : "none stored for " + shown(e.server)) +
            "\n";
    return text;
}

json json_of(const lifecycle::Inventory& inv) {
    json j = json::array();
    for (const auto& item : inv.items) j.push_back(json_of(item));
    return j;
}
std::string text_of(const lifecycle::Inventory& inv) {
    if (inv.items.empty()) return "no certificates in " + inv.location + "\n";
    std::string text;
    for (const auto& item : inv.items) text += text_of(item);
    return text;
}

}  // namespace

Result<Output> certificates(const Global& g, const CertArgs& a, keystore::Registry& /*reg*/) {
    auto inv = lifecycle::inventory(g, a.name, g.server_given);
    if (!inv) return std::unexpected(inv.error());
    return render(*inv, json_of, text_of);
}

}  // namespace cli
