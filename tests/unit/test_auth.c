/* SPDX-License-Identifier: MIT */
/* test_auth.c -- the access policy without a server: Host and Origin rules, token modes,
 * cookie values, CSRF tokens (valid, forged, expired, from another secret) and the failure
 * limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/auth.h"
#include "core/xalloc.h"

static struct auth *make(const char *json, const char *bind)
{
    json_error_t je;
    json_t *root = json_loads(json, 0, &je);
    assert_non_null(root);
    struct auth *a = NULL;
    char *err = NULL;
    assert_int_equal(auth_new(root, bind, &a, &err), 0);
    json_decref(root);
    return a;
}

static void test_hosts(void **state)
{
    unsetenv("TARKO_ALLOWED_HOSTS");
    struct auth *a = make("{\"server\":{\"allowedHosts\":[\"agents.example.com\",\"x.test:8080\","
                          "\".corp.test\"]}}",
                          "my-box.lan");
    const char *ok[] = {"127.0.0.1",     "127.0.0.1:8888",  "[::1]",         "[::1]:1",
                        "10.0.0.7:80",   "localhost",       "LOCALHOST:3000", "a.localhost",
                        "my-box.lan:88", "agents.example.com", "Agents.Example.Com.:9",
                        "x.test:8080",   "corp.test",       "deep.sub.corp.test"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!auth_host_ok(a, ok[i]))
            fail_msg("refused %s", ok[i]);
    const char *bad[] = {NULL,          "",          "evil.test",       "x.test",
                         "x.test:8081", "::1",       "[::1",            "127.0.0.1:",
                         "127.0.0.1:65536", "a b",  "localhost.evil.test", "evilcorp.test",
                         "user@127.0.0.1", "127.0.0.1/x", "[fe80::1]x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (auth_host_ok(a, bad[i]))
            fail_msg("accepted %s", bad[i] ? bad[i] : "(null)");
    auth_free(a);
    a = make("{\"server\":{\"allowedHosts\":\"*\"}}", "127.0.0.1");
    assert_true(auth_host_ok(a, "anything.example"));
    auth_free(a);
}

static void test_origins(void **state)
{
    unsetenv("TARKO_ALLOWED_ORIGINS");
    struct auth *a = make("{\"server\":{\"allowedOrigins\":\"https://ui.example.com/, "
                          "http://x.test:3000\"}}",
                          "127.0.0.1");
    assert_true(auth_origin_ok(a, NULL, "127.0.0.1:1"));
    assert_true(auth_origin_ok(a, "http://127.0.0.1:8888", "127.0.0.1:8888"));
    assert_true(auth_origin_ok(a, "http://LOCALHOST:8888", "localhost:8888"));
    assert_true(auth_origin_ok(a, "http://example.com", "example.com:80"));
    assert_true(auth_origin_ok(a, "https://example.com", "example.com"));
    assert_true(auth_origin_ok(a, "https://ui.example.com", "127.0.0.1"));
    assert_true(auth_origin_ok(a, "http://x.test:3000", "127.0.0.1"));
    assert_false(auth_origin_ok(a, "http://127.0.0.1:8889", "127.0.0.1:8888"));
    assert_false(auth_origin_ok(a, "http://evil.test", "127.0.0.1:8888"));
    assert_false(auth_origin_ok(a, "null", "127.0.0.1:8888"));
    assert_false(auth_origin_ok(a, "file://", "127.0.0.1:8888"));
    assert_false(auth_origin_ok(a, "ftp://127.0.0.1:8888", "127.0.0.1:8888"));
    assert_false(auth_origin_ok(a, "http://x.test:3001", "127.0.0.1"));
    assert_false(auth_origin_ok(a, "https://example.com", "example.com:80"));
    auth_free(a);
    a = make("{\"server\":{\"allowedOrigins\":[\"*\"]}}", "127.0.0.1");
    assert_true(auth_origin_ok(a, "http://evil.test", "127.0.0.1"));
    auth_free(a);
}

static void test_modes(void **state)
{
    unsetenv("TARKO_AUTH_TOKEN");
    struct auth *a = make("{}", "127.0.0.1");
    assert_false(auth_token_required(a));
    assert_null(auth_generated_token(a));
    auth_free(a);
    a = make("{}", "0.0.0.0");
    assert_true(auth_token_required(a));
    const char *t = auth_generated_token(a);
    assert_non_null(t);
    assert_int_equal(strlen(t), 64);
    assert_true(auth_token_ok(a, t));
    assert_false(auth_token_ok(a, "x"));
    auth_free(a);
    a = make("{\"server\":{\"auth\":{\"token\":\"0123456789abcdef\"}}}", "::1");
    assert_true(auth_token_required(a));
    assert_null(auth_generated_token(a));
    assert_true(auth_token_ok(a, "0123456789abcdef"));
    assert_false(auth_token_ok(a, "0123456789abcdeF"));
    assert_false(auth_token_ok(a, "0123456789abcdef0"));
    auth_free(a);
    a = make("{\"server\":{\"auth\":{\"mode\":\"never\"}}}", "0.0.0.0");
    assert_false(auth_token_required(a));
    auth_free(a);

    json_t *root = json_loads("{\"server\":{\"auth\":{\"token\":\"short\"}}}", 0, NULL);
    char *err = NULL;
    struct auth *b = NULL;
    assert_int_equal(auth_new(root, "127.0.0.1", &b, &err), -1);
    assert_non_null(strstr(err, "16"));
    xfree(err);
    json_decref(root);
    assert_true(auth_is_loopback("127.1.2.3"));
    assert_true(auth_is_loopback("localhost"));
    assert_false(auth_is_loopback("0.0.0.0"));
    assert_false(auth_is_loopback("::"));
    assert_false(auth_is_loopback("192.168.1.5"));
}

static void test_cookie_and_csrf(void **state)
{
    struct auth *a = make("{\"server\":{\"auth\":{\"mode\":\"always\"},\"secret\":\"s1\"}}",
                          "127.0.0.1");
    char *v = auth_cookie_value(a);
    assert_true(auth_cookie_ok(a, v));
    char got[80];
    char *hdr = xasprintf("theme=dark; tarko_auth=%s; x=1", v);
    assert_true(auth_cookie_get(hdr, AUTH_COOKIE, got, sizeof(got)));
    assert_string_equal(got, v);
    assert_false(auth_cookie_get("tarko_authx=1; a=2", AUTH_COOKIE, got, sizeof(got)));
    xfree(hdr);
    v[0] = v[0] == '0' ? '1' : '0';
    assert_false(auth_cookie_ok(a, v));
    xfree(v);

    int64_t now = 1700000000000;
    char *t = auth_csrf_new(a, now);
    assert_true(auth_csrf_ok(a, t, now));
    assert_true(auth_csrf_ok(a, t, now + AUTH_CSRF_TTL_MS - 1));
    assert_false(auth_csrf_ok(a, t, now + AUTH_CSRF_TTL_MS)); /* expired */
    struct auth *b = make("{\"server\":{\"secret\":\"s2\"}}", "127.0.0.1");
    assert_false(auth_csrf_ok(b, t, now)); /* another secret */
    auth_set_secret(b, "s1");
    assert_true(auth_csrf_ok(b, t, now)); /* another node with the same secret */
    t[strlen(t) - 1] ^= 1;
    assert_false(auth_csrf_ok(a, t, now));
    const char *junk[] = {"", ".", "1.", ".ab", "abc.def", "99999999999999999999.00", "1 2.00"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++)
        assert_false(auth_csrf_ok(a, junk[i], now));
    xfree(t);
    auth_free(a);
    auth_free(b);
}

