/* SPDX-License-Identifier: MIT */
/* test_anthropic_stream.c -- the Anthropic Messages API decoder against hand-written recordings
 * in tests/fixtures/anthropic/ (run with cwd = repo root) and inline streams, each fed whole,
 * split at every byte position, byte by byte, and with CRLF line ends: the callback log and the
 * result must be the same every time. The second half checks the request side: the Messages
 * API body built from OpenAI-shaped history (exact JSON), and the request URL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/util.h"
#include "core/xalloc.h"
#include "llm/anthropic_stream.h"
#include "llm/llm.h"
#include "llm/pe_parser.h"

#define FIXTURE_DIR "tests/fixtures/anthropic/"

struct call_want {
    const char *id, *name, *args;
};

struct anth_case {
    const char *name;
    const char *file;  /* fixture under FIXTURE_DIR, or NULL for text */
    const char *text;  /* the inline stream */
    size_t max_line;   /* 0: the default */
    int status;        /* what anth_stream_finish returns */
    const char *error; /* s->error, NULL when status is 0 */
    const char *content, *reasoning, *signature, *finish;
    const char *usage; /* res.usage as compact JSON, or NULL */
    size_t ncalls;
    struct call_want calls[3];
    const char *deltas; /* "C:<text>", "R:<text>", "T<index>|id|name|args", one per line */
};

/* clang-format off */
#define EV(name, json) "event: " name "\ndata: " json "\n\n"
#define START EV("message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\"," \
    "\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"usage\":{\"input_tokens\":3," \
    "\"output_tokens\":1}}}")
#define BSTART(i, block) EV("content_block_start", "{\"type\":\"content_block_start\",\"index\":" \
    #i ",\"content_block\":" block "}")
#define DELTA(i, d) EV("content_block_delta", "{\"type\":\"content_block_delta\",\"index\":" #i \
    ",\"delta\":" d "}")
#define TEXT(i, t) DELTA(i, "{\"type\":\"text_delta\",\"text\":\"" t "\"}")
#define BSTOP(i) EV("content_block_stop", "{\"type\":\"content_block_stop\",\"index\":" #i "}")
#define MDELTA(reason) EV("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"" \
    reason "\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":5}}")
#define MSTOP EV("message_stop", "{\"type\":\"message_stop\"}")
#define TRUNC "stream ended before completion"
#define USAGE_3_5 "{\"input_tokens\":3,\"output_tokens\":5,\"prompt_tokens\":3," \
    "\"completion_tokens\":5,\"total_tokens\":8}"

#define TU "T0|toolu_01A9q8RjZk3Lw5Tn6Vb2Xc4D|read_file|"
#define PA "T0|toolu_01Aaaa|list_directory|"
#define BAD "T0|toolu_01Bad|get_weather|"
#define CUT "T0|toolu_01Cut|write_file|"
/* clang-format on */

