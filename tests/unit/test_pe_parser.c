/* SPDX-License-Identifier: MIT */
/* test_pe_parser.c -- the prompt-engineering tool-call engine: the streaming <tool_call> parser
 * fed whole, split at every position and byte by byte (content and argument deltas, merged per
 * kind, and the result must not depend on the split), the exact tool instruction, the history
 * rewrite, and the OpenAI request body in this mode (exact JSON). */
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
#include "llm/pe_parser.h"

struct call_want {
    const char *name, *args;
};

struct pe_case {
    const char *name;
    const char *in;
    const char *content; /* res.content */
    const char *finish;  /* res.finish_reason, given "stop" by the provider */
    size_t ncalls;
    struct call_want calls[3];
    const char *deltas; /* merged log: "C:<text>" and "T<index>|id|name|args" lines */
};

#define TC(body) "<tool_call>" body "</tool_call>"

static const struct pe_case cases[] = {
    {.name = "plain text",
     .in = "Hello, world. Nothing to call here: 2 > 1.",
     .content = "Hello, world. Nothing to call here: 2 > 1.",
     .finish = "stop",
     .deltas = "C:Hello, world. Nothing to call here: 2 > 1.\n"},
    {.name = "stray < is text",
     .in = "a < b, <b>bold</b>, <tool_cal! <tool>, <<, x<",
     .content = "a < b, <b>bold</b>, <tool_cal! <tool>, <<, x<",
     .finish = "stop",
     .deltas = "C:a < b, <b>bold</b>, <tool_cal! <tool>, <<, x\n"},
    {.name = "text ends in a partial tag",
     .in = "see <tool_ca",
     .content = "see <tool_ca",
     .finish = "stop",
     .deltas = "C:see \n"},
    {.name = "one complete call",
     .in = "Let me check.\n" TC("\n{\n  \"name\": \"read_file\",\n  \"parameters\": {\"path\": "
                                "\"a.txt\"}\n}\n"),
     .content = "Let me check.\n",
     .finish = "tool_calls",
     .ncalls = 1,
     .calls = {{"read_file", "{\"path\":\"a.txt\"}"}},
     .deltas = "C:Let me check.\n\nT0|call_T0|read_file|{\"path\": \"a.txt\"}\n"},
    {.name = "closing tag cut off by the stop sequence",
     .in = "<tool_call>\n{\n  \"name\": \"list_directory\",\n  \"parameters\": {}\n}\n",
     .content = "",
     .finish = "tool_calls",
     .ncalls = 1,
     .calls = {{"list_directory", "{}"}},
     .deltas = "T0|call_T0|list_directory|{}\n"},
    {.name = "partial closing tag is dropped",
     .in = "<tool_call>{\"name\": \"f\", \"parameters\": {\"a\": 1}}\n</tool_c",
     .content = "",
     .finish = "tool_calls",
     .ncalls = 1,
     .calls = {{"f", "{\"a\":1}"}},
     .deltas = "T0|call_T0|f|{\"a\": 1}\n"},
    {.name = "missing braces and quote are appended",
     .in = "<tool_call>{\"name\": \"write_file\", \"parameters\": {\"path\": \"x\", \"content\": "
           "\"a}b {c\"",
     .content = "",
     .finish = "tool_calls",
     .ncalls = 1,
     .calls = {{"write_file", "{\"path\":\"x\",\"content\":\"a}b {c\"}"}},
     .deltas = "T0|call_T0|write_file|{\"path\": \"x\", \"content\": \"a}b {c\"\n"},
    {.name = "cut inside a string",
     .in = "<tool_call>{\"name\": \"write_file\", \"parameters\": {\"content\": \"hel",
     .content = "",
     .finish = "tool_calls",
     .ncalls = 1,
     .calls = {{"write_file", "{\"content\":\"hel\"}"}},
     .deltas = "T0|call_T0|write_file|{\"content\": \"hel\n"},
    {.name = "cut after a comma",
     .in = "<tool_call>{\"name\": \"f\", \"parameters\": {\"a\": [1, 2], ",
     .content = "",
     .finish = "tool_calls",
     .ncalls = 1,
     .calls = {{"f", "{\"a\":[1,2]}"}},
     .deltas = "T0|call_T0|f|{\"a\": [1, 2], \n"},
    {.name = "two calls with text around",
     .in = "A" TC("{\"name\":\"f\",\"parameters\":{\"a\":1}}") "B\n" TC(
         "{\"name\":\"g\",\"parameters\":{\"b\":{\"c\":[]}}}") "C",
     .content = "AB\nC",
     .finish = "tool_calls",
     .ncalls = 2,
     .calls = {{"f", "{\"a\":1}"}, {"g", "{\"b\":{\"c\":[]}}"}},
     .deltas = "C:A\nT0|call_T0|f|{\"a\":1}\nC:B\n\nT1|call_T1|g|{\"b\":{\"c\":[]}}\nC:C\n"},
    {.name = "malformed JSON keeps the call with its parameters text",
     .in = TC("{\"name\": \"f\", \"parameters\": {\"a\": tru}}"),
     .content = "",
     .finish = "tool_calls",
     .ncalls = 1,
     .calls = {{"f", "{\"a\": tru}"}},
     .deltas = "T0|call_T0|f|{\"a\": tru}\n"},
    {.name = "malformed JSON without parameters keeps the call text",
     .in = TC(" {\"name\": \"f\", \"parameters\": nope} "),
     .content = "",
     .finish = "tool_calls",
     .ncalls = 1,
     .calls = {{"f", "{\"name\": \"f\", \"parameters\": nope}"}},
     .deltas = "T0|call_T0|f|\n"},
    {.name = "a call without a name is not a call",
     .in = "before " TC("{\"parameters\":{}}") " after",
     .content = "before  after",
     .finish = "stop",
     .deltas = "C:before \nC: after\n"},
    {.name = "< and </tool inside a call",
     .in = TC("{\"name\":\"w\",\"parameters\":{\"html\":\"<b>x</b></tool_ca</tool\"}}"),
     .content = "",
     .finish = "tool_calls",
     .ncalls = 1,
     .calls = {{"w", "{\"html\":\"<b>x</b></tool_ca</tool\"}"}},
     .deltas = "T0|call_T0|w|{\"html\":\"<b>x</b></tool_ca</tool\"}\n"},
    {.name = "parameters before name",
     .in = TC("{\"parameters\":{\"q\":\"x\"},\"name\":\"search\"}"),
     .content = "",
     .finish = "tool_calls",
     .ncalls = 1,
     .calls = {{"search", "{\"q\":\"x\"}"}},
     .deltas = "T0|call_T0|search|{\"q\":\"x\"}\n"},
    {.name = "fenced JSON inside the tags",
     .in = TC("\n```json\n{\"name\":\"f\",\"parameters\":{}}\n```\n"),
     .content = "",
     .finish = "tool_calls",
     .ncalls = 1,
     .calls = {{"f", "{}"}},
     .deltas = "T0|call_T0|f|{}\n"},
    {.name = "<< before a tag",
     .in = "x<<tool_call>{\"name\":\"f\"}</tool_call>",
     .content = "x<",
     .finish = "tool_calls",
     .ncalls = 1,
     .calls = {{"f", "{}"}},
     .deltas = "C:x<\nT0|call_T0|f|\n"},
    {.name = "null, missing and nested name",
     .in = TC("{\"name\":\"a\",\"parameters\":null}") TC("{\"x\":{\"name\":\"no\"},\"name\":\"b\"}"),
     .content = "",
     .finish = "tool_calls",
     .ncalls = 2,
     .calls = {{"a", "{}"}, {"b", "{}"}},
     .deltas = "T0|call_T0|a|\nT1|call_T1|b|\n"},
    {.name = "escaped name and an extra closing brace",
     .in = TC("{\"name\":\"re\\u0061d\",\"parameters\":{\"p\":\"\\\"}\"}}}"),
     .content = "",
     .finish = "tool_calls",
     .ncalls = 1,
     .calls = {{"read", "{\"p\":\"\\\"}\"}"}},
     .deltas = "T0|call_T0|read|{\"p\":\"\\\"}\"}\n"},
    {.name = "empty name is no name",
     .in = TC("{\"name\":\"\",\"parameters\":{}}"),
     .content = "",
     .finish = "stop",
     .deltas = ""},
    {.name = "UTF-8 around and inside",
     .in = "héllo ✓ " TC("{\"name\":\"f\",\"parameters\":{\"s\":\"日本\"}}"),
     .content = "héllo ✓ ",
     .finish = "tool_calls",
     .ncalls = 1,
     .calls = {{"f", "{\"s\":\"日本\"}"}},
     .deltas = "C:héllo ✓ \nT0|call_T0|f|{\"s\":\"日本\"}\n"},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

/* ------------------------------------------------------------------------------------------
 * Running the parser
 * ---------------------------------------------------------------------------------------- */

struct log {
    struct buf b;
    char last;         /* 'C' or 'T' for the last line, 0 at the start */
    size_t last_index; /* of the last T line */
    bool merge;        /* merge consecutive deltas of one kind (and index) */
};

static void rec_content(void *data, const char *s, size_t len)
{
    struct log *l = data;
    assert_true(len > 0);
    if (l->merge && l->last == 'C') {
        l->b.len--; /* drop the newline and go on */
    } else {
        buf_appends(&l->b, "C:");
    }
    buf_append(&l->b, s, len);
    buf_appendc(&l->b, '\n');
    l->last = 'C';
}

static void rec_tool(void *data, size_t index, const char *id, const char *name, const char *args,
                     size_t len)
{
    struct log *l = data;
    assert_non_null(id);
    assert_true(name[0] != '\0');
    if (l->merge && l->last == 'T' && l->last_index == index) {
        l->b.len--;
    } else {
        buf_appendf(&l->b, "T%zu|%s|%s|", index, id, name);
    }
    buf_append(&l->b, args, len);
    buf_appendc(&l->b, '\n');
    l->last = 'T';
    l->last_index = index;
}

static const struct llm_callbacks recording = {rec_content, NULL, rec_tool, NULL};

static void fixed_id(char out[PE_ID_MAX], size_t seq, void *data)
{
    snprintf(out, PE_ID_MAX, "call_T%zu", seq);
}

static char *describe(const struct llm_result *res)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    buf_appendf(&b, "content=%s\nraw=%s\nfinish=%s\n", res->content, res->raw_content,
                res->finish_reason);
    for (size_t i = 0; i < res->n_tool_calls; i++)
        buf_appendf(&b, "call=%s|%s|%s\n", res->tool_calls[i].id, res->tool_calls[i].name,
                    res->tool_calls[i].arguments);
    return buf_detach(&b, NULL);
}

