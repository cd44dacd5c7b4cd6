#include "challenge/http01.h"
#include "challenge/solver.h"
#include "keystore/files.h"
#include "keystore/log.h"
#include "keystore/ossl.h"

#include <sys/stat.h>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace challenge {

using keystore::Errc;
using keystore::fail;

namespace {

class Http01Server final : public Solver {
  public:
    explicit Http01Server(std::string listen) : listen_(std::move(listen)) {}
    std::string type() const override { return "http-01"; }
    Result<void> present(const std::string&, const std::string& token,
                         const std::string& key_authorization) override {
        if (!responder_) {
            auto r = Http01Responder::start(listen_);
            if (!r) return std::unexpected(r.error());
            responder_ = std::move(*r);
        }
        auto added = responder_->add(token, key_authorization);
        if (added) ++live_;
        return added;
    }
    void cleanup(const std::string&, const std::string& token) override {
        if (!responder_) return;
        responder_->remove(token);
        if (--live_ == 0) responder_.reset();  // up only while a challenge is live
    }
    bool wait_served(const std::string& token, std::chrono::milliseconds max) override {
        return responder_ && responder_->wait_served(token, max);
    }

  private:
    int live_ = 0;
    std::string listen_;
    std::unique_ptr<Http01Responder> responder_;
};

class Http01Webroot final : public Solver {
  public:
    explicit Http01Webroot(std::string dir) : dir_(std::move(dir)) {}
    std::string type() const override { return "http-01"; }
    Result<void> present(const std::string&, const std::string& token,
                         const std::string& key_authorization) override {
        if (!valid_token(token))
            return fail(Errc::protocol, "http-01", "the server sent a malformed challenge token");
        std::error_code ec;
        if (!std::filesystem::is_directory(dir_, ec))
            return fail(Errc::usage, "--webroot", dir_ + " is not a directory");
        const std::string dir = dir_ + "/.well-known/acme-challenge";
        std::filesystem::create_directories(dir, ec);
        if (ec) return fail(Errc::io, dir, ec.message());
        ::chmod((dir_ + "/.well-known").c_str(), 0755);
        ::chmod(dir.c_str(), 0755);
        return keystore::write_file_atomic(dir + "/" + token, key_authorization, 0644);
    }
    void cleanup(const std::string&, const std::string& token) override {
        if (!valid_token(token)) return;
        if (auto r = keystore::remove_file_durable(dir_ + "/.well-known/acme-challenge/" + token);
            !r)
            keystore::log::warning("webroot cleanup: " + r.error().describe());
    }

  private:
    std::string dir_;
};

}  // namespace

std::string dns01_txt_value(const std::string& key_authorization) {
    return keystore::base64url_encode(
        keystore::ossl::digest("SHA256", keystore::as_bytes(key_authorization)));
}

std::unique_ptr<Solver> make_http01_server(std::string listen) {
    return std::make_unique<Http01Server>(std::move(listen));
}
std::unique_ptr<Solver> make_http01_webroot(std::string dir) {
    return std::make_unique<Http01Webroot>(std::move(dir));
}

}  // namespace challenge
