// How the lifecycle describes what it did: times, errors and a new certificate, as text a
// person reads and as the JSON --json prints (the same shapes for every command).
#pragma once

#include "acme/order.h"
#include "base/error.h"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace lifecycle {

using base::Errc;
using base::Error;
using base::fail;
using base::Result;
using nlohmann::json;

// "2026-01-02T03:04:05Z".
std::string iso_time(std::chrono::system_clock::time_point t);

// An error as --json prints it: {"code", "where", "message"[, "native"][, "retry_at"]}.
json error_json(const Error& e);

// The failures of a command over several items (issue --batch, renew --all, run): how
// many, and the first in input order with its label.
struct Failures {
    std::size_t count = 0;
    std::optional<Error> first;
    std::string first_label;

    void add(const Error& e, const std::string& label) {
        if (!count++) {
            first = e;
            first_label = label;
        }
    }
    // The command's failure: the first one's code (so its exit code), its message counting
    // the failures, e.g. "2 of 5<noun> failed; the first: LABEL: ..."; nullopt when none.
    [[nodiscard]] std::optional<Error> summary(std::size_t total, std::string_view noun = "") const;
};

// A certificate obtained and stored.
struct IssueResult {
    acme::Issued issued;
    std::string where;  // the directory the PEM files were written to
};

json describe(const IssueResult& r, const std::string& key_uri);
std::string describe_text(const IssueResult& r, const std::string& key_uri);

}  // namespace lifecycle
