// Internal to the tpm backend: the few CBOR items (RFC 8949) an attestation object needs,
// in the deterministic encoding of §4.2.1: shortest argument, definite lengths, map keys
// sorted by their encoded bytes. Each function returns one encoded item.
#pragma once

#include "base/bytes.h"

#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace tpm::cbor {

base::Bytes integer(std::int64_t v);
base::Bytes bytes(std::span<const std::uint8_t> b);
base::Bytes text(std::string_view s);
base::Bytes array(const std::vector<base::Bytes>& items);
// Keys and values already encoded; sorted here.
base::Bytes map(std::vector<std::pair<base::Bytes, base::Bytes>> entries);

}  // namespace tpm::cbor
