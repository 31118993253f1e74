/* SPDX-License-Identifier: MIT */
/* test_jsonrpc.c -- the newline-delimited JSON-RPC framing and codec of the MCP stdio transport:
 * every input is fed whole, split in two at every byte, and byte by byte, and must give the
 * same messages and skipped lines each way; then the encoders and the error text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/util.h"
#include "core/xalloc.h"
#include "tools/jsonrpc.h"

struct trace {
    struct buf out;
    int stop_at; /* >0: on_message returns -77 on that message (1-based) */
    int seen;
};

static const char *kind_name(enum jsonrpc_kind k)
{
    return k == JSONRPC_REQUEST ? "req" : k == JSONRPC_NOTIFICATION ? "note" : "resp";
}

static int on_message(void *data, const struct jsonrpc_msg *m)
{
    struct trace *t = data;
    char *id = m->id ? json_dump_compact(m->id, NULL) : xstrdup("-");
    buf_appendf(&t->out, "M %s %s %s", kind_name(m->kind), id, m->method ? m->method : "-");
    xfree(id);
    if (m->error)
        buf_appendf(&t->out, " error=%lld",
                    (long long)json_integer_value(json_object_get(m->error, "code")));
    if (m->result) {
        char *r = json_dump_compact(m->result, NULL);
        buf_appendf(&t->out, " result=%s", r);
        xfree(r);
    }
    buf_appendc(&t->out, '\n');
    return ++t->seen == t->stop_at ? -77 : 0;
}

static void on_skip(void *data, enum jsonrpc_skip why, const char *line, size_t len, size_t total)
{
    struct trace *t = data;
    const char *w = why == JSONRPC_SKIP_NOT_JSON      ? "notjson"
                    : why == JSONRPC_SKIP_NOT_JSONRPC ? "notrpc"
                                                      : "toolong";
    if (why == JSONRPC_SKIP_TOO_LONG)
        buf_appendf(&t->out, "S %s %zu %.*s\n", w, total, (int)(len > 8 ? 8 : len), line);
    else
        buf_appendf(&t->out, "S %s %.*s\n", w, (int)len, line);
}

static const struct jsonrpc_cbs cbs = {on_message, on_skip};

struct rpc_case {
    const char *name;
    const char *in;
    size_t in_len;
    size_t max_line;
    int stop_at;
    int rc;
    const char *want;
};

#define IN(s) s, sizeof(s) - 1

