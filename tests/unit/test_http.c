/* SPDX-License-Identifier: MIT */
/* test_http.c -- the pure request parser (bytes in, requests or a client error out) and a few
 * end-to-end checks of the server on loopback: pipelined answers in order, CORS preflight,
 * chunked streaming, the close callback on peer disconnect, and a clean loop shutdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the four above first */
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/xalloc.h"
#include "http/http.h"
#include "http/http_int.h"

/* ---- parser harness ---- */

#define MAXREQ 8

struct parsed {
    struct http_req *reqs[MAXREQ];
    int n;
    int err; /* HTTP status of a client error, or 0 */
};

/* Feeds data the way a connection does: `step` bytes arrive at a time, the unparsed rest of
 * earlier arrivals is offered again, and each complete request is taken before going on. */
static void parse_steps(const char *data, size_t len, size_t step, size_t max_hdr, size_t max_body,
                        struct parsed *out)
{
    struct http__parser p;
    http__parser_init(&p, max_hdr, max_body);
    memset(out, 0, sizeof(*out));
    size_t avail = 0, pos = 0;
    while (avail < len && !out->err) {
        avail += len - avail < step ? len - avail : step;
        while (pos < avail) {
            size_t used = 0;
            int rc = http__parser_feed(&p, data + pos, avail - pos, &used);
            pos += used;
            if (rc == HTTP__REQ_DONE) {
                assert_true(out->n < MAXREQ);
                out->reqs[out->n++] = http__parser_take(&p);
            } else if (rc < 0) {
                out->err = -rc;
                break;
            } else {
                assert_int_equal(pos, avail);
            }
        }
    }
    http__parser_release(&p);
}

static void parse(const char *data, struct parsed *out)
{
    parse_steps(data, strlen(data), strlen(data), 16384, 1 << 20, out);
}

static void parsed_free(struct parsed *ps)
{
    for (int i = 0; i < ps->n; i++)
        http__req_free(ps->reqs[i]);
    ps->n = 0;
}

static void assert_body(const struct http_req *r, const char *want)
{
    size_t len = 0;
    const char *b = http_req_body(r, &len);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(b, want, len);
    assert_int_equal(b[len], '\0');
}

/* ---- parser tests ---- */

static void test_simple_get(void **state)
{
    struct parsed ps;
    parse("GET /api/v1/health HTTP/1.1\r\nHost: localhost\r\nUser-Agent: t\r\n\r\n", &ps);
    assert_int_equal(ps.err, 0);
    assert_int_equal(ps.n, 1);
    struct http_req *r = ps.reqs[0];
    assert_string_equal(http_req_method(r), "GET");
    assert_string_equal(http_req_path(r), "/api/v1/health");
    assert_string_equal(http_req_query(r), "");
    assert_string_equal(http_req_header(r, "host"), "localhost");
    assert_string_equal(http_req_header(r, "User-Agent"), "t");
    assert_null(http_req_header(r, "accept"));
    assert_body(r, "");
    assert_true(r->keep_alive);
    assert_false(r->is_head);
    parsed_free(&ps);
}

static void test_post_content_length(void **state)
{
    struct parsed ps;
    parse("POST /api/sessions/create HTTP/1.1\r\nContent-Type: application/json\r\n"
          "Content-Length: 13\r\n\r\n{\"a\":\"b\\u00\"}",
          &ps);
    assert_int_equal(ps.err, 0);
    assert_int_equal(ps.n, 1);
    assert_string_equal(http_req_method(ps.reqs[0]), "POST");
    assert_body(ps.reqs[0], "{\"a\":\"b\\u00\"}");
    parsed_free(&ps);
}

