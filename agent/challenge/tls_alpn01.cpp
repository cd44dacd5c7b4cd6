#include "challenge/tls_alpn01.h"

#include "base/bytes.h"
#include "base/ossl.h"
#include "challenge/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace challenge {

using base::Errc;
using base::fail;
namespace ossl = base::ossl;

namespace {

constexpr long kValiditySeconds = 7L * 24 * 3600;
// ALPN wire form of the one protocol this responder speaks (RFC 8737 §6.2).
constexpr std::array<unsigned char, 11> kAcmeTls1 = {10,  'a', 'c', 'm', 'e', '-',
                                                     't', 'l', 's', '/', '1'};
// id-pe-acmeIdentifier (RFC 8737 §6.1).
constexpr const char* kAcmeIdentifierOid = "1.3.6.1.5.5.7.1.31";

using SslCtx = std::unique_ptr<SSL_CTX, ossl::Deleter<SSL_CTX_free>>;
using Ssl = std::unique_ptr<SSL, ossl::Deleter<SSL_free>>;
using GeneralNames = std::unique_ptr<GENERAL_NAMES, ossl::Deleter<GENERAL_NAMES_free>>;
using GeneralName = std::unique_ptr<GENERAL_NAME, ossl::Deleter<GENERAL_NAME_free>>;
using Asn1String = std::unique_ptr<ASN1_STRING, ossl::Deleter<ASN1_STRING_free>>;
using Asn1Object = std::unique_ptr<ASN1_OBJECT, ossl::Deleter<ASN1_OBJECT_free>>;
using Extension = std::unique_ptr<X509_EXTENSION, ossl::Deleter<X509_EXTENSION_free>>;

// An identifier as the responder needs it: the SNI name it answers to and what goes into
// the subjectAltName (a dNSName, or an iPAddress of 4 or 16 bytes).
struct Identifier {
    std::string server_name;
    std::string dns_name;
    base::Bytes ip;
};

bool valid_dns_name(std::string_view name) {
    if (name.empty() || name.size() > 253) return false;
    std::size_t label = 0;
    char previous = '.';
    for (const char c : name) {
        if (c == '.') {
            if (label == 0 || previous == '-') return false;
            label = 0;
        } else {
            const bool ldh = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c >= '0' && c <= '9') || c == '-';
            if (!ldh || (label == 0 && c == '-')) return false;
            if (++label > 63) return false;
        }
        previous = c;
    }
    return label != 0 && previous != '-';
}

Result<Identifier> parse_identifier(const std::string& identifier) {
    static constexpr char kHex[] = "0123456789abcdef";
    Identifier id;
    std::array<unsigned char, 16> addr{};
    if (::inet_pton(AF_INET, identifier.c_str(), addr.data()) == 1) {
        id.ip.assign(addr.begin(), addr.begin() + 4);
        for (std::size_t i = 4; i-- > 0;) id.server_name += std::to_string(addr[i]) + ".";
        id.server_name += "in-addr.arpa";
        return id;
    }
    if (::inet_pton(AF_INET6, identifier.c_str(), addr.data()) == 1) {
        id.ip.assign(addr.begin(), addr.end());
        for (std::size_t i = addr.size(); i-- > 0;) {
            id.server_name += kHex[addr[i] & 0x0f];
            id.server_name += '.';
            id.server_name += kHex[addr[i] >> 4];
            id.server_name += '.';
        }
        id.server_name += "ip6.arpa";
        return id;
    }
    if (!valid_dns_name(identifier)) {
        return fail(Errc::protocol, "tls-alpn-01",
                    "the identifier '" + identifier.substr(0, 80) +
                        "' is neither a DNS name nor an IP address");
    }
    id.dns_name = base::ascii_lower(identifier);
    id.server_name = id.dns_name;
    return id;
}

struct Credential {
    ossl::PKey key;
    ossl::X509Ptr cert;
};

