#include "keystore/keystore.h"

namespace keystore {

using base::Errc;
using base::fail;
using base::Result;

void Registry::add(std::string scheme, Factory factory) {
    factories_[std::move(scheme)] = std::move(factory);
}

Result<Keystore*> Registry::keystore_for(const KeyUri& uri) {
    std::lock_guard lock(*mutex_);
    if (auto it = backends_.find(uri.scheme()); it != backends_.end()) return it->second.get();
    auto f = factories_.find(uri.scheme());
    if (f == factories_.end())
        return fail(Errc::unsupported, "keystore",
                    "no backend for '" + uri.scheme() + ":' keys in this build");
    auto made = f->second();
    if (!made) return std::unexpected(made.error());
    return (backends_[uri.scheme()] = std::move(*made)).get();
}

Result<KeyPtr> Registry::open(const KeyUri& uri) {
    auto ks = keystore_for(uri);
    if (!ks) return std::unexpected(ks.error());
    auto key = (*ks)->open(uri);
    if (key && wrap_) return wrap_(std::move(*key));
    return key;
}

Result<KeyPtr> Keystore::generate(const KeyUri& uri, KeyAlgorithm algorithm,
                                  const KeyOptions& options) {
    if (options.always_authenticate)
        return fail(Errc::unsupported, "key generate",
                    "per-signature login (always-authenticate) is a PKCS#11 key attribute; " +
                        uri.scheme() + ": keys cannot have it");
    return generate(uri, algorithm);
}

Result<KeyPtr> Registry::generate(const KeyUri& uri, KeyAlgorithm alg, const KeyOptions& options) {
    auto ks = keystore_for(uri);
    if (!ks) return std::unexpected(ks.error());
    return (*ks)->generate(uri, alg, options);
}

}  // namespace keystore
