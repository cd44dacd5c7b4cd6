// What a user reads when a PKCS#11 call fails: the CK_RV's name (rv_name), the error code
// the CLI turns into an exit status (rv_errc), and the error check_rv builds from both.
#include "pkcs11/rv.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>

namespace {

using base::Errc;
using pkcs11::check_rv;
using pkcs11::rv_errc;
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

TEST(CheckRv, SucceedsOnlyForCkrOk) {
    EXPECT_TRUE(check_rv("C_Sign", CKR_OK, "key 'acct'"));
    // CKR_USER_ALREADY_LOGGED_IN is a success only for the login, which says so itself.
    EXPECT_FALSE(check_rv("C_Login", CKR_USER_ALREADY_LOGGED_IN));
}

TEST(CheckRv, NamesTheCallTheCodeAndTheContext) {
    const auto e = check_rv("C_Sign", CKR_DEVICE_ERROR, "key 'acct'").error();
    EXPECT_EQ(e.code, Errc::hardware);
    EXPECT_EQ(e.where, "C_Sign");
    EXPECT_EQ(e.native, CKR_DEVICE_ERROR);
    const std::string text = e.describe();
    EXPECT_NE(text.find("C_Sign"), std::string::npos) << text;
    EXPECT_NE(text.find("key 'acct': CKR_DEVICE_ERROR"), std::string::npos) << text;
    EXPECT_EQ(check_rv("C_Login", CKR_PIN_LOCKED).error().message, "CKR_PIN_LOCKED");
}

// The error code of check_rv's error is rv_errc's, for every class a user can act on.
TEST(CheckRv, MapsEachClassToItsErrc) {
    const std::map<CK_RV, Errc> spec = {{CKR_PIN_INCORRECT, Errc::pin_incorrect},
                                        {CKR_PIN_INVALID, Errc::pin_incorrect},
                                        {CKR_PIN_LOCKED, Errc::pin_locked},
                                        {CKR_PIN_EXPIRED, Errc::pin_locked},
                                        {CKR_TOKEN_NOT_PRESENT, Errc::token_absent},
                                        {CKR_TOKEN_NOT_RECOGNIZED, Errc::token_absent},
                                        {CKR_DEVICE_REMOVED, Errc::token_absent},
                                        {CKR_SLOT_ID_INVALID, Errc::token_absent},
                                        {CKR_MECHANISM_INVALID, Errc::unsupported},
                                        {CKR_FUNCTION_NOT_SUPPORTED, Errc::unsupported},
                                        {CKR_KEY_SIZE_RANGE, Errc::unsupported},
                                        {CKR_CURVE_NOT_SUPPORTED, Errc::unsupported},
                                        {CKR_DOMAIN_PARAMS_INVALID, Errc::unsupported},
                                        {CKR_GENERAL_ERROR, Errc::hardware},
                                        {CKR_SESSION_HANDLE_INVALID, Errc::hardware},
                                        {0x80000001UL, Errc::hardware}};
    for (const auto& [rv, code] : spec) {
        auto r = check_rv("C_Call", rv);
        ASSERT_FALSE(r) << rv_name(rv);
        EXPECT_EQ(r.error().code, code) << rv_name(rv);
        EXPECT_EQ(r.error().message, rv_name(rv));
    }
}

}  // namespace
