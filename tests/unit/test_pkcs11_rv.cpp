// What a user reads when a PKCS#11 call fails: the CK_RV's name (rv_name), the error code
// the CLI turns into an exit status (rv_errc), and the message rv_fail builds from both.
#include "pkcs11/module.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

namespace {

using base::Errc;
using pkcs11::rv_errc;
using pkcs11::rv_fail;
using pkcs11::rv_name;

// Values from PKCS#11 v2.40 §5.1 (pkcs11t.h), written out here rather than taken from the
// header's macros, so a wrong case label in rv_name would show.
TEST(RvName, NamesTheCodesAUserMeets) {
    const std::map<unsigned long, std::string> spec = {
        {0x000, "CKR_OK"},
        {0x005, "CKR_GENERAL_ERROR"},
        {0x006, "CKR_FUNCTION_FAILED"},
        {0x030, "CKR_DEVICE_ERROR"},
        {0x031, "CKR_DEVICE_MEMORY"},
        {0x032, "CKR_DEVICE_REMOVED"},
        {0x054, "CKR_FUNCTION_NOT_SUPPORTED"},
        {0x060, "CKR_KEY_HANDLE_INVALID"},
        {0x070, "CKR_MECHANISM_INVALID"},
        {0x082, "CKR_OBJECT_HANDLE_INVALID"},
        {0x0a0, "CKR_PIN_INCORRECT"},
        {0x0a2, "CKR_PIN_LEN_RANGE"},
        {0x0a4, "CKR_PIN_LOCKED"},
        {0x0b3, "CKR_SESSION_HANDLE_INVALID"},
        {0x0e0, "CKR_TOKEN_NOT_PRESENT"},
        {0x101, "CKR_USER_NOT_LOGGED_IN"},
        {0x150, "CKR_BUFFER_TOO_SMALL"},
        {0x190, "CKR_CRYPTOKI_NOT_INITIALIZED"},
        {0x191, "CKR_CRYPTOKI_ALREADY_INITIALIZED"},
        {0x140, "CKR_CURVE_NOT_SUPPORTED"},
    };
    for (const auto& [rv, name] : spec) EXPECT_EQ(rv_name(rv), name) << std::hex << rv;
}

// Every code below 0x200 gets either a distinct CKR_ name or its number in hex: no two
// codes print alike, and an unknown one is never shown as a known one.
TEST(RvName, EveryCodeIsDistinctAndUnknownOnesShowTheirNumber) {
    std::set<std::string> seen;
    for (unsigned long rv = 0; rv < 0x200; ++rv) {
        const std::string name = rv_name(rv);
        ASSERT_EQ(name.rfind("CKR_", 0), 0U) << name;
        EXPECT_TRUE(seen.insert(name).second) << "two codes print as " << name;
    }
    EXPECT_EQ(rv_name(0x1ff), "CKR_0x1ff");
    EXPECT_EQ(rv_name(0x80000001UL), "CKR_0x80000001");  // vendor-defined
}

TEST(RvErrc, MapsToWhatAUserCanActOn) {
    EXPECT_EQ(rv_errc(CKR_PIN_INCORRECT), Errc::pin_incorrect);
    EXPECT_EQ(rv_errc(CKR_PIN_LEN_RANGE), Errc::pin_incorrect);
    EXPECT_EQ(rv_errc(CKR_PIN_LOCKED), Errc::pin_locked);
    EXPECT_EQ(rv_errc(CKR_PIN_EXPIRED), Errc::pin_locked);
    EXPECT_EQ(rv_errc(CKR_TOKEN_NOT_PRESENT), Errc::token_absent);
    EXPECT_EQ(rv_errc(CKR_DEVICE_REMOVED), Errc::token_absent);
    EXPECT_EQ(rv_errc(CKR_SLOT_ID_INVALID), Errc::token_absent);
    EXPECT_EQ(rv_errc(CKR_MECHANISM_INVALID), Errc::unsupported);
    EXPECT_EQ(rv_errc(CKR_CURVE_NOT_SUPPORTED), Errc::unsupported);
    EXPECT_EQ(rv_errc(CKR_DEVICE_ERROR), Errc::hardware);
    EXPECT_EQ(rv_errc(CKR_GENERAL_ERROR), Errc::hardware);
}

TEST(RvFail, NamesTheCallTheCodeAndTheContext) {
    const auto e = rv_fail("C_Sign", CKR_DEVICE_ERROR, "key 'acct'").error();
    EXPECT_EQ(e.code, Errc::hardware);
    const std::string text = e.describe();
    EXPECT_NE(text.find("C_Sign"), std::string::npos) << text;
    EXPECT_NE(text.find("key 'acct': CKR_DEVICE_ERROR"), std::string::npos) << text;
    EXPECT_EQ(rv_fail("C_Login", CKR_PIN_LOCKED).error().code, Errc::pin_locked);
}

}  // namespace
