/* SPDX-License-Identifier: MIT */
/* pe_parser.c -- streaming parser for prompt-engineered tool calls (agent-tools-llm.md §2.2).
 * A character state machine (text, "<tool_call>" prefix, inside a call, "</tool_call>" prefix)
 * splits the model's text; inside a call a small JSON scanner finds "name" and streams the
 * "parameters" object. At the end every call is parsed, a call cut off by the stop sequence is
 * closed by appending what is missing, and a scan for complete blocks is the last resort. */
#include "pe_parser.h"

#include <stdio.h>
#include <string.h>

#include "../core/util.h"
#include "../core/xalloc.h"

#define PE_MAX_TEXT (64u * 1024 * 1024) /* one response's text, as the stream decoders cap it */
#define PE_MAX_CALLS 128
#define PE_MAX_NAME 1024

enum pe_state { PE_TEXT, PE_OPEN_TAG, PE_IN_CALL, PE_CLOSE_TAG };
enum { EXPECT_KEY, EXPECT_COLON, EXPECT_VALUE, EXPECT_COMMA };
enum { KEY_OTHER, KEY_NAME, KEY_PARAMS };

static const char open_tag[] = "<tool_call>";
static const char close_tag[] = "</tool_call>";
#define OPEN_LEN (sizeof(open_tag) - 1)
#define CLOSE_LEN (sizeof(close_tag) - 1)

/* As the original: "call_" + epoch milliseconds + "_" + nine base-36 characters. */
static void default_id(char out[PE_ID_MAX], size_t seq, void *data)
{
    char r[10];
    rand_base36(r, 9);
    snprintf(out, PE_ID_MAX, "call_%lld_%s", (long long)now_ms(), r);
}

void pe_parser_init(struct pe_parser *p, const struct llm_callbacks *cb, void *data)
{
    memset(p, 0, sizeof(*p));
    p->cb = cb;
    p->data = data;
    p->make_id = default_id;
    p->state = PE_TEXT;
    buf_init(&p->raw, PE_MAX_TEXT);
    buf_init(&p->text, PE_MAX_TEXT);
}

static void call_release(struct pe_call *c)
{
    buf_release(&c->name);
    buf_release(&c->body);
    buf_release(&c->params);
    xfree(c->arguments);
}

void pe_parser_release(struct pe_parser *p)
{
    buf_release(&p->raw);
    buf_release(&p->text);
    for (size_t i = 0; i < p->ncalls; i++)
        call_release(&p->calls[i]);
    xfree(p->calls);
    xfree(p->out);
    xfree(p->content);
    memset(p, 0, sizeof(*p));
}

/* ------------------------------------------------------------------------------------------
 * Reporting
 * ---------------------------------------------------------------------------------------- */

static void flush_text(struct pe_parser *p)
{
    size_t n = p->text.len - p->text_emitted;
    if (n == 0)
        return;
    const char *s = buf_str(&p->text) + p->text_emitted;
    p->text_emitted = p->text.len;
    if (p->cb && p->cb->on_content)
        p->cb->on_content(p->data, s, n);
}

/* One delta per feed for the open call: the parameters text since the last one. The first
 * delta of a call is sent as soon as its name is known, even when it carries nothing. */
static void flush_call(struct pe_parser *p)
{
    if (p->ncalls == 0)
        return;
    struct pe_call *c = &p->calls[p->ncalls - 1];
    size_t n = c->params.len - c->emitted;
    if (!c->named || (c->announced && n == 0))
        return;
    const char *args = buf_str(&c->params) + c->emitted;
    c->announced = true;
    c->emitted = c->params.len;
    if (p->cb && p->cb->on_tool_call_delta)
        p->cb->on_tool_call_delta(p->data, c->index, c->id, buf_str(&c->name), args, n);
}

/* ------------------------------------------------------------------------------------------
 * The JSON scanner inside a call
 * ---------------------------------------------------------------------------------------- */

static struct pe_call *cur_call(struct pe_parser *p)
{
    return &p->calls[p->ncalls - 1];
}

static int classify_key(const char *s, size_t len)
{
    if (len == 4 && memcmp(s, "name", 4) == 0)
        return KEY_NAME;
    if (len == 10 && memcmp(s, "parameters", 10) == 0)
        return KEY_PARAMS;
    return KEY_OTHER;
}