struct outcome {
    char *result, *deltas;
};

/* Feeds in cut at cuts[0..n) (the last is strlen(in)) and finishes over a provider result that
 * says "stop" with content = the whole text. */
static struct outcome run(const char *in, const size_t *cuts, size_t n, bool merge)
{
    struct log l = {.merge = merge};
    buf_init(&l.b, 1 << 20);
    struct pe_parser p;
    pe_parser_init(&p, &recording, &l);
    p.make_id = fixed_id;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        pe_parser_feed(&p, in + at, cuts[i] - at);
        at = cuts[i];
    }
    struct llm_result res = {.content = in, .raw_content = in, .reasoning = "",
                             .finish_reason = "stop", .reasoning_signature = ""};
    pe_parser_finish(&p, &res);
    struct outcome o = {describe(&res), buf_detach(&l.b, NULL)};
    pe_parser_release(&p);
    return o;
}

static void outcome_free(struct outcome *o)
{
    xfree(o->result);
    xfree(o->deltas);
}

static void test_case(void **state)
{
    const struct pe_case *c = *state;
    size_t len = strlen(c->in);

    /* Whole: check every field. */
    struct log l = {.merge = false};
    buf_init(&l.b, 1 << 20);
    struct pe_parser p;
    pe_parser_init(&p, &recording, &l);
    p.make_id = fixed_id;
    pe_parser_feed(&p, c->in, len);
    struct llm_result res = {.content = "provider", .finish_reason = "stop"};
    pe_parser_finish(&p, &res);
    assert_string_equal(res.content, c->content);
    assert_string_equal(res.raw_content, c->in);
    assert_string_equal(res.finish_reason, c->finish);
    assert_int_equal(res.n_tool_calls, c->ncalls);
    for (size_t i = 0; i < c->ncalls; i++) {
        assert_string_equal(res.tool_calls[i].name, c->calls[i].name);
        assert_string_equal(res.tool_calls[i].arguments, c->calls[i].args);
        assert_true(strncmp(res.tool_calls[i].id, "call_T", 6) == 0);
    }
    assert_string_equal(buf_str(&l.b), c->deltas); /* one feed: at most one delta per call */
    /* Finishing twice gives the same. */
    struct llm_result again = {.finish_reason = "stop"};
    pe_parser_finish(&p, &again);
    assert_ptr_equal(again.tool_calls, res.tool_calls);
    assert_string_equal(again.content, res.content);
    pe_parser_release(&p);
    buf_release(&l.b);

    /* Every split point and byte by byte: the merged log and the result do not change. */
    size_t cuts[2] = {len, len};
    struct outcome whole = run(c->in, cuts, 1, true);
    for (size_t k = 0; k <= len; k++) {
        cuts[0] = k;
        struct outcome o = run(c->in, cuts, 2, true);
        if (strcmp(o.result, whole.result) != 0 || strcmp(o.deltas, whole.deltas) != 0)
            fail_msg("split at %zu differs:\n%s%s\nwant:\n%s%s", k, o.result, o.deltas,
                     whole.result, whole.deltas);
        outcome_free(&o);
    }
    size_t *bytes = xcalloc(len + 1, sizeof(*bytes));
    for (size_t k = 0; k < len; k++)
        bytes[k] = k + 1;
    struct outcome o = run(c->in, bytes, len ? len : 1, true);
    assert_string_equal(o.result, whole.result);
    assert_string_equal(o.deltas, whole.deltas);
    outcome_free(&o);
    xfree(bytes);
    outcome_free(&whole);
}

