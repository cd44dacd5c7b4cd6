// The built-in http-01 responder (RFC 8555 §8.3): listens on ADDR:PORT only while it is
// alive, answers GET /.well-known/acme-challenge/TOKEN with the key authorization as
// text/plain for exactly the tokens it was given, 404 for anything else. Bounded: at most
// a few concurrent connections, 8 KiB of request head, a 5 s read deadline per connection.
#pragma once

#include "base/error.h"

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace challenge {

using base::Result;

class Http01Responder {
  public:
    // `listen` is "PORT", "ADDR:PORT" or "[V6ADDR]:PORT"; ADDR defaults to 0.0.0.0.
    // Errc::usage for a malformed spec, Errc::io when the port cannot be bound (message
    // names ADDR:PORT and the reason, e.g. "address in use"). PORT 0 lets the kernel pick.
    static Result<std::unique_ptr<Http01Responder>> start(const std::string& listen);
    ~Http01Responder();  // stops listening, joins its thread

    // The port actually bound (the kernel's choice when the spec said 0).
    [[nodiscard]] unsigned short port() const;

    // Tokens must match [A-Za-z0-9_-]+ (Errc::protocol otherwise).
    Result<void> add(const std::string& token, const std::string& key_authorization);
    void remove(const std::string& token);
    // True once `token` has been served (answered 200) since add(); waits at most `max`
    // for it. The agent then asks the CA at once instead of guessing (issue #20.3).
    bool wait_served(const std::string& token, std::chrono::milliseconds max);

    // Fleet mode: where a token not added here is looked up (the key authorization another
    // node published to the shared storage), on the serve thread, so it must be quick and
    // bounded. Without one, unknown tokens are 404.
    using Lookup = std::function<std::optional<std::string>(const std::string& token)>;
    void set_lookup(Lookup lookup);

  private:
    Http01Responder() = default;
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// True when `token` matches [A-Za-z0-9_-]+ (SECURITY.md rule 8).
bool valid_token(const std::string& token);

}  // namespace challenge
