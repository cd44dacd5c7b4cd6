/* p11shim: a test-only PKCS#11 module that forwards every call to a real module (SoftHSM by
 * default) and can inject the faults the real module cannot produce. Test code only: it is
 * never installed and the agent knows nothing about it.
 *
 * Why a fake at all: SoftHSM 2.6 never locks a user PIN (Token::loginUser only sets
 * CKF_USER_PIN_COUNT_LOW and answers CKR_PIN_INCORRECT, however many tries), never fails
 * C_Initialize or C_Sign with a device error, and reports ulSessionCount as
 * CK_UNAVAILABLE_INFORMATION. Everything else reaches SoftHSM unchanged.
 *
 * Environment (read at C_GetFunctionList / C_Initialize):
 *   P11SHIM_MODULE            the real module (default /usr/lib/softhsm/libsofthsm2.so)
 *   P11SHIM_LOG               a file; one line per C_Login and C_Sign call with its result
 *   P11SHIM_INIT_RV           C_Initialize answers this CK_RV (e.g. 0x30 CKR_DEVICE_ERROR)
 *   P11SHIM_PIN_LOCKED=1      the token reports CKF_USER_PIN_LOCKED and C_Login answers
 *                             CKR_PIN_LOCKED without reaching the real module
 *   P11SHIM_LOGIN_RV          C_Login answers this CK_RV (the flag is not set)
 *   P11SHIM_SIGN_OK=N         the first N C_Sign calls reach the module; later ones answer
 *   P11SHIM_SIGN_RV           this CK_RV (default 0x30 CKR_DEVICE_ERROR)
 * C_GetTokenInfo reports in ulSessionCount / ulRwSessionCount the sessions open through
 * the shim, so a test can watch for leaked sessions. */
#define CK_PTR *
#include <p11-kit/pkcs11.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static CK_FUNCTION_LIST shim;
static CK_FUNCTION_LIST_PTR real;
static void* real_module; /* the real module's dlopen handle, kept until the process exits */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long open_sessions;
static long sign_calls;

static long env_long(const char* name, long dflt) {
    const char* v = getenv(name);
    return v && *v ? strtol(v, NULL, 0) : dflt;
}

static void note(const char* call, CK_RV rv) {
    const char* path = getenv("P11SHIM_LOG");
    if (!path || !*path) return;
    FILE* f = fopen(path, "a");
    if (!f) return;
    fprintf(f, "%s 0x%lx\n", call, (unsigned long)rv);
    (void)fclose(f);
}

static CK_RV shim_initialize(CK_VOID_PTR args) {
    long rv = env_long("P11SHIM_INIT_RV", 0);
    if (rv != 0) return (CK_RV)rv;
    return real->C_Initialize(args);
}

static CK_RV shim_get_token_info(CK_SLOT_ID slot, CK_TOKEN_INFO_PTR info) {
    CK_RV rv = real->C_GetTokenInfo(slot, info);
    if (rv != CKR_OK) return rv;
    if (env_long("P11SHIM_PIN_LOCKED", 0)) info->flags |= CKF_USER_PIN_LOCKED;
    pthread_mutex_lock(&lock);
    info->ulSessionCount = (CK_ULONG)open_sessions;
    info->ulRwSessionCount = (CK_ULONG)open_sessions;
    pthread_mutex_unlock(&lock);
    return CKR_OK;
}

/* Counts the sessions open through the shim: after a successful call, `delta` more, or none
 * when `reset` (C_CloseAllSessions; tests use one slot). Returns rv. */
static CK_RV count_sessions(CK_RV rv, long delta, int reset) {
    if (rv != CKR_OK) return rv;
    pthread_mutex_lock(&lock);
    open_sessions = reset ? 0 : open_sessions + delta;
    pthread_mutex_unlock(&lock);
    return rv;
}

static CK_RV shim_open_session(CK_SLOT_ID slot, CK_FLAGS flags, CK_VOID_PTR app, CK_NOTIFY notify,
                               CK_SESSION_HANDLE_PTR session) {
    return count_sessions(real->C_OpenSession(slot, flags, app, notify, session), 1, 0);
}

static CK_RV shim_close_session(CK_SESSION_HANDLE session) {
    return count_sessions(real->C_CloseSession(session), -1, 0);
}

static CK_RV shim_close_all_sessions(CK_SLOT_ID slot) {
    return count_sessions(real->C_CloseAllSessions(slot), 0, 1);
}

static CK_RV shim_login(CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin,
                        CK_ULONG pin_len) {
    CK_RV rv = CKR_OK;
    if (env_long("P11SHIM_PIN_LOCKED", 0))
        rv = CKR_PIN_LOCKED;
    else if (env_long("P11SHIM_LOGIN_RV", 0) != 0)
        rv = (CK_RV)env_long("P11SHIM_LOGIN_RV", 0);
    else
        rv = real->C_Login(session, user, pin, pin_len);
    note("C_Login", rv);
    return rv;
}

static CK_RV shim_sign(CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
                       CK_ULONG_PTR sig_len) {
    long n = 0;
    CK_RV rv = CKR_OK;
    pthread_mutex_lock(&lock);
    n = ++sign_calls;
    pthread_mutex_unlock(&lock);
    if (n > env_long("P11SHIM_SIGN_OK", -1) && env_long("P11SHIM_SIGN_OK", -1) >= 0)
        rv = (CK_RV)env_long("P11SHIM_SIGN_RV", (long)CKR_DEVICE_ERROR);
    else
        rv = real->C_Sign(session, data, len, sig, sig_len);
    note("C_Sign", rv);
    return rv;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list) {
    if (!list) return CKR_ARGUMENTS_BAD;
    if (!real) {
        const char* path = getenv("P11SHIM_MODULE");
        real_module =
            dlopen(path && *path ? path : "/usr/lib/softhsm/libsofthsm2.so", RTLD_NOW | RTLD_LOCAL);
        if (!real_module) return CKR_GENERAL_ERROR;
        CK_C_GetFunctionList get = NULL;
        /* POSIX's way round ISO C's cast rule */
        *(void**)&get = dlsym(real_module, "C_GetFunctionList");
        if (!get || get(&real) != CKR_OK || !real) {
            real = NULL;
            dlclose(real_module);
            real_module = NULL;
            return CKR_GENERAL_ERROR;
        }
        shim = *real;
        shim.C_Initialize = shim_initialize;
        shim.C_GetTokenInfo = shim_get_token_info;
        shim.C_OpenSession = shim_open_session;
        shim.C_CloseSession = shim_close_session;
        shim.C_CloseAllSessions = shim_close_all_sessions;
        shim.C_Login = shim_login;
        shim.C_Sign = shim_sign;
    }
    *list = &shim;
    return CKR_OK;
}
