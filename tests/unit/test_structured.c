/* SPDX-License-Identifier: MIT */
/* test_structured.c -- the structured_outputs tool-call engine: the JSON repair (table of input
 * -> exact output), the streaming parser fed whole, split at every position and byte by byte
 * (the content that streams out and the result must not depend on the split), and the request
 * side (response_format, history rewrite, the OpenAI body in this mode). */
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
#include "llm/llm.h"
#include "llm/structured.h"

/* ---- repair ----------------------------------------------------------------------------- */

static const struct {
    const char *in, *out; /* out NULL: not JSON */
    int open, str_depth;
} repairs[] = {
    {"{\"a\":1}", "{\"a\":1}", 0, 0},
    {"  {\"a\": [1, 2]}  trailing", "{\"a\": [1, 2]}", 0, 0},
    {"{\"a\":1,}", "{\"a\":1}", 0, 0},
    {"{\"a\":[1,2,],}", "{\"a\":[1,2]}", 0, 0},
    {"{\"content\":\"hel", "{\"content\":\"hel\"}", 1, 1},
    {"{\"content\":\"a\\", "{\"content\":\"a\"}", 1, 1},
    {"{\"content\":\"a\\u00", "{\"content\":\"a\"}", 1, 1},
    {"{\"a\":{\"b\":[1,{\"c\":tr", "{\"a\":{\"b\":[1,{\"c\":true}]}}", 4, 0},
    {"{\"a\":", "{\"a\":null}", 1, 0},
    {"{\"a\"", "{\"a\":null}", 1, 0},
    {"{\"a\":1,", "{\"a\":1}", 1, 0},
    {"{\"a\":-", "{\"a\":null}", 1, 0},
    {"{\"a\":1.", "{\"a\":1}", 1, 0},
    {"{\"a\":\"x\ny\"}", "{\"a\":\"x\\u000ay\"}", 0, 0},
    {"{\"a\":[1}", "{\"a\":[1]}", 0, 0},
    {"{\"a\":1}}]", "{\"a\":1}", 0, 0},
    {"```json\n{\"a\":1}\n```", "{\"a\":1}", 0, 0},
    {"```\n{\"a\":1", "{\"a\":1}", 1, 0},
    {"[1,2", "[1,2]", 1, 0},
    {"Hello", NULL, 0, 0},
    {"", NULL, 0, 0},
    {"```json\nnot json\n```", NULL, 0, 0},
};

static void test_repair(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(repairs) / sizeof(repairs[0]); i++) {
        struct so_repair info;
        char *out = so_json_repair(repairs[i].in, strlen(repairs[i].in), &info);
        if (repairs[i].out == NULL) {
            assert_null(out);
            continue;
        }
        if (out == NULL || strcmp(out, repairs[i].out) != 0)
            fail_msg("repair #%zu of '%s': got '%s', want '%s'", i, repairs[i].in,
                     out ? out : "(null)", repairs[i].out);
        assert_int_equal(info.open_at_end, repairs[i].open);
        assert_int_equal(info.string_depth, repairs[i].str_depth);
        json_t *j = json_loads(out, 0, NULL);
        assert_non_null(j);
        json_decref(j);
        xfree(out);
    }
    /* Deeper than the cap: refused. */
    char deep[SO_MAX_DEPTH + 2];
    memset(deep, '[', sizeof(deep) - 1);
    deep[sizeof(deep) - 1] = '\0';
    struct so_repair info;
    assert_null(so_json_repair(deep, strlen(deep), &info));
}

/* ---- the streaming parser ---------------------------------------------------------------- */

struct so_case {
    const char *name;
    const char *in;
    const char *streamed; /* the content deltas joined */
    const char *content;  /* res.content */
    const char *call;     /* "name|args", or NULL for none */
};

