// issue --batch: the batch file parser (KEY-URI NAME [NAME...] per line, comments, blank
// lines, errors naming FILE:LINE). The worker pool and the name claims: test_lifecycle_parallel.
#include "base/bytes.h"
#include "lifecycle/batch.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using base::Errc;

constexpr const char* kKey1 =
    "pkcs11:token=hsm;object=www?module-path=/usr/lib/softhsm/libsofthsm2.so"
    "&pin-source=file:/etc/hsm.pin";
constexpr const char* kKey2 = "tpm2:path=/var/lib/acme-agent/keys/api.tss";

// The error text a user sees for `text`, or "ok".
std::string error_of(const std::string& text) {
    auto r = lifecycle::parse_batch(text, "orders.txt");
    return r ? "ok" : r.error().describe();
}

TEST(Batch, ParsesOrdersWithCommentsBlankLinesAndTabs) {
    const std::string text = std::string("# certificates of the web tier\n\n") + kKey1 +
                             " www.example.com example.com  # the main site\n" + "   \t\n" + kKey2 +
                             "\tapi.example.com\t192.0.2.7\r\n" +
                             "file:/keys/mail.pem mail.example.com";  // no final newline
    auto r = lifecycle::parse_batch(text, "orders.txt");
    ASSERT_TRUE(r) << r.error().describe();
    ASSERT_EQ(r->size(), 3u);
    EXPECT_EQ((*r)[0].line, 3u);
    EXPECT_EQ((*r)[0].key.path_attr("object"), "www");
    EXPECT_EQ((*r)[0].key.query_attr("pin-source"), "file:/etc/hsm.pin");
    EXPECT_EQ((*r)[0].names, (std::vector<std::string>{"www.example.com", "example.com"}));
    EXPECT_EQ((*r)[1].line, 5u);
    EXPECT_EQ((*r)[1].key.scheme(), "tpm2");
    EXPECT_EQ((*r)[1].names, (std::vector<std::string>{"api.example.com", "192.0.2.7"}));
    EXPECT_EQ((*r)[2].line, 6u);
    EXPECT_EQ((*r)[2].key.path_attr("path"), "/keys/mail.pem");
    EXPECT_EQ((*r)[2].names, (std::vector<std::string>{"mail.example.com"}));
}

TEST(Batch, ErrorsNameTheFileAndLine) {
    struct Case {
        std::string text;
        std::string message;
    };
    const std::vector<Case> cases{
        {std::string("# header\n") + kKey1 + "\n", "orders.txt:2: no name after the key URI"},
        {"\n\nwww.example.com pkcs11:object=www\n",
         "orders.txt:3: 'www.example.com' is not a key URI; each line is KEY-URI NAME"},
        {"pkcs11:object=www;bogus=1 www.example.com\n", "orders.txt:1: bad key URI: "},
        {"pkcs11:object=%zz www.example.com\n", "orders.txt:1: bad key URI: "},
        {std::string(kKey2) + " a.example.com " + kKey1 + "\n",
         "orders.txt:1: a second key URI where a name belongs"},
        {std::string(kKey2) + " a.example.com b.example.com A.example.com\n",
         "orders.txt:1: the name A.example.com is given twice"},
        {std::string(kKey1) + " a.example.com\n\n" + kKey2 + " A.EXAMPLE.COM b.example.com\n",
         "orders.txt:3: the certificate A.EXAMPLE.COM is already ordered on line 1"},
        {std::string(kKey1) + " a.example.com\x01\n", "orders.txt:1: a control character"},
        {"", "orders.txt: no orders"},
        {"# only comments\n\n   \n", "orders.txt: no orders"},
    };
    for (const Case& c : cases) {
        auto r = lifecycle::parse_batch(c.text, "orders.txt");
        ASSERT_FALSE(r) << c.text;
        EXPECT_EQ(r.error().code, Errc::usage) << c.text;
        EXPECT_TRUE(r.error().describe().starts_with(c.message))
            << "got: " << r.error().describe() << "\nwanted: " << c.message;
    }
}

TEST(Batch, TheSameKeyMayServeTwoCertificates) {
    EXPECT_EQ(error_of(std::string(kKey1) + " a.example.com\n" + kKey1 + " b.example.com\n"), "ok");
}

TEST(Batch, AnUnreadableFileIsNotFound) {
    auto r = lifecycle::read_batch("/nonexistent/orders.txt");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::not_found);
    EXPECT_NE(r.error().describe().find("--batch /nonexistent/orders.txt"), std::string::npos)
        << r.error().describe();
}

// Stored key URIs must work from any cwd (issue #14 #11); no PIN in a batch file (#2).
TEST(Batch, KeyPathsAreRelativeToTheFileAndPinValueIsRefused) {
    auto r = lifecycle::parse_batch("file:keys/a.pem a.example\n", "/srv/orders/orders.txt");
    ASSERT_TRUE(r) << r.error().describe();
    EXPECT_EQ((*r)[0].key.to_string(), "file:/srv/orders/keys/a.pem");
    auto pin =
        lifecycle::parse_batch("pkcs11:token=t;object=a?pin-value=1234 a.example\n", "o.txt");
    ASSERT_FALSE(pin);
    EXPECT_EQ(pin.error().where, "o.txt:1");
    EXPECT_NE(pin.error().message.find("pin-source=file:"), std::string::npos);
    EXPECT_EQ(pin.error().message.find("1234"), std::string::npos);
}

}  // namespace