static const struct anth_case cases[] = {
    /* --- recordings ------------------------------------------------------------------- */
    {.name = "text with a ping",
     .file = "text.sse",
     .content = "Hello, world! Ünïcødé ✓",
     .finish = "stop",
     .usage = "{\"input_tokens\":21,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
              "\"output_tokens\":9,\"service_tier\":\"standard\",\"prompt_tokens\":21,"
              "\"completion_tokens\":9,\"total_tokens\":30}",
     .deltas = "C:Hello\nC:, world\nC:! Ünïcødé ✓\n"},
    {.name = "text then tool_use with input_json_delta",
     .file = "tool_use.sse",
     .content = "I'll look at the file.",
     .finish = "tool_calls",
     .usage = "{\"input_tokens\":377,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":"
              "0,\"output_tokens\":58,\"service_tier\":\"standard\",\"prompt_tokens\":377,"
              "\"completion_tokens\":58,\"total_tokens\":435}",
     .ncalls = 1,
     .calls = {{"toolu_01A9q8RjZk3Lw5Tn6Vb2Xc4D", "read_file", "{\"path\": \"notes/a.txt\"}"}},
     .deltas = "C:I'll look at\nC: the file.\n" TU "\n" TU "{\"pa\n" TU "th\": \"no\n" TU
               "tes/a.tx\n" TU "t\"}\n"},
    {.name = "two tool_use blocks around a text block",
     .file = "parallel_tools.sse",
     .content = "and then",
     .finish = "tool_calls",
     .usage = "{\"input_tokens\":410,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":"
              "0,\"output_tokens\":40,\"service_tier\":\"standard\",\"prompt_tokens\":410,"
              "\"completion_tokens\":40,\"total_tokens\":450}",
     .ncalls = 2,
     .calls = {{"toolu_01Aaaa", "list_directory", "{\"path\": \".\"}"},
               {"toolu_01Bbbb", "get_time", ""}},
     .deltas = PA "\n" PA "{\"path\"\n" PA ": \".\"}\nC:and \nC:then\nT1|toolu_01Bbbb|get_time|\n"},
    {.name = "thinking with signature, then text",
     .file = "thinking.sse",
     .content = "Hi there!",
     .reasoning = "The user wants a short greeting.",
     .signature = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds",
     .finish = "stop",
     .usage = "{\"input_tokens\":50,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
              "\"output_tokens\":31,\"service_tier\":\"standard\",\"prompt_tokens\":50,"
              "\"completion_tokens\":31,\"total_tokens\":81}",
     .deltas = "R:The user wants\nR: a short greeting.\nC:Hi there!\n"},
    {.name = "pings everywhere",
     .file = "ping.sse",
     .content = "ab",
     .finish = "stop",
     .usage = "{\"input_tokens\":5,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
              "\"output_tokens\":2,\"service_tier\":\"standard\",\"prompt_tokens\":5,"
              "\"completion_tokens\":2,\"total_tokens\":7}",
     .deltas = "C:a\nC:b\n"},
    {.name = "error event mid-stream",
     .file = "error_event.sse",
     .status = LLM_ERR_STREAM,
     .error = "Overloaded",
     .content = "Partial",
     .usage = "{\"input_tokens\":12,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
              "\"output_tokens\":1,\"service_tier\":\"standard\",\"prompt_tokens\":12,"
              "\"completion_tokens\":1,\"total_tokens\":13}",
     .deltas = "C:Partial\n"},
    {.name = "unknown event, delta and block types are ignored",
     .file = "unknown_events.sse",
     .content = "Known text",
     .finish = "stop",
     .usage = "{\"input_tokens\":30,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
              "\"output_tokens\":12,\"service_tier\":\"standard\",\"prompt_tokens\":30,"
              "\"completion_tokens\":12,\"total_tokens\":42}",
     .deltas = "C:Known\nC: text\n"},
    {.name = "cut off inside a tool input",
     .file = "truncated.sse",
     .status = LLM_ERR_TRUNCATED,
     .error = TRUNC,
     .usage = "{\"input_tokens\":99,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
              "\"output_tokens\":1,\"service_tier\":\"standard\",\"prompt_tokens\":99,"
              "\"completion_tokens\":1,\"total_tokens\":100}",
     .ncalls = 1,
     .calls = {{"toolu_01Cut", "write_file", "{\"path\": \"x.txt\", \"content\": \"hel"}},
     .deltas = CUT "\n" CUT "{\"path\": \"x.txt\", \"con\n" CUT "tent\": \"hel\n"},
    {.name = "invalid tool JSON is passed on verbatim",
     .file = "invalid_tool_json.sse",
     .finish = "tool_calls",
     .usage = "{\"input_tokens\":377,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":"
              "0,\"output_tokens\":65,\"service_tier\":\"standard\",\"prompt_tokens\":377,"
              "\"completion_tokens\":65,\"total_tokens\":442}",
     .ncalls = 1,
     .calls = {{"toolu_01Bad", "get_weather", "{\"location\": \"Paris\", \"unit\": celsius}"}},
     .deltas = BAD "\n" BAD "{\"locati\n" BAD "on\": \"P\n" BAD "aris\", \"unit\": \n" BAD
                    "celsius}\n"},
    {.name = "EOF after stop_reason without the last blank line",
     .file = "eof_after_stop.sse",
     .content = "Done",
     .finish = "length",
     .usage = "{\"input_tokens\":11,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
              "\"output_tokens\":4,\"service_tier\":\"standard\",\"prompt_tokens\":11,"
              "\"completion_tokens\":4,\"total_tokens\":15}",
     .deltas = "C:Done\n"},

    /* --- inline edge cases -------------------------------------------------------------- */
    {.name = "empty stream", .text = "", .status = LLM_ERR_TRUNCATED, .error = TRUNC, .deltas = ""},
    {.name = "no event lines: data.type decides",
     .text = "data: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":"
             "\"text\",\"text\":\"x\"}}\n\ndata: {\"type\":\"message_delta\",\"delta\":"
             "{\"stop_reason\":\"end_turn\"}}\n\n",
     .content = "x",
     .finish = "stop",
     .deltas = "C:x\n"},
    {.name = "message_stop alone completes; later events ignored",
     .text = TEXT(0, "a") MSTOP TEXT(0, "b") EV("error", "{\"type\":\"error\"}"),
     .content = "a",
     .deltas = "C:a\n"},
    {.name = "usage: nulls do not overwrite, later values do",
     .text = START EV("message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
                                       "\"end_turn\"},\"usage\":{\"input_tokens\":null,"
                                       "\"output_tokens\":5}}"),
     .finish = "stop",
     .usage = USAGE_3_5,
     .deltas = ""},
    {.name = "stop reasons: refusal is content_filter",
     .text = MDELTA("refusal"),
     .finish = "content_filter",
     .usage = "{\"output_tokens\":5,\"prompt_tokens\":0,\"completion_tokens\":5,\"total_tokens\":5}",
     .deltas = ""},
    {.name = "stop reasons: unknown ones pass through",
     .text = MDELTA("pause_turn") MSTOP,
     .finish = "pause_turn",
     .usage = "{\"output_tokens\":5,\"prompt_tokens\":0,\"completion_tokens\":5,\"total_tokens\":5}",
     .deltas = ""},
    {.name = "stop_sequence is stop",
     .text = MDELTA("stop_sequence"),
     .finish = "stop",
     .usage = "{\"output_tokens\":5,\"prompt_tokens\":0,\"completion_tokens\":5,\"total_tokens\":5}",
     .deltas = ""},
    {.name = "whole tool input in content_block_start",
     .text = BSTART(0, "{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"f\",\"input\":{\"a\":1}}")
         BSTOP(0) MSTOP,
     .ncalls = 1,
     .calls = {{"t1", "f", "{\"a\":1}"}},
     .deltas = "T0|t1|f|\nT0|t1|f|{\"a\":1}\n"},
    {.name = "tool_use without id or name",
     .text = BSTART(0, "{\"type\":\"tool_use\"}") DELTA(0, "{\"type\":\"input_json_delta\","
                                                          "\"partial_json\":\"{}\"}") MSTOP,
     .ncalls = 1,
     .calls = {{"", "", "{}"}},
     .deltas = "T0|||\nT0|||{}\n"},
    {.name = "error event with plain text",
     .text = TEXT(0, "a") "event: error\ndata: upstream exploded\n\n",
     .status = LLM_ERR_STREAM,
     .error = "upstream exploded",
     .content = "a",
     .deltas = "C:a\n"},
    {.name = "error by data.type without an event line",
     .text = "data: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"Internal "
             "server error\"}}\n\n",
     .status = LLM_ERR_STREAM,
     .error = "Internal server error",
     .deltas = ""},
    {.name = "error event without a message gives its type",
     .text = EV("error", "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\"}}"),
     .status = LLM_ERR_STREAM,
     .error = "overloaded_error",
     .deltas = ""},
    {.name = "error event without data",
     .text = "event: error\ndata:\n\n",
     .status = LLM_ERR_STREAM,
     .error = "error event without a message",
     .deltas = ""},
    {.name = "payload not JSON",
     .text = TEXT(0, "a") EV("content_block_delta", "{oops"),
     .status = LLM_ERR_PROTOCOL,
     .error = "stream event is not a JSON object: {oops",
     .content = "a",
     .deltas = "C:a\n"},
    {.name = "input_json_delta for a block that never started",
     .text = DELTA(3, "{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}"),
     .status = LLM_ERR_PROTOCOL,
     .error = "input_json_delta for a block that never started",
     .deltas = ""},
    {.name = "input_json_delta on a text block is ignored",
     .text = BSTART(0, "{\"type\":\"text\",\"text\":\"\"}")
         DELTA(0, "{\"type\":\"input_json_delta\",\"partial_json\":\"{}\"}") MSTOP,
     .deltas = ""},
    {.name = "block index out of range",
     .text = TEXT(4096, "x"),
     .status = LLM_ERR_PROTOCOL,
     .error = "content block index 4096 out of range",
     .deltas = ""},
    {.name = "block event without index",
     .text = EV("content_block_stop", "{\"type\":\"content_block_stop\"}"),
     .status = LLM_ERR_PROTOCOL,
     .error = "content block event without an index",
     .deltas = ""},
    {.name = "text delta without a block start is kept",
     .text = TEXT(2, "orphan") MSTOP,
     .content = "orphan",
     .deltas = "C:orphan\n"},
    {.name = "a second thinking block brings its own signature",
     .text = BSTART(0, "{\"type\":\"thinking\",\"thinking\":\"one\",\"signature\":\"S1\"}")
         BSTART(1, "{\"type\":\"thinking\",\"thinking\":\"\"}")
             DELTA(1, "{\"type\":\"signature_delta\",\"signature\":\"S2\"}") MSTOP,
     .reasoning = "one",
     .signature = "S2",
     .deltas = "R:one\n"},
    {.name = "line over the cap",
     .text = TEXT(0, "0123456789012345678901234567890123456789"),
     .max_line = 64,
     .status = LLM_ERR_PROTOCOL,
     .error = "stream line over 64 bytes",
     .deltas = ""},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* ------------------------------------------------------------------------------------------
 * Recording callbacks and running one stream
 * ---------------------------------------------------------------------------------------- */

static void rec_content(void *data, const char *s, size_t len)
{
    buf_appends(data, "C:");
    buf_append(data, s, len);
    buf_appendc(data, '\n');
}

static void rec_reasoning(void *data, const char *s, size_t len)
{
    buf_appends(data, "R:");
    buf_append(data, s, len);
    buf_appendc(data, '\n');
}

static void rec_tool(void *data, size_t index, const char *id, const char *name, const char *args,
                     size_t args_len)
{
    assert_non_null(id);
    assert_non_null(name);
    buf_appendf(data, "T%zu|%s|%s|", index, id, name);
    buf_append(data, args, args_len);
    buf_appendc(data, '\n');
}

static const struct llm_callbacks recording = {rec_content, rec_reasoning, rec_tool, NULL};

static char *describe(const struct anth_stream *s, const struct llm_result *res, int rc)
{
    struct buf b;
    buf_init(&b, 1 << 24);
    buf_appendf(&b, "rc=%d status=%d error=%s\n", rc, s->status, s->error ? s->error : "(null)");
    buf_appendf(&b, "content=%s\nraw=%s\nreasoning=%s\nsig=%s\nfinish=%s\n", res->content,
                res->raw_content, res->reasoning, res->reasoning_signature, res->finish_reason);
    char *usage = res->usage ? json_dump_compact(res->usage, NULL) : xstrdup("(null)");
    buf_appendf(&b, "usage=%s\n", usage);
    xfree(usage);
    for (size_t i = 0; i < res->n_tool_calls; i++)
        buf_appendf(&b, "call=%s|%s|%s\n", res->tool_calls[i].id, res->tool_calls[i].name,
                    res->tool_calls[i].arguments);
    return buf_detach(&b, NULL);
}

struct outcome {
    char *result; /* describe() */
    char *deltas; /* the callback log */
};

/* Feeds in[0..len) cut at cuts[0..n) (the last cut is len), then finishes. The feed contract:
 * 0 until the first error, the same error from then on. */
static struct outcome run(const struct anth_case *c, const struct llm_callbacks *cb, const char *in,
                          size_t len, const size_t *cuts, size_t n)
{
    struct buf log;
    buf_init(&log, 1 << 24);
    struct anth_stream s;
    anth_stream_init(&s, cb, &log, c->max_line);
    size_t at = 0;
    int first_err = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = anth_stream_feed(&s, in + at, cuts[i] - at);
        if (first_err == 0 && rc < 0)
            first_err = rc;
        assert_int_equal(rc, first_err);
        assert_int_equal(rc, s.status);
        at = cuts[i];
    }
    struct llm_result res;
    int rc = anth_stream_finish(&s, &res);
    struct outcome o = {describe(&s, &res, rc), buf_detach(&log, NULL)};
    anth_stream_release(&s);
    return o;
}

