/* SPDX-License-Identifier: MIT */
/* test_openai_stream.c -- table-driven tests of the chat.completion.chunk decoder against
 * hand-written recordings in tests/fixtures/openai/ (run with cwd = repo root) and a few
 * inline streams. Each stream is fed whole, split at every byte position, and byte by byte; the
 * callback log and the result must be the same every time. The second half checks that the
 * allocation-free path for plain chunks (json_skim) and the jansson path agree on everything. */
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
#include "llm/json_skim.h"
#include "llm/openai_stream.h"

#define FIXTURE_DIR "tests/fixtures/openai/"

struct call_want {
    const char *id, *name, *args;
};

struct oai_case {
    const char *name;
    const char *file;  /* fixture under FIXTURE_DIR, or NULL for text */
    const char *text;  /* the inline stream */
    size_t max_line;   /* 0: the default */
    int status;        /* what oai_stream_finish returns */
    const char *error; /* s->error, NULL when status is 0 */
    const char *content;
    const char *reasoning;
    const char *finish;
    const char *usage; /* res.usage as compact JSON, or NULL */
    size_t ncalls;
    struct call_want calls[3];
    const char *deltas; /* the callback log (see rec_* below) */
};

/* ------------------------------------------------------------------------------------------
 * Expected callback logs: "C:<text>" content, "R:<text>" reasoning, "T<index>|id|name|args"
 * tool-call fragments, one per line.
 * ---------------------------------------------------------------------------------------- */

/* clang-format off */
#define W0 "T0|call_lQnnsesjFMWMQ5IeWPHzR4th|GetWeatherArgs|"
#define S1 "T1|call_2xjOUgaCdiwAcl9ZBL9LyMUU|get_stock_price|"
static const char parallel_deltas[] =
    W0 "\n" W0 "{\"ci\n" W0 "ty\": \n" W0 "\"Edin\n" W0 "burgh\n" W0 "\", \"c\n"
    W0 "ountry\n" W0 "\": \"\n" W0 "UK\n" W0 "\", \"\n" W0 "units\n" W0 "\": \"\n"
    W0 "c\n" W0 "\"}\n"
    S1 "\n" S1 "{\"ti\n" S1 "cker\n" S1 "\": \"\n" S1 "AAPL\n" S1 "\", \"\n" S1 "exch\n"
    S1 "ange\n" S1 "\": \"\n" S1 "NAS\n" S1 "DAQ\n" S1 "\"}\n";

#define D0 "T0|call_dxu8rj4cq2o7hbyi7ck7o4zd|getCurrentLocation|"
#define D1 "T1|call_0f8kw3ut4ooiu4a1uzvzd3t6|getWeather|"
static const char doubao_deltas[] =
    "C:我来\nC:查一下。\n"
    D0 "\n" D0 " {\n" D0 "}\n"
    D1 "\n" D1 " {\"\n" D1 "location\n" D1 "\": \"\n" D1 "Boston\n" D1 "\"}\n";
/* clang-format on */

#define H0 "T0|call_cs9sa1k0rvb1bm4jq0ag|get_weather|"
static const char hunyuan_deltas[] = H0 "\n" H0 "{\"city\":\n" H0 " \"深圳\"}\n";

/* A chunk with one choice whose delta is the argument. */
#define CHUNK(delta) "data: {\"choices\":[{\"index\":0,\"delta\":" delta "}]}\n\n"
#define FINISH(reason)                                                                             \
    "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"" reason "\"}]}\n\n"
#define TOOL(idx, rest) CHUNK("{\"tool_calls\":[{\"index\":" #idx "," rest "}]}")
#define DONE "data: [DONE]\n\n"
#define TRUNC "stream ended before completion"

