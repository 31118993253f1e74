/* SPDX-License-Identifier: MIT */
/* test_obs.c -- the pure parts of src/obs: the Prometheus text exposition of counters, gauges
 * and histograms (escaping, cumulative buckets, the label-set cap), request-id checks, W3C
 * traceparent parsing and the OTLP/HTTP JSON encoding of spans. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/xalloc.h"
#include "obs/obs_int.h"

static void test_counter_exposition(void **state)
{
    struct obs_family f = {.name = "t_requests_total",
                           .help = "Requests\nby route \\ code",
                           .type = OBS_COUNTER,
                           .labels = {"route", "code"}};
    struct buf b;
    buf_init(&b, 1 << 20);
    obs__render(&b, &f);
    assert_string_equal(buf_str(&b), ""); /* labelled and never touched: nothing */
    obs__add(&f, 2, "/a", "2xx", NULL);
    obs__add(&f, 1, "/a", "2xx", NULL);
    obs__add(&f, 1, "say \"hi\"\n\\", "4xx", NULL);
    obs__render(&b, &f);
    assert_string_equal(buf_str(&b),
                        "# HELP t_requests_total Requests\\nby route \\\\ code\n"
                        "# TYPE t_requests_total counter\n"
                        "t_requests_total{route=\"/a\",code=\"2xx\"} 3\n"
                        "t_requests_total{route=\"say \\\"hi\\\"\\n\\\\\",code=\"4xx\"} 1\n");
    buf_release(&b);
    obs__family_clear(&f);
}

static void test_unlabelled_zero_and_gauge(void **state)
{
    struct obs_family g = {.name = "t_open", .help = "Open", .type = OBS_GAUGE};
    struct buf b;
    buf_init(&b, 1 << 20);
    obs__render(&b, &g);
    assert_string_equal(buf_str(&b), "# HELP t_open Open\n# TYPE t_open gauge\nt_open 0\n");
    buf_reset(&b);
    obs__add(&g, 3, NULL, NULL, NULL);
    obs__add(&g, -1, NULL, NULL, NULL);
    obs__render(&b, &g);
    assert_string_equal(buf_str(&b), "# HELP t_open Open\n# TYPE t_open gauge\nt_open 2\n");
    buf_reset(&b);
    obs__render_value(&b, "t_rss_bytes", "RSS", "gauge", 123456789.0);
    obs__render_value(&b, "t_up_seconds", "Up", "gauge", 1.5);
    assert_string_equal(buf_str(&b), "# HELP t_rss_bytes RSS\n# TYPE t_rss_bytes gauge\n"
                                     "t_rss_bytes 123456789\n# HELP t_up_seconds Up\n"
                                     "# TYPE t_up_seconds gauge\nt_up_seconds 1.5\n");
    buf_release(&b);
    obs__family_clear(&g);
}

static void test_histogram_exposition(void **state)
{
    static const uint64_t bounds[] = {1000, 10000, 100000}; /* microseconds */
    struct obs_family h = {.name = "t_seconds",
                           .help = "Latency",
                           .type = OBS_HISTOGRAM,
                           .bounds = bounds,
                           .nbounds = 3,
                           .scale = 1e6,
                           .labels = {"op"}};
    uint64_t obs[] = {500, 1000, 1001, 50000, 2000000};
    for (size_t i = 0; i < 5; i++)
        obs__observe(&h, obs[i], "read", NULL, NULL);
    struct buf b;
    buf_init(&b, 1 << 20);
    obs__render(&b, &h);
    /* le is an upper bound, inclusive (1000 us goes into le="0.001"); buckets are cumulative
     * and +Inf equals _count. */
    assert_string_equal(buf_str(&b), "# HELP t_seconds Latency\n# TYPE t_seconds histogram\n"
                                     "t_seconds_bucket{op=\"read\",le=\"0.001\"} 2\n"
                                     "t_seconds_bucket{op=\"read\",le=\"0.01\"} 3\n"
                                     "t_seconds_bucket{op=\"read\",le=\"0.1\"} 4\n"
                                     "t_seconds_bucket{op=\"read\",le=\"+Inf\"} 5\n"
                                     "t_seconds_sum{op=\"read\"} 2.052501\n"
                                     "t_seconds_count{op=\"read\"} 5\n");
    buf_release(&b);
    obs__family_clear(&h);
    /* Unlabelled and empty: zero buckets, still a valid histogram. */
    struct obs_family e = {.name = "t_lag_seconds",
                           .help = "Lag",
                           .type = OBS_HISTOGRAM,
                           .bounds = bounds,
                           .nbounds = 3,
                           .scale = 1e6};
    buf_init(&b, 1 << 20);
    obs__render(&b, &e);
    assert_non_null(strstr(buf_str(&b), "t_lag_seconds_bucket{le=\"+Inf\"} 0\n"
                                        "t_lag_seconds_sum 0\nt_lag_seconds_count 0\n"));
    buf_release(&b);
}

static void test_series_cap(void **state)
{
    struct obs_family f = {.name = "t_total", .help = "x", .type = OBS_COUNTER, .labels = {"tool"}};
    char name[32];
    for (int i = 0; i < OBS_MAX_SERIES + 50; i++) {
        snprintf(name, sizeof(name), "tool%d", i);
        obs__add(&f, 1, name, NULL, NULL);
    }
    assert_int_equal(f.n, OBS_MAX_SERIES + 1); /* the cap, plus the one "other" set */
    assert_int_equal(obs__series(&f, "other", NULL, NULL)->value, 50);
    obs__family_clear(&f);
}

