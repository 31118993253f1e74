/* SPDX-License-Identifier: MIT */
/* anthropic_stream.c -- pure decoder for the Anthropic Messages API stream (agent-tools-llm.md
 * §1.5): named SSE events in, the same content / reasoning / tool-call deltas as the OpenAI
 * decoder out, and the assembled llm_result at the end. The request side is anthropic_body.c. */
#include "anthropic_stream.h"

#include <string.h>

#include "../core/util.h"
#include "../core/xalloc.h"

/* Caps on what one stream may make us keep, as in openai_stream.c. */
#define ANTH_MAX_TEXT_BYTES (64u * 1024 * 1024) /* content + reasoning + signature + inputs */
#define ANTH_MAX_TOOLS 128                      /* tool_use blocks in one message */
#define ANTH_MAX_BLOCKS 4096                    /* content block indexes 0..4095 */
#define ANTH_MAX_ID_BYTES 1024                  /* one tool_use id or name */

static int set_error_own(struct anth_stream *s, int status, char *msg)
{
    if (s->status < 0) {
        xfree(msg); /* the first error wins */
        return s->status;
    }
    s->status = status;
    s->error = msg;
    return status;
}

static int set_error(struct anth_stream *s, int status, const char *msg)
{
    return set_error_own(s, status, xstrdup(msg));
}

void anth_stream_init(struct anth_stream *s, const struct llm_callbacks *cb, void *data,
                      size_t max_line_bytes)
{
    memset(s, 0, sizeof(*s));
    sse_reader_init(&s->sse, max_line_bytes);
    s->cb = cb;
    s->data = data;
    buf_init(&s->content, ANTH_MAX_TEXT_BYTES);
    buf_init(&s->reasoning, ANTH_MAX_TEXT_BYTES);
    buf_init(&s->signature, ANTH_MAX_TEXT_BYTES);
}

void anth_stream_release(struct anth_stream *s)
{
    sse_reader_release(&s->sse);
    buf_release(&s->content);
    buf_release(&s->reasoning);
    buf_release(&s->signature);
    for (size_t i = 0; i < s->ntools; i++) {
        buf_release(&s->tools[i].id);
        buf_release(&s->tools[i].name);
        buf_release(&s->tools[i].args);
        json_decref(s->tools[i].input);
    }
    xfree(s->tools);
    s->tools = NULL;
    s->ntools = 0;
    xfree(s->blocks);
    s->blocks = NULL;
    s->nblocks = 0;
    xfree(s->calls);
    s->calls = NULL;
    json_decref(s->usage);
    s->usage = NULL;
    xfree(s->error);
    s->error = NULL;
}

/* Appends streamed text to b, counting it against the whole stream's budget. */
static int keep_text(struct anth_stream *s, struct buf *b, const char *p, size_t len)
{
    if (len > ANTH_MAX_TEXT_BYTES - s->text_bytes || buf_append(b, p, len) < 0)
        return set_error_own(s, LLM_ERR_PROTOCOL,
                             xasprintf("stream text over %u bytes", ANTH_MAX_TEXT_BYTES));
    s->text_bytes += len;
    return 0;
}

typedef void (*text_cb)(void *data, const char *s, size_t len);

/* Keeps a text value and reports it; empty strings and non-strings are skipped. */
static int on_text(struct anth_stream *s, struct buf *b, const json_t *v, text_cb cb)
{
    size_t len = json_string_length(v);
    if (!json_is_string(v) || len == 0)
        return 0;
    if (keep_text(s, b, json_string_value(v), len) < 0)
        return s->status;
    if (cb)
        cb(s->data, json_string_value(v), len);
    return 0;
}

static text_cb content_cb(const struct anth_stream *s)
{
    return s->cb ? s->cb->on_content : NULL;
}

static text_cb reasoning_cb(const struct anth_stream *s)
{
    return s->cb ? s->cb->on_reasoning : NULL;
}

/* ------------------------------------------------------------------------------------------
 * Content blocks
 * ---------------------------------------------------------------------------------------- */

/* The block an event's "index" names, grown on demand; NULL (error set) if the index is bad. */
static struct anth_block *get_block(struct anth_stream *s, const json_t *ev)
{
    const json_t *jindex = json_object_get(ev, "index");
    if (!json_is_integer(jindex)) {
        set_error(s, LLM_ERR_PROTOCOL, "content block event without an index");
        return NULL;
    }
    json_int_t index = json_integer_value(jindex);
    if (index < 0 || index >= ANTH_MAX_BLOCKS) {
        set_error_own(s, LLM_ERR_PROTOCOL,
                      xasprintf("content block index %lld out of range", (long long)index));
        return NULL;
    }
    if ((size_t)index >= s->nblocks) {
        s->blocks = xrealloc(s->blocks, ((size_t)index + 1) * sizeof(*s->blocks));
        memset(s->blocks + s->nblocks, 0, ((size_t)index + 1 - s->nblocks) * sizeof(*s->blocks));
        s->nblocks = (size_t)index + 1;
    }
    return &s->blocks[index];
}

