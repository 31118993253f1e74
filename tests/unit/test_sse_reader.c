/* SPDX-License-Identifier: MIT */
/* test_sse_reader.c -- table-driven tests of the WHATWG SSE parser: every input is fed whole,
 * split at every byte position, and byte by byte (with empty feeds in between), and must give
 * the same events and the same return code each way. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/xalloc.h"
#include "llm/sse_reader.h"

struct sse_case {
    const char *name;
    const char *in;
    size_t in_len;
    size_t max_line;  /* 0: the default */
    int stop_at;      /* >0: the callback returns -77 on that event (1-based) */
    int rc;           /* expected return of the feed that ends the input */
    const char *want; /* the events, each as "<event>|<payload>\n" */
    size_t want_len;
};

#define IN(s) s, sizeof(s) - 1
#define OUT(s) s, sizeof(s) - 1

static const struct sse_case cases[] = {
    {"single event", IN("data: hello\n\n"), 0, 0, 0, OUT("|hello\n")},
    {"two events", IN("data: a\n\ndata: b\n\n"), 0, 0, 0, OUT("|a\n|b\n")},
    {"no space after colon", IN("data:x\n\n"), 0, 0, 0, OUT("|x\n")},
    {"only one space is stripped", IN("data:  two\n\n"), 0, 0, 0, OUT("| two\n")},
    {"data lines joined with LF", IN("data: one\ndata: two\ndata:\n\n"), 0, 0, 0,
     OUT("|one\ntwo\n\n")},
    {"empty data dispatches empty payload", IN("data\n\ndata:\n\n"), 0, 0, 0, OUT("|\n|\n")},
    {"comments ignored", IN(": keep-alive\ndata: a\n:\n: x: y\n\n:only comment\n\n"), 0, 0, 0,
     OUT("|a\n")},
    {"event name kept and reset", IN("event: error\ndata: boom\n\ndata: next\n\n"), 0, 0, 0,
     OUT("error|boom\n|next\n")},
    {"last event name wins", IN("event: a\nevent: b\ndata: x\n\n"), 0, 0, 0, OUT("b|x\n")},
    {"event without data is not dispatched", IN("event: ping\n\ndata: x\n\n"), 0, 0, 0,
     OUT("|x\n")},
    {"id, retry and unknown fields ignored",
     IN("id: 7\nretry: 100\nfoo: bar\nDATA: no\ndata: y\n\n"), 0, 0, 0, OUT("|y\n")},
    {"colon in value kept", IN("data: {\"a\":\"b:c\"}\n\n"), 0, 0, 0, OUT("|{\"a\":\"b:c\"}\n")},
    {"CRLF line ends", IN("data: a\r\ndata: b\r\n\r\ndata: c\r\n\r\n"), 0, 0, 0,
     OUT("|a\nb\n|c\n")},
    {"CR line ends", IN("data: a\r\rdata: b\r\r"), 0, 0, 0, OUT("|a\n|b\n")},
    {"mixed line ends", IN("data: a\r\n\ndata: b\n\r\ndata: c\r\r\n"), 0, 0, 0,
     OUT("|a\n|b\n|c\n")},
    {"CR CR is two line ends", IN("data: a\r\r\r"), 0, 0, 0, OUT("|a\n")},
    {"final event without blank line is dropped", IN("data: a\n\ndata: b\n"), 0, 0, 0, OUT("|a\n")},
    {"partial last line is dropped", IN("data: a\n\ndata: b"), 0, 0, 0, OUT("|a\n")},
    {"BOM stripped before first line",
     IN("\xEF\xBB\xBF"
        "data: a\n\n"),
     0, 0, 0, OUT("|a\n")},
    {"BOM only at stream start",
     IN("data: a\n\n\xEF\xBB\xBF"
        "data: b\n\n"),
     0, 0, 0, OUT("|a\n")},
    {"UTF-8 payload", IN("data: h\xC3\xA9llo \xE4\xB8\x96\xE7\x95\x8C\n\n"), 0, 0, 0,
     OUT("|h\xC3\xA9llo \xE4\xB8\x96\xE7\x95\x8C\n")},
    {"NUL byte inside payload", IN("data: a\0b\n\n"), 0, 0, 0, OUT("|a\0b\n")},
    {"line exactly at cap", IN("data: 0123456789\n\n"), 16, 0, 0, OUT("|0123456789\n")},
    {"line one over cap", IN("data: 0123456789X\n\n"), 16, 0, SSE_ERR_LINE_TOO_LONG, OUT("")},
    {"long line after good events", IN("data: ok\n\ndata: 0123456789XYZ"), 16, 0,
     SSE_ERR_LINE_TOO_LONG, OUT("|ok\n")},
    {"long comment also over cap", IN(": 012345678901234567\ndata: a\n\n"), 16, 0,
     SSE_ERR_LINE_TOO_LONG, OUT("")},
    {"joined data over cap", IN("data: 01234567\ndata: 01234567\n\n"), 16, 0, SSE_ERR_LINE_TOO_LONG,
     OUT("")},
    {"callback stop is returned and sticky", IN("data: a\n\ndata: b\n\ndata: c\n\n"), 0, 2, -77,
     OUT("|a\n|b\n")},
};

