#include "lifecycle/parallel.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <thread>
#include <vector>

namespace lifecycle {

void run_parallel(std::size_t count, unsigned jobs, const std::function<void(std::size_t)>& work,
                  const std::function<void(std::size_t, const char*)>& on_exception) {
    std::atomic<std::size_t> next{0};
    auto worker = [&] {
        for (std::size_t i = 0; (i = next.fetch_add(1)) < count;) {
            try {
                work(i);
            } catch (const std::exception& e) {
                on_exception(i, e.what());
            } catch (...) {
                on_exception(i, "unknown exception");
            }
        }
    };
    const std::size_t threads = std::min<std::size_t>(std::max(jobs, 1u), count);
    if (threads <= 1) {
        worker();
        return;
    }
    std::vector<std::jthread> pool;
    pool.reserve(threads);
    for (std::size_t t = 0; t < threads; ++t) pool.emplace_back(worker);
}

}  // namespace lifecycle