static const struct so_case cases[] = {
    {"well-formed answer", "{\"content\": \"Hello, world.\"}", "Hello, world.", "Hello, world.",
     NULL},
    {"well-formed call",
     "{\"content\":\"Listing.\",\"toolCall\":{\"name\":\"list_directory\",\"args\":{\"path\":"
     "\".\"}}}",
     "Listing.", "Listing.", "list_directory|{\"path\":\".\"}"},
    {"call first, content after",
     "{\"toolCall\":{\"name\":\"f\",\"args\":{\"content\":\"no\"}},\"content\":\"yes\"}", "yes",
     "yes", "f|{\"content\":\"no\"}"},
    {"escapes and unicode",
     "{\"content\":\"a\\\"b\\\\c\\nd \\u00e9 \\ud83d\\ude00 \xc3\xa9 \\/\"}",
     "a\"b\\c\nd \xc3\xa9 \xf0\x9f\x98\x80 \xc3\xa9 /", "a\"b\\c\nd \xc3\xa9 \xf0\x9f\x98\x80 "
                                                      "\xc3\xa9 /", NULL},
    {"repairable: unclosed string and brace", "{\"content\": \"Half an answ",
     "Half an answ", "Half an answ", NULL},
    {"repairable call: trailing commas, root unclosed",
     "{\"content\":\"Writing.\",\"toolCall\":{\"name\":\"write_file\",\"args\":{\"path\":"
     "\"a.txt\",\"content\":\"x\",},},",
     "Writing.", "Writing.", "write_file|{\"path\":\"a.txt\",\"content\":\"x\"}"},
    {"repairable call: toolCall unclosed after its args",
     "{\"content\":\"Go.\",\"toolCall\":{\"name\":\"f\",\"args\":{\"a\":[1,2]}", "Go.", "Go.",
     "f|{\"a\":[1,2]}"},
    {"cut-off arguments are never run",
     "{\"content\":\"Writing.\",\"toolCall\":{\"name\":\"write_file\",\"args\":{\"path\":"
     "\"a.txt\",\"content\":\"rm -",
     "Writing.", "Writing.", NULL},
    {"cut-off name is never run", "{\"toolCall\":{\"args\":{},\"name\":\"write_fi", "", "", NULL},
    {"args as JSON text", "{\"toolCall\":{\"name\":\"f\",\"args\":\"{\\\"a\\\":1}\"}}", "", "",
     "f|{\"a\":1}"},
    {"no args: no call", "{\"content\":\"x\",\"toolCall\":{\"name\":\"f\"}}", "x", "x", NULL},
    {"markdown fence", "```json\n{\"content\":\"Fenced.\"}\n```", "Fenced.", "Fenced.", NULL},
    {"plain text passes through", "Just text, no JSON {here}.", "Just text, no JSON {here}.",
     "Just text, no JSON {here}.", NULL},
    {"hopeless JSON keeps what streamed", "{\"content\": \"Partial\" \"toolCall\": oops}",
     "Partial", "Partial", NULL},
    {"hopeless JSON with nothing streamed", "{content: hi}", "", "{content: hi}", NULL},
    {"nested content key is not the answer",
     "{\"meta\":{\"content\":\"inner\"},\"content\":\"outer\"}", "outer", "outer", NULL},
    {"content null", "{\"content\":null,\"toolCall\":{\"name\":\"f\",\"args\":{}}}", "", "",
     "f|{}"},
};

struct log {
    struct buf text;
};

static void on_content(void *data, const char *s, size_t len)
{
    struct log *l = data;
    assert_true(len > 0);
    buf_append(&l->text, s, len);
}

static const struct llm_callbacks log_cbs = {.on_content = on_content};

static void fixed_id(char out[PE_ID_MAX], size_t seq, void *data)
{
    (void)data;
    snprintf(out, PE_ID_MAX, "call_S%zu", seq);
}

/* Feeds `in` in pieces cut at the given positions; checks everything. */
static void run_case(const struct so_case *c, const size_t *cuts, size_t ncuts, const char *how)
{
    struct log l;
    buf_init(&l.text, 1 << 20);
    struct so_parser p;
    so_parser_init(&p, &log_cbs, &l);
    p.make_id = fixed_id;
    size_t len = strlen(c->in), at = 0;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t end = i < ncuts ? cuts[i] : len;
        so_parser_feed(&p, c->in + at, end - at);
        at = end;
    }
    struct llm_result res = {.content = "", .reasoning = "", .finish_reason = "stop"};
    so_parser_finish(&p, &res);
    if (strcmp(buf_str(&l.text), c->streamed) != 0)
        fail_msg("%s (%s): streamed '%s', want '%s'", c->name, how, buf_str(&l.text),
                 c->streamed);
    if (strcmp(res.content, c->content) != 0)
        fail_msg("%s (%s): content '%s', want '%s'", c->name, how, res.content, c->content);
    assert_string_equal(res.raw_content, c->in);
    if (c->call == NULL) {
        assert_int_equal(res.n_tool_calls, 0);
        assert_string_equal(res.finish_reason, "stop");
    } else {
        assert_int_equal(res.n_tool_calls, 1);
        char *got = xasprintf("%s|%s", res.tool_calls[0].name, res.tool_calls[0].arguments);
        if (strcmp(got, c->call) != 0)
            fail_msg("%s (%s): call '%s', want '%s'", c->name, how, got, c->call);
        xfree(got);
        assert_string_equal(res.tool_calls[0].id, "call_S0");
        assert_string_equal(res.finish_reason, "tool_calls");
    }
    so_parser_release(&p);
    buf_release(&l.text);
}