Result<void> add_subject_alt_name(X509* cert, const Identifier& id) {
    GeneralNames names(sk_GENERAL_NAME_new_null());
    GeneralName name(GENERAL_NAME_new());
    Asn1String value(id.ip.empty() ? ASN1_IA5STRING_new() : ASN1_OCTET_STRING_new());
    if (!names || !name || !value) return ossl::fail_ossl("GENERAL_NAME_new");
    const bool set = id.ip.empty() ? ASN1_STRING_set(value.get(), id.dns_name.data(),
                                                     static_cast<int>(id.dns_name.size())) == 1
                                   : ASN1_STRING_set(value.get(), id.ip.data(),
                                                     static_cast<int>(id.ip.size())) == 1;
    if (!set) return ossl::fail_ossl("ASN1_STRING_set");
    GENERAL_NAME_set0_value(name.get(), id.ip.empty() ? GEN_DNS : GEN_IPADD, value.release());
    if (sk_GENERAL_NAME_push(names.get(), name.get()) == 0) {
        return ossl::fail_ossl("sk_GENERAL_NAME_push");
    }
    (void)name.release();  // the list owns it now
    // Critical because the subject is empty (RFC 5280 §4.2.1.6): a CN could not hold the
    // 73-character ip6.arpa name, and RFC 8737 §3 wants the SAN to be the only name.
    if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 1, X509V3_ADD_DEFAULT) != 1) {
        return ossl::fail_ossl("X509_add1_ext_i2d subjectAltName");
    }
    return {};
}

Result<void> add_acme_identifier(X509* cert, const std::string& key_authorization) {
    const base::Bytes hash = ossl::digest("SHA256", base::as_bytes(key_authorization));
    // The extension value is the DER of an OCTET STRING holding the digest (RFC 8737 §3).
    base::Bytes der = {0x04, static_cast<std::uint8_t>(hash.size())};
    der.insert(der.end(), hash.begin(), hash.end());
    Asn1Object oid(OBJ_txt2obj(kAcmeIdentifierOid, 1));
    Asn1String value(ASN1_OCTET_STRING_new());
    if (!oid || !value) return ossl::fail_ossl("OBJ_txt2obj acmeIdentifier");
    if (ASN1_OCTET_STRING_set(value.get(), der.data(), static_cast<int>(der.size())) != 1) {
        return ossl::fail_ossl("ASN1_OCTET_STRING_set");
    }
    Extension ext(X509_EXTENSION_create_by_OBJ(nullptr, oid.get(), 1, value.get()));
    if (!ext || X509_add_ext(cert, ext.get(), -1) != 1) {
        return ossl::fail_ossl("X509_add_ext acmeIdentifier");
    }
    return {};
}

// The self-signed validation certificate of RFC 8737 §3 on a fresh in-memory P-256 key
// from the default provider, so no token or TPM is ever involved (SECURITY.md rule 9).
Result<Credential> make_credential(const Identifier& id, const std::string& key_authorization) {
    Credential out;
    out.key.reset(EVP_PKEY_Q_keygen(nullptr, "provider=default", "EC", "P-256"));
    if (!out.key) return ossl::fail_ossl("EVP_PKEY_Q_keygen");
    out.cert.reset(X509_new());
    if (!out.cert) return ossl::fail_ossl("X509_new");
    X509* cert = out.cert.get();

    std::array<unsigned char, 16> serial{};
    if (RAND_bytes(serial.data(), static_cast<int>(serial.size())) != 1) {
        return ossl::fail_ossl("RAND_bytes");
    }
    serial[0] = static_cast<unsigned char>((serial[0] & 0x7f) | 0x40);  // positive, 16 bytes
    ossl::Bn bn(BN_bin2bn(serial.data(), static_cast<int>(serial.size()), nullptr));
    if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) ||
        X509_set_version(cert, X509_VERSION_3) != 1 ||
        !X509_gmtime_adj(X509_getm_notBefore(cert), -3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(cert), kValiditySeconds) ||
        X509_set_pubkey(cert, out.key.get()) != 1) {
        return ossl::fail_ossl("X509 fields");
    }
    if (auto r = add_subject_alt_name(cert, id); !r) return std::unexpected(r.error());
    if (auto r = add_acme_identifier(cert, key_authorization); !r) {
        return std::unexpected(r.error());
    }
    ossl::MdCtx md(EVP_MD_CTX_new());
    if (!md ||
        EVP_DigestSignInit_ex(md.get(), nullptr, "SHA256", nullptr, "provider=default",
                              out.key.get(), nullptr) != 1 ||
        X509_sign_ctx(cert, md.get()) <= 0) {
        return ossl::fail_ossl("X509_sign_ctx");
    }
    return out;
}