static void test_body_with_nul(void **state)
{
    static const char req[] = "PUT /x HTTP/1.1\r\nContent-Length: 3\r\n\r\na\0b";
    struct parsed ps;
    parse_steps(req, sizeof(req) - 1, 1000, 1024, 1024, &ps);
    assert_int_equal(ps.n, 1);
    size_t len = 0;
    const char *b = http_req_body(ps.reqs[0], &len);
    assert_int_equal(len, 3);
    assert_memory_equal(b, "a\0b", 3);
    parsed_free(&ps);
}

static void test_chunked_body(void **state)
{
    struct parsed ps;
    parse("POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
          "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n",
          &ps);
    assert_int_equal(ps.err, 0);
    assert_int_equal(ps.n, 1);
    assert_body(ps.reqs[0], "hello world");
    assert_true(ps.reqs[0]->keep_alive);
    parsed_free(&ps);
}

static const char pipelined[] =
    "GET /one?x=1 HTTP/1.1\r\nHost: a\r\n\r\n"
    "POST /two HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
    "\r\n" /* stray CRLF between requests is tolerated (RFC 9112 §2.2) */
    "POST /three HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    "DELETE /four%20x HTTP/1.1\r\nConnection: close\r\n\r\n";

static void check_pipelined(struct parsed *ps)
{
    assert_int_equal(ps->err, 0);
    assert_int_equal(ps->n, 4);
    assert_string_equal(http_req_path(ps->reqs[0]), "/one");
    assert_string_equal(http_req_query(ps->reqs[0]), "x=1");
    assert_body(ps->reqs[0], "");
    assert_string_equal(http_req_path(ps->reqs[1]), "/two");
    assert_body(ps->reqs[1], "hello");
    assert_string_equal(http_req_path(ps->reqs[2]), "/three");
    assert_body(ps->reqs[2], "abc");
    assert_string_equal(http_req_method(ps->reqs[3]), "DELETE");
    assert_string_equal(http_req_path(ps->reqs[3]), "/four x");
    assert_true(ps->reqs[2]->keep_alive);
    assert_false(ps->reqs[3]->keep_alive);
    parsed_free(ps);
}

static void test_pipelined_one_buffer(void **state)
{
    struct parsed ps;
    parse(pipelined, &ps);
    check_pipelined(&ps);
}

static void test_split_everywhere(void **state)
{
    size_t len = strlen(pipelined);
    struct parsed ps;
    /* one byte at a time, then a few odd step sizes */
    for (size_t step = 1; step < 40; step += (step < 3 ? 1 : 6)) {
        parse_steps(pipelined, len, step, 16384, 1 << 20, &ps);
        check_pipelined(&ps);
    }
    /* two pieces, split at every byte */
    for (size_t k = 1; k < len; k++) {
        struct http__parser p;
        http__parser_init(&p, 16384, 1 << 20);
        int n = 0;
        size_t pos = 0;
        const size_t ends[2] = {k, len};
        for (int piece = 0; piece < 2; piece++) {
            while (pos < ends[piece]) {
                size_t used = 0;
                int rc = http__parser_feed(&p, pipelined + pos, ends[piece] - pos, &used);
                assert_true(rc >= 0);
                pos += used;
                if (rc == HTTP__REQ_DONE) {
                    struct http_req *r = http__parser_take(&p);
                    if (n == 1)
                        assert_body(r, "hello");
                    if (n == 2)
                        assert_body(r, "abc");
                    http__req_free(r);
                    n++;
                }
            }
        }
        assert_int_equal(n, 4);
        http__parser_release(&p);
    }
}