static void test_limit(void **state)
{
    struct auth *a = make("{}", "127.0.0.1");
    uint64_t t0 = 1000;
    for (int i = 0; i < AUTH_LIMIT_FAILS; i++) {
        assert_int_equal(auth_limit_wait(a, "10.0.0.1", t0), 0);
        auth_limit_fail(a, "10.0.0.1", t0);
    }
    assert_int_equal(auth_limit_wait(a, "10.0.0.1", t0), AUTH_LIMIT_WINDOW_MS / 1000);
    assert_int_equal(auth_limit_wait(a, "10.0.0.2", t0), 0); /* per address */
    assert_int_equal(auth_limit_wait(a, "10.0.0.1", t0 + AUTH_LIMIT_WINDOW_MS), 0);
    /* many addresses: the table stays bounded and the newest still counts */
    char addr[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(addr, sizeof(addr), "10.1.%d.%d", i / 256, i % 256);
        auth_limit_fail(a, addr, t0 + (uint64_t)i);
    }
    for (int i = 0; i < AUTH_LIMIT_FAILS; i++)
        auth_limit_fail(a, "10.9.9.9", t0 + 6000);
    assert_true(auth_limit_wait(a, "10.9.9.9", t0 + 6000) > 0);
    auth_free(a);
}

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hosts),           cmocka_unit_test(test_origins),
        cmocka_unit_test(test_modes),           cmocka_unit_test(test_cookie_and_csrf),
        cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