// Reads a big-endian 16-bit length; false when fewer than 2 bytes remain.
bool read_u16(const unsigned char*& p, const unsigned char* end, std::size_t& out) {
    if (end - p < 2) return false;
    out = static_cast<std::size_t>(p[0]) << 8 | p[1];
    p += 2;
    return true;
}

// ProtocolNameList (RFC 7301 §3.1) contains "acme-tls/1".
bool offers_acme_tls1(const unsigned char* p, std::size_t len) {
    const unsigned char* end = p + len;
    std::size_t list = 0;
    if (!read_u16(p, end, list) || list != static_cast<std::size_t>(end - p)) return false;
    while (p < end) {
        const std::size_t n = *p;
        if (n == 0 || static_cast<std::size_t>(end - p - 1) < n) return false;
        if (std::equal(p, p + n + 1, kAcmeTls1.begin(), kAcmeTls1.end())) return true;
        p += n + 1;
    }
    return false;
}

// The host_name of a ServerNameList (RFC 6066 §3), lower case with one trailing dot
// dropped; empty when there is none or the list is malformed.
std::string host_name(const unsigned char* p, std::size_t len) {
    const unsigned char* end = p + len;
    std::size_t list = 0;
    if (!read_u16(p, end, list) || list != static_cast<std::size_t>(end - p)) return {};
    while (p < end) {
        const unsigned char type = *p++;
        std::size_t n = 0;
        if (!read_u16(p, end, n) || static_cast<std::size_t>(end - p) < n) return {};
        if (type == TLSEXT_NAMETYPE_host_name) {
            std::string_view name(reinterpret_cast<const char*>(p), n);
            if (name.ends_with('.')) name.remove_suffix(1);
            return base::ascii_lower(name);
        }
        p += n;
    }
    return {};
}

struct Connection {
    enum class Phase { handshake, draining };
    Fd fd;
    Ssl ssl;  // declared after fd: freed first (its BIO does not own the descriptor)
    Clock::time_point deadline;
    Phase phase = Phase::handshake;
    short events = POLLIN;
    bool done = false;
};

}  // namespace

struct TlsAlpn01Responder::Impl {
    Fd listener;
    unsigned short port = 0;
    SslCtx ctx;
    std::mutex mutex;
    std::map<std::string, std::shared_ptr<const Credential>, std::less<>> credentials;
    Lookup lookup;       // set_lookup; guarded by mutex
    ServeThread server;  // last: it stops before the members its loop uses go

    static std::shared_ptr<const Credential> from_lookup(const Lookup& fallback,
                                                         const std::string& name) {
        auto found = fallback(name);
        if (!found) return nullptr;
        auto id = parse_identifier(found->first);
        if (!id || id->server_name != name) return nullptr;  // published for another name
        auto credential = make_credential(*id, found->second);
        if (!credential) return nullptr;
        return std::make_shared<const Credential>(std::move(*credential));
    }

