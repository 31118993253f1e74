/* SPDX-License-Identifier: MIT */
/* test_core.c -- buf caps, map, ids, lossy JSON strings, and the router. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "api/router.h"
#include "api/sse.h"
#include "core/buf.h"
#include "core/map.h"
#include "core/util.h"
#include "core/xalloc.h"

static void test_buf_cap(void **state)
{
    struct buf b;
    buf_init(&b, 8);
    assert_int_equal(buf_append(&b, "12345", 5), 0);
    assert_int_equal(buf_append(&b, "6789", 4), BUF_ERR_TOOBIG);
    assert_int_equal(b.len, 5);
    assert_string_equal(buf_str(&b), "12345");
    assert_int_equal(buf_appendf(&b, "%d", 678), 0);
    assert_string_equal(buf_str(&b), "12345678");
    assert_int_equal(buf_appendc(&b, 'x'), BUF_ERR_TOOBIG);
    buf_consume(&b, 3);
    assert_string_equal(buf_str(&b), "45678");
    buf_release(&b);
}

static void test_map(void **state)
{
    struct map m;
    map_init(&m);
    char keys[2000][16];
    for (int i = 0; i < 2000; i++) {
        snprintf(keys[i], sizeof(keys[i]), "k%d", i);
        map_set(&m, keys[i], (void *)(intptr_t)(i + 1));
    }
    assert_int_equal(m.len, 2000);
    for (int i = 0; i < 2000; i += 2)
        assert_ptr_equal(map_del(&m, keys[i]), (void *)(intptr_t)(i + 1));
    for (int i = 0; i < 2000; i++)
        assert_ptr_equal(map_get(&m, keys[i]), i % 2 ? (void *)(intptr_t)(i + 1) : NULL);
    size_t n = 0;
    const char *k;
    void *v;
    for (size_t it = 0; map_next(&m, &it, &k, &v);)
        n++;
    assert_int_equal(n, 1000);
    map_release(&m);
}

static void test_ids(void **state)
{
    char u[37], n[22], b[9];
    uuid_v4(u);
    assert_int_equal(strlen(u), 36);
    assert_int_equal(u[14], '4');
    assert_true(strchr("89ab", u[19]) != NULL);
    nanoid(n);
    assert_int_equal(strlen(n), 21);
    rand_base36(b, 8);
    assert_int_equal(strspn(b, "0123456789abcdefghijklmnopqrstuvwxyz"), 8);
    char n2[22];
    nanoid(n2);
    assert_string_not_equal(n, n2);
}

static void test_json_lossy(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out_json;
    } cases[] = {
        {"plain", 5, "\"plain\""},
        {"q\"b\\n\n\t\x01", 8, "\"q\\\"b\\\\n\\n\\t\\u0001\""},
        {"h\xc3\xa9 \xe4\xb8\x96", 7, "\"h\xc3\xa9 \xe4\xb8\x96\""},
        {"bad\xff!", 5, "\"bad\xef\xbf\xbd!\""},
        {"cut\xe4\xb8", 5, "\"cut\xef\xbf\xbd\xef\xbf\xbd\""},
        {"nul\0x", 5, "\"nul\xef\xbf\xbdx\""},
        {"\xed\xa0\x80", 3, "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""}, /* surrogate */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *j = json_string_lossy(cases[i].in, cases[i].len);
        assert_non_null(j);
        char *s = json_dump_compact(j, NULL);
        assert_string_equal(s, cases[i].out_json);
        xfree(s);
        json_decref(j);
    }
}

static void test_router(void **state)
{
    static const struct route routes[] = {
        {"GET", "/api/v1/health", 1},
        {"POST", "/api/sessions/query", 2},
        {"POST", "/api/sessions/query/stream", 3},
        {"POST", "/api/sessions/:sessionId/query", 4},
        {"POST", "/api/sessions/:sessionId/abort", 5},
    };
    static const struct {
        const char *method, *path;
        int id;
        const char *param;
    } cases[] = {
        {"GET", "/api/v1/health", 1, NULL},
        {"GET", "/api/v1/health/", 1, NULL},
        {"POST", "/api/v1/health", -1, NULL},
        {"POST", "/api/sessions/query", 2, NULL},
        {"POST", "/api/sessions/query/stream", 3, NULL},
        {"POST", "/api/sessions/abc123/query", 4, "abc123"},
        {"POST", "/api/sessions/abc123/abort", 5, "abc123"},
        {"POST", "/api/sessions//query", -1, NULL},
        {"POST", "/api/sessions/a/b/query", -1, NULL},
        {"GET", "/", -1, NULL},
        {"GET", "", -1, NULL},
        {"POST", "/api/sessions/query/stream/x", -1, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct route_match m;
        int ok = router_match(routes, 5, cases[i].method, cases[i].path, &m);
        assert_int_equal(ok ? m.id : -1, cases[i].id);
        if (cases[i].param)
            assert_string_equal(route_param(&m, "sessionId"), cases[i].param);
    }
    char long_path[600] = "/api/sessions/";
    memset(long_path + 14, 'a', 400);
    strcpy(long_path + 414, "/query");
    struct route_match m;
    assert_int_equal(router_match(routes, 5, "POST", long_path, &m), 0);
}

static void test_sse_frame(void **state)
{
    struct buf b;
    buf_init(&b, 1024);
    const char *ev = "{\"type\":\"user_message\",\"content\":\"a\\nb\"}";
    assert_int_equal(sse_frame(&b, 7, ev, strlen(ev)), 0);
    assert_string_equal(buf_str(&b), "id: 7\n\ndata: {\"type\":\"user_message\",\"content\":\"a\\nb\"}\n\n");
    buf_reset(&b);
    assert_int_equal(sse_frame(&b, 0, "{}", 2), 0);
    assert_int_equal(sse_frame(&b, 1234567890123LL, "{}", 2), 0);
    assert_string_equal(buf_str(&b), "id: 0\n\ndata: {}\n\nid: 1234567890123\n\ndata: {}\n\n");
    buf_reset(&b);
    assert_int_equal(sse_frame_joined(&b, 42, "{\"a\":1}", 7), 0);
    assert_string_equal(buf_str(&b), "id: 42\ndata: {\"a\":1}\n\n");
    buf_release(&b);
    /* Over the cap: an error, never a partial frame beyond the cap. */
    buf_init(&b, 16);
    assert_int_equal(sse_frame(&b, 1, "{\"long\":\"xxxxxxxx\"}", 19), BUF_ERR_TOOBIG);
    assert_true(b.len <= 16);
    buf_release(&b);
}

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_cap),   cmocka_unit_test(test_map),
        cmocka_unit_test(test_ids),       cmocka_unit_test(test_json_lossy),
        cmocka_unit_test(test_router),    cmocka_unit_test(test_sse_frame),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
