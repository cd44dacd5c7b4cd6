// What the conformance fixtures of pkcs11: backends share: one token (its URI, with
// module-path and pin-source, in token_uri), the keystore over it, and the suite's
// store() / uri() / container() on top. Tag makes each fixture's statics its own.
#pragma once

#include "keystore/keystore.h"

#include <memory>
#include <string>

namespace conformance {

template <typename Tag>
struct Pkcs11Token {
    static inline std::string token_uri;
    static inline std::unique_ptr<keystore::Keystore> ks;
    static keystore::Keystore& store() { return *ks; }
    static keystore::KeyUri uri(const std::string& name) {
        auto u = *keystore::KeyUri::parse(token_uri);
        u.set_path_attr("object", name);
        return u;
    }
    static keystore::KeyUri container() { return *keystore::KeyUri::parse(token_uri); }

  private:
    Pkcs11Token() = default;  // only the fixture deriving from it
    friend Tag;
};

}  // namespace conformance
