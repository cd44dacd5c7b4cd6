// unique_ptr deleters for C libraries: std::unique_ptr<T, Deleter<T_free>> owns a T and
// calls T_free on it. No library header needed: OpenSSL, ldns and the rest use it alike.
#pragma once

namespace base {

template <auto Fn>
struct Deleter {
    template <typename T>
    void operator()(T* p) const noexcept {
        Fn(p);  // NOLINT(cppcoreguidelines-no-malloc): Fn may be free(); this is the RAII
    }
};

}  // namespace base