static int set_ident(struct anth_stream *s, struct buf *b, const char *v, const char *what)
{
    if (v != NULL && buf_appends(b, v) < 0)
        return set_error_own(s, LLM_ERR_PROTOCOL,
                             xasprintf("tool_use %s over %d bytes", what, ANTH_MAX_ID_BYTES));
    return 0;
}

static void tool_delta(struct anth_stream *s, const struct anth_tool *t, size_t slot,
                       const char *args, size_t len)
{
    if (s->cb && s->cb->on_tool_call_delta)
        s->cb->on_tool_call_delta(s->data, slot, buf_str(&t->id), buf_str(&t->name), args, len);
}

/* A tool_use block opens the next tool slot and announces it with empty arguments, as the
 * first OpenAI fragment of a tool call does. */
static int start_tool_use(struct anth_stream *s, struct anth_block *blk, const json_t *cb)
{
    if (s->ntools >= ANTH_MAX_TOOLS)
        return set_error_own(s, LLM_ERR_PROTOCOL,
                             xasprintf("more than %d tool_use blocks", ANTH_MAX_TOOLS));
    s->tools = xrealloc(s->tools, (s->ntools + 1) * sizeof(*s->tools));
    struct anth_tool *t = &s->tools[s->ntools];
    memset(t, 0, sizeof(*t));
    buf_init(&t->id, ANTH_MAX_ID_BYTES);
    buf_init(&t->name, ANTH_MAX_ID_BYTES);
    buf_init(&t->args, ANTH_MAX_TEXT_BYTES);
    blk->kind = ANTH_BLOCK_TOOL_USE;
    blk->tool = s->ntools++;
    if (set_ident(s, &t->id, json_get_str(cb, "id"), "id") < 0 ||
        set_ident(s, &t->name, json_get_str(cb, "name"), "name") < 0)
        return s->status;
    /* The input is normally {} here and streamed as input_json_delta; a non-empty one is kept
     * for a server that sends the whole input up front. */
    json_t *input = json_object_get(cb, "input");
    if (json_is_object(input) && json_object_size(input) > 0)
        t->input = json_incref(input);
    tool_delta(s, t, blk->tool, "", 0);
    return 0;
}

static int on_block_start(struct anth_stream *s, const json_t *ev)
{
    struct anth_block *blk = get_block(s, ev);
    if (blk == NULL)
        return s->status;
    const json_t *cb = json_object_get(ev, "content_block");
    const char *type = json_get_str(cb, "type");
    if (type == NULL) {
        blk->kind = ANTH_BLOCK_OTHER;
        return 0;
    }
    if (strcmp(type, "text") == 0) {
        blk->kind = ANTH_BLOCK_TEXT;
        return on_text(s, &s->content, json_object_get(cb, "text"), content_cb(s));
    }
    if (strcmp(type, "thinking") == 0) {
        blk->kind = ANTH_BLOCK_THINKING;
        buf_reset(&s->signature); /* a new block brings its own signature */
        if (on_text(s, &s->reasoning, json_object_get(cb, "thinking"), reasoning_cb(s)) < 0)
            return s->status;
        return on_text(s, &s->signature, json_object_get(cb, "signature"), NULL);
    }
    if (strcmp(type, "tool_use") == 0)
        return start_tool_use(s, blk, cb);
    blk->kind = ANTH_BLOCK_OTHER;
    return 0;
}

static int on_input_json(struct anth_stream *s, const struct anth_block *blk, const json_t *d)
{
    /* Server tool blocks (web search run by Anthropic) stream their input too; it is not ours
     * to run. Input for a block that never started has lost its id and name. */
    if (blk->kind == ANTH_BLOCK_NONE)
        return set_error(s, LLM_ERR_PROTOCOL, "input_json_delta for a block that never started");
    if (blk->kind != ANTH_BLOCK_TOOL_USE)
        return 0;
    struct anth_tool *t = &s->tools[blk->tool];
    const json_t *v = json_object_get(d, "partial_json");
    size_t len = json_string_length(v);
    if (!json_is_string(v) || len == 0)
        return 0; /* the first fragment is usually "" */
    if (keep_text(s, &t->args, json_string_value(v), len) < 0)
        return s->status;
    t->got_delta = true;
    tool_delta(s, t, blk->tool, json_string_value(v), len);
    return 0;
}