static const struct oai_case cases[] = {
    /* --- recordings ------------------------------------------------------------------- */
    {.name = "plain text",
     .file = "plain_text.sse",
     .content = "Hello, world!",
     .finish = "stop",
     .usage = "{\"prompt_tokens\":9,\"completion_tokens\":3,\"total_tokens\":12}",
     .deltas = "C:Hello\nC:, world\nC:!\n"},
    {.name = "gpt-4o parallel tool calls",
     .file = "parallel_tools.sse",
     .finish = "tool_calls",
     .usage = "{\"prompt_tokens\":149,\"completion_tokens\":60,\"total_tokens\":209}",
     .ncalls = 2,
     .calls = {{"call_lQnnsesjFMWMQ5IeWPHzR4th", "GetWeatherArgs",
                "{\"city\": \"Edinburgh\", \"country\": \"UK\", \"units\": \"c\"}"},
               {"call_2xjOUgaCdiwAcl9ZBL9LyMUU", "get_stock_price",
                "{\"ticker\": \"AAPL\", \"exchange\": \"NASDAQ\"}"}},
     .deltas = parallel_deltas},
    {.name = "doubao tool calls",
     .file = "doubao_tools.sse",
     .content = "我来查一下。",
     .finish = "tool_calls",
     .ncalls = 2,
     .calls = {{"call_dxu8rj4cq2o7hbyi7ck7o4zd", "getCurrentLocation", " {}"},
               {"call_0f8kw3ut4ooiu4a1uzvzd3t6", "getWeather", " {\"location\": \"Boston\"}"}},
     .deltas = doubao_deltas},
    {.name = "hunyuan repeated id and empty name",
     .file = "hunyuan_tools.sse",
     .finish = "tool_calls",
     .usage = "{\"prompt_tokens\":40,\"completion_tokens\":12,\"total_tokens\":52}",
     .ncalls = 1,
     .calls = {{"call_cs9sa1k0rvb1bm4jq0ag", "get_weather", "{\"city\": \"深圳\"}"}},
     .deltas = hunyuan_deltas},
    {.name = "reasoning_content then content",
     .file = "reasoning_content.sse",
     .content = "你好！",
     .reasoning = "用户想要一个问候。",
     .finish = "stop",
     .usage = "{\"completion_tokens\":15,\"prompt_tokens\":20,\"total_tokens\":35,"
              "\"completion_tokens_details\":{\"reasoning_tokens\":9}}",
     .deltas = "R:用户\nR:想要\nR:一个问候。\nC:你好\nC:！\n"},
    {.name = "reasoning alias",
     .file = "reasoning_alias.sse",
     .content = "Hi there",
     .reasoning = "Okay, the user says hi.",
     .finish = "stop",
     .deltas = "R:Okay, \nR:the user says hi.\nC:Hi there\n"},
    {.name = "CRLF line ends",
     .file = "crlf.sse",
     .content = "line one\nline two (and three)",
     .finish = "stop",
     .deltas = "C:line one\nline two\nC: (and three)\n"},
    {.name = "comments, retry, id, empty data",
     .file = "comments.sse",
     .content = "kept alive",
     .finish = "stop",
     .deltas = "C:kept\nC: alive\n"},
    {.name = "error object in stream",
     .file = "error_in_stream.sse",
     .status = LLM_ERR_STREAM,
     .error = "Rate limit reached for gpt-4o",
     .content = "Partial",
     .deltas = "C:Partial\n"},
    {.name = "error object without message",
     .file = "error_no_message.sse",
     .status = LLM_ERR_STREAM,
     .error = "{\"code\":500,\"type\":\"server_error\"}",
     .deltas = ""},
    {.name = "error event",
     .file = "event_error.sse",
     .status = LLM_ERR_STREAM,
     .error = "Overloaded",
     .content = "Hi",
     .deltas = "C:Hi\n"},
    {.name = "payload not JSON",
     .file = "not_json.sse",
     .status = LLM_ERR_PROTOCOL,
     .error = "stream chunk is not a JSON object: <html><body><h1>502 Bad Gateway</h1></body>"
              "</html>",
     .content = "ok",
     .deltas = "C:ok\n"},
    {.name = "cut off mid-way",
     .file = "truncated.sse",
     .status = LLM_ERR_TRUNCATED,
     .error = TRUNC,
     .content = "Looking",
     .ncalls = 1,
     .calls = {{"call_trunc", "read_file", "{\"path\":"}},
     .deltas = "C:Looking\nT0|call_trunc|read_file|\nT0|call_trunc|read_file|{\"path\":\n"},
    {.name = "EOF after finish_reason, no [DONE]",
     .file = "eof_after_finish.sse",
     .content = "Done.",
     .finish = "length",
     .deltas = "C:Done.\n"},
    {.name = "line over the cap",
     .file = "line_too_long.sse",
     .max_line = 512,
     .status = LLM_ERR_PROTOCOL,
     .error = "stream line over 512 bytes",
     .content = "short",
     .deltas = "C:short\n"},
    {.name = "UTF-8 split across feeds",
     .file = "utf8.sse",
     .content = "héllo 世界 世界 😀",
     .finish = "stop",
     .deltas = "C:h\nC:é\nC:llo \nC:世界\nC: 世界 😀\n"},
    {.name = "claude proxy: stop_reason, no finish_reason",
     .file = "claude_proxy.sse",
     .content = "Sure, here it is.",
     .usage = "{\"prompt_tokens\":310,\"completion_tokens\":8,\"total_tokens\":318}",
     .deltas = "C:Sure\nC:, here it is.\n"},

    /* --- inline edge cases -------------------------------------------------------------- */
    {.name = "empty stream", .text = "", .status = LLM_ERR_TRUNCATED, .error = TRUNC, .deltas = ""},
    {.name = "[DONE] without finish_reason",
     .text = CHUNK("{\"content\":\"x\"}") DONE,
     .content = "x",
     .deltas = "C:x\n"},
    {.name = "[DONE] without blank line after finish",
     .text = FINISH("stop") "data: [DONE]\n",
     .finish = "stop",
     .deltas = ""},
    {.name = "finish chunk without blank line is dropped",
     .text = CHUNK("{\"content\":\"a\"}") "data: {\"choices\":[{\"index\":0,\"delta\":{},"
                                          "\"finish_reason\":\"stop\"}]}",
     .status = LLM_ERR_TRUNCATED,
     .error = TRUNC,
     .content = "a",
     .deltas = "C:a\n"},
    {.name = "everything after [DONE] ignored",
     .text = CHUNK("{\"content\":\"a\"}") DONE CHUNK("{\"content\":\"b\"}") "data: {\"error\":"
                                                                            "\"x\"}\n\n",
     .content = "a",
     .deltas = "C:a\n"},
    {.name = "tool calls in index order without gaps",
     .text = TOOL(2, "\"id\":\"c2\",\"function\":{\"name\":\"two\",\"arguments\":\"{}\"}")
         TOOL(0, "\"id\":\"c0\",\"function\":{\"name\":\"zero\",\"arguments\":\"\"}")
             TOOL(0, "\"function\":{\"arguments\":\"[1]\"}") FINISH("tool_calls"),
     .finish = "tool_calls",
     .ncalls = 2,
     .calls = {{"c0", "zero", "[1]"}, {"c2", "two", "{}"}},
     .deltas = "T2|c2|two|{}\nT0|c0|zero|\nT0|c0|zero|[1]\n"},
    {.name = "missing id kept as empty, name set later",
     .text = TOOL(0, "\"function\":{\"arguments\":\"{\"}")
         TOOL(0, "\"function\":{\"name\":\"late\",\"arguments\":\"}\"}") DONE,
     .ncalls = 1,
     .calls = {{"", "late", "{}"}},
     .deltas = "T0|||{\nT0||late|}\n"},
    {.name = "missing index falls back to position",
     .text =
         CHUNK("{\"tool_calls\":[{\"id\":\"a\",\"function\":{\"name\":\"f\",\"arguments\":"
               "\"1\"}},{\"id\":\"b\",\"function\":{\"name\":\"g\",\"arguments\":\"2\"}}]}") DONE,
     .ncalls = 2,
     .calls = {{"a", "f", "1"}, {"b", "g", "2"}},
     .deltas = "T0|a|f|1\nT1|b|g|2\n"},
    {.name = "tool index over the cap",
     .text = TOOL(128, "\"function\":{\"arguments\":\"\"}"),
     .status = LLM_ERR_PROTOCOL,
     .error = "tool call index 128 out of range",
     .deltas = ""},
    {.name = "negative tool index",
     .text = TOOL(-1, "\"function\":{\"arguments\":\"\"}"),
     .status = LLM_ERR_PROTOCOL,
     .error = "tool call index -1 out of range",
     .deltas = ""},
    {.name = "only choice 0 is assembled",
     .text = "data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"no\"},\"finish_reason\":"
             "\"length\"},{\"index\":0,\"delta\":{\"content\":\"yes\"}}]}\n\n" DONE,
     .content = "yes",
     .deltas = "C:yes\n"},
    {.name = "reasoning_content wins over reasoning",
     .text = CHUNK("{\"reasoning_content\":\"rc\",\"reasoning\":\"rc\"}")
         CHUNK("{\"reasoning_content\":\"\",\"reasoning\":\"r\"}") DONE,
     .reasoning = "rcr",
     .deltas = "R:rc\nR:r\n"},
    {.name = "error null and usage null are not errors",
     .text = "data: {\"error\":null,\"usage\":null,\"choices\":[{\"index\":0,\"delta\":"
             "{\"content\":\"ok\"}}]}\n\n" DONE,
     .content = "ok",
     .deltas = "C:ok\n"},
    {.name = "error as a string",
     .text = "data: {\"error\":\"upstream timeout\"}\n\n" DONE,
     .status = LLM_ERR_STREAM,
     .error = "upstream timeout",
     .deltas = ""},
    {.name = "error event with plain text",
     .text = "event: error\ndata: boom\n\n" DONE,
     .status = LLM_ERR_STREAM,
     .error = "boom",
     .deltas = ""},
    {.name = "error event without data",
     .text = "event: error\ndata:\n\n",
     .status = LLM_ERR_STREAM,
     .error = "error event without a message",
     .deltas = ""},
    {.name = "error event with message",
     .text = "event: error\ndata: {\"message\":\"m\"}\n\n",
     .status = LLM_ERR_STREAM,
     .error = "m",
     .deltas = ""},
    {.name = "JSON array is not a chunk",
     .text = "data: [1,2]\n\n" DONE,
     .status = LLM_ERR_PROTOCOL,
     .error = "stream chunk is not a JSON object: [1,2]",
     .deltas = ""},
    {.name = "incomplete JSON in a dispatched event",
     .text = "data: {\"choices\":\n\n" DONE,
     .status = LLM_ERR_PROTOCOL,
     .error = "stream chunk is not a JSON object: {\"choices\":",
     .deltas = ""},
    {.name = "multi-line data joined before parsing",
     .text = "data: {\"choices\":[{\"index\":0,\n"
             "data: \"delta\":{\"content\":\"two lines\"}}]}\n\n" DONE,
     .content = "two lines",
     .deltas = "C:two lines\n"},
    {.name = "long bad payload quoted on a UTF-8 boundary",
     .text = "data: 0123456789012345678901234567890123456789012345678901234567890123456789"
             "012345678世界\n\n",
     .status = LLM_ERR_PROTOCOL,
     .error = "stream chunk is not a JSON object: 0123456789012345678901234567890123456789"
              "012345678901234567890123456789012345678...",
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
static const struct llm_callbacks no_callbacks = {NULL, NULL, NULL, NULL};

/* Everything the decoder produced, as text, so runs can be compared with one string compare. */
static char *describe(const struct oai_stream *s, const struct llm_result *res, int rc)
{
    struct buf b;
    buf_init(&b, 1 << 24);
    buf_appendf(&b, "rc=%d status=%d error=%s\n", rc, s->status, s->error ? s->error : "(null)");
    buf_appendf(&b, "content=%s\nreasoning=%s\nfinish=%s\n", res->content, res->reasoning,
                res->finish_reason);
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

/* Feeds in[0..len) cut at cuts[0..n) (the last cut is len), with an empty feed after each piece
 * when asked, then finishes. Checks the feed contract on the way: 0 until the first error, the
 * same error from then on. */
static struct outcome run(const struct oai_case *c, const struct llm_callbacks *cb, const char *in,
                          size_t len, const size_t *cuts, size_t n, bool empty_feeds)
{
    struct buf log;
    buf_init(&log, 1 << 24);
    struct oai_stream s;
    oai_stream_init(&s, cb, &log, c->max_line);
    size_t at = 0;
    int first_err = 0;
    for (size_t i = 0; i < n; i++) {
        int rc = oai_stream_feed(&s, in + at, cuts[i] - at);
        if (empty_feeds)
            assert_int_equal(oai_stream_feed(&s, in, 0), rc);
        if (first_err == 0 && rc < 0)
            first_err = rc;
        assert_int_equal(rc, first_err);
        assert_int_equal(rc, s.status);
        at = cuts[i];
    }
    struct llm_result res;
    int rc = oai_stream_finish(&s, &res);
    struct outcome o = {describe(&s, &res, rc), buf_detach(&log, NULL)};
    oai_stream_release(&s);
    return o;
}

static void outcome_free(struct outcome *o)
{
    xfree(o->result);
    xfree(o->deltas);
}

static char *load(const struct oai_case *c, size_t *len)
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
 * Tests
 * ---------------------------------------------------------------------------------------- */

/* The result of feeding the stream whole, field by field against the table. */
static void check_whole(const struct oai_case *c, const char *in, size_t len)
{
    struct buf log;
    buf_init(&log, 1 << 24);
    struct oai_stream s;
    oai_stream_init(&s, &recording, &log, c->max_line);
    int feed_rc = oai_stream_feed(&s, in, len);
    assert_int_equal(feed_rc, c->status == LLM_ERR_TRUNCATED ? 0 : c->status);
    struct llm_result res;
    assert_int_equal(oai_stream_finish(&s, &res), c->status);
    assert_int_equal(s.status, c->status);
    if (c->error)
        assert_string_equal(s.error, c->error);
    else
        assert_null(s.error);
    assert_string_equal(res.content, c->content ? c->content : "");
    assert_string_equal(res.reasoning, c->reasoning ? c->reasoning : "");
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
    oai_stream_release(&s);
    buf_release(&log);
}

static void test_case(void **state)
{
    const struct oai_case *c = *state;
    size_t len;
    char *in = load(c, &len);
    check_whole(c, in, len);

    size_t cuts[2] = {len, len};
    struct outcome whole = run(c, &recording, in, len, cuts, 1, false);
    assert_string_equal(whole.deltas, c->deltas);
    for (size_t k = 0; k <= len; k++) {
        cuts[0] = k;
        struct outcome o = run(c, &recording, in, len, cuts, 2, false);
        if (strcmp(o.result, whole.result) != 0 || strcmp(o.deltas, whole.deltas) != 0)
            fail_msg("split at %zu differs:\n%s%s\nwant:\n%s%s", k, o.result, o.deltas,
                     whole.result, whole.deltas);
        outcome_free(&o);
    }
    size_t *bytes = xcalloc(len + 1, sizeof(*bytes));
    for (size_t k = 0; k < len; k++)
        bytes[k] = k + 1;
    struct outcome o = run(c, &recording, in, len, bytes, len, true);
    assert_string_equal(o.result, whole.result);
    assert_string_equal(o.deltas, whole.deltas);
    outcome_free(&o);
    xfree(bytes);

    /* Without callbacks (NULL members, or no table at all) the result is the same. */
    cuts[0] = len;
    o = run(c, &no_callbacks, in, len, cuts, 1, false);
    assert_string_equal(o.result, whole.result);
    assert_string_equal(o.deltas, "");
    outcome_free(&o);
    o = run(c, NULL, in, len, cuts, 1, false);
    assert_string_equal(o.result, whole.result);
    outcome_free(&o);

    outcome_free(&whole);
    xfree(in);
}

/* Finishing twice gives the same result; feeding after an error changes nothing. */
static void test_finish_twice_and_feed_after_error(void **state)
{
    struct oai_stream s;
    oai_stream_init(&s, NULL, NULL, 0);
    const char *in =
        TOOL(0, "\"id\":\"a\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}") "data: nope\n\n";
    assert_int_equal(oai_stream_feed(&s, in, strlen(in)), LLM_ERR_PROTOCOL);
    const char *more = CHUNK("{\"content\":\"late\"}") DONE;
    assert_int_equal(oai_stream_feed(&s, more, strlen(more)), LLM_ERR_PROTOCOL);
    struct llm_result a, b;
    assert_int_equal(oai_stream_finish(&s, &a), LLM_ERR_PROTOCOL);
    assert_int_equal(oai_stream_finish(&s, &b), LLM_ERR_PROTOCOL);
    assert_string_equal(b.content, "");
    assert_int_equal(b.n_tool_calls, 1);
    assert_string_equal(b.tool_calls[0].arguments, "{}");
    assert_false(s.done);
    oai_stream_release(&s);
}

/* The whole stream's text has a budget: 64 MiB of content in 1 MiB deltas is kept, one more
 * byte is a protocol error, and what came before stays in the result. */
static void test_text_budget(void **state)
{
    size_t mib = 1024 * 1024;
    struct buf line;
    buf_init(&line, 2 * mib);
    buf_appends(&line, "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"");
    for (size_t i = 0; i < mib; i++)
        buf_appendc(&line, 'a');
    buf_appends(&line, "\"}}]}\n\n");
    struct oai_stream s;
    oai_stream_init(&s, NULL, NULL, 0);
    for (int i = 0; i < 64; i++)
        assert_int_equal(oai_stream_feed(&s, line.data, line.len), 0);
    const char *one = CHUNK("{\"reasoning\":\"b\"}");
    assert_int_equal(oai_stream_feed(&s, one, strlen(one)), LLM_ERR_PROTOCOL);
    assert_string_equal(s.error, "stream text over 67108864 bytes");
    struct llm_result res;
    assert_int_equal(oai_stream_finish(&s, &res), LLM_ERR_PROTOCOL);
    assert_int_equal(strlen(res.content), 64 * mib);
    assert_string_equal(res.reasoning, "");
    oai_stream_release(&s);
    buf_release(&line);
}

/* A tool call's id and name are capped at 1024 bytes each. */
static void test_ident_cap(void **state)
{
    for (size_t n = 1024; n <= 1025; n++) {
        struct buf in;
        buf_init(&in, 8192);
        buf_appends(&in, "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,"
                         "\"id\":\"c\",\"function\":{\"name\":\"");
        for (size_t i = 0; i < n; i++)
            buf_appendc(&in, 'n');
        buf_appends(&in, "\",\"arguments\":\"\"}}]}}]}\n\n" DONE);
        struct oai_stream s;
        oai_stream_init(&s, NULL, NULL, 0);
        struct llm_result res;
        if (n == 1024) {
            assert_int_equal(oai_stream_feed(&s, in.data, in.len), 0);
            assert_int_equal(oai_stream_finish(&s, &res), 0);
            assert_int_equal(strlen(res.tool_calls[0].name), 1024);
        } else {
            assert_int_equal(oai_stream_feed(&s, in.data, in.len), LLM_ERR_PROTOCOL);
            assert_string_equal(s.error, "tool call name over 1024 bytes");
        }
        oai_stream_release(&s);
        buf_release(&in);
    }
}

/* A stream cut in the middle of a long line releases its partial state cleanly. */
static void test_release_mid_line(void **state)
{
    struct oai_stream s;
    oai_stream_init(&s, &recording, NULL, 0);
    const char *in = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hal";
    assert_int_equal(oai_stream_feed(&s, in, strlen(in)), 0);
    oai_stream_release(&s);
}

/* ------------------------------------------------------------------------------------------
 * The fast path (json_skim) against the jansson path
 * ---------------------------------------------------------------------------------------- */

extern bool llm__oai_slow_only; /* openai_stream.c's test hook: true forces the jansson path */

/* Everything a stream holds before oai_stream_finish (which would change it), as text. */
static char *state_str(const struct oai_stream *s)
{
    struct buf b;
    buf_init(&b, 1 << 24);
    buf_appendf(&b, "status=%d error=%s done=%d text_bytes=%zu finish=%s\ncontent=", s->status,
                s->error ? s->error : "(null)", s->done, s->text_bytes, s->finish_reason);
    buf_append(&b, buf_str(&s->content), s->content.len);
    buf_appends(&b, "\nreasoning=");
    buf_append(&b, buf_str(&s->reasoning), s->reasoning.len);
    char *usage = s->usage ? json_dump_compact(s->usage, NULL) : xstrdup("(null)");
    buf_appendf(&b, "\nusage=%s\n", usage);
    xfree(usage);
    for (size_t i = 0; i < s->nslots; i++)
        buf_appendf(&b, "slot%zu used=%d %s|%s|%s\n", i, s->slots[i].used, buf_str(&s->slots[i].id),
                    buf_str(&s->slots[i].name), buf_str(&s->slots[i].args));
    return buf_detach(&b, NULL);
}

/* Two decoders fed the same bytes, one forced onto the jansson path. */
struct pair {
    struct oai_stream fast, slow;
    struct buf fast_log, slow_log;
};

static void pair_init(struct pair *p, size_t max_line)
{
    buf_init(&p->fast_log, 1 << 24);
    buf_init(&p->slow_log, 1 << 24);
    oai_stream_init(&p->fast, &recording, &p->fast_log, max_line);
    oai_stream_init(&p->slow, &recording, &p->slow_log, max_line);
}

static void expect_same(const char *what, const char *label, const char *fast, const char *slow)
{
    if (strcmp(fast, slow) != 0)
        fail_msg("%s: %s differ\nfast path:\n%s\njansson path:\n%s", what, label, fast, slow);
}

/* Feeds in[0..len) to both and requires the same return value, state and callback log. */
static void pair_feed(struct pair *p, const char *in, size_t len, const char *what)
{
    llm__oai_slow_only = true;
    int slow_rc = oai_stream_feed(&p->slow, in, len);
    llm__oai_slow_only = false;
    int fast_rc = oai_stream_feed(&p->fast, in, len);
    if (fast_rc != slow_rc)
        fail_msg("%s: feed returned %d on the fast path, %d on the jansson path", what, fast_rc,
                 slow_rc);
    char *fs = state_str(&p->fast), *ss = state_str(&p->slow);
    expect_same(what, "states", fs, ss);
    xfree(fs);
    xfree(ss);
    expect_same(what, "callback logs", buf_str(&p->fast_log), buf_str(&p->slow_log));
}

/* Finishes both, requires the same results, and releases everything. */
static void pair_finish(struct pair *p, const char *what)
{
    struct llm_result fr, sr;
    int frc = oai_stream_finish(&p->fast, &fr), src = oai_stream_finish(&p->slow, &sr);
    char *fd = describe(&p->fast, &fr, frc), *sd = describe(&p->slow, &sr, src);
    expect_same(what, "results", fd, sd);
    xfree(fd);
    xfree(sd);
    oai_stream_release(&p->fast);
    oai_stream_release(&p->slow);
    buf_release(&p->fast_log);
    buf_release(&p->slow_log);
}

/* The jansson verdict on p[0..len) must match the skimmer's unless it said UNSURE. */
static enum json_skim_verdict skim_checked(const char *p, size_t len, struct json_skim_chunk *c)
{
    enum json_skim_verdict v = json_skim_chunk(p, len, c);
    json_t *j = json_loadb(p, len, 0, NULL);
    bool bad = (v == JSON_SKIM_INVALID && j != NULL) ||
               ((v == JSON_SKIM_PLAIN || v == JSON_SKIM_OTHER) && j == NULL) ||
               (v == JSON_SKIM_PLAIN && !json_is_object(j));
    json_decref(j);
    if (bad)
        fail_msg("json_skim says %d, jansson %s: %.*s", v, j ? "accepts" : "rejects",
                 (int)(len < 300 ? len : 300), p);
    return v;
}

/* Counts the chunks of a stream that the skimmer finds plain, checking every verdict against
 * jansson on the way. */
struct plain_count {
    size_t chunks, plain;
};

static int count_event(void *data, const char *event, const char *payload, size_t len)
{
    struct plain_count *n = data;
    if (strcmp(event, "error") == 0 || (len >= 6 && memcmp(payload, "[DONE]", 6) == 0) ||
        strspn(payload, " \t\r\n") == len)
        return 0; /* never a chunk */
    struct json_skim_chunk c;
    n->chunks++;
    n->plain += skim_checked(payload, len, &c) == JSON_SKIM_PLAIN;
    return 0;
}

/* How many chunks of each recording take the fast path. Tool calls, usage and error chunks,
 * and every chunk of the Claude proxy (stop_reason), take the jansson path. */
static const struct {
    const char *file;
    size_t chunks, plain;
} fixture_plain[] = {
    {"plain_text.sse", 6, 5},
    {"parallel_tools.sse", 29, 2},
    {"doubao_tools.sse", 12, 3},
    {"hunyuan_tools.sse", 5, 1},
    {"reasoning_content.sse", 7, 6},
    {"reasoning_alias.sse", 4, 4},
    {"crlf.sse", 4, 4},
    {"comments.sse", 4, 4},
    {"error_in_stream.sse", 4, 3},
    {"error_no_message.sse", 2, 1},
    {"event_error.sse", 1, 1},
    {"not_json.sse", 3, 2},
    {"truncated.sse", 3, 1},
    {"eof_after_finish.sse", 3, 3},
    {"line_too_long.sse", 3, 3},
    {"utf8.sse", 7, 7},
    {"claude_proxy.sse", 3, 0},
};

static void check_fixture_coverage(const struct oai_case *c, const char *in, size_t len)
{
    for (size_t i = 0; i < sizeof(fixture_plain) / sizeof(fixture_plain[0]); i++) {
        if (strcmp(fixture_plain[i].file, c->file) != 0)
            continue;
        struct sse_reader r;
        struct plain_count n = {0, 0};
        sse_reader_init(&r, 0); /* no line cap here: line_too_long.sse counts all its chunks */
        sse_reader_feed(&r, in, len, count_event, &n);
        sse_reader_release(&r);
        if (n.chunks != fixture_plain[i].chunks || n.plain != fixture_plain[i].plain)
            fail_msg("%s: %zu chunks, %zu plain; want %zu, %zu", c->file, n.chunks, n.plain,
                     fixture_plain[i].chunks, fixture_plain[i].plain);
        return;
    }
    fail_msg("%s: not in fixture_plain", c->file);
}

/* Every recording and inline stream of the table above, fed byte by byte and whole: after every
 * byte the two paths hold the same state and have made the same calls. */
static void test_paths_agree_on_streams(void **state)
{
    for (size_t i = 0; i < NCASES; i++) {
        const struct oai_case *c = &cases[i];
        size_t len;
        char *in = load(c, &len);
        if (c->file)
            check_fixture_coverage(c, in, len);
        char *what = xasprintf("%s (byte by byte)", c->name);
        struct pair p;
        pair_init(&p, c->max_line);
        for (size_t k = 0; k < len; k++)
            pair_feed(&p, in + k, 1, what);
        pair_finish(&p, what);
        xfree(what);
        pair_init(&p, c->max_line);
        pair_feed(&p, in, len, c->name);
        pair_finish(&p, c->name);
        xfree(in);
    }
}

/* The SSE event carrying payload: "data: " before each of its lines (SSE splits at CR and LF). */
static char *sse_event(const char *p, size_t len, size_t *out_len)
{
    struct buf b;
    buf_init(&b, 1 << 24);
    buf_appends(&b, "data: ");
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\r' || p[i] == '\n') {
            if (p[i] == '\r' && i + 1 < len && p[i + 1] == '\n')
                i++;
            buf_appends(&b, "\ndata: ");
        } else {
            buf_appendc(&b, p[i]);
        }
    }
    buf_appends(&b, "\n\n");
    return buf_detach(&b, out_len);
}

/* One chunk through both paths; returns what the fast one logged (caller frees). */
static char *one_chunk_both_ways(const char *json, size_t len, const char *what, int *status,
                                 char *finish)
{
    size_t n;
    char *ev = sse_event(json, len, &n);
    struct pair p;
    pair_init(&p, 0);
    pair_feed(&p, ev, n, what);
    *status = p.fast.status;
    memcpy(finish, p.fast.finish_reason, sizeof(p.fast.finish_reason));
    char *log = xstrdup(buf_str(&p.fast_log));
    pair_finish(&p, what);
    xfree(ev);
    return log;
}

struct tricky {
    const char *name;
    const char *json;
    size_t len; /* 0: strlen(json) */
    enum json_skim_verdict verdict;
    const char *deltas; /* the callback log after this one chunk */
    const char *finish; /* finish_reason after it, NULL for "" */
    int status;         /* the stream's status after it (LLM_ERR_PROTOCOL for INVALID) */
};

/* A chunk whose only choice has the given delta; a delta with the given content. */
#define JD(delta) "{\"choices\":[{\"index\":0,\"delta\":" delta "}]}"
#define JC(str) JD("{\"content\":" str "}")
#define JCH(rest) "{\"choices\":[{\"index\":0," rest "}]}"
#define BIN(lit) lit, sizeof(lit) - 1
#define PLAIN JSON_SKIM_PLAIN
#define OTHER JSON_SKIM_OTHER
#define INVALID JSON_SKIM_INVALID
#define UNSURE JSON_SKIM_UNSURE

/* clang-format off */
static const struct tricky tricky[] = {
    /* --- shapes that take the fast path -------------------------------------------------- */
    {"bench fake's delta", "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":"
     "1723024757,\"model\":\"bench\",\"system_fingerprint\":\"fp_2a322c9ffc\",\"choices\":[{\"index\":0,"
     "\"delta\":{\"content\":\" w17\"},\"logprobs\":null,\"finish_reason\":null}]}", 0, PLAIN, "C: w17\n", NULL, 0},
    {"short escapes", JC("\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\""), 0, PLAIN,
     "C:a\"b\\c/d\be\ff\ng\rh\ti\n", NULL, 0},
    {"\\u escapes, pairs, both cases",
     JC("\"\\u00e9\\u00E9 \\u4e16 \\ud83d\\ude00 \\u0041\\u007f\\u0080\\u07ff\\u0800\\uffff\\uDBFF\\uDFFF\""),
     0, PLAIN, "C:\xc3\xa9\xc3\xa9 \xe4\xb8\x96 \xf0\x9f\x98\x80 A\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf"
     "\xf4\x8f\xbf\xbf\n", NULL, 0},
    {"raw multi-byte UTF-8", JC("\"\xc3\xa9\xe4\xb8\x96\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xee\x80\x80\xdf\xbf\""), 0,
     PLAIN, "C:\xc3\xa9\xe4\xb8\x96\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\xee\x80\x80\xdf\xbf\n", NULL, 0},
    {"raw DEL", JC("\"a\x7f" "b\""), 0, PLAIN, "C:a\x7f" "b\n", NULL, 0},
    {"numbers in all valid forms", "{\"n\":[0,-0,7,-7,1.5,-0.25,0.0,1e5,1E+5,1e-5,-1.5E-300,0e0,1e-400,"
     "1.5e300,123456789012345678,9223372036854775807,-9223372036854775808,9223372036854775806,"
     "0.000000000000000000000000000000000000001]," "\"choices\":[{\"delta\":{\"content\":\"n\"}}]}", 0,
     PLAIN, "C:n\n", NULL, 0},
    {"nested values in unknown members", "{\"x\":{\"a\":[1,{\"b\":[[],{}]},\"s\",true,false,null],"
     "\"content\":\"not the delta\",\"\\u0041\":1},\"choices\":[{\"index\":0,\"delta\":{\"content\":\"y\","
     "\"extra\":{\"content\":\"z\"}},\"logprobs\":{\"content\":[{\"token\":\"y\",\"logprob\":-0.01,"
     "\"bytes\":[121],\"top_logprobs\":[]}]}}]}", 0, PLAIN, "C:y\n", NULL, 0},
    {"whitespace everywhere", " \t\r\n{ \"choices\" :\r[ {\n\"index\"\t: 0 , \"delta\" : { \"content\" : "
     "\"w\" } , \"finish_reason\" : \"stop\" } ] } \r\n\t ", 0, PLAIN, "C:w\n", "stop", 0},
    {"empty object", "{}", 0, PLAIN, "", NULL, 0},
    {"empty object, spaced", "{ \n}", 0, PLAIN, "", NULL, 0},
    {"duplicate unknown member", "{\"id\":1,\"id\":[2],\"choices\":[{\"delta\":{\"content\":\"c\"}}]}", 0,
     PLAIN, "C:c\n", NULL, 0},
    {"content null", JD("{\"content\":null}"), 0, PLAIN, "", NULL, 0},
    {"content empty", JD("{\"content\":\"\"}"), 0, PLAIN, "", NULL, 0},
    {"role chunk", JD("{\"role\":\"assistant\",\"content\":\"\",\"refusal\":null}"), 0, PLAIN, "", NULL, 0},
    {"missing delta", JCH("\"finish_reason\":\"length\""), 0, PLAIN, "", "length", 0},
    {"delta null", JCH("\"delta\":null,\"finish_reason\":\"stop\""), 0, PLAIN, "", "stop", 0},
    {"empty choices", "{\"choices\":[]}", 0, PLAIN, "", NULL, 0},
    {"choices null", "{\"choices\":null}", 0, PLAIN, "", NULL, 0},
    {"index missing", "{\"choices\":[{\"delta\":{\"content\":\"i\"}}]}", 0, PLAIN, "C:i\n", NULL, 0},
    {"error null, false; usage, tool_calls null", "{\"error\":null,\"usage\":null,\"choices\":[{\"delta\":"
     "{\"content\":\"c\",\"tool_calls\":null}}]}", 0, PLAIN, "C:c\n", NULL, 0},
    {"error false", "{\"error\":false,\"choices\":[{\"delta\":{\"content\":\"c\"}}]}", 0, PLAIN, "C:c\n", NULL, 0},
    {"reasoning_content", JD("{\"reasoning_content\":\"r1\"}"), 0, PLAIN, "R:r1\n", NULL, 0},
    {"reasoning", JD("{\"reasoning\":\"r2\"}"), 0, PLAIN, "R:r2\n", NULL, 0},
    {"reasoning_content wins, then content", JD("{\"reasoning\":\"no\",\"reasoning_content\":\"yes\","
     "\"content\":\"c\"}"), 0, PLAIN, "R:yes\nC:c\n", NULL, 0},
    {"empty reasoning_content: reasoning", JD("{\"reasoning_content\":\"\",\"reasoning\":\"r\"}"), 0, PLAIN,
     "R:r\n", NULL, 0},
    {"null reasoning_content: reasoning", JD("{\"reasoning_content\":null,\"reasoning\":\"r\"}"), 0, PLAIN,
     "R:r\n", NULL, 0},
    {"finish_reason cut at 31 bytes", JCH("\"finish_reason\":\"abcdefghijklmnopqrstuvwxyz0123456789\""), 0,
     PLAIN, "", "abcdefghijklmnopqrstuvwxyz01234", 0},
    {"escaped finish_reason cut inside a character", JCH("\"finish_reason\":\"\\u00e9\\u00e9\\u00e9\\u00e9"
     "\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\""), 0, PLAIN, "",
     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
     "\xc3\xa9\xc3\xa9\xc3\xa9\xc3", 0},

    /* --- valid, but the jansson path takes them ----------------------------------------- */
    {"duplicate content: the last wins", JD("{\"content\":\"a\",\"content\":\"b\"}"), 0, OTHER, "C:b\n", NULL, 0},
    {"duplicate choices", "{\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"choices\":[{\"delta\":"
     "{\"content\":\"b\"}}]}", 0, OTHER, "C:b\n", NULL, 0},
    {"duplicate finish_reason", JCH("\"finish_reason\":\"stop\",\"finish_reason\":\"length\""), 0, OTHER, "",
     "length", 0},
    {"error null, then an object", "{\"error\":null,\"error\":{\"message\":\"late\"}}", 0, OTHER, "", NULL,
     LLM_ERR_STREAM},
    {"escaped name of a member looked for", JD("{\"cont\\u0065nt\":\"x\"}"), 0, OTHER, "C:x\n", NULL, 0},
    {"escaped name at the top", "{\"i\\u0064\":1,\"choices\":[{\"delta\":{\"content\":\"c\"}}]}", 0, OTHER,
     "C:c\n", NULL, 0},
    {"reasoning_content a number", JD("{\"reasoning_content\":1,\"reasoning\":\"r\"}"), 0, OTHER, "R:r\n", NULL, 0},
    {"error object", "{\"error\":{\"message\":\"m\"}}", 0, OTHER, "", NULL, LLM_ERR_STREAM},
    {"error true", "{\"error\":true}", 0, OTHER, "", NULL, LLM_ERR_STREAM},
    {"error \"\"", "{\"error\":\"\"}", 0, OTHER, "", NULL, LLM_ERR_STREAM},
    {"error 0", "{\"error\":0,\"choices\":[{\"delta\":{\"content\":\"c\"}}]}", 0, OTHER, "", NULL,
     LLM_ERR_STREAM},
    {"usage object", "{\"choices\":[],\"usage\":{\"total_tokens\":1}}", 0, OTHER, "", NULL, 0},
    {"tool_calls", JD("{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"f\","
     "\"arguments\":\"{}\"}}]}"), 0, OTHER, "T0|c|f|{}\n", NULL, 0},
    {"tool_calls []", JD("{\"tool_calls\":[]}"), 0, OTHER, "", NULL, 0},
    {"two choices", "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}},{\"index\":1,\"delta\":"
     "{\"content\":\"b\"}}]}", 0, OTHER, "C:a\n", NULL, 0},
    {"choice null", "{\"choices\":[null]}", 0, OTHER, "", NULL, 0},
    {"choices an object", "{\"choices\":{\"delta\":{\"content\":\"a\"}}}", 0, OTHER, "", NULL, 0},
    {"index 1", JCH("\"index\":1,\"delta\":{\"content\":\"no\"}"), 0, OTHER, "", NULL, 0},
    {"index 0.0", "{\"choices\":[{\"index\":0.0,\"delta\":{\"content\":\"x\"}}]}", 0, OTHER, "C:x\n", NULL, 0},
    {"index \"1\"", "{\"choices\":[{\"index\":\"1\",\"delta\":{\"content\":\"x\"}}]}", 0, OTHER, "C:x\n", NULL, 0},
    {"index -0", "{\"choices\":[{\"index\":-0,\"delta\":{\"content\":\"x\"}}]}", 0, OTHER, "C:x\n", NULL, 0},
    {"delta an array", JCH("\"delta\":[],\"finish_reason\":\"stop\""), 0, OTHER, "", "stop", 0},
    {"content a number", JD("{\"content\":5}"), 0, OTHER, "", NULL, 0},
    {"finish_reason a number", JCH("\"finish_reason\":5"), 0, OTHER, "", NULL, 0},
    {"stop_reason", JCH("\"delta\":{\"content\":\"s\"},\"stop_reason\":\"\""), 0, OTHER, "C:s\n", NULL, 0},
    {"top-level array", "[1,2]", 0, OTHER, "", NULL, LLM_ERR_PROTOCOL},

    /* --- numbers only jansson can judge ------------------------------------------------- */
    {"real overflow", "{\"n\":1e400}", 0, UNSURE, "", NULL, LLM_ERR_PROTOCOL},
    {"negative real overflow", "{\"n\":-1.5e309}", 0, UNSURE, "", NULL, LLM_ERR_PROTOCOL},
    {"large real", "{\"n\":1e308,\"choices\":[{\"delta\":{\"content\":\"c\"}}]}", 0, UNSURE, "C:c\n", NULL, 0},

    /* --- invalid: both paths report a protocol error --------------------------------------- */
    {"UTF-8: lone continuation byte", JC("\"a\x80\""), 0, INVALID, "", NULL, 0},
    {"UTF-8: overlong 2 bytes", JC("\"\xc0\xaf\""), 0, INVALID, "", NULL, 0},
    {"UTF-8: overlong 3 bytes", JC("\"\xe0\x80\xaf\""), 0, INVALID, "", NULL, 0},
    {"UTF-8: overlong 4 bytes", JC("\"\xf0\x8f\xbf\xbf\""), 0, INVALID, "", NULL, 0},
    {"UTF-8: surrogate", JC("\"\xed\xa0\x80\""), 0, INVALID, "", NULL, 0},
    {"UTF-8: above U+10FFFF", JC("\"\xf4\x90\x80\x80\""), 0, INVALID, "", NULL, 0},
    {"UTF-8: F5 lead", JC("\"\xf5\x80\x80\x80\""), 0, INVALID, "", NULL, 0},
    {"UTF-8: FF", JC("\"\xff\""), 0, INVALID, "", NULL, 0},
    {"UTF-8: cut sequence", JC("\"\xe4\xb8\""), 0, INVALID, "", NULL, 0},
    {"UTF-8: cut by the end", BIN("{\"a\":\"\xe4\xb8"), INVALID, "", NULL, 0},
    {"UTF-8: bad in a member name", "{\"k\xff\":1}", 0, INVALID, "", NULL, 0},
    {"UTF-8 outside strings", "{\"a\":1\xc3\xa9}", 0, INVALID, "", NULL, 0},
    {"\\u0000", JC("\"a\\u0000b\""), 0, INVALID, "", NULL, 0},
    {"\\u0000 in a name", "{\"\\u0000\":1}", 0, INVALID, "", NULL, 0},
    {"lone high surrogate", JC("\"\\ud83d\""), 0, INVALID, "", NULL, 0},
    {"high surrogate, then text", JC("\"\\ud83dx\""), 0, INVALID, "", NULL, 0},
    {"high surrogate, then \\u0041", JC("\"\\ud83d\\u0041\""), 0, INVALID, "", NULL, 0},
    {"two high surrogates", JC("\"\\ud83d\\ud83d\""), 0, INVALID, "", NULL, 0},
    {"lone low surrogate", JC("\"\\ude00\""), 0, INVALID, "", NULL, 0},
    {"high surrogate, then a bad escape", JC("\"\\ud83d\\x\""), 0, INVALID, "", NULL, 0},
    {"unknown escape", JC("\"\\x41\""), 0, INVALID, "", NULL, 0},
    {"\\U", JC("\"\\U00e9\""), 0, INVALID, "", NULL, 0},
    {"bad hex digit", JC("\"\\u00g9\""), 0, INVALID, "", NULL, 0},
    {"short \\u", JC("\"\\u12\""), 0, INVALID, "", NULL, 0},
    {"backslash at the end", "{\"a\":\"\\", 0, INVALID, "", NULL, 0},
    {"raw tab in a string", JC("\"a\tb\""), 0, INVALID, "", NULL, 0},
    {"raw NUL in a string", BIN("{\"a\":\"x\0y\"}"), INVALID, "", NULL, 0},
    {"trailing NUL", BIN("{}\0"), INVALID, "", NULL, 0},
    /* jansson skips one NUL after a number or a literal (found by fuzz_json_skim) */
    {"NUL after a number", BIN("{\"a\":55\0}"), UNSURE, "", NULL, 0},
    {"NUL after a literal", BIN("{\"a\":true\0}"), UNSURE, "", NULL, 0},
    {"int64 max + 1", "{\"n\":9223372036854775808}", 0, INVALID, "", NULL, 0},
    {"int64 min - 1", "{\"n\":-9223372036854775809}", 0, INVALID, "", NULL, 0},
    {"20 digits", "{\"n\":12345678901234567890}", 0, INVALID, "", NULL, 0},
    {"leading zero", "{\"n\":01}", 0, INVALID, "", NULL, 0},
    {"-01", "{\"n\":-01}", 0, INVALID, "", NULL, 0},
    {"1.", "{\"n\":1.}", 0, INVALID, "", NULL, 0},
    {".5", "{\"n\":.5}", 0, INVALID, "", NULL, 0},
    {"+1", "{\"n\":+1}", 0, INVALID, "", NULL, 0},
    {"lone minus", "{\"n\":-}", 0, INVALID, "", NULL, 0},
    {"1e", "{\"n\":1e}", 0, INVALID, "", NULL, 0},
    {"1e+", "{\"n\":1e+}", 0, INVALID, "", NULL, 0},
    {"1.5.2", "{\"n\":1.5.2}", 0, INVALID, "", NULL, 0},
    {"hex", "{\"n\":0x10}", 0, INVALID, "", NULL, 0},
    {"NaN", "{\"n\":NaN}", 0, INVALID, "", NULL, 0},
    {"-Infinity", "{\"n\":-Infinity}", 0, INVALID, "", NULL, 0},
    {"tru", "{\"a\":tru}", 0, INVALID, "", NULL, 0},
    {"nullx", "{\"a\":nullx}", 0, INVALID, "", NULL, 0},
    {"True", "{\"a\":True}", 0, INVALID, "", NULL, 0},
    {"truncated after the object", "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]", 0,
     INVALID, "", NULL, 0},
    {"truncated in a string", "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x", 0, INVALID, "", NULL, 0},
    {"truncated after a colon", "{\"a\":", 0, INVALID, "", NULL, 0},
    {"truncated in a name", "{\"a", 0, INVALID, "", NULL, 0},
    {"truncated literal", "{\"a\":nu", 0, INVALID, "", NULL, 0},
    {"just {", "{", 0, INVALID, "", NULL, 0},
    {"trailing comma in an object", "{\"a\":1,}", 0, INVALID, "", NULL, 0},
    {"trailing comma in an array", "{\"a\":[1,]}", 0, INVALID, "", NULL, 0},
    {"trailing comma in choices", "{\"choices\":[{\"index\":0},]}", 0, INVALID, "", NULL, 0},
    {"trailing comma in a delta", JD("{\"content\":\"x\",}"), 0, INVALID, "", NULL, 0},
    {"leading comma", "{,\"a\":1}", 0, INVALID, "", NULL, 0},
    {"empty array slot", "{\"a\":[1,,2]}", 0, INVALID, "", NULL, 0},
    {"missing colon", "{\"a\" 1}", 0, INVALID, "", NULL, 0},
    {"missing comma", "{\"a\":1 \"b\":2}", 0, INVALID, "", NULL, 0},
    {"single quotes", "{'a':1}", 0, INVALID, "", NULL, 0},
    {"bare name", "{a:1}", 0, INVALID, "", NULL, 0},
    {"non-string name", "{1:1}", 0, INVALID, "", NULL, 0},
    {"trailing garbage", "{\"choices\":[]} x", 0, INVALID, "", NULL, 0},
    {"two objects", "{}{}", 0, INVALID, "", NULL, 0},
    {"mismatched brackets", "{\"a\":[}", 0, INVALID, "", NULL, 0},
    {"mismatched braces", "{\"a\":{]}", 0, INVALID, "", NULL, 0},
    {"comment", "{/*c*/}", 0, INVALID, "", NULL, 0},
    {"top-level string", "\"x\"", 0, INVALID, "", NULL, 0},
    {"top-level number", "1", 0, INVALID, "", NULL, 0},
    {"top-level null", "null", 0, INVALID, "", NULL, 0},
    {"byte order mark", "\xef\xbb\xbf{}", 0, INVALID, "", NULL, 0},
    {"form feed is no whitespace", "{\f}", 0, INVALID, "", NULL, 0},
};
/* clang-format on */

/* Each tricky chunk: the skimmer's verdict, its agreement with jansson, and the same effect on
 * both paths with the expected callbacks, finish_reason and status. */
static void test_tricky_chunks(void **state)
{
    for (size_t i = 0; i < sizeof(tricky) / sizeof(tricky[0]); i++) {
        const struct tricky *t = &tricky[i];
        size_t len = t->len ? t->len : strlen(t->json);
        struct json_skim_chunk c;
        enum json_skim_verdict v = skim_checked(t->json, len, &c);
        if (v != t->verdict)
            fail_msg("%s: verdict %d, want %d", t->name, v, t->verdict);
        int status;
        char finish[32];
        char *log = one_chunk_both_ways(t->json, len, t->name, &status, finish);
        int want = t->verdict == INVALID ? LLM_ERR_PROTOCOL : t->status;
        if (status != want || strcmp(log, t->deltas) != 0 ||
            strcmp(finish, t->finish ? t->finish : "") != 0)
            fail_msg("%s: status %d, finish '%s', log:\n%s\nwant %d, '%s':\n%s", t->name, status,
                     finish, log, want, t->finish ? t->finish : "", t->deltas);
        xfree(log);
    }
}

/* Strings the skimmer hands back: spans of the input, decoded lengths, and json_skim_decode. */
static void test_skim_strings(void **state)
{
    struct json_skim_chunk c;
    const char *j = JD("{\"reasoning_content\":\"a\\n\\u00e9\\ud83d\\ude00\",\"reasoning\":null,"
                       "\"content\":\"plain\"}");
    assert_int_equal(json_skim_chunk(j, strlen(j), &c), JSON_SKIM_PLAIN);
    assert_non_null(c.content.raw);
    assert_int_equal(c.content.raw_len, 5);
    assert_int_equal(c.content.len, 5);
    assert_memory_equal(c.content.raw, "plain", 5);
    assert_true(c.content.raw > j && c.content.raw < j + strlen(j)); /* a span, not a copy */
    assert_null(c.reasoning.raw);
    assert_null(c.finish_reason.raw);
    assert_int_equal(c.reasoning_content.raw_len, strlen("a\\n\\u00e9\\ud83d\\ude00"));
    assert_int_equal(c.reasoning_content.len, 1 + 1 + 2 + 4);
    char out[16];
    assert_int_equal(json_skim_decode(&c.reasoning_content, out), 8);
    assert_memory_equal(out, "a\n\xc3\xa9\xf0\x9f\x98\x80", 8);
    assert_int_equal(json_skim_decode(&c.reasoning, out), 0);
}

/* Nesting: 64 levels are judged, deeper is left to jansson, which itself stops past 2048. */
static void test_deep_nesting(void **state)
{
    static const struct {
        size_t arrays;
        char open, close;
        enum json_skim_verdict verdict;
        int status;
    } depths[] = {
        {63, '[', ']', JSON_SKIM_PLAIN, 0},
        {64, '[', ']', JSON_SKIM_UNSURE, 0},
        {63, '{', '}', JSON_SKIM_PLAIN, 0},
        {64, '{', '}', JSON_SKIM_UNSURE, 0},
        {2047, '[', ']', JSON_SKIM_UNSURE, 0},
        {2048, '[', ']', JSON_SKIM_UNSURE, LLM_ERR_PROTOCOL},
        {100000, '[', ']', JSON_SKIM_UNSURE, LLM_ERR_PROTOCOL},
    };
    for (size_t i = 0; i < sizeof(depths) / sizeof(depths[0]); i++) {
        struct buf b;
        buf_init(&b, 1 << 24);
        buf_appends(&b, "{\"choices\":[{\"delta\":{\"content\":\"d\"}}],\"x\":");
        for (size_t k = 0; k < depths[i].arrays; k++) {
            if (depths[i].open == '{')
                buf_appends(&b, "{\"a\":");
            else
                buf_appendc(&b, '[');
        }
        if (depths[i].open == '{')
            buf_appends(&b, "1");
        for (size_t k = 0; k < depths[i].arrays; k++)
            buf_appendc(&b, depths[i].close);
        buf_appendc(&b, '}');
        struct json_skim_chunk c;
        assert_int_equal(skim_checked(b.data, b.len, &c), depths[i].verdict);
        int status;
        char finish[32];
        char *log = one_chunk_both_ways(b.data, b.len, "deep nesting", &status, finish);
        assert_int_equal(status, depths[i].status);
        assert_string_equal(log, status == 0 ? "C:d\n" : "");
        xfree(log);
        buf_release(&b);
    }
}

/* Long strings: unescaped ones of any size and escaped ones up to the 4 KiB scratch take the
 * fast path; a longer escaped one goes to jansson. Both give the same bytes either way. */
static void test_long_strings(void **state)
{
    static const struct {
        size_t units;
        const char *unit;
        size_t unit_len; /* decoded */
    } longs[] = {{100000, "ab", 2}, {2048, "\\n", 1},     {4096, "\\n", 1},
                 {4097, "\\n", 1},  {1000, "\\u4e16", 3}, {1400, "\\u4e16", 3}};
    for (size_t i = 0; i < sizeof(longs) / sizeof(longs[0]); i++) {
        struct buf b;
        buf_init(&b, 1 << 24);
        buf_appends(&b, "{\"choices\":[{\"delta\":{\"content\":\"");
        for (size_t k = 0; k < longs[i].units; k++)
            buf_appends(&b, longs[i].unit);
        buf_appends(&b, "\"}}]}");
        int status;
        char finish[32];
        char *log = one_chunk_both_ways(b.data, b.len, "long string", &status, finish);
        assert_int_equal(status, 0);
        assert_int_equal(strlen(log), 3 + longs[i].units * longs[i].unit_len);
        xfree(log);
        buf_release(&b);
    }
}

/* A tiny deterministic generator, so a failure can be replayed. */
static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 32);
}

