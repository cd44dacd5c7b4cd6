// The keystore interface one backend implements per URI scheme, and the registry
// that maps a scheme to its backend.
#pragma once

#include "keystore/key.h"

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace keystore {

// What a new key is asked to be beyond its algorithm.
struct KeyOptions {
    // PKCS#11 CKA_ALWAYS_AUTHENTICATE: the token wants the PIN again (a context-specific
    // login) before every signature, as smart cards and PIV slot 9c keys do.
    bool always_authenticate = false;
};

struct KeyInfo {
    KeyUri uri;
    KeyAlgorithm algorithm{};
};

class Keystore {
  public:
    virtual ~Keystore() = default;
    // Creates a new key inside the backend. Errc::exists if the URI's object is there.
    virtual base::Result<KeyPtr> generate(const KeyUri& uri, KeyAlgorithm algorithm) = 0;
    // generate() with options. A backend that cannot honour an option says so
    // (Errc::unsupported) rather than making a key without it.
    virtual base::Result<KeyPtr> generate(const KeyUri& uri, KeyAlgorithm algorithm,
                                          const KeyOptions& options);
    // Opens an existing key. Errc::not_found if none matches.
    virtual base::Result<KeyPtr> open(const KeyUri& uri) = 0;
    // The keys under a token / directory / TPM the URI names.
    virtual base::Result<std::vector<KeyInfo>> list(const KeyUri& uri) = 0;
    // Destroys the key the URI names (both halves).
    virtual base::Result<void> destroy(const KeyUri& uri) = 0;
    // A line for help texts, e.g. "file: software keys in PEM files (no hardware)".
    [[nodiscard]] virtual std::string description() const = 0;
};

// Maps a URI scheme to a backend, created on first use and kept for the process.
class Registry {
  public:
    using Factory = std::function<base::Result<std::unique_ptr<Keystore>>()>;

    void add(std::string scheme, Factory factory);
    // The backend for the URI's scheme. Errc::unsupported if none is registered.
    base::Result<Keystore*> keystore_for(const KeyUri& uri);

    // Conveniences over keystore_for().
    base::Result<KeyPtr> open(const KeyUri& uri);
    // Every key open() returns goes through `wrap` (the daemon's metrics count signatures
    // this way, without the backends knowing).
    void wrap_opened(std::function<KeyPtr(KeyPtr)> wrap) { wrap_ = std::move(wrap); }
    base::Result<KeyPtr> generate(const KeyUri& uri, KeyAlgorithm alg,
                                  const KeyOptions& options = {});

  private:
    std::map<std::string, Factory, std::less<>> factories_;
    std::function<KeyPtr(KeyPtr)> wrap_;
    std::map<std::string, std::unique_ptr<Keystore>, std::less<>> backends_;
    // keystore_for() may run on several threads (concurrent orders); the registry stays movable.
    std::unique_ptr<std::mutex> mutex_ = std::make_unique<std::mutex>();
};

}  // namespace keystore