static int on_block_delta(struct anth_stream *s, const json_t *ev)
{
    struct anth_block *blk = get_block(s, ev);
    if (blk == NULL)
        return s->status;
    const json_t *d = json_object_get(ev, "delta");
    const char *type = json_get_str(d, "type");
    if (type == NULL)
        return 0;
    /* Text and thinking are taken whatever block they claim to belong to: the text is what
     * matters, and a missing content_block_start should not lose it. */
    if (strcmp(type, "text_delta") == 0)
        return on_text(s, &s->content, json_object_get(d, "text"), content_cb(s));
    if (strcmp(type, "thinking_delta") == 0)
        return on_text(s, &s->reasoning, json_object_get(d, "thinking"), reasoning_cb(s));
    if (strcmp(type, "signature_delta") == 0)
        return on_text(s, &s->signature, json_object_get(d, "signature"), NULL);
    if (strcmp(type, "input_json_delta") == 0)
        return on_input_json(s, blk, d);
    return 0; /* citations_delta and newer kinds */
}

static int on_block_stop(struct anth_stream *s, const json_t *ev)
{
    struct anth_block *blk = get_block(s, ev);
    if (blk == NULL || blk->kind != ANTH_BLOCK_TOOL_USE)
        return s->status;
    struct anth_tool *t = &s->tools[blk->tool];
    if (t->got_delta || t->input == NULL)
        return 0;
    /* The whole input came in content_block_start: hand it on as the only fragment. */
    size_t len;
    char *args = json_dump_compact(t->input, &len);
    int rc = keep_text(s, &t->args, args, len);
    if (rc == 0) {
        t->got_delta = true;
        tool_delta(s, t, blk->tool, args, len);
    }
    xfree(args);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Message events
 * ---------------------------------------------------------------------------------------- */

/* Copies the numbers and strings of `from` into s->usage (null members are skipped: a
 * message_delta may say "input_tokens": null meaning "unchanged"). */
static void merge_usage(struct anth_stream *s, const json_t *from)
{
    if (!json_is_object(from))
        return;
    if (s->usage == NULL)
        s->usage = json_object();
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)from, key, v)
    {
        if (!json_is_null(v))
            json_object_set_new(s->usage, key, json_deep_copy(v));
    }
}

/* Anthropic stop reasons in the words of OpenAI's finish_reason, which the agent loop and the
 * event stream use; unknown ones pass through. */
static const char *map_stop_reason(const char *r)
{
    static const char *const map[][2] = {
        {"end_turn", "stop"},          {"stop_sequence", "stop"},
        {"tool_use", "tool_calls"},    {"max_tokens", "length"},
        {"refusal", "content_filter"}, {"model_context_window_exceeded", "length"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(r, map[i][0]) == 0)
            return map[i][1];
    return r;
}

static int on_message_delta(struct anth_stream *s, const json_t *ev)
{
    const char *r = json_get_str(json_object_get(ev, "delta"), "stop_reason");
    if (r != NULL && r[0] != '\0') {
        const char *fr = map_stop_reason(r);
        size_t n = strlen(fr);
        if (n >= sizeof(s->finish_reason))
            n = sizeof(s->finish_reason) - 1;
        memcpy(s->finish_reason, fr, n);
        s->finish_reason[n] = '\0';
    }
    merge_usage(s, json_object_get(ev, "usage"));
    return 0;
}

/* "Overloaded" from {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}};
 * without a message, the error's type, else the whole payload. Caller owns the result. */
static char *error_message(const json_t *j)
{
    const json_t *err = json_object_get(j, "error");
    const char *msg = json_get_str(err, "message");
    if (msg == NULL || msg[0] == '\0')
        msg = json_get_str(err, "type");
    if (msg == NULL || msg[0] == '\0')
        msg = json_get_str(j, "message");
    if (msg != NULL && msg[0] != '\0')
        return xstrdup(msg);
    return json_dump_compact(j, NULL);
}

static int on_message(struct anth_stream *s, const char *type, const json_t *ev)
{
    if (strcmp(type, "content_block_delta") == 0)
        return on_block_delta(s, ev);
    if (strcmp(type, "content_block_start") == 0)
        return on_block_start(s, ev);
    if (strcmp(type, "content_block_stop") == 0)
        return on_block_stop(s, ev);
    if (strcmp(type, "message_start") == 0) {
        merge_usage(s, json_object_get(json_object_get(ev, "message"), "usage"));
        return 0;
    }
    if (strcmp(type, "message_delta") == 0)
        return on_message_delta(s, ev);
    if (strcmp(type, "message_stop") == 0) {
        s->done = true;
        return 0;
    }
    if (strcmp(type, "error") == 0)
        return set_error_own(s, LLM_ERR_STREAM, error_message(ev));
    return 0; /* ping, and event types newer than this decoder (versioning policy) */
}

static bool is_blank(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
            return false;
    }
    return true;
}