/* The name is the first non-empty top-level "name" string, escapes decoded. */
static void set_name(struct pe_parser *p, struct pe_call *c, const char *raw, size_t len)
{
    if (len == 0 || len >= PE_MAX_NAME)
        return;
    char *quoted = xasprintf("\"%.*s\"", (int)len, raw);
    json_t *j = json_loads(quoted, JSON_DECODE_ANY, NULL);
    xfree(quoted);
    const char *name = json_string_value(j);
    if (name != NULL && name[0] != '\0' && buf_appends(&c->name, name) == 0) {
        c->named = true;
        c->index = p->nnamed++;
    }
    json_decref(j);
}

static void string_end(struct pe_parser *p, struct pe_call *c, size_t end)
{
    struct pe_lex *lx = &p->lex;
    if (lx->depth != 1)
        return;
    const char *s = buf_str(&c->body) + lx->str_start;
    size_t len = end - lx->str_start;
    if (lx->expect == EXPECT_KEY) {
        lx->key = classify_key(s, len);
        lx->expect = EXPECT_COLON;
    } else if (lx->expect == EXPECT_VALUE) {
        if (lx->key == KEY_NAME && !c->named)
            set_name(p, c, s, len);
        lx->expect = EXPECT_COMMA;
    }
}

static void lex_open(struct pe_lex *lx, struct pe_call *c, char ch)
{
    if (lx->depth == 0) {
        if (ch == '{') { /* anything before the object (a ```json fence) is skipped */
            lx->depth = 1;
            lx->expect = EXPECT_KEY;
        }
        return;
    }
    if (lx->depth == 1 && lx->expect == EXPECT_VALUE) {
        if (ch == '{' && lx->key == KEY_PARAMS && !lx->params_done) {
            lx->params_on = true;
            buf_appendc(&c->params, ch);
        }
        lx->expect = EXPECT_COMMA;
    }
    lx->depth++;
}

static void lex_close(struct pe_lex *lx)
{
    if (lx->depth == 0)
        return;
    lx->depth--;
    if (lx->depth == 1 && lx->params_on) {
        lx->params_on = false;
        lx->params_done = true;
    }
    if (lx->depth == 0)
        lx->top_done = true;
}

/* One character of a call's text, at offset `off` of its body. */
static void lex_step(struct pe_parser *p, struct pe_call *c, char ch, size_t off)
{
    struct pe_lex *lx = &p->lex;
    if (lx->top_done)
        return;
    if (lx->params_on)
        buf_appendc(&c->params, ch); /* before the structure: the closing brace belongs too */
    if (lx->in_str) {
        if (lx->esc)
            lx->esc = false;
        else if (ch == '\\')
            lx->esc = true;
        else if (ch == '"') {
            lx->in_str = false;
            string_end(p, c, off);
        }
        return;
    }
    switch (ch) {
    case '"':
        if (lx->depth > 0) {
            lx->in_str = true;
            lx->str_start = off + 1;
        }
        break;
    case '{':
    case '[':
        lex_open(lx, c, ch);
        break;
    case '}':
    case ']':
        lex_close(lx);
        break;
    case ':':
        if (lx->depth == 1 && lx->expect == EXPECT_COLON)
            lx->expect = EXPECT_VALUE;
        break;
    case ',':
        if (lx->depth == 1) {
            lx->expect = EXPECT_KEY;
            lx->key = KEY_OTHER;
        }
        break;
    case ' ':
    case '\t':
    case '\n':
    case '\r':
        break;
    default: /* a number or literal value */
        if (lx->depth == 1 && lx->expect == EXPECT_VALUE)
            lx->expect = EXPECT_COMMA;
        break;
    }
}

static void call_char(struct pe_parser *p, char ch)
{
    if (p->ncalls == 0 || cur_call(p)->closed)
        return; /* a call over the cap: its text is only kept in raw */
    struct pe_call *c = cur_call(p);
    size_t off = c->body.len;
    if (buf_appendc(&c->body, ch) < 0)
        return;
    lex_step(p, c, ch, off);
}

/* ------------------------------------------------------------------------------------------
 * The tag state machine
 * ---------------------------------------------------------------------------------------- */

static struct pe_call *push_call(struct pe_parser *p)
{
    p->calls = xrealloc(p->calls, (p->ncalls + 1) * sizeof(*p->calls));
    struct pe_call *c = &p->calls[p->ncalls];
    memset(c, 0, sizeof(*c));
    buf_init(&c->name, PE_MAX_NAME);
    buf_init(&c->body, PE_MAX_TEXT);
    buf_init(&c->params, PE_MAX_TEXT);
    p->make_id(c->id, p->ncalls, p->data);
    p->ncalls++;
    return c;
}