struct rec {
    struct buf out;
    int calls;
    int stop_at;
};

static int on_event(void *data, const char *event, const char *payload, size_t len)
{
    struct rec *r = data;
    assert_int_equal(payload[len], '\0'); /* the contract: NUL-terminated */
    buf_appends(&r->out, event);
    buf_appendc(&r->out, '|');
    buf_append(&r->out, payload, len);
    buf_appendc(&r->out, '\n');
    r->calls++;
    return r->calls == r->stop_at ? -77 : 0;
}

/* Feeds in[] in pieces ending at the offsets cuts[0..n) (the last one must be len) and checks
 * the events and the final return code. Once a feed fails, every later feed must fail the same
 * way without reporting anything. */
static void run(const struct sse_case *c, const char *in, size_t len, const size_t *cuts, size_t n,
                bool empty_feeds)
{
    struct sse_reader r;
    struct rec rec = {.calls = 0, .stop_at = c->stop_at};
    buf_init(&rec.out, 1 << 20);
    sse_reader_init(&r, c->max_line);
    int rc = 0, first_err = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        rc = sse_reader_feed(&r, in + at, cuts[i] - at, on_event, &rec);
        if (empty_feeds && rc == 0)
            rc = sse_reader_feed(&r, in, 0, on_event, &rec);
        if (first_err == 0 && rc < 0)
            first_err = rc;
        if (first_err < 0)
            assert_int_equal(rc, first_err);
        at = cuts[i];
    }
    assert_int_equal(rc, c->rc);
    assert_int_equal(rec.out.len, c->want_len);
    assert_memory_equal(buf_str(&rec.out), c->want, rec.out.len);
    sse_reader_release(&r);
    buf_release(&rec.out);
}

static void test_case(void **state)
{
    const struct sse_case *c = *state;
    size_t len = c->in_len;
    size_t cuts[2];
    run(c, c->in, len, (size_t[]){len}, 1, false);
    for (size_t k = 0; k <= len; k++) {
        cuts[0] = k;
        cuts[1] = len;
        run(c, c->in, len, cuts, 2, false);
    }
    size_t *bytes = xcalloc(len + 1, sizeof(*bytes));
    for (size_t k = 0; k < len; k++)
        bytes[k] = k + 1;
    run(c, c->in, len, bytes, len, true);
    xfree(bytes);
}

/* Release in the middle of a line and of an event frees everything (ASan checks), and the
 * reader can be initialised again afterwards. */
static void test_release_midway(void **state)
{
    struct sse_reader r;
    struct rec rec = {0};
    buf_init(&rec.out, 1024);
    sse_reader_init(&r, 0);
    assert_int_equal(r.max_line, 4u * 1024 * 1024);
    assert_int_equal(sse_reader_feed(&r, IN("event: e\ndata: a\ndata: partial"), on_event, &rec),
                     0);
    assert_int_equal(rec.calls, 0);
    sse_reader_release(&r);
    sse_reader_init(&r, 8);
    assert_int_equal(sse_reader_feed(&r, IN("data: a\n\n"), on_event, &rec), 0);
    assert_int_equal(rec.calls, 1);
    sse_reader_release(&r);
    buf_release(&rec.out);
}

/* A NULL callback consumes events silently. */
static void test_null_callback(void **state)
{
    struct sse_reader r;
    sse_reader_init(&r, 0);
    assert_int_equal(sse_reader_feed(&r, IN("data: a\n\ndata: b\n\n"), NULL, NULL), 0);
    sse_reader_release(&r);
}

#define NCASES (sizeof(cases) / sizeof(cases[0]))

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    static struct sse_case table[NCASES];
    struct CMUnitTest tests[NCASES + 2];
    for (size_t i = 0; i < NCASES; i++) {
        table[i] = cases[i];
        tests[i] = (struct CMUnitTest){table[i].name, test_case, NULL, NULL, &table[i]};
    }
    tests[NCASES] = (struct CMUnitTest)cmocka_unit_test(test_release_midway);
    tests[NCASES + 1] = (struct CMUnitTest)cmocka_unit_test(test_null_callback);
    return _cmocka_run_group_tests("sse_reader", tests, NCASES + 2, NULL, NULL);
}