static void outcome_free(struct outcome *o)
{
    xfree(o->result);
    xfree(o->deltas);
}

static char *load(const struct anth_case *c, size_t *len)
{
    if (c->file == NULL) {
        *len = strlen(c->text);
        return xstrdup(c->text);
    }
    char *path = xasprintf(FIXTURE_DIR "%s", c->file);
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open '%s' (run the tests from the repository root)", path);
    struct buf b;
    buf_init(&b, 1 << 24);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        assert_int_equal(buf_append(&b, chunk, n), 0);
    fclose(f);
    xfree(path);
    return buf_detach(&b, len);
}

/* ------------------------------------------------------------------------------------------
 * Decoder tests
 * ---------------------------------------------------------------------------------------- */

static void check_whole(const struct anth_case *c, const char *in, size_t len)
{
    struct buf log;
    buf_init(&log, 1 << 24);
    struct anth_stream s;
    anth_stream_init(&s, &recording, &log, c->max_line);
    assert_int_equal(anth_stream_feed(&s, in, len), c->status == LLM_ERR_TRUNCATED ? 0 : c->status);
    struct llm_result res;
    assert_int_equal(anth_stream_finish(&s, &res), c->status);
    if (c->error)
        assert_string_equal(s.error, c->error);
    else
        assert_null(s.error);
    assert_string_equal(res.content, c->content ? c->content : "");
    assert_ptr_equal(res.raw_content, res.content);
    assert_string_equal(res.reasoning, c->reasoning ? c->reasoning : "");
    assert_string_equal(res.reasoning_signature, c->signature ? c->signature : "");
    assert_string_equal(res.finish_reason, c->finish ? c->finish : "");
    if (c->usage) {
        assert_non_null(res.usage);
        char *u = json_dump_compact(res.usage, NULL);
        assert_string_equal(u, c->usage);
        xfree(u);
    } else {
        assert_null(res.usage);
    }
    assert_int_equal(res.n_tool_calls, c->ncalls);
    for (size_t i = 0; i < c->ncalls; i++) {
        assert_string_equal(res.tool_calls[i].id, c->calls[i].id);
        assert_string_equal(res.tool_calls[i].name, c->calls[i].name);
        assert_string_equal(res.tool_calls[i].arguments, c->calls[i].args);
    }
    assert_string_equal(buf_str(&log), c->deltas);
    anth_stream_release(&s);
    buf_release(&log);
}