/* Streaming granularity: text is reported as it comes, held back only at a "<"; a call is
 * announced (empty arguments) once its name is complete, then its parameters stream. */
static void test_streaming_order(void **state)
{
    static const char *const feeds[] = {
        "I will ", "read <", "tool_call>\n{\"na", "me\": \"read_file\", ", "\"parameters\": {\"pa",
        "th\": \"a.txt\"", "}}\n</tool_", "call>", " done"};
    struct log l = {.merge = false};
    buf_init(&l.b, 1 << 20);
    struct pe_parser p;
    pe_parser_init(&p, &recording, &l);
    p.make_id = fixed_id;
    for (size_t i = 0; i < sizeof(feeds) / sizeof(feeds[0]); i++)
        pe_parser_feed(&p, feeds[i], strlen(feeds[i]));
    struct llm_result res = {.finish_reason = "stop"};
    pe_parser_finish(&p, &res);
    assert_string_equal(buf_str(&l.b), "C:I will \n"
                                       "C:read \n"
                                       "T0|call_T0|read_file|\n"
                                       "T0|call_T0|read_file|{\"pa\n"
                                       "T0|call_T0|read_file|th\": \"a.txt\"\n"
                                       "T0|call_T0|read_file|}\n"
                                       "C: done\n");
    assert_string_equal(res.content, "I will read  done");
    assert_string_equal(res.tool_calls[0].arguments, "{\"path\":\"a.txt\"}");
    pe_parser_release(&p);
    buf_release(&l.b);
}