static void open_call(struct pe_parser *p)
{
    flush_text(p);
    p->state = PE_IN_CALL;
    memset(&p->lex, 0, sizeof(p->lex));
    if (p->ncalls < PE_MAX_CALLS)
        push_call(p);
    else if (p->ncalls > 0)
        cur_call(p)->closed = true; /* makes call_char drop the text of this one */
}

static void close_call(struct pe_parser *p)
{
    flush_call(p);
    if (p->ncalls > 0)
        cur_call(p)->closed = true;
    p->state = PE_TEXT;
}

static void step(struct pe_parser *p, char ch)
{
    switch (p->state) {
    case PE_TEXT:
    case PE_IN_CALL:
        if (ch == '<') {
            p->state = p->state == PE_TEXT ? PE_OPEN_TAG : PE_CLOSE_TAG;
            p->tag_len = 1;
        } else if (p->state == PE_TEXT) {
            buf_appendc(&p->text, ch);
        } else {
            call_char(p, ch);
        }
        return;
    case PE_OPEN_TAG:
        if (ch == open_tag[p->tag_len]) {
            if (++p->tag_len == OPEN_LEN)
                open_call(p);
            return;
        }
        /* Not a tag after all: the held "<..." is text, and ch may begin a new tag. */
        buf_append(&p->text, open_tag, p->tag_len);
        p->state = PE_TEXT;
        step(p, ch);
        return;
    case PE_CLOSE_TAG:
        if (ch == close_tag[p->tag_len]) {
            if (++p->tag_len == CLOSE_LEN)
                close_call(p);
            return;
        }
        for (size_t i = 0; i < p->tag_len; i++)
            call_char(p, close_tag[i]);
        p->state = PE_IN_CALL;
        step(p, ch);
        return;
    }
}

void pe_parser_feed(struct pe_parser *p, const char *s, size_t len)
{
    buf_append(&p->raw, s, len);
    size_t i = 0;
    while (i < len) {
        if (p->state == PE_TEXT) {
            /* Plain text runs are copied whole up to the next "<". */
            const char *lt = memchr(s + i, '<', len - i);
            size_t n = lt ? (size_t)(lt - (s + i)) : len - i;
            buf_append(&p->text, s + i, n);
            i += n;
            if (lt == NULL)
                break;
        }
        step(p, s[i++]);
    }
    if (p->state == PE_TEXT || p->state == PE_OPEN_TAG)
        flush_text(p);
    else
        flush_call(p);
}

/* ------------------------------------------------------------------------------------------
 * Finishing: parse, repair, fall back
 * ---------------------------------------------------------------------------------------- */

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Closes what a cut-off JSON text left open: an unterminated string, a dangling "," or ":",
 * then every open object and array in reverse order. Returns NULL when nothing can be done.
 * Caller owns the result. */
static char *repair_json(const char *s, size_t n)
{
    char closers[PE_LEX_MAX_DEPTH];
    int depth = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (esc)
                esc = false;
            else if (c == '\\')
                esc = true;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (depth == PE_LEX_MAX_DEPTH)
                return NULL;
            closers[depth++] = c == '{' ? '}' : ']';
        } else if ((c == '}' || c == ']') && depth > 0 && --depth == 0) {
            return NULL; /* the object was complete: repairing will not help */
        }
    }
    struct buf b;
    buf_init(&b, n + PE_LEX_MAX_DEPTH + 8);
    if (in_str) {
        buf_append(&b, s, esc ? n - 1 : n); /* a dangling backslash cannot be completed */
        buf_appendc(&b, '"');
    } else {
        while (n > 0 && is_ws(s[n - 1]))
            n--;
        if (n > 0 && s[n - 1] == ',')
            n--;
        buf_append(&b, s, n);
        if (n > 0 && s[n - 1] == ':')
            buf_append_lit(&b, "null");
    }
    while (depth > 0)
        buf_appendc(&b, closers[--depth]);
    return buf_detach(&b, NULL);
}

/* The call object in a call's text: the first JSON object, text after it ignored (an extra
 * "}" or a closing fence), repaired when it was cut off. NULL if there is none. */
static json_t *parse_call_json(const char *text, size_t len)
{
    const char *start = memchr(text, '{', len);
    if (start == NULL)
        return NULL;
    size_t n = len - (size_t)(start - text);
    json_t *j = json_loadb(start, n, JSON_DISABLE_EOF_CHECK, NULL);
    if (json_is_object(j))
        return j;
    json_decref(j);
    char *fixed = repair_json(start, n);
    if (fixed == NULL)
        return NULL;
    j = json_loads(fixed, JSON_DISABLE_EOF_CHECK, NULL);
    xfree(fixed);
    if (json_is_object(j))
        return j;
    json_decref(j);
    return NULL;
}