static const struct rpc_case cases[] = {
    {"request", IN("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}\n"), 0, 0, 0,
     "M req 1 ping\n"},
    {"response with result", IN("{\"result\":{\"a\":[1,2]},\"jsonrpc\":\"2.0\",\"id\":4}\n"), 0, 0,
     0, "M resp 4 - result={\"a\":[1,2]}\n"},
    {"error response",
     IN("{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"error\":{\"code\":-32601,"
        "\"message\":\"Method not found\"}}\n"),
     0, 0, 0, "M resp \"x\" - error=-32601\n"},
    {"null id response",
     IN("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,"
        "\"message\":\"Parse error\"}}\n"),
     0, 0, 0, "M resp null - error=-32700\n"},
    {"notification and string id request",
     IN("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n"
        "{\"method\":\"roots/list\",\"jsonrpc\":\"2.0\",\"id\":0}\n"),
     0, 0, 0, "M note - notifications/initialized\nM req 0 roots/list\n"},
    {"CRLF and blank lines", IN("\n\r\n   \n{\"id\":2,\"result\":true}\r\n\t\n"), 0, 0, 0,
     "M resp 2 - result=true\n"},
    {"debug lines of real servers skipped",
     IN("Secure MCP Filesystem Server running on stdio\n"
        "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n"
        "execute command result {\n  stdout: 'x',\n}\n"
        "{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}\n"),
     0, 0, 0,
     "S notjson Secure MCP Filesystem Server running on stdio\nM resp 1 - result={}\n"
     "S notjson execute command result {\nS notjson   stdout: 'x',\nS notjson }\n"
     "M resp 2 - result={}\n"},
    {"JSON that is not JSON-RPC",
     IN("42\n[1,2]\n{\"foo\":1}\n{\"id\":1}\n{\"id\":1,\"result\":1,\"error\":{}}\n"
        "{\"method\":5}\n{\"jsonrpc\":\"1.0\",\"method\":\"x\"}\n{\"id\":{},\"result\":1}\n"
        "{\"method\":\"x\",\"params\":3}\n{\"id\":1,\"error\":\"bad\"}\n\"str\"\n"),
     0, 0, 0,
     "S notrpc 42\nS notrpc [1,2]\nS notrpc {\"foo\":1}\nS notrpc {\"id\":1}\n"
     "S notrpc {\"id\":1,\"result\":1,\"error\":{}}\nS notrpc {\"method\":5}\n"
     "S notrpc {\"jsonrpc\":\"1.0\",\"method\":\"x\"}\nS notrpc {\"id\":{},\"result\":1}\n"
     "S notrpc {\"method\":\"x\",\"params\":3}\nS notrpc {\"id\":1,\"error\":\"bad\"}\n"
     "S notrpc \"str\"\n"},
    {"trailing garbage after the document", IN("{\"id\":1,\"result\":1} x\n"), 0, 0, 0,
     "S notjson {\"id\":1,\"result\":1} x\n"},
    {"partial last line waits", IN("{\"id\":1,\"result\":1}\n{\"id\":2,\"res"), 0, 0, 0,
     "M resp 1 - result=1\n"},
    {"UTF-8 kept whole", IN("{\"id\":1,\"result\":\"h\xc3\xa9llo \xe2\x82\xac\"}\n"), 0, 0, 0,
     "M resp 1 - result=\"h\xc3\xa9llo \xe2\x82\xac\"\n"},
    {"line at the cap is kept", IN("{\"id\":1,\"result\":\"0123456789\"}\n"), 30, 0, 0,
     "M resp 1 - result=\"0123456789\"\n"},
    {"over-long line skipped whole, next one read",
     IN("{\"id\":1,\"result\":\"01234567890\"}\n{\"id\":2,\"result\":3}\n"), 30, 0, 0,
     "S toolong 31 {\"id\":1,\nM resp 2 - result=3\n"},
    {"over-long line with CRLF, then a short one",
     IN("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n{\"id\":2,\"result\":3}\n"), 20, 0, 0,
     "S toolong 41 xxxxxxxx\nM resp 2 - result=3\n"},
    {"over-long line not reported before its end", IN("yyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"), 20, 0, 0,
     ""},
    {"callback stop is returned",
     IN("{\"id\":1,\"result\":1}\n{\"id\":2,\"result\":2}\n{\"id\":3,\"result\":3}\n"), 0, 2, -77,
     "M resp 1 - result=1\nM resp 2 - result=2\n"},
};

static void run_feeds(const struct rpc_case *c, const size_t *cuts, size_t ncuts, struct trace *t,
                      int *rc)
{
    struct jsonrpc_reader r;
    jsonrpc_reader_init(&r, c->max_line);
    buf_init(&t->out, 1 << 20);
    t->stop_at = c->stop_at;
    t->seen = 0;
    size_t pos = 0;
    *rc = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : c->in_len;
        int x = jsonrpc_reader_feed(&r, c->in + pos, end - pos, &cbs, t);
        if (x < 0)
            *rc = x;
        jsonrpc_reader_feed(&r, c->in + end, 0, &cbs, t); /* empty feeds change nothing */
        pos = end;
    }
    jsonrpc_reader_release(&r);
}

static void check(const struct rpc_case *c, const size_t *cuts, size_t ncuts, const char *how)
{
    struct trace t;
    int rc;
    run_feeds(c, cuts, ncuts, &t, &rc);
    bool ok = strcmp(buf_str(&t.out), c->want) == 0 && rc == c->rc;
    char *got = buf_detach(&t.out, NULL);
    if (!ok)
        print_error("%s (%s): got rc %d\n%s\nwant rc %d\n%s", c->name, how, rc, got, c->rc,
                    c->want);
    xfree(got);
    assert_true(ok);
}

static void test_framing_every_split(void **state)
{
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        const struct rpc_case *c = &cases[k];
        check(c, NULL, 0, "whole");
        for (size_t cut = 0; cut <= c->in_len; cut++)
            check(c, &cut, 1, "split in two");
        size_t *cuts = xcalloc(c->in_len + 1, sizeof(size_t));
        for (size_t i = 0; i < c->in_len; i++)
            cuts[i] = i + 1;
        check(c, cuts, c->in_len, "byte by byte");
        xfree(cuts);
    }
}

