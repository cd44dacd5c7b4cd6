// Key URIs: pkcs11: (RFC 7512), tpm2:handle=0x81..., tpm2:path=FILE, file:PATH.
// Parsed in this one place; every backend reads attributes from a KeyUri.
#pragma once

#include "base/error.h"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace keystore {

class KeyUri {
  public:
    using Attrs = std::vector<std::pair<std::string, std::string>>;

    // Parses and validates: an unknown or repeated attribute, a bad percent-escape or an
    // unknown scheme is an Errc::usage error that names it. Values are percent-decoded.
    static base::Result<KeyUri> parse(std::string_view text);

    [[nodiscard]] const std::string& scheme() const { return scheme_; }
    // A path attribute (pkcs11: token, object, id, ...; tpm2: handle, path; file: path).
    [[nodiscard]] std::optional<std::string> path_attr(std::string_view name) const;
    // A query attribute (pin-source, pin-value, module-path, module-name).
    [[nodiscard]] std::optional<std::string> query_attr(std::string_view name) const;
    [[nodiscard]] const Attrs& path_attrs() const { return path_; }
    [[nodiscard]] const Attrs& query_attrs() const { return query_; }

    // Sets (or replaces) an attribute; the value is stored decoded.
    void set_path_attr(std::string_view name, std::string value);
    void set_query_attr(std::string_view name, std::string value);
    void erase_path_attr(std::string_view name);

    // Makes every file path in the URI absolute against `base` (an absolute directory):
    // file:PATH, tpm2:path=, pin-source=file:, a module-path naming a file. Stored URIs
    // (key.uri, account records) must work from any working directory (cron, systemd).
    void make_paths_absolute(const std::string& base);

    // Text form, percent-encoded. A pin-value is never printed; PinValue::keep is only for
    // handing a config file's URI over in memory, never for output or storage.
    enum class PinValue { omit, keep };
    [[nodiscard]] std::string to_string(PinValue pin = PinValue::omit) const;

    friend bool operator==(const KeyUri&, const KeyUri&) = default;

  private:
    std::string scheme_;
    Attrs path_;
    Attrs query_;
};

// RFC 3986 percent-encoding of everything outside the unreserved set and `keep`.
std::string percent_encode(std::string_view value, std::string_view keep = "");

}  // namespace keystore
