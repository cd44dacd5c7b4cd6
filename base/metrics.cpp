#include "base/metrics.h"

#include "base/log.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>
#include <utility>

namespace base::metrics {

namespace {

bool name_char(char c, bool first, bool colon) {
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    const bool digit = c >= '0' && c <= '9';
    return alpha || (colon && c == ':') || (!first && digit);
}

bool valid_name(std::string_view name, bool colon) {
    if (name.empty()) return false;
    for (std::size_t i = 0; i < name.size(); ++i)
        if (!name_char(name[i], i == 0, colon)) return false;
    return true;
}

// HELP text: backslash and newline escaped (the format's rule for docstrings).
std::string escape_help(std::string_view help) {
    std::string out;
    for (const char c : help) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    return out;
}

std::string_view type_name(Type type) {
    switch (type) {
        case Type::counter:
            return "counter";
        case Type::gauge:
            return "gauge";
        case Type::histogram:
            return "histogram";
    }
    return "untyped";
}

}  // namespace

std::string format_value(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    char buf[64];
    // Whole numbers (timestamps, counts) in full, not "1.8e+09"; the rest shortest.
    if (value == std::trunc(value) && std::fabs(value) < 0x1p53)
        return std::to_string(static_cast<std::int64_t>(value));
    const auto r = std::to_chars(buf, buf + sizeof buf, value);
    return std::string(buf, r.ptr);
}

std::string escape_label_value(std::string_view value) {
    std::string out = "\"";
    for (const char c : value) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '"')
            out += "\\\"";
        else if (c == '\n')
            out += "\\n";
        else
            out += c;
    }
    out += '"';
    return out;
}

Family::Family(Type type, std::string name, std::string help, std::vector<Label> labels,
               std::vector<double> buckets, std::size_t max_series)
    : type_(type),
      name_(std::move(name)),
      help_(std::move(help)),
      labels_(std::move(labels)),
      buckets_(std::move(buckets)),
      max_series_(max_series) {}

Family::Series* Family::series(const Values& labels) {
    if (labels.size() != labels_.size())
        throw std::logic_error("metric " + name_ + ": " + std::to_string(labels_.size()) +
                               " label value(s) expected");
    Values key;
    key.reserve(labels.size());
    for (std::size_t i = 0; i < labels.size(); ++i) {
        const auto& allowed = labels_[i].values;
        if (allowed.empty())
            // Open values come from configuration: one line, valid UTF-8 (rule 19).
            key.push_back(printable(labels[i], Lines::escape));
        else if (std::ranges::find(allowed, labels[i]) != allowed.end())
            key.push_back(labels[i]);
        else
            key.emplace_back("other");
    }
    if (auto it = series_.find(key); it != series_.end()) return &it->second;
    if (series_.size() >= max_series_) {
        if (!std::exchange(warned_full_, true))
            log::warning("metrics: " + name_ + " has " + std::to_string(max_series_) +
                         " series; new ones are not recorded");
        return nullptr;
    }
    Series s;
    if (type_ == Type::histogram) s.counts.assign(buckets_.size(), 0);
    return &series_.emplace(std::move(key), std::move(s)).first->second;
}

void Family::inc(const Values& labels, double by) {
    if (!(by >= 0)) return;
    std::lock_guard lock(mutex_);
    if (Series* s = series(labels)) s->value += by;
}

void Family::set(const Values& labels, double value) {
    std::lock_guard lock(mutex_);
    if (Series* s = series(labels)) s->value = value;
}

void Family::observe(const Values& labels, double value) {
    std::lock_guard lock(mutex_);
    Series* s = series(labels);
    if (s == nullptr) return;
    // Only the first bucket that holds it: render() accumulates.
    const auto it = std::ranges::lower_bound(buckets_, value);
    if (it != buckets_.end()) ++s->counts[static_cast<std::size_t>(it - buckets_.begin())];
    ++s->count;
    s->value += value;
}

void Family::touch(const Values& labels) {
    std::lock_guard lock(mutex_);
    (void)series(labels);
}

void Family::retain(std::string_view label, const std::vector<std::string>& keep) {
    const auto at = std::ranges::find(labels_, label, &Label::name);
    if (at == labels_.end())
        throw std::logic_error("metric " + name_ + ": no label " + std::string(label));
    const auto i = static_cast<std::size_t>(at - labels_.begin());
    std::lock_guard lock(mutex_);
    std::erase_if(series_, [&](const auto& entry) {
        return std::ranges::none_of(keep, [&](const std::string& k) {
            return printable(k, Lines::escape) == entry.first[i];
        });
    });
}