static void test_error_is_sticky(void **state)
{
    struct trace t = {.stop_at = 1};
    buf_init(&t.out, 4096);
    struct jsonrpc_reader r;
    jsonrpc_reader_init(&r, 0);
    assert_int_equal(jsonrpc_reader_feed(&r, IN("{\"id\":1,\"result\":1}\n"), &cbs, &t), -77);
    assert_int_equal(jsonrpc_reader_feed(&r, IN("{\"id\":2,\"result\":1}\n"), &cbs, &t), -77);
    assert_string_equal(buf_str(&t.out), "M resp 1 - result=1\n");
    jsonrpc_reader_release(&r);
    buf_release(&t.out);
}

/* A screenshot answer is one line of hundreds of KB: the default cap is 16 MiB. */
static void test_long_line_default_cap(void **state)
{
    size_t n = 3 * 1024 * 1024;
    struct buf in;
    buf_init(&in, n + 100);
    buf_append_lit(&in, "{\"id\":9,\"result\":\"");
    for (size_t i = 0; i < n; i++)
        buf_appendc(&in, (char)('a' + i % 26));
    buf_append_lit(&in, "\"}\n");
    struct trace t = {0};
    buf_init(&t.out, 8 * 1024 * 1024);
    struct jsonrpc_reader r;
    jsonrpc_reader_init(&r, 0);
    assert_int_equal(r.max_line, 16u * 1024 * 1024);
    for (size_t off = 0; off < in.len; off += 65536) {
        size_t take = in.len - off < 65536 ? in.len - off : 65536;
        assert_int_equal(jsonrpc_reader_feed(&r, in.data + off, take, &cbs, &t), 0);
    }
    assert_int_equal(t.seen, 1);
    assert_true(strncmp(buf_str(&t.out), "M resp 9 - result=\"abcdef", 25) == 0);
    assert_int_equal(t.out.len, strlen("M resp 9 - result=\"\"\n") + n);
    jsonrpc_reader_release(&r);
    buf_release(&t.out);
    buf_release(&in);
}

static void test_decode_payload(void **state)
{
    struct jsonrpc_msg m;
    enum jsonrpc_skip why;
    /* An SSE payload joined from two data lines holds a raw newline between tokens. */
    const char *p = "{\"jsonrpc\":\"2.0\",\"id\":7,\n\"result\":{\"content\":[]}}";
    assert_int_equal(jsonrpc_decode(p, strlen(p), &m, &why), 0);
    assert_int_equal(m.kind, JSONRPC_RESPONSE);
    assert_int_equal(json_integer_value(m.id), 7);
    assert_true(json_is_array(json_object_get(m.result, "content")));
    jsonrpc_msg_release(&m);
    assert_int_equal(jsonrpc_decode("nope", 4, &m, &why), -1);
    assert_int_equal(why, JSONRPC_SKIP_NOT_JSON);
    assert_null(m.root);
    assert_int_equal(jsonrpc_decode("{}", 2, &m, &why), -1);
    assert_int_equal(why, JSONRPC_SKIP_NOT_JSONRPC);
    const char *req = "{\"jsonrpc\":\"2.0\",\"id\":\"s1\",\"method\":\"sampling/createMessage\","
                      "\"params\":{\"x\":1}}";
    assert_int_equal(jsonrpc_decode(req, strlen(req), &m, &why), 0);
    assert_int_equal(m.kind, JSONRPC_REQUEST);
    assert_string_equal(json_string_value(m.id), "s1");
    assert_string_equal(m.method, "sampling/createMessage");
    assert_int_equal(json_integer_value(json_object_get(m.params, "x")), 1);
    jsonrpc_msg_release(&m);
}

static void expect_line(char *got, size_t len, const char *want)
{
    assert_string_equal(got, want);
    assert_int_equal(len, strlen(want));
    assert_null(memchr(got, '\n', len - 1));
    xfree(got);
}

