/* SPDX-License-Identifier: MIT */
/* openai_stream.c -- pure decoder for OpenAI-compatible chat.completion.chunk streams
 * (agent-tools-llm.md §1.2, §1.4): SSE events in, content / reasoning / tool-call deltas out,
 * and the assembled llm_result at the end. Plain text chunks skip jansson (json_skim.h); provider
 * quirks it tolerates are listed in docs/internals/LLM_STREAM.md. */
#include "openai_stream.h"

#include <string.h>

#include "../core/util.h"
#include "../core/xalloc.h"
#include "json_skim.h"

/* Caps on what one stream may make us keep. Input is already bounded per line by the SSE
 * reader; these bound the sum over a long stream and the slot array an index can make us grow. */
#define OAI_MAX_TEXT_BYTES (64u * 1024 * 1024) /* content + reasoning + all arguments */
#define OAI_MAX_TOOL_CALLS 128                 /* tool-call indexes 0..127 */
#define OAI_MAX_ID_BYTES 1024                  /* one tool call's id or name */

static int set_error_own(struct oai_stream *s, int status, char *msg)
{
    if (s->status < 0) {
        xfree(msg); /* the first error wins */
        return s->status;
    }
    s->status = status;
    s->error = msg;
    return status;
}

static int set_error(struct oai_stream *s, int status, const char *msg)
{
    return set_error_own(s, status, xstrdup(msg));
}

void oai_stream_init(struct oai_stream *s, const struct llm_callbacks *cb, void *data,
                     size_t max_line_bytes)
{
    memset(s, 0, sizeof(*s));
    sse_reader_init(&s->sse, max_line_bytes);
    s->cb = cb;
    s->data = data;
    buf_init(&s->content, OAI_MAX_TEXT_BYTES);
    buf_init(&s->reasoning, OAI_MAX_TEXT_BYTES);
}

void oai_stream_release(struct oai_stream *s)
{
    sse_reader_release(&s->sse);
    buf_release(&s->content);
    buf_release(&s->reasoning);
    for (size_t i = 0; i < s->nslots; i++) {
        buf_release(&s->slots[i].id);
        buf_release(&s->slots[i].name);
        buf_release(&s->slots[i].args);
    }
    xfree(s->slots);
    s->slots = NULL;
    s->nslots = 0;
    xfree(s->calls);
    s->calls = NULL;
    s->ncalls = 0;
    json_decref(s->usage);
    s->usage = NULL;
    xfree(s->error);
    s->error = NULL;
}

/* Appends streamed text to b, counting it against the whole stream's budget. */
static int keep_text(struct oai_stream *s, struct buf *b, const char *p, size_t len)
{
    if (len > OAI_MAX_TEXT_BYTES - s->text_bytes || buf_append(b, p, len) < 0)
        return set_error_own(s, LLM_ERR_PROTOCOL,
                             xasprintf("stream text over %u bytes", OAI_MAX_TEXT_BYTES));
    s->text_bytes += len;
    return 0;
}

/* The message of an error value: a string as is, else its "message" member, else the value as
 * compact JSON so that nothing the provider said is lost. Caller owns the result. */
static char *error_message(const json_t *err)
{
    const char *msg = json_string_value(err);
    if (msg == NULL)
        msg = json_get_str(err, "message");
    if (msg != NULL && msg[0] != '\0')
        return xstrdup(msg);
    return json_dump_compact(err, NULL);
}

/* ------------------------------------------------------------------------------------------
 * Tool calls
 * ---------------------------------------------------------------------------------------- */

static struct oai_slot *get_slot(struct oai_stream *s, size_t index)
{
    if (index >= s->nslots) {
        s->slots = xrealloc(s->slots, (index + 1) * sizeof(*s->slots));
        for (size_t i = s->nslots; i <= index; i++) {
            struct oai_slot *slot = &s->slots[i];
            buf_init(&slot->id, OAI_MAX_ID_BYTES);
            buf_init(&slot->name, OAI_MAX_ID_BYTES);
            buf_init(&slot->args, OAI_MAX_TEXT_BYTES);
            slot->used = false;
        }
        s->nslots = index + 1;
    }
    return &s->slots[index];
}

/* Sets an id or name. Empty values never replace a known one: Hunyuan repeats "name":"" on
 * every later fragment. */