/* The same stream with every \n made \r\n. */
static char *crlf(const char *in, size_t len, size_t *out_len)
{
    struct buf b;
    buf_init(&b, 2 * len + 1);
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '\n')
            buf_appendc(&b, '\r');
        buf_appendc(&b, in[i]);
    }
    return buf_detach(&b, out_len);
}

static void test_case(void **state)
{
    const struct anth_case *c = *state;
    size_t len;
    char *in = load(c, &len);
    check_whole(c, in, len);

    size_t cuts[2] = {len, len};
    struct outcome whole = run(c, &recording, in, len, cuts, 1);
    for (size_t k = 0; k <= len; k++) {
        cuts[0] = k;
        struct outcome o = run(c, &recording, in, len, cuts, 2);
        if (strcmp(o.result, whole.result) != 0 || strcmp(o.deltas, whole.deltas) != 0)
            fail_msg("split at %zu differs:\n%s%s\nwant:\n%s%s", k, o.result, o.deltas,
                     whole.result, whole.deltas);
        outcome_free(&o);
    }
    size_t *bytes = xcalloc(len + 1, sizeof(*bytes));
    for (size_t k = 0; k < len; k++)
        bytes[k] = k + 1;
    struct outcome o = run(c, &recording, in, len, bytes, len);
    assert_string_equal(o.result, whole.result);
    assert_string_equal(o.deltas, whole.deltas);
    outcome_free(&o);
    xfree(bytes);

    if (c->max_line == 0) {
        size_t clen;
        char *cin = crlf(in, len, &clen);
        cuts[0] = cuts[1] = clen;
        o = run(c, &recording, cin, clen, cuts, 1);
        assert_string_equal(o.result, whole.result);
        assert_string_equal(o.deltas, whole.deltas);
        outcome_free(&o);
        xfree(cin);
    }

    cuts[0] = cuts[1] = len;
    o = run(c, NULL, in, len, cuts, 1); /* no callbacks: the same result */
    assert_string_equal(o.result, whole.result);
    outcome_free(&o);
    outcome_free(&whole);
    xfree(in);
}