static void test_request_ids(void **state)
{
    assert_true(obs__req_id_ok("abc-123_x.y:z/w+q="));
    assert_true(obs__req_id_ok("20260101ABCDEF"));
    assert_false(obs__req_id_ok(""));
    assert_false(obs__req_id_ok("has space"));
    assert_false(obs__req_id_ok("quo\"te"));
    assert_false(obs__req_id_ok("cr\r\nlf"));
    char s[80];
    memset(s, 'a', 64);
    s[64] = '\0';
    assert_true(obs__req_id_ok(s));
    s[64] = 'a';
    s[65] = '\0';
    assert_false(obs__req_id_ok(s));
}

static void test_traceparent(void **state)
{
    struct {
        const char *in;
        bool ok, sampled;
    } cases[] = {
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", true, true},
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", true, false},
        {"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", true, true},
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", false, false},
        {"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, false},
        {"00-00000000000000000000000000000000-00f067aa0ba902b7-01", false, false},
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", false, false},
        {"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", false, false},
        {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", false, false},
        {"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", false, false},
        {"", false, false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct obs_ctx ctx;
        bool ok = obs__traceparent_parse(cases[i].in, &ctx);
        if (ok != cases[i].ok)
            fail_msg("case %zu '%s': got %d", i, cases[i].in, ok);
        if (ok)
            assert_int_equal(ctx.sampled, cases[i].sampled);
    }
    struct obs_ctx ctx;
    assert_true(obs__traceparent_parse(cases[0].in, &ctx));
    char hex[33];
    obs__hex(hex, ctx.trace_id, 16);
    assert_string_equal(hex, "4bf92f3577b34da6a3ce929d0e0e4736");
    obs__hex(hex, ctx.span_id, 8);
    assert_string_equal(hex, "00f067aa0ba902b7");
    assert_false(obs__traceparent_parse(NULL, &ctx));
}

static void test_otlp_json(void **state)
{
    struct obs_span sp[2] = {0};
    for (int i = 0; i < 16; i++)
        sp[0].trace_id[i] = sp[1].trace_id[i] = (uint8_t)(0xa0 + i);
    for (int i = 0; i < 8; i++) {
        sp[0].span_id[i] = (uint8_t)(i + 1);
        sp[1].span_id[i] = (uint8_t)(0x10 + i);
    }
    memcpy(sp[1].parent_id, sp[0].span_id, 8);
    sp[0].name = "http.request";
    sp[0].kind = 2;
    sp[0].start_ns = 1700000000000000000ull;
    sp[0].end_ns = 1700000000123456789ull;
    sp[0].attrs[0] = (struct obs_attr){.key = "http.route", .str = xstrdup("/api/x")};
    sp[0].attrs[1] = (struct obs_attr){.key = "http.response.status_code", .num = 200};
    sp[0].nattrs = 2;
    sp[1].name = "chat";
    sp[1].kind = 3;
    sp[1].start_ns = 1700000000000000001ull;
    sp[1].end_ns = 1700000000000000002ull;
    sp[1].error = xstrdup("401 bad key");
    sp[1].attrs[0] = (struct obs_attr){.key = "gen_ai.usage.input_tokens", .num = -5};
    sp[1].nattrs = 1;
    json_t *j = obs__otlp_json(sp, 2, "svc");
    char *text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(
        text,
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
        "{\"stringValue\":\"svc\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"agent-tars-server\"},"
        "\"spans\":[{\"attributes\":[{\"key\":\"http.route\",\"value\":{\"stringValue\":\"/api/"
        "x\"}},"
        "{\"key\":\"http.response.status_code\",\"value\":{\"intValue\":\"200\"}}],"
        "\"endTimeUnixNano\":\"1700000000123456789\",\"kind\":2,\"name\":\"http.request\","
        "\"spanId\":\"0102030405060708\",\"startTimeUnixNano\":\"1700000000000000000\","
        "\"traceId\":\"a0a1a2a3a4a5a6a7a8a9aaabacadaeaf\"},"
        "{\"attributes\":[{\"key\":\"gen_ai.usage.input_tokens\",\"value\":{\"intValue\":\"-5\"}}],"
        "\"endTimeUnixNano\":\"1700000000000000002\",\"kind\":3,\"name\":\"chat\","
        "\"parentSpanId\":\"0102030405060708\",\"spanId\":\"1011121314151617\","
        "\"startTimeUnixNano\":\"1700000000000000001\",\"status\":{\"code\":2,\"message\":"
        "\"401 bad key\"},\"traceId\":\"a0a1a2a3a4a5a6a7a8a9aaabacadaeaf\"}]}]}]}");
    xfree(text);
    json_decref(j);
    obs__span_release(&sp[0]);
    obs__span_release(&sp[1]);
}

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_exposition),
        cmocka_unit_test(test_unlabelled_zero_and_gauge),
        cmocka_unit_test(test_histogram_exposition),
        cmocka_unit_test(test_series_cap),
        cmocka_unit_test(test_request_ids),
        cmocka_unit_test(test_traceparent),
        cmocka_unit_test(test_otlp_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