static void test_header_too_large(void **state)
{
    char req[600];
    char big[300];
    memset(big, 'b', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    int n = snprintf(req, sizeof(req), "GET / HTTP/1.1\r\nX-Big: %s\r\n\r\n", big);
    struct parsed ps;
    for (size_t step = 1; step <= (size_t)n; step *= 7) {
        parse_steps(req, (size_t)n, step, 256, 1024, &ps);
        assert_int_equal(ps.err, 431);
        assert_int_equal(ps.n, 0);
    }
    /* A head of exactly the cap passes; one byte more does not. */
    parse_steps(req, (size_t)n, (size_t)n, (size_t)n, 1024, &ps);
    assert_int_equal(ps.err, 0);
    assert_int_equal(ps.n, 1);
    parsed_free(&ps);
    parse_steps(req, (size_t)n, (size_t)n, (size_t)n - 1, 1024, &ps);
    assert_int_equal(ps.err, 431);
    /* Many small headers add up too. */
    struct buf b;
    buf_init(&b, 1 << 20);
    buf_appends(&b, "GET / HTTP/1.1\r\n");
    for (int i = 0; i < 400; i++)
        buf_appendf(&b, "X-H%d: vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\r\n", i);
    buf_appends(&b, "\r\n");
    parse_steps(b.data, b.len, 1000, 16384, 1024, &ps);
    assert_int_equal(ps.err, 431);
    /* A flood of blank lines before a request counts against the head too. */
    buf_reset(&b);
    for (int i = 0; i < 200; i++)
        buf_appends(&b, "\r\n");
    parse_steps(b.data, b.len, b.len, 256, 1024, &ps);
    assert_int_equal(ps.err, 431);
    buf_release(&b);
}

static void test_body_too_large(void **state)
{
    struct parsed ps;
    /* Content-Length is checked before any of the body arrives. */
    const char *cl = "POST /x HTTP/1.1\r\nContent-Length: 1025\r\n\r\n";
    parse_steps(cl, strlen(cl), strlen(cl), 1024, 1024, &ps);
    assert_int_equal(ps.err, 413);
    const char *ok = "POST /x HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd";
    parse_steps(ok, strlen(ok), 3, 1024, 4, &ps);
    assert_int_equal(ps.err, 0);
    assert_int_equal(ps.n, 1);
    parsed_free(&ps);
    /* Chunked: the running total. */
    const char *ch = "POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n";
    parse_steps(ch, strlen(ch), 5, 1024, 5, &ps);
    assert_int_equal(ps.err, 413);
    parse_steps(ch, strlen(ch), 5, 1024, 6, &ps);
    assert_int_equal(ps.err, 0);
    assert_body(ps.reqs[0], "abcdef");
    parsed_free(&ps);
}

static void test_malformed(void **state)
{
    static const char *const bad[] = {
        "GARBAGE\r\n\r\n",
        "GET /x HTTP/9.Z\r\n\r\n",
        "\x01\x02 binary\r\n\r\n",
        "GET /a b HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nBad\x01Header: x\r\n\r\n",
        "GET / HTTP/1.1\r\nX: a\x7f\r\n\r\n",
        "GET /%00/etc HTTP/1.1\r\n\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZZZ\r\nhello\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct parsed ps;
        parse(bad[i], &ps);
        if (ps.err != 400)
            fail_msg("case %zu: got err %d and %d requests", i, ps.err, ps.n);
        parsed_free(&ps);
    }
    /* After an error the parser stays dead. */
    struct http__parser p;
    http__parser_init(&p, 1024, 1024);
    size_t used = 0;
    assert_int_equal(http__parser_feed(&p, "BAD\r\n", 5, &used), -400);
    assert_int_equal(http__parser_feed(&p, "GET / HTTP/1.1\r\n\r\n", 18, &used), -400);
    assert_int_equal(used, 0);
    http__parser_release(&p);
}

/* RFC 9112 strictness (issue 11: request smuggling through a lenient parser). Each request
 * is fed whole, then split at every byte: the verdict may not depend on the split. */
static void test_strict(void **state)
{
    static const struct {
        const char *req;
        int err; /* expected client error, 0 = accepted */
    } cases[] = {
        {"GET /api/v1/health\r\n\r\n", 400},            /* HTTP/0.9 */
        {"GET / HTTX/1.1\r\n\r\n", 400},                /* unknown protocol name */
        {"GET / HTTP/2.0\r\n\r\n", 505},                /* not HTTP/1.x */
        {"GET / HTTP/1.2\r\n\r\n", 400},
        {"GET / HTTP/1.1\nHost: a\n\n", 400},            /* bare LF everywhere */
        {"GET / HTTP/1.1\r\nHost: a\n\r\n", 400},        /* bare LF after a field */
        {"GET / HTTP/1.1\r\nHost: a\r\n\n", 400},        /* bare LF ending the head */
        {"GET / HTTP/1.1\r\n\n", 400},
        {"\nGET / HTTP/1.1\r\n\r\n", 400},
        {"GET / HTTP/1.1\r\nX: a\rb\r\n\r\n", 400},     /* bare CR in a value */
        {"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400}, /* obs-fold */
        {"GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400},    /* blank before the first field */
        {"GET / HTTP/1.1\r\n: a\r\n\r\n", 400},         /* empty field name */
        {"GET / HTTP/1.1\r\nHo st: a\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length : 2\r\n\r\nab", 400}, /* space before colon */
        {"POST / HTTP/1.1\r\nContent-Length\t: 2\r\n\r\nab", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nab", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nab", 400},
        {"POST / HTTP/1.1\r\nContent-Length: +2\r\n\r\nab", 400},
        {"POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n"
         "2\r\nab\r\n0\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n"
         "2\r\nab\r\n0\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\nab\r\n0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2 \r\nab\r\n0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\nT: x\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n-2\r\nab\r\n0\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
         "fffffffffffffffff\r\nab\r\n0\r\n\r\n",
         400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
         "0\r\n\r\n",
         400},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
        {"GET http://@/x HTTP/1.1\r\n\r\n", 400},
        {"GET ftp://a/x HTTP/1.1\r\n\r\n", 400},
        {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400},
        /* still accepted */
        {"POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n2;a=\"x\"\r\nab\r\n0\r\n\r\n", 0},
        {"POST / HTTP/1.1\r\nContent-Length: 02\r\n\r\nab", 0},
        {"GET / HTTP/1.1\r\nX:\ta\t\r\nY:\r\n\r\n", 0},
        {"\r\nGET / HTTP/1.0\r\n\r\n", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].req);
        for (size_t step = len; step >= 1; step = step > 8 ? step / 2 : step - 1) {
            struct parsed ps;
            parse_steps(cases[i].req, len, step, 1024, 1024, &ps);
            if (ps.err != cases[i].err || ps.n != (cases[i].err ? 0 : 1))
                fail_msg("case %zu step %zu: got err %d and %d requests", i, step, ps.err, ps.n);
            parsed_free(&ps);
        }
    }
}

static void test_query_params(void **state)
{
    struct parsed ps;
    parse("GET /s?a=1&b=hello%20world&c=a+b&d&e=%zz&f=%E2%82%AC&k%20x=y&a=2&g=x%2By%26z HTTP/1.1"
          "\r\n\r\n",
          &ps);
    assert_int_equal(ps.n, 1);
    struct http_req *r = ps.reqs[0];
    static const char *const want[][2] = {
        {"a", "1"}, {"b", "hello world"}, {"c", "a b"},   {"d", ""},         {"e", "%zz"},
        {"f", "€"}, {"k x", "y"},         {"g", "x+y&z"}, {"missing", NULL}, {"", NULL},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        char *v = http_req_query_param(r, want[i][0]);
        if (want[i][1])
            assert_string_equal(v, want[i][1]);
        else
            assert_null(v);
        xfree(v);
    }
    assert_string_equal(http_req_query(r),
                        "a=1&b=hello%20world&c=a+b&d&e=%zz&f=%E2%82%AC&k%20x=y&a=2&g=x%2By%26z");
    parsed_free(&ps);
}

static void test_headers_case_and_values(void **state)
{
    struct parsed ps;
    parse("GET / HTTP/1.1\r\nContent-TYPE: text/plain  \r\nX-Empty:\r\nX-Two: a\r\n"
          "x-two: b\r\nAuthorization:   Bearer k\r\n\r\n",
          &ps);
    assert_int_equal(ps.n, 1);
    struct http_req *r = ps.reqs[0];
    assert_string_equal(http_req_header(r, "content-type"), "text/plain");
    assert_string_equal(http_req_header(r, "CONTENT-TYPE"), "text/plain");
    assert_string_equal(http_req_header(r, "x-empty"), "");
    assert_string_equal(http_req_header(r, "X-TWO"), "a"); /* the first one wins */
    assert_string_equal(http_req_header(r, "authorization"), "Bearer k");
    assert_null(http_req_header(r, "content"));
    parsed_free(&ps);
}

static void test_path_decoding(void **state)
{
    static const char *const cases[][3] = {
        {"GET /a%20b/%2Fc%41 HTTP/1.1\r\n\r\n", "/a b//cA", ""},
        {"GET /plus+stays HTTP/1.1\r\n\r\n", "/plus+stays", ""},
        {"GET /bad%zzesc%4 HTTP/1.1\r\n\r\n", "/bad%zzesc%4", ""},
        {"GET /p?q=1#frag HTTP/1.1\r\n\r\n", "/p", "q=1"},
        {"GET http://example.com:8080/abs/p?x=%20 HTTP/1.1\r\n\r\n", "/abs/p", "x=%20"},
        {"GET http://example.com HTTP/1.1\r\n\r\n", "/", ""},
        {"OPTIONS * HTTP/1.1\r\n\r\n", "*", ""},
        {"GET /sess/%E4%BD%A0 HTTP/1.1\r\n\r\n", "/sess/你", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct parsed ps;
        parse(cases[i][0], &ps);
        assert_int_equal(ps.n, 1);
        assert_string_equal(http_req_path(ps.reqs[0]), cases[i][1]);
        assert_string_equal(http_req_query(ps.reqs[0]), cases[i][2]);
        parsed_free(&ps);
    }
}

static void test_keep_alive_and_expect(void **state)
{
    static const struct {
        const char *req;
        bool keep_alive, head, cont;
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", true, false, false},
        {"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", false, false, false},
        {"GET / HTTP/1.0\r\n\r\n", false, false, false},
        {"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", true, false, false},
        {"HEAD / HTTP/1.1\r\n\r\n", true, true, false},
        {"GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", false, false,
         false},
        {"POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n", true, false, true},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct http__parser p;
        http__parser_init(&p, 1024, 1024);
        size_t used = 0, len = strlen(cases[i].req);
        int rc = http__parser_feed(&p, cases[i].req, len, &used);
        assert_int_equal(used, len);
        assert_int_equal(p.want_continue, cases[i].cont);
        if (cases[i].cont) {
            assert_int_equal(rc, HTTP__NEED_MORE);
            assert_int_equal(p.phase, HTTP__BODY);
            rc = http__parser_feed(&p, "ok", 2, &used);
        }
        assert_int_equal(rc, HTTP__REQ_DONE);
        struct http_req *r = http__parser_take(&p);
        assert_int_equal(r->keep_alive, cases[i].keep_alive);
        assert_int_equal(r->is_head, cases[i].head);
        http__req_free(r);
        http__parser_release(&p);
    }
}

static void test_phases(void **state)
{
    struct http__parser p;
    http__parser_init(&p, 1024, 1024);
    size_t used = 0;
    assert_int_equal(p.phase, HTTP__IDLE);
    http__parser_feed(&p, "\r\n", 2, &used);
    assert_int_equal(p.phase, HTTP__IDLE);
    http__parser_feed(&p, "POST / HTTP/1.1\r\nContent-Len", 28, &used);
    assert_int_equal(p.phase, HTTP__HEAD);
    http__parser_feed(&p, "gth: 3\r\n\r\na", 11, &used);
    assert_int_equal(p.phase, HTTP__BODY);
    assert_int_equal(http__parser_feed(&p, "bcGET", 5, &used), HTTP__REQ_DONE);
    assert_int_equal(used, 2);
    assert_int_equal(p.phase, HTTP__IDLE);
    struct http_req *r = http__parser_take(&p);
    assert_body(r, "abc");
    http__req_free(r);
    http__parser_release(&p);
}

/* ---- end to end on loopback ---- */

struct e2e {
    uv_loop_t loop;
    uv_async_t done_async;
    uv_timer_t guard;
    struct http_server *srv;
    int port;
    int handled;
    int closed_cbs;
    char got[8192]; /* what the client thread read for the pipelined batch */
    size_t got_len;
    bool client_ok;
    bool guard_fired;
};

static void on_hold_closed(struct http_req *req, void *data)
{
    struct e2e *t = data;
    t->closed_cbs++;
    /* Closing the server from a close callback must be safe. */
    http_server_close(t->srv);
    if (!uv_is_closing((uv_handle_t *)&t->guard))
        uv_close((uv_handle_t *)&t->guard, NULL);
}

static void e2e_handler(struct http_req *req, void *data)
{
    struct e2e *t = data;
    t->handled++;
    const char *path = http_req_path(req);
    if (strcmp(http_req_method(req), "OPTIONS") == 0) {
        /* the handler decides; here every origin that asks is allowed */
        http_req_set_cors_origin(req, http_req_header(req, "origin"));
        http_respond_preflight(req);
    } else if (strcmp(path, "/json") == 0) {
        json_t *j = json_pack("{s:s}", "status", "ok");
        http_respond_json(req, 200, j);
        json_decref(j);
    } else if (strcmp(path, "/stream") == 0) {
        assert_int_equal(
            http_stream_start(req, 200, "text/event-stream", "Cache-Control: no-cache\r\n"), 0);
        assert_int_equal(http_stream_write(req, "data: 1\n\n", 9), 0);
        assert_int_equal(http_stream_write(req, "", 0), 0);
        assert_int_equal(http_stream_write(req, "data: 22\n\n", 10), 0);
        http_stream_end(req);
    } else if (strcmp(path, "/hold") == 0) {
        http_req_on_close(req, on_hold_closed, t);
        assert_int_equal(http_stream_start(req, 200, "text/event-stream", NULL), 0);
        assert_int_equal(http_stream_write(req, "data: x\n\n", 9), 0);
    } else {
        http_respond_error(req, 404, "Not found");
    }
}

static void *client_thread(void *arg)
{
    struct e2e *t = arg;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)t->port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        const char *batch = "GET /json HTTP/1.1\r\nHost: x\r\n\r\n"
                            "OPTIONS /anything HTTP/1.1\r\nHost: x\r\nOrigin: http://o.test\r\n\r\n"
                            "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"
                            "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
        ssize_t w = write(fd, batch, strlen(batch));
        while (w > 0 && !strstr(t->got, "{\"error\":\"Not found\"}") &&
               t->got_len < sizeof(t->got) - 1) {
            ssize_t n = read(fd, t->got + t->got_len, sizeof(t->got) - 1 - t->got_len);
            if (n <= 0)
                break;
            t->got_len += (size_t)n;
            t->got[t->got_len] = '\0';
        }
        const char *hold = "GET /hold HTTP/1.1\r\nHost: x\r\n\r\n";
        char tmp[512];
        if (write(fd, hold, strlen(hold)) > 0 && read(fd, tmp, sizeof(tmp)) > 0)
            t->client_ok = true;
    }
    close(fd); /* the server sees EOF while /hold streams: its close callback fires */
    uv_async_send(&t->done_async);
    return NULL;
}

static void on_client_done(uv_async_t *a)
{
    uv_close((uv_handle_t *)a, NULL);
}

static void on_guard(uv_timer_t *timer)
{
    struct e2e *t = timer->data;
    t->guard_fired = true; /* everything should be over long before */
    http_server_close(t->srv);
    uv_close((uv_handle_t *)timer, NULL);
}

static void test_e2e(void **state)
{
    struct e2e *t = xcalloc(1, sizeof(*t));
    assert_int_equal(uv_loop_init(&t->loop), 0);
    struct http_server_opts o = {.host = "127.0.0.1"};
    assert_int_equal(http_server_start(&t->loop, &o, e2e_handler, t, &t->srv), 0);
    t->port = http_server_port(t->srv);
    assert_true(t->port > 0);
    uv_async_init(&t->loop, &t->done_async, on_client_done);
    uv_timer_init(&t->loop, &t->guard);
    t->guard.data = t;
    uv_timer_start(&t->guard, on_guard, 5000, 0);
    pthread_t th;
    pthread_create(&th, NULL, client_thread, t);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    pthread_join(th, NULL);
    assert_int_equal(uv_loop_close(&t->loop), 0);

    assert_false(t->guard_fired);
    assert_true(t->client_ok);
    assert_int_equal(t->handled, 5); /* OPTIONS too: the handler decides on CORS */
    assert_int_equal(t->closed_cbs, 1);
    const char *json = strstr(t->got, "{\"status\":\"ok\"}");
    const char *opt = strstr(t->got, "HTTP/1.1 204 No Content\r\n");
    const char *ev1 = strstr(t->got, "9\r\ndata: 1\n\n\r\n");
    const char *ev2 = strstr(t->got, "a\r\ndata: 22\n\n\r\n0\r\n\r\n");
    const char *nf = strstr(t->got, "HTTP/1.1 404 Not Found\r\n");
    assert_non_null(json);
    assert_non_null(opt);
    assert_non_null(ev1);
    assert_non_null(ev2);
    assert_non_null(nf);
    assert_true(json < opt && opt < ev1 && ev1 < ev2 && ev2 < nf); /* answered in order */
    /* X-Request-Id (a generated id) comes last, before Content-Length */
    assert_non_null(strstr(t->got, "HTTP/1.1 200 OK\r\nContent-Type: application/json; "
                                   "charset=utf-8\r\nConnection: keep-alive\r\n"
                                   "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n"
                                   "Referrer-Policy: no-referrer\r\nVary: Origin\r\n"
                                   "X-Request-Id: "));
    assert_non_null(strstr(t->got, "\r\nContent-Length: 15\r\n\r\n{\"status\":\"ok\"}"));
    assert_non_null(strstr(opt, "Access-Control-Allow-Origin: http://o.test\r\n"
                                "Access-Control-Allow-Methods: GET,POST,PUT,DELETE,OPTIONS\r\n"
                                "Access-Control-Allow-Headers: Content-Type,Authorization,"
                                "X-CSRF-Token,Last-Event-ID\r\nAccess-Control-Max-Age: 600\r\n"
                                "X-Request-Id: "));
    assert_non_null(strstr(opt, "\r\nContent-Length: 0\r\n\r\n"));
    assert_non_null(
        strstr(t->got, "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\nX-Request-Id: "));
    xfree(t);
}

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    signal(SIGPIPE, SIG_IGN); /* as main.c: a write to a vanished peer is an error, not a kill */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_post_content_length),
        cmocka_unit_test(test_body_with_nul),
        cmocka_unit_test(test_chunked_body),
        cmocka_unit_test(test_pipelined_one_buffer),
        cmocka_unit_test(test_split_everywhere),
        cmocka_unit_test(test_header_too_large),
        cmocka_unit_test(test_body_too_large),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_strict),
        cmocka_unit_test(test_query_params),
        cmocka_unit_test(test_headers_case_and_values),
        cmocka_unit_test(test_path_decoding),
        cmocka_unit_test(test_keep_alive_and_expect),
        cmocka_unit_test(test_phases),
        cmocka_unit_test(test_e2e),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