static char *not_json_message(const char *payload, size_t len)
{
    size_t n = len;
    if (n > 80) {
        n = 80;
        while (n > 0 && ((unsigned char)payload[n] & 0xC0) == 0x80)
            n--;
    }
    return xasprintf("stream event is not a JSON object: %.*s%s", (int)n, payload,
                     n < len ? "..." : "");
}

/* The event name and data.type agree on the wire; data.type decides, the name stands in when
 * it is missing, and an "error" name always means an error. */
static int on_event(void *data, const char *event, const char *payload, size_t len)
{
    struct anth_stream *s = data;
    if (s->done)
        return 0; /* nothing after message_stop counts */
    bool error_event = strcmp(event, "error") == 0;
    if (is_blank(payload, len))
        return error_event ? set_error(s, LLM_ERR_STREAM, "error event without a message") : 0;
    json_t *ev = json_loadb(payload, len, 0, NULL);
    if (!json_is_object(ev)) {
        json_decref(ev);
        if (error_event)
            return set_error_own(s, LLM_ERR_STREAM, xstrndup(payload, len));
        return set_error_own(s, LLM_ERR_PROTOCOL, not_json_message(payload, len));
    }
    const char *type = json_get_str(ev, "type");
    if (error_event)
        type = "error";
    else if (type == NULL)
        type = event;
    int rc = on_message(s, type, ev);
    json_decref(ev);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Public API
 * ---------------------------------------------------------------------------------------- */

int anth_stream_feed(struct anth_stream *s, const char *p, size_t len)
{
    if (s->status < 0)
        return s->status;
    int rc = sse_reader_feed(&s->sse, p, len, on_event, s);
    if (rc == SSE_ERR_LINE_TOO_LONG)
        return set_error_own(s, LLM_ERR_PROTOCOL,
                             xasprintf("stream line over %zu bytes", s->sse.max_line));
    return rc < 0 ? s->status : 0;
}

static json_int_t usage_int(const json_t *u, const char *key)
{
    const json_t *v = json_object_get(u, key);
    return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* Adds the OpenAI names next to Anthropic's, so either kind of reader finds its totals. The
 * prompt counts every input token, cached or not. */
static void add_openai_usage(json_t *u)
{
    if (u == NULL)
        return;
    json_int_t in = usage_int(u, "input_tokens") + usage_int(u, "cache_creation_input_tokens") +
                    usage_int(u, "cache_read_input_tokens");
    json_int_t out = usage_int(u, "output_tokens");
    json_object_set_new(u, "prompt_tokens", json_integer(in));
    json_object_set_new(u, "completion_tokens", json_integer(out));
    json_object_set_new(u, "total_tokens", json_integer(in + out));
}

int anth_stream_finish(struct anth_stream *s, struct llm_result *res)
{
    /* A last event without its blank line is dropped (WHATWG): the SDK's recordings end that
     * way, so EOF after a stop_reason counts as complete. */
    if (s->status == 0 && !s->done && s->finish_reason[0] == '\0')
        set_error(s, LLM_ERR_TRUNCATED, "stream ended before completion");
    xfree(s->calls);
    s->calls = xcalloc(s->ntools ? s->ntools : 1, sizeof(*s->calls));
    for (size_t i = 0; i < s->ntools; i++) {
        buf_append(&s->tools[i].id, "", 0); /* storage, so that "" points into s too */
        buf_append(&s->tools[i].name, "", 0);
        buf_append(&s->tools[i].args, "", 0);
        s->calls[i].id = s->tools[i].id.data;
        s->calls[i].name = s->tools[i].name.data;
        s->calls[i].arguments = s->tools[i].args.data;
    }
    add_openai_usage(s->usage);
    memset(res, 0, sizeof(*res));
    res->content = buf_str(&s->content);
    res->raw_content = res->content;
    res->reasoning = buf_str(&s->reasoning);
    res->reasoning_signature = buf_str(&s->signature);
    res->tool_calls = s->calls;
    res->n_tool_calls = s->ntools;
    res->finish_reason = s->finish_reason;
    res->usage = s->usage;
    return s->status;
}