    // Runs on the ClientHello, before ALPN and certificate selection: both the ALPN offer
    // and the SNI are checked here because the ALPN callback is not called at all when
    // the client sends no ALPN extension.
    int on_client_hello(SSL* ssl, int* alert) {
        const unsigned char* ext = nullptr;
        std::size_t len = 0;
        if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext,
                                      &len) != 1 ||
            !offers_acme_tls1(ext, len)) {
            *alert = SSL_AD_NO_APPLICATION_PROTOCOL;
            return SSL_CLIENT_HELLO_ERROR;
        }
        std::string name;
        if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &len) == 1) {
            name = host_name(ext, len);
        }
        std::shared_ptr<const Credential> credential;
        Lookup fallback;
        if (!name.empty()) {
            std::lock_guard lock(mutex);
            if (auto it = credentials.find(name); it != credentials.end())
                credential = it->second;
            else
                fallback = lookup;
        }
        // Not ours: another node of the fleet may have published it. Built for this
        // handshake only, so a newer key authorization for the name is never shadowed.
        if (fallback) credential = from_lookup(fallback, name);
        if (!credential) {
            *alert = SSL_AD_UNRECOGNIZED_NAME;
            return SSL_CLIENT_HELLO_ERROR;
        }
        // Both calls take their own reference, so a remove() during the handshake is safe.
        if (SSL_use_certificate(ssl, credential->cert.get()) != 1 ||
            SSL_use_PrivateKey(ssl, credential->key.get()) != 1) {
            *alert = SSL_AD_INTERNAL_ERROR;
            return SSL_CLIENT_HELLO_ERROR;
        }
        return SSL_CLIENT_HELLO_SUCCESS;
    }

    static int client_hello_cb(SSL* ssl, int* alert, void* arg) {
        return static_cast<Impl*>(arg)->on_client_hello(ssl, alert);
    }

    static int alpn_select_cb(SSL*, const unsigned char** out, unsigned char* outlen,
                              const unsigned char* in, unsigned int inlen, void*) {
        for (const unsigned char* p = in; p < in + inlen; p += *p + 1) {
            if (static_cast<std::size_t>(in + inlen - p) < kAcmeTls1.size()) break;
            if (std::equal(kAcmeTls1.begin(), kAcmeTls1.end(), p)) {
                *out = kAcmeTls1.data() + 1;
                *outlen = kAcmeTls1[0];
                return SSL_TLSEXT_ERR_OK;
            }
        }
        return SSL_TLSEXT_ERR_ALERT_FATAL;  // no_application_protocol (RFC 7301 §3.2)
    }

    Result<void> setup_tls() {
        ctx.reset(SSL_CTX_new(TLS_server_method()));
        if (!ctx) return ossl::fail_ossl("SSL_CTX_new");
        SSL_CTX* c = ctx.get();
        if (SSL_CTX_set_min_proto_version(c, TLS1_2_VERSION) != 1) {
            return ossl::fail_ossl("SSL_CTX_set_min_proto_version");
        }
        // One handshake per connection and nothing to resume: no tickets, no cache.
        SSL_CTX_set_options(c, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
        SSL_CTX_set_session_cache_mode(c, SSL_SESS_CACHE_OFF);
        if (SSL_CTX_set_num_tickets(c, 0) != 1) return ossl::fail_ossl("SSL_CTX_set_num_tickets");
        SSL_CTX_set_client_hello_cb(c, &Impl::client_hello_cb, this);
        SSL_CTX_set_alpn_select_cb(c, &Impl::alpn_select_cb, nullptr);
        return {};
    }

    static void drain(Connection& c) {
        char buf[4096];
        for (;;) {
            const ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) c.done = true;
            return;  // one read per wake-up: a flooding client cannot hold the loop
        }
    }

    static void step(Connection& c) {
        if (c.phase == Connection::Phase::draining) {
            drain(c);
            return;
        }
        ERR_clear_error();
        const int rc = SSL_accept(c.ssl.get());
        if (rc == 1) {
            // Done: the client has the certificate. Say goodbye, then read until the client
            // closes, because closing with unread bytes sends a RST that can destroy our
            // last flight (the TLS 1.2 Finished) before the client reads it.
            SSL_shutdown(c.ssl.get());
            ERR_clear_error();
            ::shutdown(c.fd.get(), SHUT_WR);
            c.phase = Connection::Phase::draining;
            c.events = POLLIN;
            return;
        }
        switch (SSL_get_error(c.ssl.get(), rc)) {
            case SSL_ERROR_WANT_READ:
                c.events = POLLIN;
                break;
            case SSL_ERROR_WANT_WRITE:
                c.events = POLLOUT;
                break;
            default:  // handshake refused (alert already sent) or the client went away
                c.done = true;
                break;
        }
        ERR_clear_error();
    }

    void run() {
        // OpenSSL writes to sockets with write(2): a peer that has gone must give EPIPE
        // here, not a SIGPIPE that kills the agent. Thread-directed, so blocking it in
        // this thread is enough.
        sigset_t pipe;
        sigemptyset(&pipe);
        sigaddset(&pipe, SIGPIPE);
        pthread_sigmask(SIG_BLOCK, &pipe, nullptr);

        serve_connections<Connection>(
            server.wake_fd(), listener.get(),
            [this](Fd fd) -> std::optional<Connection> {
                Ssl ssl(SSL_new(ctx.get()));
                if (!ssl || SSL_set_fd(ssl.get(), fd.get()) != 1) {
                    ERR_clear_error();
                    return std::nullopt;
                }
                Connection c;
                c.fd = std::move(fd);
                c.ssl = std::move(ssl);
                return c;
            },
            [](const Connection& c) { return c.events; }, [this](Connection& c) { step(c); });
    }
};