/* The encoder runs before len is read (argument order is unspecified in C). */
#define EXPECT(call, want)                                                                         \
    do {                                                                                           \
        char *got_ = (call);                                                                       \
        expect_line(got_, len, want);                                                              \
    } while (0)

static void test_encoders(void **state)
{
    size_t len;
    json_t *p = json_pack("{s:s, s:{}, s:{s:s}}", "protocolVersion", "2025-06-18", "capabilities",
                          "clientInfo", "name", "agent-tars-server");
    EXPECT(jsonrpc_encode_request(1, "initialize", p, &len),
           "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"initialize\",\"params\":"
           "{\"protocolVersion\":\"2025-06-18\",\"capabilities\":{},\"clientInfo\":"
           "{\"name\":\"agent-tars-server\"}}}\n");
    json_decref(p);
    EXPECT(jsonrpc_encode_request(12345678901LL, "ping", NULL, &len),
           "{\"jsonrpc\":\"2.0\",\"id\":12345678901,\"method\":\"ping\"}\n");
    EXPECT(jsonrpc_encode_notification("notifications/initialized", NULL, &len),
           "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}\n");
    /* Newlines inside strings are escaped: one message is always one line. */
    json_t *args = json_pack("{s:s, s:I}", "script", "a\nb\r\n", "requestId", (json_int_t)3);
    EXPECT(jsonrpc_encode_notification("notifications/cancelled", args, &len),
           "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":"
           "{\"script\":\"a\\nb\\r\\n\",\"requestId\":3}}\n");
    json_decref(args);
    json_t *sid = json_string("srv-1");
    json_t *empty = json_object();
    EXPECT(jsonrpc_encode_result(sid, empty, &len),
           "{\"jsonrpc\":\"2.0\",\"id\":\"srv-1\",\"result\":{}}\n");
    EXPECT(jsonrpc_encode_error(sid, JSONRPC_METHOD_NOT_FOUND, "Method not found", &len),
           "{\"jsonrpc\":\"2.0\",\"id\":\"srv-1\",\"error\":{\"code\":-32601,\"message\":"
           "\"Method not found\"}}\n");
    EXPECT(jsonrpc_encode_error(NULL, JSONRPC_PARSE_ERROR, "Parse error", &len),
           "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":"
           "\"Parse error\"}}\n");
    json_decref(sid);
    json_decref(empty);
}

static void test_round_trip(void **state)
{
    json_t *params =
        json_pack("{s:s, s:{s:s}}", "name", "read_file", "arguments", "path", "/ws/h\xc3\xa9.txt");
    size_t len;
    char *line = jsonrpc_encode_request(42, "tools/call", params, &len);
    struct trace t = {0};
    buf_init(&t.out, 4096);
    struct jsonrpc_reader r;
    jsonrpc_reader_init(&r, 0);
    assert_int_equal(jsonrpc_reader_feed(&r, line, len, &cbs, &t), 0);
    assert_string_equal(buf_str(&t.out), "M req 42 tools/call\n");
    struct jsonrpc_msg m;
    enum jsonrpc_skip why;
    assert_int_equal(jsonrpc_decode(line, len - 1, &m, &why), 0);
    assert_true(json_equal((json_t *)m.params, params));
    jsonrpc_msg_release(&m);
    jsonrpc_reader_release(&r);
    buf_release(&t.out);
    xfree(line);
    json_decref(params);
}

static void test_error_text(void **state)
{
    json_t *e =
        json_pack("{s:i, s:s}", "code", -32602, "message", "MCP error -32602: Tool nope not found");
    char *s = jsonrpc_error_text(e);
    assert_string_equal(s, "MCP error -32602: MCP error -32602: Tool nope not found");
    xfree(s);
    json_decref(e);
    e = json_pack("{s:s}", "message", "odd");
    s = jsonrpc_error_text(e);
    assert_string_equal(s, "MCP error: odd");
    xfree(s);
    json_decref(e);
    e = json_object();
    s = jsonrpc_error_text(e);
    assert_string_equal(s, "MCP error: unknown error");
    xfree(s);
    json_decref(e);
}

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_framing_every_split),
        cmocka_unit_test(test_error_is_sticky),
        cmocka_unit_test(test_long_line_default_cap),
        cmocka_unit_test(test_decode_payload),
        cmocka_unit_test(test_encoders),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_error_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