void Family::erase(const Values& labels) {
    std::lock_guard lock(mutex_);
    Values key;
    for (const auto& v : labels) key.push_back(printable(v, Lines::escape));
    series_.erase(key);
}

double Family::value(const Values& labels) const {
    Values key;
    for (const auto& v : labels) key.push_back(printable(v, Lines::escape));
    std::lock_guard lock(mutex_);
    const auto it = series_.find(key);
    if (it == series_.end()) return 0;
    return type_ == Type::histogram ? static_cast<double>(it->second.count) : it->second.value;
}

void Family::render(std::string& out) const {
    out += "# HELP " + name_ + " " + escape_help(help_) + "\n";
    out += "# TYPE " + name_ + " " + std::string(type_name(type_)) + "\n";
    // `extra` is a label after the family's own (a histogram's le).
    auto labels_text = [&](const Values& values, std::string_view extra = {}) {
        std::string text;
        for (std::size_t i = 0; i < values.size(); ++i) {
            if (!text.empty()) text += ',';
            text += labels_[i].name + "=" + escape_label_value(values[i]);
        }
        if (!extra.empty()) {
            if (!text.empty()) text += ',';
            text += extra;
        }
        return text.empty() ? text : "{" + text + "}";
    };
    std::lock_guard lock(mutex_);
    for (const auto& [values, s] : series_) {
        if (type_ != Type::histogram) {
            out += name_ + labels_text(values) + " " + format_value(s.value) + "\n";
            continue;
        }
        std::uint64_t cumulative = 0;
        for (std::size_t b = 0; b < buckets_.size(); ++b) {
            cumulative += s.counts[b];
            out += name_ + "_bucket" +
                   labels_text(values, "le=" + escape_label_value(format_value(buckets_[b]))) +
                   " " + std::to_string(cumulative) + "\n";
        }
        out += name_ + "_bucket" + labels_text(values, "le=\"+Inf\"") + " " +
               std::to_string(s.count) + "\n";
        out += name_ + "_sum" + labels_text(values) + " " + format_value(s.value) + "\n";
        out += name_ + "_count" + labels_text(values) + " " + std::to_string(s.count) + "\n";
    }
}

Family& Registry::add(Type type, std::string name, std::string help, std::vector<Label> labels,
                      std::vector<double> buckets, std::size_t max_series) {
    if (!valid_name(name, true)) throw std::logic_error("metric name " + name + " is not valid");
    if (type == Type::counter && !name.ends_with("_total"))
        throw std::logic_error("counter " + name + " does not end in _total");
    if (type != Type::counter && name.ends_with("_total"))
        throw std::logic_error("only a counter may end in _total: " + name);
    for (const auto& l : labels) {
        if (!valid_name(l.name, false) || l.name.starts_with("__") ||
            (type == Type::histogram && l.name == "le"))
            throw std::logic_error("metric " + name + ": label name " + l.name + " is not valid");
    }
    if (type == Type::histogram &&
        (buckets.empty() ||
         std::ranges::adjacent_find(buckets, std::greater_equal<>()) != buckets.end()))
        throw std::logic_error("histogram " + name + ": buckets must increase");
    std::lock_guard lock(mutex_);
    if (std::ranges::any_of(families_, [&](const auto& f) { return f->name() == name; }))
        throw std::logic_error("metric " + name + " is registered twice");
    families_.push_back(
        std::unique_ptr<Family>(new Family(type, std::move(name), std::move(help),
                                           std::move(labels), std::move(buckets), max_series)));
    return *families_.back();
}

Family& Registry::counter(std::string name, std::string help, std::vector<Label> labels,
                          std::size_t max_series) {
    return add(Type::counter, std::move(name), std::move(help), std::move(labels), {}, max_series);
}

Family& Registry::gauge(std::string name, std::string help, std::vector<Label> labels,
                        std::size_t max_series) {
    return add(Type::gauge, std::move(name), std::move(help), std::move(labels), {}, max_series);
}

Family& Registry::histogram(std::string name, std::string help, std::vector<double> buckets,
                            std::vector<Label> labels, std::size_t max_series) {
    return add(Type::histogram, std::move(name), std::move(help), std::move(labels),
               std::move(buckets), max_series);
}

std::string Registry::render() const {
    std::string out;
    std::lock_guard lock(mutex_);
    for (const auto& f : families_) f->render(out);
    return out;
}

}  // namespace base::metrics