/* Feeding after an error changes nothing; finishing twice gives the same result. */
static void test_after_error(void **state)
{
    struct anth_stream s;
    anth_stream_init(&s, NULL, NULL, 0);
    const char *in = TEXT(0, "a") EV("error", "{\"error\":{\"message\":\"boom\"}}");
    assert_int_equal(anth_stream_feed(&s, in, strlen(in)), LLM_ERR_STREAM);
    const char *more = TEXT(0, "b") MSTOP;
    assert_int_equal(anth_stream_feed(&s, more, strlen(more)), LLM_ERR_STREAM);
    struct llm_result a, b;
    assert_int_equal(anth_stream_finish(&s, &a), LLM_ERR_STREAM);
    assert_int_equal(anth_stream_finish(&s, &b), LLM_ERR_STREAM);
    assert_string_equal(b.content, "a");
    assert_string_equal(s.error, "boom");
    anth_stream_release(&s);
}

/* More than 128 tool_use blocks is a protocol error. */
static void test_tool_cap(void **state)
{
    struct anth_stream s;
    anth_stream_init(&s, NULL, NULL, 0);
    for (int i = 0; i < 129; i++) {
        char *ev = xasprintf("data: {\"type\":\"content_block_start\",\"index\":%d,"
                             "\"content_block\":{\"type\":\"tool_use\",\"id\":\"t%d\","
                             "\"name\":\"f\",\"input\":{}}}\n\n",
                             i, i);
        int rc = anth_stream_feed(&s, ev, strlen(ev));
        xfree(ev);
        assert_int_equal(rc, i < 128 ? 0 : LLM_ERR_PROTOCOL);
    }
    assert_string_equal(s.error, "more than 128 tool_use blocks");
    anth_stream_release(&s);
}