/* "parameters" as the arguments string: compact JSON, "{}" for a missing or falsy value. */
static char *arguments_of(const json_t *obj)
{
    const json_t *v = json_object_get(obj, "parameters");
    bool falsy = v == NULL || json_is_null(v) || json_is_false(v) ||
                 (json_is_string(v) && json_string_length(v) == 0) ||
                 (json_is_integer(v) && json_integer_value(v) == 0);
    return falsy ? xstrdup("{}") : json_dump_compact(v, NULL);
}

/* A named call whose text does not parse even after repair keeps the parameters text (or the
 * whole call text) as its arguments, so that the agent reports the JSON error to the model
 * instead of the call vanishing. */
static void finish_call(struct pe_call *c)
{
    xfree(c->arguments);
    json_t *j = parse_call_json(buf_str(&c->body), c->body.len);
    if (j != NULL) {
        c->arguments = arguments_of(j);
        json_decref(j);
        return;
    }
    const char *t = buf_str(c->params.len ? &c->params : &c->body);
    size_t n = c->params.len ? c->params.len : c->body.len;
    while (n > 0 && is_ws(*t)) {
        t++;
        n--;
    }
    while (n > 0 && is_ws(t[n - 1]))
        n--;
    c->arguments = xstrndup(t, n);
}

/* Last resort, as the original: when nothing was found while streaming, every complete
 * <tool_call>...</tool_call> in the raw text is parsed, and the content is the raw text
 * without those blocks, trimmed. */
static void fallback_scan(struct pe_parser *p)
{
    const char *raw = buf_str(&p->raw);
    const char *o = strstr(raw, open_tag);
    if (o == NULL || strstr(o, close_tag) == NULL)
        return;
    struct buf clean;
    buf_init(&clean, PE_MAX_TEXT);
    const char *pos = raw;
    const char *e;
    while (o != NULL && (e = strstr(o + OPEN_LEN, close_tag)) != NULL) {
        buf_append(&clean, pos, (size_t)(o - pos));
        json_t *j = parse_call_json(o + OPEN_LEN, (size_t)(e - o - OPEN_LEN));
        const char *name = json_get_str(j, "name");
        if (name != NULL && name[0] != '\0' && p->ncalls < PE_MAX_CALLS) {
            struct pe_call *c = push_call(p);
            c->closed = true;
            if (buf_appends(&c->name, name) == 0) {
                c->named = true;
                c->index = p->nnamed++;
                c->arguments = arguments_of(j);
            }
        }
        json_decref(j);
        pos = e + CLOSE_LEN;
        o = strstr(pos, open_tag);
    }
    buf_appends(&clean, pos);
    const char *t = buf_str(&clean);
    size_t n = clean.len;
    while (n > 0 && is_ws(*t)) {
        t++;
        n--;
    }
    while (n > 0 && is_ws(t[n - 1]))
        n--;
    xfree(p->content);
    p->content = xstrndup(t, n);
    buf_release(&clean);
}

static void build_result(struct pe_parser *p)
{
    /* A "<tool" at the very end was text; a "</tool" inside a call is the cut-off closing tag
     * and is dropped. */
    if (p->state == PE_OPEN_TAG)
        buf_append(&p->text, open_tag, p->tag_len);
    p->state = PE_TEXT;
    size_t named = 0;
    for (size_t i = 0; i < p->ncalls; i++) {
        if (p->calls[i].named) {
            finish_call(&p->calls[i]);
            named++;
        }
    }
    if (named == 0)
        fallback_scan(p);
    p->out = xcalloc(p->ncalls ? p->ncalls : 1, sizeof(*p->out));
    p->nout = 0;
    for (size_t i = 0; i < p->ncalls; i++) {
        struct pe_call *c = &p->calls[i];
        if (!c->named)
            continue;
        p->out[p->nout].id = c->id;
        p->out[p->nout].name = c->name.data;
        p->out[p->nout].arguments = c->arguments;
        p->nout++;
    }
}

void pe_parser_finish(struct pe_parser *p, struct llm_result *res)
{
    if (p->out == NULL)
        build_result(p);
    res->content = p->content ? p->content : buf_str(&p->text);
    res->raw_content = buf_str(&p->raw);
    res->tool_calls = p->out;
    res->n_tool_calls = p->nout;
    if (p->nout > 0)
        res->finish_reason = "tool_calls";
}
