#include "lifecycle/batch.h"

#include "base/bytes.h"
#include "base/files.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>

namespace lifecycle {

using base::Errc;
using base::fail;
using base::Result;

namespace {

bool looks_like_key_uri(const std::string& field) {
    return field.starts_with("pkcs11:") || field.starts_with("tpm2:") || field.starts_with("file:");
}

// The fields of one line, up to a comment.
std::vector<std::string> fields_of(std::string_view line) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < line.size()) {
        while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
        if (i >= line.size() || line[i] == '#') break;
        const std::size_t start = i;
        while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
        out.emplace_back(line.substr(start, i - start));
    }
    return out;
}

}  // namespace

Result<std::vector<BatchOrder>> parse_batch(std::string_view text, const std::string& file) {
    std::error_code ec;
    const std::string base = std::filesystem::absolute(file, ec).parent_path().string();
    std::vector<BatchOrder> orders;
    std::map<std::string, std::size_t> first_names;  // lower-cased certificate name -> line
    std::size_t number = 0;
    for (std::size_t pos = 0; pos < text.size();) {
        const std::size_t eol = std::min(text.find('\n', pos), text.size());
        const std::string_view line = text.substr(pos, eol - pos);
        pos = eol + 1;
        ++number;
        const std::string where = file + ":" + std::to_string(number);
        if (std::ranges::any_of(line, [](unsigned char c) {
                return (c < 0x20 && c != '\t' && c != '\r') || c == 0x7f;
            }))
            return fail(Errc::usage, where, "a control character; the file must be plain text");
        auto fields = fields_of(line);
        if (fields.empty()) continue;
        if (!looks_like_key_uri(fields.front()))
            return fail(Errc::usage, where,
                        "'" + fields.front().substr(0, 80) +
                            "' is not a key URI; each line is KEY-URI NAME [NAME...]");
        auto uri = keystore::KeyUri::parse(fields.front());
        if (!uri) return fail(Errc::usage, where, "bad key URI: " + uri.error().describe());
        // Like a URI given as an option: no PIN in it, and its files found from any cwd
        // later (relative to the batch file, as a config file's are to it).
        if (uri->query_attr("pin-value"))
            return fail(Errc::usage, where,
                        "a pin-value in a batch file; put the PIN in a file (chmod 600) and use "
                        "?pin-source=file:FILE");
        uri->make_paths_absolute(base);
        if (fields.size() < 2)
            return fail(Errc::usage, where,
                        "no name after the key URI; each line is KEY-URI NAME [NAME...]");
        BatchOrder order{number, std::move(*uri), {}};
        for (std::size_t i = 1; i < fields.size(); ++i) {
            const std::string& name = fields[i];
            if (looks_like_key_uri(name))
                return fail(Errc::usage, where,
                            "a second key URI where a name belongs; one order (one key) per line");
            if (std::ranges::any_of(order.names, [&](const std::string& n) {
                    return base::ascii_lower(n) == base::ascii_lower(name);
                }))
                return fail(Errc::usage, where, "the name " + name + " is given twice");
            order.names.push_back(name);
        }
        const std::string cert = base::ascii_lower(order.names.front());
        if (auto [it, fresh] = first_names.emplace(cert, number); !fresh)
            return fail(Errc::usage, where,
                        "the certificate " + order.names.front() + " is already ordered on line " +
                            std::to_string(it->second) + "; one line per certificate");
        orders.push_back(std::move(order));
    }
    if (orders.empty())
        return fail(Errc::usage, file, "no orders; each line is KEY-URI NAME [NAME...]");
    return orders;
}

Result<std::vector<BatchOrder>> read_batch(const std::string& file) {
    auto text = base::read_file(file, 1 << 20);
    if (!text) {
        base::Error e = text.error();
        e.where = "--batch " + e.where;
        return std::unexpected(e);
    }
    return parse_batch(*text, file);
}

}  // namespace lifecycle
