// Metrics in the Prometheus text exposition format (version 0.0.4): counters, gauges and
// histograms with a bounded set of label values, safe to update from any thread.
// https://prometheus.io/docs/instrumenting/exposition_formats/
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace base::metrics {

// One label of a family. With `values` the label may take only those (a value outside
// them is recorded as "other", so a bug or a server cannot grow the set); empty `values`
// leaves it open (certificate names, bounded by the family's max_series).
struct Label {
    std::string name;
    // "= {}" keeps GCC's -Wmissing-field-initializers quiet for Label{"name"}.
    std::vector<std::string> values = {};  // NOLINT(readability-redundant-member-init)
};

enum class Type { counter, gauge, histogram };

// A family: one metric name, its help text, its labels, and one series per combination of
// label values, rendered in label-value order. Label values are given in the order of the
// family's labels. A family holds at most max_series series: an update that would add one
// more is dropped (and logged once), so a flood of names cannot exhaust memory.
class Family {
  public:
    using Values = std::vector<std::string>;

    // Counters only go up: inc() with a negative amount is ignored.
    void inc(const Values& labels, double by = 1);
    // Gauges.
    void set(const Values& labels, double value);
    // Histograms: counts `value` in every bucket whose upper bound is >= value.
    void observe(const Values& labels, double value);

    // Creates the series at 0 if it is not there: a counter that exists before its first
    // increment lets rate() and increase() see that first one.
    void touch(const Values& labels);
    // Drops every series whose label `label` has a value not in `keep` (a certificate
    // removed from the configuration stops being reported).
    void retain(std::string_view label, const std::vector<std::string>& keep);
    void erase(const Values& labels);

    // The value of a counter or gauge series, the count of a histogram's; 0 when absent.
    [[nodiscard]] double value(const Values& labels) const;

    [[nodiscard]] const std::string& name() const { return name_; }
    void render(std::string& out) const;

  private:
    friend class Registry;
    Family(Type type, std::string name, std::string help, std::vector<Label> labels,
           std::vector<double> buckets, std::size_t max_series);

    struct Series {
        double value = 0;                   // counter, gauge; a histogram's sum
        std::vector<std::uint64_t> counts;  // histogram: per bucket, not cumulative
        std::uint64_t count = 0;            // histogram
    };
    // The series for `labels` (normalised), created when there is room; nullptr otherwise.
    Series* series(const Values& labels);

    Type type_;
    std::string name_;
    std::string help_;
    std::vector<Label> labels_;
    std::vector<double> buckets_;
    std::size_t max_series_;
    mutable std::mutex mutex_;
    std::map<Values, Series> series_;
    bool warned_full_ = false;
};

// Owns the families; render() gives the whole exposition. Families are created before use
// (the metric set of a program is defined in one place); their names must follow the
// Prometheus conventions, checked here: [a-zA-Z_:][a-zA-Z0-9_:]*, counters end in _total,
// labels [a-zA-Z_][a-zA-Z0-9_]* and not "le" or a reserved "__" name. A name that breaks
// them, or is registered twice, is a bug: std::logic_error.
class Registry {
  public:
    static constexpr std::size_t kDefaultMaxSeries = 1000;

    Family& counter(std::string name, std::string help, std::vector<Label> labels = {},
                    std::size_t max_series = kDefaultMaxSeries);
    Family& gauge(std::string name, std::string help, std::vector<Label> labels = {},
                  std::size_t max_series = kDefaultMaxSeries);
    // `buckets`: strictly increasing upper bounds; +Inf is added.
    Family& histogram(std::string name, std::string help, std::vector<double> buckets,
                      std::vector<Label> labels = {}, std::size_t max_series = kDefaultMaxSeries);

    [[nodiscard]] std::string render() const;

  private:
    Family& add(Type type, std::string name, std::string help, std::vector<Label> labels,
                std::vector<double> buckets, std::size_t max_series);
    mutable std::mutex mutex_;
    std::vector<std::unique_ptr<Family>> families_;
};

// The value as the exposition format writes it: shortest round-trip form, "+Inf", "-Inf",
// "NaN".
std::string format_value(double value);
// A label value between double quotes: backslash, '"' and newline escaped.
std::string escape_label_value(std::string_view value);

// The Content-Type of render()'s output.
inline constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace base::metrics