/* Real ids look like the original's: call_<ms>_<9 base-36 characters>, unique per call. */
static void test_default_ids(void **state)
{
    struct pe_parser p;
    pe_parser_init(&p, NULL, NULL);
    const char *in = TC("{\"name\":\"a\"}") TC("{\"name\":\"b\"}");
    pe_parser_feed(&p, in, strlen(in));
    struct llm_result res = {.finish_reason = ""};
    pe_parser_finish(&p, &res);
    assert_int_equal(res.n_tool_calls, 2);
    for (size_t i = 0; i < 2; i++) {
        const char *id = res.tool_calls[i].id;
        assert_true(strncmp(id, "call_", 5) == 0);
        const char *us = strchr(id + 5, '_');
        assert_non_null(us);
        assert_true(us - (id + 5) >= 13);
        for (const char *q = id + 5; q < us; q++)
            assert_true(*q >= '0' && *q <= '9');
        assert_int_equal(strlen(us + 1), 9);
        for (const char *q = us + 1; *q; q++)
            assert_true((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'z'));
    }
    assert_string_not_equal(res.tool_calls[0].id, res.tool_calls[1].id);
    pe_parser_release(&p);
}

/* At most 128 calls are kept; the text of later ones is dropped, text after them is not. */
static void test_call_cap(void **state)
{
    struct pe_parser p;
    pe_parser_init(&p, NULL, NULL);
    for (int i = 0; i < 130; i++) {
        char *s = xasprintf(TC("{\"name\":\"f%d\"}") "t", i);
        pe_parser_feed(&p, s, strlen(s));
        xfree(s);
    }
    struct llm_result res = {.finish_reason = ""};
    pe_parser_finish(&p, &res);
    assert_int_equal(res.n_tool_calls, 128);
    assert_string_equal(res.tool_calls[127].name, "f127");
    assert_int_equal(strlen(res.content), 130);
    pe_parser_release(&p);
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

static const char tools_json[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"read_file\",\"description\":\"Read a "
    "file\",\"parameters\":{\"type\":\"object\",\"properties\":{\"path\":{\"type\":"
    "\"string\"}}}}},"
    "{\"type\":\"function\",\"function\":{\"name\":\"now\"}}]";

static const char want_instruction[] =
    "<tool_instruction>\n"
    "  1. You have access to the following tools:\n"
    "\n"
    "  <available_tools>\n"
    "  ## read_file\n"
    "\n"
    "Description: Read a file\n"
    "\n"
    "Parameters JSON Schema:\n"
    "```json\n"
    "{\"type\":\"object\",\"properties\":{\"path\":{\"type\":\"string\"}}}\n"
    "```\n"
    "\n"
    "\n"
    "\n"
    "## now\n"
    "\n"
    "Description: \n"
    "\n"
    "Parameters JSON Schema:\n"
    "```json\n"
    "{}\n"
    "```\n"
    "\n"
    "\n"
    "  </available_tools>\n"
    "\n"
    "  2. To call a tool, reply in exactly this format. The content of the tag must be valid "
    "JSON, and \"parameters\" must match the tool's Parameters JSON Schema:\n"
    "\n"
    "  <tool_call>\n"
    "  {\n"
    "    \"name\": \"tool_name\",\n"
    "    \"parameters\": {\n"
    "      \"param1\": \"value1\",\n"
    "      \"param2\": \"value2\"\n"
    "    }\n"
    "  }\n"
    "  </tool_call>\n"
    "\n"
    "  3. To give a final answer without calling a tool, reply in plain conversational text, "
    "WITHOUT the tool_call format.\n"
    "  4. WARNING:\n"
    "    4.1. Only call tools listed in <available_tools>.\n"
    "    4.2. After writing </tool_call>, STOP at once and wait for the tool result, which "
    "arrives in the next turn. Do not write anything after it.\n"
    "    4.3. Tool results are given to you in a user message. Use them to continue your work "
    "or to give the final answer.\n"
    "</tool_instruction>\n";

static void test_instruction(void **state)
{
    json_t *tools = parse(tools_json);
    char *s = pe_tool_instruction(tools);
    assert_string_equal(s, want_instruction);
    xfree(s);
    json_decref(tools);
    json_t *none = json_array();
    s = pe_tool_instruction(none);
    assert_string_equal(s, "");
    xfree(s);
    s = pe_tool_instruction(NULL);
    assert_string_equal(s, "");
    xfree(s);
    json_decref(none);
}

static void test_messages(void **state)
{
    json_t *tools = parse(tools_json);
    json_t *msgs = parse(
        "[{\"role\":\"system\",\"content\":\"You are TARS.\"},"
        "{\"role\":\"user\",\"content\":\"read a\"},"
        "{\"role\":\"assistant\",\"content\":\"On it.\\n<tool_call>\\n{\\\"name\\\": "
        "\\\"read_file\\\", \\\"parameters\\\": {\\\"path\\\": \\\"a\\\"}}\\n\","
        " \"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":"
        "\"read_file\",\"arguments\":\"{\\\"path\\\":\\\"a\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"hello\"},"
        "{\"role\":\"assistant\",\"content\":\"Two more.\",\"tool_calls\":["
        " {\"id\":\"c2\",\"function\":{\"name\":\"now\",\"arguments\":\"\"}},"
        " {\"id\":\"c3\",\"function\":{\"name\":\"read_file\",\"arguments\":\"{\\\"path\\\":\\\"b\\\"}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c2\",\"content\":[{\"type\":\"text\",\"text\":\"no\"},"
        " {\"type\":\"text\",\"text\":\"on\"},{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AA==\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c3\",\"content\":\"bee\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"zz\",\"content\":\"?\"},"
        "{\"role\":\"assistant\",\"content\":\"Final.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/z.png\"}}]}]");
    json_t *out = pe_prepare_messages(msgs, tools);
    char *instr = pe_tool_instruction(tools);
    char *sys = xasprintf("You are TARS.\n\n%s", instr);
    json_t *want_sys = json_pack("{s:s, s:s}", "role", "system", "content", sys);
    char *ws = json_dumps(want_sys, JSON_COMPACT);
    char *want = xasprintf(
        "[%s,"
        "{\"role\":\"user\",\"content\":\"read a\"},"
        "{\"role\":\"assistant\",\"content\":\"On it.\\n<tool_call>\\n{\\\"name\\\": "
        "\\\"read_file\\\", \\\"parameters\\\": {\\\"path\\\": \\\"a\\\"}}\\n\"},"
        "{\"role\":\"user\",\"content\":\"Tool: read_file\\nResult:\\nhello\"},"
        "{\"role\":\"assistant\",\"content\":\"Two more.\\n\\n<tool_call>\\n{\\\"name\\\":"
        "\\\"now\\\",\\\"parameters\\\":{}}\\n</tool_call>\\n<tool_call>\\n{\\\"name\\\":"
        "\\\"read_file\\\",\\\"parameters\\\":{\\\"path\\\":\\\"b\\\"}}\\n</tool_call>\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Tool: now\\nResult:\\nnoon\"},"
        " {\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AA==\"}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Tool: read_file\\nResult:\\nbee\"},"
        " {\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}}]},"
        "{\"role\":\"user\",\"content\":\"Tool: unknown\\nResult:\\n?\"},"
        "{\"role\":\"assistant\",\"content\":\"Final.\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":\"https://x/z.png\"}}]}]",
        ws);
    assert_json(out, want);
    json_decref(out);

    /* Borrowed input unchanged; without tools nothing is added, history still rewritten. */
    json_t *orig = json_array_get(msgs, 3);
    assert_string_equal(json_string_value(json_object_get(orig, "role")), "tool");
    out = pe_prepare_messages(msgs, NULL);
    assert_ptr_equal(json_array_get(out, 0), json_array_get(msgs, 0));
    assert_string_equal(json_string_value(json_object_get(json_array_get(out, 3), "role")), "user");
    json_decref(out);

    /* No system message: one is put first. */
    json_t *bare = parse("[{\"role\":\"user\",\"content\":\"hi\"}]");
    out = pe_prepare_messages(bare, tools);
    assert_int_equal(json_array_size(out), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(out, 0), "content")),
                        instr);
    json_decref(out);
    json_decref(bare);

    xfree(want);
    xfree(ws);
    json_decref(want_sys);
    xfree(sys);
    xfree(instr);
    json_decref(msgs);
    json_decref(tools);
}