static int set_ident(struct oai_stream *s, struct buf *b, const char *v, const char *what)
{
    if (v == NULL || v[0] == '\0' || strcmp(buf_str(b), v) == 0)
        return 0;
    buf_reset(b);
    if (buf_appends(b, v) < 0)
        return set_error_own(s, LLM_ERR_PROTOCOL,
                             xasprintf("tool call %s over %d bytes", what, OAI_MAX_ID_BYTES));
    return 0;
}

/* One element of delta.tool_calls. Fragments are keyed by "index", never by "id"; `pos` (the
 * position in the array) stands in for a missing index. */
static int on_tool_call(struct oai_stream *s, const json_t *tc, size_t pos)
{
    if (!json_is_object(tc))
        return 0;
    const json_t *jindex = json_object_get(tc, "index");
    json_int_t index = json_is_integer(jindex) ? json_integer_value(jindex) : (json_int_t)pos;
    if (index < 0 || index >= OAI_MAX_TOOL_CALLS)
        return set_error_own(s, LLM_ERR_PROTOCOL,
                             xasprintf("tool call index %lld out of range", (long long)index));
    struct oai_slot *slot = get_slot(s, (size_t)index);
    const json_t *fn = json_object_get(tc, "function");
    /* The id is taken once; providers that repeat it repeat the same value. */
    if (slot->id.len == 0 && set_ident(s, &slot->id, json_get_str(tc, "id"), "id") < 0)
        return s->status;
    if (set_ident(s, &slot->name, json_get_str(fn, "name"), "name") < 0)
        return s->status;
    const json_t *jargs = json_object_get(fn, "arguments");
    const char *args = json_string_value(jargs);
    size_t args_len = json_string_length(jargs);
    if (args == NULL)
        args = "";
    /* Arguments are kept verbatim: Doubao's begin with a space (" {}") and go back as sent. */
    if (keep_text(s, &slot->args, args, args_len) < 0)
        return s->status;
    slot->used = true;
    if (s->cb && s->cb->on_tool_call_delta)
        s->cb->on_tool_call_delta(s->data, (size_t)index, buf_str(&slot->id), buf_str(&slot->name),
                                  args, args_len);
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Chunks
 * ---------------------------------------------------------------------------------------- */

typedef void (*text_cb)(void *data, const char *s, size_t len);

static int on_text(struct oai_stream *s, struct buf *b, const json_t *v, text_cb cb)
{
    size_t len = json_string_length(v);
    if (!json_is_string(v) || len == 0)
        return 0; /* null, absent, or the "" that tool-call and finish chunks carry */
    if (keep_text(s, b, json_string_value(v), len) < 0)
        return s->status;
    if (cb)
        cb(s->data, json_string_value(v), len);
    return 0;
}

static int on_delta(struct oai_stream *s, const json_t *delta)
{
    const struct llm_callbacks *cb = s->cb;
    /* DeepSeek and Doubao say reasoning_content; Ollama and OpenRouter say reasoning. A chunk
     * carrying both says the same thing twice, so the second is only a fallback. */
    const json_t *reasoning = json_object_get(delta, "reasoning_content");
    if (json_string_length(reasoning) == 0)
        reasoning = json_object_get(delta, "reasoning");
    if (on_text(s, &s->reasoning, reasoning, cb ? cb->on_reasoning : NULL) < 0)
        return s->status;
    if (on_text(s, &s->content, json_object_get(delta, "content"), cb ? cb->on_content : NULL) < 0)
        return s->status;
    const json_t *calls = json_object_get(delta, "tool_calls");
    size_t i;
    const json_t *tc;
    json_array_foreach(calls, i, tc)
    {
        if (on_tool_call(s, tc, i) < 0)
            return s->status;
    }
    return 0;
}

static int on_choice(struct oai_stream *s, const json_t *choice)
{
    /* Only the first choice is assembled; we never ask for n > 1. */
    const json_t *index = json_object_get(choice, "index");
    if (json_is_integer(index) && json_integer_value(index) != 0)
        return 0;
    const json_t *delta = json_object_get(choice, "delta");
    if (json_is_object(delta) && on_delta(s, delta) < 0)
        return s->status;
    /* Claude behind a proxy sends no finish_reason at all ("stop_reason":"" instead). */
    const char *fr = json_get_str(choice, "finish_reason");
    if (fr != NULL && fr[0] != '\0') {
        size_t n = strlen(fr);
        if (n >= sizeof(s->finish_reason))
            n = sizeof(s->finish_reason) - 1;
        memcpy(s->finish_reason, fr, n);
        s->finish_reason[n] = '\0';
    }
    return 0;
}

static int on_chunk(struct oai_stream *s, json_t *chunk)
{
    /* openai-node treats any chunk with a truthy "error" member as a failed stream. */
    const json_t *err = json_object_get(chunk, "error");
    if (err != NULL && !json_is_null(err) && !json_is_false(err))
        return set_error_own(s, LLM_ERR_STREAM, error_message(err));
    size_t i;
    const json_t *choice;
    const json_t *choices = json_object_get(chunk, "choices");
    json_array_foreach(choices, i, choice)
    {
        if (json_is_object(choice) && on_choice(s, choice) < 0)
            return s->status;
    }
    /* The usage chunk has "choices": []; every other chunk may say "usage": null. */
    json_t *usage = json_object_get(chunk, "usage");
    if (json_is_object(usage)) {
        json_incref(usage);
        json_decref(s->usage);
        s->usage = usage;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Fast path: plain content / reasoning / finish chunks without jansson
 * ---------------------------------------------------------------------------------------- */

/* Escaped strings are decoded on the stack; a plain chunk with a longer one goes to jansson. */
#define OAI_FAST_SCRATCH 4096

/* Test hook, declared only by the unit test: true sends every chunk through jansson so that the
 * two paths can be compared. */
bool llm__oai_slow_only;

static bool fits_scratch(const struct json_skim_str *v)
{
    return v->len == v->raw_len || v->len <= OAI_FAST_SCRATCH;
}

/* The decoded bytes of v: the input itself when it has no escape, else decoded into scratch. */
static const char *skimmed_bytes(const struct json_skim_str *v, char *scratch)
{
    if (v->len == v->raw_len)
        return v->raw;
    json_skim_decode(v, scratch);
    return scratch;
}

/* on_text for a skimmed string. The callback is handed the copy just kept, which, like the
 * jansson string of the other path, is NUL-terminated. */
static int skimmed_text(struct oai_stream *s, struct buf *b, const struct json_skim_str *v,
                        text_cb cb, char *scratch)
{
    if (v->len == 0)
        return 0; /* null, absent, or "" */
    if (keep_text(s, b, skimmed_bytes(v, scratch), v->len) < 0)
        return s->status;
    if (cb)
        cb(s->data, buf_str(b) + b->len - v->len, v->len);
    return 0;
}

/* Handles a chunk that json_skim finds valid and plain exactly as on_chunk would: the same
 * callbacks with the same bytes, in the same order, and the same state. Returns 1, having
 * changed nothing, for any other chunk. */
static int on_plain_chunk(struct oai_stream *s, const char *payload, size_t len)
{
    struct json_skim_chunk c;
    if (llm__oai_slow_only || json_skim_chunk(payload, len, &c) != JSON_SKIM_PLAIN)
        return 1;
    /* As on_delta: reasoning_content unless it is empty, then reasoning. */
    const struct json_skim_str *reasoning =
        c.reasoning_content.len ? &c.reasoning_content : &c.reasoning;
    if (!fits_scratch(reasoning) || !fits_scratch(&c.content) || !fits_scratch(&c.finish_reason))
        return 1;
    char scratch[OAI_FAST_SCRATCH];
    const struct llm_callbacks *cb = s->cb;
    if (skimmed_text(s, &s->reasoning, reasoning, cb ? cb->on_reasoning : NULL, scratch) < 0)
        return s->status;
    if (skimmed_text(s, &s->content, &c.content, cb ? cb->on_content : NULL, scratch) < 0)
        return s->status;
    if (c.finish_reason.len > 0) {
        size_t n = c.finish_reason.len;
        if (n >= sizeof(s->finish_reason))
            n = sizeof(s->finish_reason) - 1;
        memcpy(s->finish_reason, skimmed_bytes(&c.finish_reason, scratch), n);
        s->finish_reason[n] = '\0';
    }
    return 0;
}

static bool is_blank(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != ' ' && p[i] != '\t' && p[i] != '\n' && p[i] != '\r')
            return false;
    }
    return true;
}

/* An "event: error" (Anthropic-style, also raised by openai-node for OpenAI streams). */
static int on_error_event(struct oai_stream *s, const char *payload, size_t len)
{
    if (is_blank(payload, len))
        return set_error(s, LLM_ERR_STREAM, "error event without a message");
    json_t *j = json_loadb(payload, len, JSON_DECODE_ANY, NULL);
    char *msg;
    if (j == NULL)
        msg = xstrndup(payload, len); /* plain text, as some proxies send */
    else if (json_object_get(j, "error") != NULL)
        msg = error_message(json_object_get(j, "error"));
    else
        msg = error_message(j);
    json_decref(j);
    return set_error_own(s, LLM_ERR_STREAM, msg);
}

/* Quotes the start of a bad payload, cut on a UTF-8 boundary so the message stays valid text. */
static char *not_json_message(const char *payload, size_t len)
{
    size_t n = len;
    if (n > 80) {
        n = 80;
        while (n > 0 && ((unsigned char)payload[n] & 0xC0) == 0x80)
            n--;
    }
    return xasprintf("stream chunk is not a JSON object: %.*s%s", (int)n, payload,
                     n < len ? "..." : "");
}

static int on_event(void *data, const char *event, const char *payload, size_t len)
{
    struct oai_stream *s = data;
    if (s->done)
        return 0; /* nothing after [DONE] counts */
    if (strcmp(event, "error") == 0)
        return on_error_event(s, payload, len);
    if (len >= 6 && memcmp(payload, "[DONE]", 6) == 0) {
        s->done = true;
        return 0;
    }
    if (is_blank(payload, len))
        return 0; /* an empty "data:" keep-alive carries no chunk */
    int rc = on_plain_chunk(s, payload, len);
    if (rc <= 0)
        return rc;
    json_t *chunk = json_loadb(payload, len, 0, NULL);
    if (!json_is_object(chunk)) {
        json_decref(chunk);
        return set_error_own(s, LLM_ERR_PROTOCOL, not_json_message(payload, len));
    }
    rc = on_chunk(s, chunk);
    json_decref(chunk);
    return rc;
}

/* ------------------------------------------------------------------------------------------
 * Public API
 * ---------------------------------------------------------------------------------------- */

int oai_stream_feed(struct oai_stream *s, const char *p, size_t len)
{
    if (s->status < 0)
        return s->status;
    int rc = sse_reader_feed(&s->sse, p, len, on_event, s);
    if (rc == SSE_ERR_LINE_TOO_LONG)
        return set_error_own(s, LLM_ERR_PROTOCOL,
                             xasprintf("stream line over %zu bytes", s->sse.max_line));
    return rc < 0 ? s->status : 0;
}

/* Lists the used slots in index order. The bufs get storage first so that every string
 * handed out points into s, "" included. */
static void build_calls(struct oai_stream *s)
{
    xfree(s->calls);
    s->calls = xcalloc(s->nslots ? s->nslots : 1, sizeof(*s->calls));
    s->ncalls = 0;
    for (size_t i = 0; i < s->nslots; i++) {
        struct oai_slot *slot = &s->slots[i];
        if (!slot->used)
            continue;
        buf_append(&slot->id, "", 0);
        buf_append(&slot->name, "", 0);
        buf_append(&slot->args, "", 0);
        struct llm_tool_call *c = &s->calls[s->ncalls++];
        c->id = slot->id.data;
        c->name = slot->name.data;
        c->arguments = slot->args.data;
    }
}

int oai_stream_finish(struct oai_stream *s, struct llm_result *res)
{
    /* A last event without its blank line is dropped (WHATWG), so completeness is judged on
     * what was dispatched: [DONE], or a finish_reason for servers that just close. */
    if (s->status == 0 && !s->done && s->finish_reason[0] == '\0')
        set_error(s, LLM_ERR_TRUNCATED, "stream ended before completion");
    build_calls(s);
    memset(res, 0, sizeof(*res));
    res->content = buf_str(&s->content);
    res->reasoning = buf_str(&s->reasoning);
    res->tool_calls = s->calls;
    res->n_tool_calls = s->ncalls;
    res->finish_reason = s->finish_reason;
    res->usage = s->usage;
    return s->status;
}