static int collect_event(void *data, const char *event, const char *payload, size_t len)
{
    struct buf *seeds = data;
    if (strcmp(event, "") == 0 && len > 0)
        buf_append(seeds, payload, len + 1); /* NUL-separated */
    return 0;
}

/* Random edits of real chunks: the skimmer must never call valid what jansson rejects or the
 * reverse, and both decoder paths must agree on every mutant. */
static void test_mutated_chunks(void **state)
{
    static const char alphabet[] =
        "\"\\{}[],:0-.eE+ unlt\t\r\n/bd\x7f\x80\xa9\xbf\xc3\xe4\xed\xf0\xf4\xff";
    struct buf seeds;
    buf_init(&seeds, 1 << 24);
    for (size_t i = 0; i < NCASES; i++) {
        size_t len;
        char *in = load(&cases[i], &len);
        struct sse_reader r;
        sse_reader_init(&r, 0);
        sse_reader_feed(&r, in, len, collect_event, &seeds);
        sse_reader_release(&r);
        xfree(in);
    }
    for (size_t i = 0; i < sizeof(tricky) / sizeof(tricky[0]); i++) {
        if (tricky[i].len == 0)
            buf_append(&seeds, tricky[i].json, strlen(tricky[i].json) + 1);
    }
    const char *starts[512];
    size_t n = 0;
    for (size_t at = 0; at < seeds.len && n < 512; at += strlen(seeds.data + at) + 1)
        starts[n++] = seeds.data + at;
    size_t verdicts[4] = {0};
    struct buf m;
    buf_init(&m, 1 << 20);
    for (int iter = 0; iter < 20000; iter++) {
        buf_reset(&m);
        buf_appends(&m, starts[rnd() % n]);
        for (uint32_t edits = rnd() % 4 ? 1 : 2; edits > 0 && m.len > 0; edits--) {
            size_t at = rnd() % m.len;
            char ch = alphabet[rnd() % (sizeof(alphabet) - 1)];
            struct buf t;
            buf_init(&t, 1 << 20);
            buf_append(&t, m.data, at);
            switch (rnd() % 4) {
            case 0: /* replace */
                buf_appendc(&t, ch);
                buf_append(&t, m.data + at + 1, m.len - at - 1);
                break;
            case 1: /* delete */
                buf_append(&t, m.data + at + 1, m.len - at - 1);
                break;
            case 2: /* insert */
                buf_appendc(&t, ch);
                buf_append(&t, m.data + at, m.len - at);
                break;
            default: /* truncate */
                break;
            }
            buf_reset(&m);
            buf_append(&m, buf_str(&t), t.len);
            buf_release(&t);
        }
        struct json_skim_chunk c;
        verdicts[skim_checked(buf_str(&m), m.len, &c)]++;
        int status;
        char finish[32];
        char *what = xasprintf("mutant %d", iter);
        xfree(one_chunk_both_ways(buf_str(&m), m.len, what, &status, finish));
        xfree(what);
    }
    /* The mix must reach every verdict but UNSURE (rare by construction). */
    print_message("mutants: %zu plain, %zu other, %zu invalid, %zu unsure\n", verdicts[0],
                  verdicts[1], verdicts[2], verdicts[3]);
    assert_true(verdicts[JSON_SKIM_PLAIN] > 1000);
    assert_true(verdicts[JSON_SKIM_OTHER] > 500);
    assert_true(verdicts[JSON_SKIM_INVALID] > 1000);
    buf_release(&m);
    buf_release(&seeds);
}

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    struct CMUnitTest tests[NCASES + 10];
    for (size_t i = 0; i < NCASES; i++)
        tests[i] = (struct CMUnitTest){cases[i].name, test_case, NULL, NULL, (void *)&cases[i]};
    tests[NCASES] = (struct CMUnitTest)cmocka_unit_test(test_finish_twice_and_feed_after_error);
    tests[NCASES + 1] = (struct CMUnitTest)cmocka_unit_test(test_release_mid_line);
    tests[NCASES + 2] = (struct CMUnitTest)cmocka_unit_test(test_text_budget);
    tests[NCASES + 3] = (struct CMUnitTest)cmocka_unit_test(test_ident_cap);
    tests[NCASES + 4] = (struct CMUnitTest)cmocka_unit_test(test_paths_agree_on_streams);
    tests[NCASES + 5] = (struct CMUnitTest)cmocka_unit_test(test_tricky_chunks);
    tests[NCASES + 6] = (struct CMUnitTest)cmocka_unit_test(test_skim_strings);
    tests[NCASES + 7] = (struct CMUnitTest)cmocka_unit_test(test_deep_nesting);
    tests[NCASES + 8] = (struct CMUnitTest)cmocka_unit_test(test_long_strings);
    tests[NCASES + 9] = (struct CMUnitTest)cmocka_unit_test(test_mutated_chunks);
    return _cmocka_run_group_tests("openai_stream", tests, NCASES + 10, NULL, NULL);
}