static void test_parser_whole(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i], NULL, 0, "whole");
}

static void test_parser_split(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].in);
        for (size_t cut = 1; cut < len; cut++)
            run_case(&cases[i], &cut, 1, "split");
    }
}

static void test_parser_bytes(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].in);
        size_t *cuts = xcalloc(len + 1, sizeof(size_t));
        for (size_t k = 1; k < len; k++)
            cuts[k - 1] = k;
        run_case(&cases[i], cuts, len > 0 ? len - 1 : 0, "bytes");
        xfree(cuts);
    }
}

/* ---- request side ----------------------------------------------------------------------- */

static json_t *parse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (j == NULL)
        fail_msg("bad test JSON: %s", e.text);
    return j;
}

static const char tools_json[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"read_file\",\"description\":\"Read a "
    "file\",\"parameters\":{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\"}}}"
    "}}]";

static void test_request(void **state)
{
    (void)state;
    json_t *tools = parse(tools_json);
    json_t *msgs = parse(
        "[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"go\"},"
        "{\"role\":\"assistant\",\"content\":\"Reading.\",\"tool_calls\":[{\"id\":\"c1\","
        "\"type\":\"function\",\"function\":{\"name\":\"read_file\",\"arguments\":"
        "\"{\\\"path\\\":\\\"a\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"hello\"},"
        "{\"role\":\"assistant\",\"content\":\"{\\\"content\\\":\\\"x\\\",\\\"toolCall\\\":{}}\","
        "\"tool_calls\":[{\"id\":\"c2\",\"type\":\"function\",\"function\":{\"name\":"
        "\"read_file\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c2\",\"content\":\"bye\"}]");
    struct llm_config cfg = {.model = "m", .provider = "openai", .thinking = -1,
                             .temperature = -1,
                             .tool_call_engine = LLM_ENGINE_STRUCTURED_OUTPUTS};
    json_t *body = llm_openai_body(&cfg, msgs, tools);
    assert_null(json_object_get(body, "tools"));
    json_t *rf = json_object_get(body, "response_format");
    assert_string_equal(json_get_str(rf, "type"), "json_schema");
    const json_t *js = json_object_get(rf, "json_schema");
    assert_string_equal(json_get_str(js, "name"), "agent_response_schema");
    assert_true(json_is_true(json_object_get(js, "strict")));
    const json_t *props = json_object_get(json_object_get(js, "schema"), "properties");
    assert_non_null(json_object_get(props, "content"));
    assert_non_null(json_object_get(json_object_get(json_object_get(props, "toolCall"),
                                                    "properties"), "args"));
    const json_t *m = json_object_get(body, "messages");
    assert_int_equal(json_array_size(m), 6);
    const char *sys = json_get_str(json_array_get(m, 0), "content");
    assert_non_null(strstr(sys, "S\n\nAVAILABLE TOOLS:\n\nTool name: read_file\n"));
    assert_non_null(strstr(sys, "\"toolCall\""));
    /* A native-engine turn is written as the engine's JSON; the model's own JSON stays. */
    assert_string_equal(json_get_str(json_array_get(m, 2), "content"),
                        "{\"content\":\"Reading.\",\"toolCall\":{\"name\":\"read_file\",\"args\":"
                        "{\"path\":\"a\"}}}");
    assert_null(json_object_get(json_array_get(m, 2), "tool_calls"));
    assert_string_equal(json_get_str(json_array_get(m, 3), "role"), "user");
    assert_string_equal(json_get_str(json_array_get(m, 3), "content"),
                        "Tool: read_file\nResult:\nhello");
    assert_string_equal(json_get_str(json_array_get(m, 4), "content"),
                        "{\"content\":\"x\",\"toolCall\":{}}");
    json_decref(body);

    /* Without tools: no response_format, the prompt unchanged (as the original). */
    json_t *empty = json_array();
    body = llm_openai_body(&cfg, msgs, empty);
    assert_null(json_object_get(body, "response_format"));
    assert_string_equal(json_get_str(json_array_get(json_object_get(body, "messages"), 0),
                                     "content"), "S");
    json_decref(body);
    json_decref(empty);
    json_decref(msgs);
    json_decref(tools);
}

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_repair),
        cmocka_unit_test(test_parser_whole),
        cmocka_unit_test(test_parser_split),
        cmocka_unit_test(test_parser_bytes),
        cmocka_unit_test(test_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