static void test_openai_body(void **state)
{
    json_t *tools = parse(tools_json);
    json_t *msgs = parse("[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\","
                         "\"content\":\"go\"}]");
    struct llm_config cfg = {.model = "m", .provider = "openai", .max_tokens = 100,
                             .temperature = 0.5, .thinking = -1,
                             .tool_call_engine = LLM_ENGINE_PROMPT_ENGINEERING};
    json_t *body = llm_openai_body(&cfg, msgs, tools);
    char *instr = pe_tool_instruction(tools);
    char *sys = xasprintf("S\n\n%s", instr);
    json_t *want = json_pack("{s:s, s:[{s:s, s:s}, {s:s, s:s}], s:b, s:{s:b}, s:i, s:f, s:[s, s]}",
                             "model", "m", "messages", "role", "system", "content", sys, "role",
                             "user", "content", "go", "stream", 1, "stream_options",
                             "include_usage", 1, "max_tokens", 100, "temperature", 0.5, "stop",
                             "</tool_call>", "</tool_call>\n\n");
    char *w = json_dumps(want, JSON_COMPACT);
    assert_json(body, w);
    xfree(w);
    json_decref(want);
    json_decref(body);

    /* The native engine sends the tools and the messages as they are. */
    cfg.tool_call_engine = LLM_ENGINE_NATIVE;
    body = llm_openai_body(&cfg, msgs, tools);
    assert_ptr_equal(json_object_get(body, "messages"), msgs);
    assert_ptr_equal(json_object_get(body, "tools"), tools);
    assert_null(json_object_get(body, "stop"));
    json_decref(body);

    xfree(sys);
    xfree(instr);
    json_decref(msgs);
    json_decref(tools);
}

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    struct CMUnitTest tests[NCASES + 7];
    for (size_t i = 0; i < NCASES; i++)
        tests[i] = (struct CMUnitTest){cases[i].name, test_case, NULL, NULL, (void *)&cases[i]};
    tests[NCASES] = (struct CMUnitTest)cmocka_unit_test(test_streaming_order);
    tests[NCASES + 1] = (struct CMUnitTest)cmocka_unit_test(test_default_ids);
    tests[NCASES + 2] = (struct CMUnitTest)cmocka_unit_test(test_call_cap);
    tests[NCASES + 3] = (struct CMUnitTest)cmocka_unit_test(test_instruction);
    tests[NCASES + 4] = (struct CMUnitTest)cmocka_unit_test(test_messages);
    tests[NCASES + 5] = (struct CMUnitTest)cmocka_unit_test(test_openai_body);
    return _cmocka_run_group_tests("pe_parser", tests, NCASES + 6, NULL, NULL);
}
