/* SPDX-License-Identifier: MIT */
/* test_multipart.c -- the multipart/form-data parser: every case is fed whole, split at every
 * byte position, and byte by byte, and must give the same parts, contents and verdict each way;
 * plus the boundary parameter of Content-Type. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api/multipart.h"
#include "core/buf.h"
#include "core/xalloc.h"

struct mp_case {
    const char *name;
    const char *in;
    size_t in_len;
    size_t max_parts;
    int rc;           /* verdict: of the first failing feed, else of multipart_finish */
    const char *want; /* each part as "[name|filename|type]content\n" (filename "-" if none) */
};

#define IN(s) s, sizeof(s) - 1

static const struct mp_case cases[] = {
    {"one file",
     IN("--XyZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.txt\"\r\n"
        "Content-Type: text/plain\r\n\r\nhello\r\n--XyZ--\r\n"),
     10, MULTIPART_OK, "[files|a.txt|text/plain]hello\n"},
    {"field and two files, preamble and epilogue",
     IN("preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=sessionId\r\n\r\nabc\r\n"
        "--XyZ\r\nContent-Disposition: form-data; name=\"files\"; filename=\"x\\\"y.bin\"\r\n\r\n"
        "\r\n--Xy\r\r\n--XyY\r\n--XyZ  \r\nContent-Disposition: form-data; name=\"files\"; "
        "filename=\"\"\r\n\r\n\r\n--XyZ--epilogue --XyZ"),
     10, MULTIPART_OK, "[sessionId|-|]abc\n[files|x\"y.bin|]\r\n--Xy\r\r\n--XyY\n[files||]\n"},
    {"content looks like the delimiter's prefix at the end",
     IN("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\n--Xy\r\n--XyZ--"), 10,
     MULTIPART_OK, "[a|-|]\r\n--Xy\n"},
    {"empty body", IN(""), 10, MULTIPART_E_TRUNCATED, ""},
    {"no closing delimiter",
     IN("--XyZ\r\nContent-Disposition: form-data; name=a; filename=f\r\n\r\nabc"), 10,
     MULTIPART_E_TRUNCATED, "[a|f|]abc"},
    {"head never ends", IN("--XyZ\r\nContent-Disposition: form-data; name=a\r\n"), 10,
     MULTIPART_E_TRUNCATED, ""},
    {"no content-disposition", IN("--XyZ\r\nContent-Type: text/plain\r\n\r\nx\r\n--XyZ--"), 10,
     MULTIPART_E_SYNTAX, ""},
    {"not form-data", IN("--XyZ\r\nContent-Disposition: attachment\r\n\r\nx\r\n--XyZ--"), 10,
     MULTIPART_E_SYNTAX, ""},
    {"folded header", IN("--XyZ\r\nContent-Disposition: form-data;\r\n name=a\r\n\r\nx\r\n--XyZ--"),
     10, MULTIPART_E_SYNTAX, ""},
    {"garbage after delimiter", IN("--XyZx\r\n"), 10, MULTIPART_E_SYNTAX, ""},
    {"too many parts",
     IN("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--XyZ\r\n"
        "Content-Disposition: form-data; name=b\r\n\r\n2\r\n--XyZ\r\n"
        "Content-Disposition: form-data; name=c\r\n\r\n3\r\n--XyZ--"),
     2, MULTIPART_E_PARTS, "[a|-|]1\n[b|-|]2\n"},
    {"CR-only line ends stay content",
     IN("--XyZ\r\nContent-Disposition: form-data; name=a\r\n\r\n\r\r\r\n-\r\n--\r\n--XyZ--"), 10,
     MULTIPART_OK, "[a|-|]\r\r\r\n-\r\n--\n"},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

struct out {
    struct buf b;
};

static int on_part(void *data, const struct multipart_part *p)
{
    struct out *o = data;
    buf_appends(&o->b, "[");
    buf_appends(&o->b, p->name);
    buf_appends(&o->b, "|");
    buf_appends(&o->b, p->filename ? p->filename : "-");
    buf_appends(&o->b, "|");
    buf_appends(&o->b, p->content_type);
    buf_appends(&o->b, "]");
    return 0;
}

static int on_data(void *data, const char *p, size_t len)
{
    struct out *o = data;
    assert_true(len > 0);
    buf_append(&o->b, p, len);
    return 0;
}

static int on_end(void *data)
{
    struct out *o = data;
    buf_appends(&o->b, "\n");
    return 0;
}

static const struct multipart_cbs cbs = {on_part, on_data, on_end};

/* Feeds c->in in pieces of `step` bytes (0: at the positions split and the rest). */
static void run_case(const struct mp_case *c, size_t step, size_t split)
{
    struct multipart *m = xcalloc(1, sizeof(*m));
    multipart_init(m, "XyZ", c->max_parts);
    struct out o;
    buf_init(&o.b, 1 << 20);
    int rc = MULTIPART_OK;
    size_t off = 0;
    while (off < c->in_len && rc == MULTIPART_OK) {
        size_t n = step ? step : (off == 0 && split > 0 ? split : c->in_len - off);
        if (n > c->in_len - off)
            n = c->in_len - off;
        rc = multipart_feed(m, c->in + off, n, &cbs, &o);
        off += n;
    }
    if (rc == MULTIPART_OK)
        rc = multipart_finish(m);
    char what[128];
    snprintf(what, sizeof(what), "%s (step %zu, split %zu)", c->name, step, split);
    if (rc != c->rc)
        fail_msg("%s: rc %d, want %d", what, rc, c->rc);
    if (o.b.len != strlen(c->want) || memcmp(o.b.data ? o.b.data : "", c->want, o.b.len) != 0)
        fail_msg("%s: got '%.*s'", what, (int)o.b.len, o.b.data ? o.b.data : "");
    buf_release(&o.b);
    xfree(m);
}

static void test_case(void **state)
{
    const struct mp_case *c = *state;
    run_case(c, c->in_len ? c->in_len : 1, 0);
    run_case(c, 1, 0);
    for (size_t split = 0; split <= c->in_len; split++)
        run_case(c, 0, split);
}

static void test_boundary(void **state)
{
    (void)state;
    char b[MULTIPART_MAX_BOUNDARY + 1];
    assert_int_equal(multipart_boundary("multipart/form-data; boundary=abc", b), 3);
    assert_string_equal(b, "abc");
    assert_int_equal(
        multipart_boundary("Multipart/Form-Data ; charset=x; BOUNDARY=\"----a b'()+_,-./:=?\"", b),
        19);
    assert_string_equal(b, "----a b'()+_,-./:=?");
    assert_int_equal(multipart_boundary("multipart/form-data", b), -1);
    assert_int_equal(multipart_boundary("multipart/form-data; boundary=", b), -1);
    assert_int_equal(multipart_boundary("multipart/form-data; boundary=\"a \"", b), -1);
    assert_int_equal(multipart_boundary("multipart/form-data; boundary=a\x01", b), -1);
    assert_int_equal(multipart_boundary("multipart/mixed; boundary=abc", b), -1);
    assert_int_equal(multipart_boundary("application/json", b), -1);
    assert_int_equal(multipart_boundary(NULL, b), -1);
    char longb[100];
    memset(longb, 'a', sizeof(longb));
    char ct[160];
    snprintf(ct, sizeof(ct), "multipart/form-data; boundary=%.70s", longb);
    assert_int_equal(multipart_boundary(ct, b), 70);
    snprintf(ct, sizeof(ct), "multipart/form-data; boundary=%.71s", longb);
    assert_int_equal(multipart_boundary(ct, b), -1);
}

static int stop_on_data(void *data, const char *p, size_t len)
{
    (void)data, (void)p, (void)len;
    return -1;
}

static void test_stop_and_head_cap(void **state)
{
    (void)state;
    struct multipart *m = xcalloc(1, sizeof(*m));
    const char *in = "--b\r\nContent-Disposition: form-data; name=a\r\n\r\nxyz\r\n--b--";
    struct multipart_cbs stop = {NULL, stop_on_data, NULL};
    multipart_init(m, "b", 4);
    assert_int_equal(multipart_feed(m, in, strlen(in), &stop, NULL), MULTIPART_E_STOPPED);
    assert_int_equal(multipart_feed(m, in, strlen(in), &stop, NULL), MULTIPART_E_STOPPED);
    /* a header block over the cap */
    multipart_init(m, "b", 4);
    char *big = xmalloc(MULTIPART_MAX_HEAD + 64);
    memcpy(big, "--b\r\nX: ", 8);
    memset(big + 8, 'v', MULTIPART_MAX_HEAD + 56);
    assert_int_equal(multipart_feed(m, big, MULTIPART_MAX_HEAD + 64, &stop, NULL),
                     MULTIPART_E_HEAD);
    xfree(big);
    xfree(m);
}

int main(void)
{
    struct CMUnitTest tests[NCASES + 2];
    for (size_t i = 0; i < NCASES; i++) {
        tests[i] = (struct CMUnitTest)cmocka_unit_test(test_case);
        tests[i].name = cases[i].name;
        tests[i].initial_state = (void *)&cases[i];
    }
    tests[NCASES] = (struct CMUnitTest)cmocka_unit_test(test_boundary);
    tests[NCASES + 1] = (struct CMUnitTest)cmocka_unit_test(test_stop_and_head_cap);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
