// Several orders at once (issue --batch, renew --all): a bounded number of worker threads.
#pragma once

#include <cstddef>
#include <functional>

namespace lifecycle {

// Calls work(i) for every i in [0, count), on min(jobs, count) threads (the caller's own
// thread when that is 1). Each index is taken exactly once; work must not throw out of a
// thread: an exception is caught and turned into `on_exception(i, what)`.
void run_parallel(std::size_t count, unsigned jobs, const std::function<void(std::size_t)>& work,
                  const std::function<void(std::size_t, const char*)>& on_exception);

}  // namespace lifecycle