/* ------------------------------------------------------------------------------------------
 * Request side
 * ---------------------------------------------------------------------------------------- */

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    if (j == NULL)
        fail_msg("bad JSON in test: %s at %d: %s", e.text, e.position, text);
    return j;
}

/* The body, serialized, must equal `want` serialized: same members, values and order. */
static void assert_json(const json_t *got, const char *want)
{
    json_t *w = parse(want);
    char *g = json_dumps(got, JSON_COMPACT);
    char *ws = json_dumps(w, JSON_COMPACT);
    if (strcmp(g, ws) != 0)
        fail_msg("JSON differs:\n got: %s\nwant: %s", g, ws);
    xfree(g);
    xfree(ws);
    json_decref(w);
}

static const char history[] = "["
    "{\"role\":\"system\",\"content\":\"You are a helper.\"},"
    "{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":\"Be brief.\"}]},"
    "{\"role\":\"user\",\"content\":\"Read a.txt\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"and look\"},"
    " {\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,iVBORw0KGgo=\"}},"
    " {\"type\":\"image_url\",\"image_url\":{\"url\":\"https://example.com/cat.jpg\",\"detail\":\"low\"}},"
    " {\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/svg+xml,<svg/>\"}},"
    " {\"type\":\"text\",\"text\":\"\"}]},"
    "{\"role\":\"assistant\",\"content\":\"Let me read both.\",\"tool_calls\":["
    " {\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"read_file\",\"arguments\":\" {\\\"path\\\":\\\"a.txt\\\"}\"}},"
    " {\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"read_file\",\"arguments\":\"\"}},"
    " {\"id\":\"call_3\",\"type\":\"function\",\"function\":{\"name\":\"oops\",\"arguments\":\"{bad\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"hello\"},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":\"\"},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call_3\",\"content\":[{\"type\":\"text\",\"text\":\"shot\"}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/webp;base64,UklGRg==\"}}]},"
    "{\"role\":\"assistant\",\"content\":\"\"},"
    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[]},"
    "{\"role\":\"assistant\",\"content\":\"Done.\"},"
    "{\"role\":\"user\",\"content\":\"Thanks\"}]";

static const char tools_json[] = "["
    "{\"type\":\"function\",\"function\":{\"name\":\"read_file\",\"description\":\"Read a file\","
    " \"parameters\":{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\"}},\"required\":[\"path\"]}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"now\"}},"
    "{\"type\":\"other\"}]";

