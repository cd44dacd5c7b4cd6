#include "base/files.h"
#include "base/log.h"
#include "base/ossl.h"
#include "challenge/http01.h"
#include "challenge/solver.h"

#include <optional>
#include <tuple>

namespace challenge {

using base::Errc;
using base::fail;

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

// Writes the token file under DIR/.well-known/acme-challenge/. The web root's owner is not
// trusted (SECURITY.md rule 17): both directories are walked with O_NOFOLLOW (a symlink is
// refused, never followed), made 0755 when missing and then removed again once the last
// challenge is done; an existing directory's mode is never changed.
class Http01Webroot final : public Solver {
  public:
    explicit Http01Webroot(std::string dir) : dir_(std::move(dir)) {}
    std::string type() const override { return "http-01"; }
    Result<void> present(const std::string&, const std::string& token,
                         const std::string& key_authorization) override {
        if (!valid_token(token))
            return fail(Errc::protocol, "http-01", "the server sent a malformed challenge token");
        if (!challenges_) {
            auto root = base::Dir::open(dir_);
            if (!root) {
                base::Error e = root.error();
                if (e.code == Errc::not_found) e.message = dir_ + " is not a directory";
                e.where = "--webroot";
                return std::unexpected(e);
            }
            auto well_known = root->sub(".well-known", base::Create::yes, 0755);
            if (!well_known) return std::unexpected(well_known.error());
            auto challenges = well_known->sub("acme-challenge", base::Create::yes, 0755);
            if (!challenges) {
                if (well_known->created()) (void)root->remove_dir(".well-known");
                return std::unexpected(challenges.error());
            }
            root_ = std::move(*root);
            well_known_ = std::move(*well_known);
            challenges_ = std::move(*challenges);
        }
        auto written = challenges_->write_file(token, key_authorization, 0644);
        if (written)
            ++live_;
        else if (live_ == 0)
            release();
        return written;
    }
    void cleanup(const std::string&, const std::string& token) override {
        if (!valid_token(token) || !challenges_) return;
        if (auto r = challenges_->remove_file(token); !r)
            base::log::warning("webroot cleanup: " + r.error().describe());
        if (--live_ == 0) release();
    }

  private:
    // Removes what present() created (only that, and only when empty), closes the rest.
    void release() {
        for (auto [parent, dir, name] : {std::tuple{&well_known_, &challenges_, "acme-challenge"},
                                         std::tuple{&root_, &well_known_, ".well-known"}}) {
            if (*dir && (*dir)->created() && *parent)
                if (auto r = (*parent)->remove_dir(name); !r)
                    base::log::warning("webroot cleanup: " + r.error().describe());
            dir->reset();
        }
        root_.reset();
    }

    std::string dir_;
    int live_ = 0;
    std::optional<base::Dir> root_, well_known_, challenges_;
};

}  // namespace

std::string dns01_txt_value(const std::string& key_authorization) {
    return base::base64url_encode(base::ossl::digest("SHA256", base::as_bytes(key_authorization)));
}

std::unique_ptr<Solver> make_http01_server(std::string listen) {
    return std::make_unique<Http01Server>(std::move(listen));
}
std::unique_ptr<Solver> make_http01_webroot(std::string dir) {
    return std::make_unique<Http01Webroot>(std::move(dir));
}

}  // namespace challenge