Result<std::unique_ptr<TlsAlpn01Responder>> TlsAlpn01Responder::start(const std::string& listen) {
    auto bound = listen_on(listen, "tls-alpn-01");
    if (!bound) return std::unexpected(bound.error());
    const std::string where = "tls-alpn-01 listen " + listen;

    auto impl = std::make_unique<Impl>();
    impl->listener = std::move(bound->fd);
    impl->port = bound->port;
    if (auto r = impl->setup_tls(); !r) return std::unexpected(r.error());
    if (auto r = impl->server.start([raw = impl.get()] { raw->run(); }, where); !r)
        return std::unexpected(r.error());

    std::unique_ptr<TlsAlpn01Responder> responder(new TlsAlpn01Responder());
    responder->impl_ = std::move(impl);
    return responder;
}

TlsAlpn01Responder::~TlsAlpn01Responder() = default;

unsigned short TlsAlpn01Responder::port() const {
    return impl_->port;
}

Result<void> TlsAlpn01Responder::add(const std::string& identifier,
                                     const std::string& key_authorization) {
    auto id = parse_identifier(identifier);
    if (!id) return std::unexpected(id.error());
    auto credential = make_credential(*id, key_authorization);
    if (!credential) return std::unexpected(credential.error());
    auto shared = std::make_shared<const Credential>(std::move(*credential));
    std::lock_guard lock(impl_->mutex);
    impl_->credentials.insert_or_assign(id->server_name, std::move(shared));
    return {};
}

void TlsAlpn01Responder::set_lookup(Lookup lookup) {
    std::lock_guard lock(impl_->mutex);
    impl_->lookup = std::move(lookup);
}

void TlsAlpn01Responder::remove(const std::string& identifier) {
    auto id = parse_identifier(identifier);
    if (!id) return;
    std::lock_guard lock(impl_->mutex);
    impl_->credentials.erase(id->server_name);
}

Result<std::string> tls_alpn01_server_name(const std::string& identifier) {
    auto id = parse_identifier(identifier);
    if (!id) return std::unexpected(id.error());
    return std::move(id->server_name);
}

TlsAlpn01Solver::TlsAlpn01Solver(std::string listen) : listen_(std::move(listen)) {}
TlsAlpn01Solver::~TlsAlpn01Solver() = default;

std::string TlsAlpn01Solver::type() const {
    return "tls-alpn-01";
}

Result<void> TlsAlpn01Solver::present(const std::string& identifier, const std::string& token,
                                      const std::string& key_authorization) {
    auto name = tls_alpn01_server_name(identifier);
    if (!name) return std::unexpected(name.error());
    if (!responder_) {
        auto started = TlsAlpn01Responder::start(listen_);
        if (!started) return std::unexpected(started.error());
        responder_ = std::move(*started);
    }
    if (auto added = responder_->add(identifier, key_authorization); !added) {
        if (live_.empty()) responder_.reset();
        return added;
    }
    live_.insert_or_assign(*name, token);
    return {};
}

void TlsAlpn01Solver::cleanup(const std::string& identifier, const std::string& token) {
    auto name = tls_alpn01_server_name(identifier);
    if (!name) return;
    // Only the challenge presented last for a name owns its certificate.
    auto it = live_.find(*name);
    if (it == live_.end() || it->second != token) return;
    live_.erase(it);
    if (responder_) responder_->remove(identifier);
    if (live_.empty()) responder_.reset();  // up only while a challenge is live
}

std::optional<unsigned short> TlsAlpn01Solver::port() const {
    if (!responder_) return std::nullopt;
    return responder_->port();
}

std::unique_ptr<Solver> make_tls_alpn01(std::string listen) {
    return std::make_unique<TlsAlpn01Solver>(std::move(listen));
}

}  // namespace challenge