static void test_body_conversion(void **state)
{
    json_t *msgs = parse(history), *tools = parse(tools_json);
    struct llm_config cfg = {.provider = "anthropic", .model = "claude-sonnet-4-20250514",
                             .temperature = 0.5, .thinking = -1};
    json_t *body = llm_anthropic_body(&cfg, msgs, tools);
    assert_json(body, "{"
        "\"model\":\"claude-sonnet-4-20250514\",\"max_tokens\":8192,"
        "\"system\":\"You are a helper.\\n\\nBe brief.\","
        "\"messages\":["
        " {\"role\":\"user\",\"content\":["
        "  {\"type\":\"text\",\"text\":\"Read a.txt\"},"
        "  {\"type\":\"text\",\"text\":\"and look\"},"
        "  {\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"iVBORw0KGgo=\"}},"
        "  {\"type\":\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://example.com/cat.jpg\"}}]},"
        " {\"role\":\"assistant\",\"content\":["
        "  {\"type\":\"text\",\"text\":\"Let me read both.\"},"
        "  {\"type\":\"tool_use\",\"id\":\"call_1\",\"name\":\"read_file\",\"input\":{\"path\":\"a.txt\"}},"
        "  {\"type\":\"tool_use\",\"id\":\"call_2\",\"name\":\"read_file\",\"input\":{}},"
        "  {\"type\":\"tool_use\",\"id\":\"call_3\",\"name\":\"oops\",\"input\":{}}]},"
        " {\"role\":\"user\",\"content\":["
        "  {\"type\":\"tool_result\",\"tool_use_id\":\"call_1\",\"content\":\"hello\"},"
        "  {\"type\":\"tool_result\",\"tool_use_id\":\"call_2\"},"
        "  {\"type\":\"tool_result\",\"tool_use_id\":\"call_3\",\"content\":[{\"type\":\"text\",\"text\":\"shot\"}]},"
        "  {\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/webp\",\"data\":\"UklGRg==\"}}]},"
        " {\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"Done.\"}]},"
        " {\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Thanks\"}]}],"
        "\"tools\":["
        " {\"name\":\"read_file\",\"description\":\"Read a file\",\"input_schema\":{\"type\":\"object\","
        "  \"properties\":{\"path\":{\"type\":\"string\"}},\"required\":[\"path\"]}},"
        " {\"name\":\"now\",\"input_schema\":{\"type\":\"object\",\"properties\":{}}}],"
        "\"stream\":true,\"temperature\":0.5}");
    json_decref(body);

    /* The messages are borrowed and unchanged. */
    json_t *again = parse(history);
    assert_true(json_equal(msgs, again));
    json_decref(again);
    json_decref(msgs);
    json_decref(tools);
}

static void test_body_thinking(void **state)
{
    json_t *msgs = parse("[{\"role\":\"user\",\"content\":\"hi\"},"
                         "{\"role\":\"assistant\",\"content\":\"\",\"reasoning_content\":\"hmm\","
                         "\"reasoning_signature\":\"SIG\",\"tool_calls\":[{\"id\":\"t\","
                         "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
                         "{\"role\":\"tool\",\"tool_call_id\":\"t\",\"content\":\"ok\"}]");
    struct llm_config cfg = {.model = "m", .provider = "anthropic", .temperature = 0.7,
                             .thinking = 1, .max_tokens = 10000};
    json_t *body = llm_anthropic_body(&cfg, msgs, NULL);
    assert_json(body, "{\"model\":\"m\",\"max_tokens\":10000,\"messages\":["
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hmm\",\"signature\":\"SIG\"},"
        " {\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t\",\"content\":\"ok\"}]}],"
        "\"stream\":true,\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":5000}}");
    json_decref(body);

    /* A small max_tokens grows to fit the minimum budget; an explicit budget is used. */
    cfg.max_tokens = 1000;
    body = llm_anthropic_body(&cfg, msgs, NULL);
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 2048);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(body, "thinking"),
                                                        "budget_tokens")),
                     1024);
    json_decref(body);
    cfg.max_tokens = 0;
    cfg.thinking_budget_tokens = 2000;
    body = llm_anthropic_body(&cfg, msgs, NULL);
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 8192);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(body, "thinking"),
                                                        "budget_tokens")),
                     2000);
    json_decref(body);

    /* Without thinking the block is not replayed, and nothing about thinking is sent. */
    cfg.thinking = 0;
    body = llm_anthropic_body(&cfg, msgs, NULL);
    assert_null(json_object_get(body, "thinking"));
    json_t *first = json_array_get(
        json_object_get(json_array_get(json_object_get(body, "messages"), 1), "content"), 0);
    assert_string_equal(json_string_value(json_object_get(first, "type")), "tool_use");
    assert_non_null(json_object_get(body, "temperature"));
    json_decref(body);
    json_decref(msgs);
}

