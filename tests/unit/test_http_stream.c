/* SPDX-License-Identifier: MIT */
/* test_http_stream.c -- streamed request bodies at the parser (src/http/parse.c): a head that
 * want_stream picks is reported (HTTP__HEAD_DONE) before its body, whose bytes go to the sink
 * with no body cap, then HTTP__BODY_END; chunked trailers are dropped; the next pipelined
 * request parses as usual. Every input is fed whole, split at every byte and byte by byte, and
 * must give the same transcript each way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/buf.h"
#include "core/xalloc.h"
#include "http/http_int.h"

static bool want(void *data, const struct http_req *r)
{
    (void)data;
    return strcmp(http_req_method(r), "POST") == 0 && strcmp(http_req_path(r), "/up") == 0;
}

static void sink(void *data, const char *p, size_t len)
{
    buf_append(data, p, len);
}

/* Feeds in[0..len) in pieces (step bytes, or split then the rest) as conn.c does, and writes
 * what happened into out: "H<path>|" per streamed head, "B<body>|" at a body's end, "R<path>|"
 * per whole request, "E<status>" on an error. */
static void run(const char *in, size_t len, size_t step, size_t split, struct buf *out)
{
    struct http__parser p;
    http__parser_init(&p, 1024, 16);
    p.want_stream = want;
    struct buf body;
    buf_init(&body, 1 << 20);
    size_t avail = 0, pos = 0;
    for (;;) {
        size_t n = step ? step : (avail == 0 && split ? split : len - avail);
        avail = avail + n > len ? len : avail + n;
        int rc = HTTP__NEED_MORE;
        while (pos < avail || p.head_end) {
            size_t used = 0;
            rc = http__parser_feed(&p, in + pos, avail - pos, &used);
            pos += used;
            if (rc < 0) {
                buf_appendf(out, "E%d", -rc);
                goto done;
            }
            if (rc == HTTP__HEAD_DONE) {
                struct http_req *r = http__parser_take_head(&p, sink, &body);
                assert_true(http_req_body_streamed(r));
                buf_appendf(out, "H%s|", http_req_path(r));
                http__req_free(r);
            } else if (rc == HTTP__BODY_END) {
                buf_appendf(out, "B%.*s|", (int)body.len, body.data ? body.data : "");
                buf_reset(&body);
            } else if (rc == HTTP__REQ_DONE) {
                struct http_req *r = http__parser_take(&p);
                size_t bl;
                const char *b = http_req_body(r, &bl);
                buf_appendf(out, "R%s:%.*s|", http_req_path(r), (int)bl, b);
                http__req_free(r);
            } else if (pos == avail) {
                break;
            }
        }
        if (avail == len)
            break;
    }
done:
    buf_release(&body);
    http__parser_release(&p);
}

struct stream_case {
    const char *name;
    const char *in;
    const char *want;
};

static const struct stream_case cases[] = {
    {"content-length body over the cap, then a pipelined GET",
     "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\n\r\n"
     "0123456789012345678901234567890123456789"
     "GET /next HTTP/1.1\r\nHost: a\r\n\r\n",
     "H/up|B0123456789012345678901234567890123456789|R/next:|"},
    {"chunked with trailers",
     "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
     "5\r\nhello\r\n1a\r\n, streamed past the cap!!!\r\n0\r\nX-Trailer: t\r\n\r\n"
     "POST /other HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc",
     "H/up|Bhello, streamed past the cap!!!|R/other:abc|"},
    {"no body", "POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", "H/up|B|"},
    {"not picked: the cap applies", "POST /nope HTTP/1.1\r\nHost: a\r\nContent-Length: 40\r\n\r\n",
     "E413"},
    {"bad chunk framing in a streamed body",
     "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX", "H/up|E400"},
};

static void test_case(void **state)
{
    const struct stream_case *c = *state;
    size_t len = strlen(c->in);
    struct buf ref;
    buf_init(&ref, 1 << 20);
    run(c->in, len, len, 0, &ref);
    const char *want = c->want;
    if (ref.len != strlen(want) || memcmp(ref.data, want, ref.len) != 0)
        fail_msg("%s: got '%.*s', want '%s'", c->name, (int)ref.len, ref.data, want);
    for (size_t split = 1; split < len; split++) {
        struct buf o;
        buf_init(&o, 1 << 20);
        run(c->in, len, 0, split, &o);
        if (o.len != ref.len || memcmp(o.data, ref.data, o.len) != 0)
            fail_msg("%s split at %zu: '%.*s'", c->name, split, (int)o.len, o.data);
        buf_release(&o);
    }
    struct buf o;
    buf_init(&o, 1 << 20);
    run(c->in, len, 1, 0, &o);
    if (o.len != ref.len || memcmp(o.data, ref.data, o.len) != 0)
        fail_msg("%s byte by byte: '%.*s'", c->name, (int)o.len, o.data);
    buf_release(&o);
    buf_release(&ref);
}

int main(void)
{
    struct CMUnitTest tests[sizeof(cases) / sizeof(cases[0])];
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tests[i] = (struct CMUnitTest)cmocka_unit_test(test_case);
        tests[i].name = cases[i].name;
        tests[i].initial_state = (void *)&cases[i];
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
