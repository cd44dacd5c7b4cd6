// Certificates from the CA: split and checked before anything is stored (SECURITY.md rule 8).
#pragma once

#include "base/bytes.h"
#include "base/error.h"

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace x509 {

using base::Result;

struct CertInfo {
    std::string subject;
    std::string issuer;
    std::string issuer_cn;           // the CN of the issuer, "" if none
    std::string serial_hex;          // lower-case hex, no leading zeros
    base::Bytes serial_der;          // the INTEGER's content octets (RFC 9773 CertID)
    std::vector<std::string> names;  // dNSName and iPAddress SANs
    std::chrono::system_clock::time_point not_before, not_after;
    base::Bytes spki;  // SubjectPublicKeyInfo DER
    base::Bytes der;
    base::Bytes aki;  // authority key identifier (keyIdentifier), may be empty
};

// Splits a PEM chain into its CERTIFICATE blocks (PEM text each, leaf first). Anything else
// — another block type (a PRIVATE KEY above all), text between blocks, undecodable DER,
// more than `max_certs` certificates — is Errc::protocol.
Result<std::vector<std::string>> split_chain(std::string_view pem, std::size_t max_certs = 10);
Result<CertInfo> inspect(std::string_view pem);

}  // namespace x509