static void test_body_prompt_engineering(void **state)
{
    json_t *msgs = parse("[{\"role\":\"system\",\"content\":\"S\"},"
                         "{\"role\":\"user\",\"content\":\"go\"},"
                         "{\"role\":\"assistant\",\"content\":\"<tool_call>\\n{\\\"name\\\":"
                         "\\\"now\\\",\\\"parameters\\\":{}}\\n\",\"tool_calls\":[{\"id\":\"c1\","
                         "\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}]},"
                         "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"noon\"}]");
    json_t *tools = parse("[{\"type\":\"function\",\"function\":{\"name\":\"now\","
                          "\"description\":\"Time\",\"parameters\":{\"type\":\"object\"}}}]");
    struct llm_config cfg = {.model = "m", .provider = "anthropic", .temperature = -1,
                             .thinking = -1, .tool_call_engine = LLM_ENGINE_PROMPT_ENGINEERING};
    json_t *body = llm_anthropic_body(&cfg, msgs, tools);
    char *instr = pe_tool_instruction(tools);
    char *system = xasprintf("S\n\n%s", instr);
    json_t *want = json_pack(
        "{s:s, s:i, s:s, s:[{s:s, s:[{s:s, s:s}]}, {s:s, s:[{s:s, s:s}]}, {s:s, s:[{s:s, s:s}]}],"
        " s:b, s:[s, s]}",
        "model", "m", "max_tokens", 8192, "system", system, "messages", "role", "user", "content",
        "type", "text", "text", "go", "role", "assistant", "content", "type", "text", "text",
        "<tool_call>\n{\"name\":\"now\",\"parameters\":{}}\n", "role", "user", "content", "type",
        "text", "text", "Tool: now\nResult:\nnoon", "stream", 1, "stop_sequences",
        "</tool_call>", "</tool_call>\n\n");
    char *w = json_dumps(want, JSON_COMPACT);
    assert_json(body, w);
    xfree(w);
    json_decref(want);
    xfree(system);
    xfree(instr);
    json_decref(body);
    json_decref(msgs);
    json_decref(tools);
}

static void test_url(void **state)
{
    static const struct {
        const char *provider, *base, *url;
    } t[] = {
        {"anthropic", "https://api.anthropic.com", "https://api.anthropic.com/v1/messages"},
        {"anthropic", "https://api.anthropic.com/", "https://api.anthropic.com/v1/messages"},
        {"anthropic", "http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1/messages"},
        {"anthropic", "http://127.0.0.1:9/v1//", "http://127.0.0.1:9/v1/messages"},
        {"anthropic", "http://proxy/anthropic", "http://proxy/anthropic/v1/messages"},
        {"openai", "http://127.0.0.1:9/v1/", "http://127.0.0.1:9/v1/chat/completions"},
        {"deepseek", "https://api.deepseek.com/v1", "https://api.deepseek.com/v1/chat/completions"},
        {NULL, "http://x", "http://x/chat/completions"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct llm_config cfg = {.provider = t[i].provider, .base_url = t[i].base};
        char *url = llm_request_url(&cfg);
        assert_string_equal(url, t[i].url);
        xfree(url);
        assert_int_equal(llm_is_anthropic(&cfg), t[i].provider && !strcmp(t[i].provider, "anthropic"));
    }
}

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    struct CMUnitTest tests[NCASES + 6];
    for (size_t i = 0; i < NCASES; i++) {
        tests[i] = (struct CMUnitTest){cases[i].name, test_case, NULL, NULL, (void *)&cases[i]};
    }
    tests[NCASES] = (struct CMUnitTest)cmocka_unit_test(test_after_error);
    tests[NCASES + 1] = (struct CMUnitTest)cmocka_unit_test(test_tool_cap);
    tests[NCASES + 2] = (struct CMUnitTest)cmocka_unit_test(test_body_conversion);
    tests[NCASES + 3] = (struct CMUnitTest)cmocka_unit_test(test_body_thinking);
    tests[NCASES + 4] = (struct CMUnitTest)cmocka_unit_test(test_body_prompt_engineering);
    tests[NCASES + 5] = (struct CMUnitTest)cmocka_unit_test(test_url);
    return _cmocka_run_group_tests("anthropic_stream", tests, NCASES + 6, NULL, NULL);
}
