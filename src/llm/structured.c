/* SPDX-License-Identifier: MIT */
/* structured.c -- the structured_outputs tool-call engine (see structured.h): the JSON repair,
 * the streaming parser and the request side. Pure. */
#include "structured.h"

#include <stdio.h>
#include <string.h>

#include "../core/util.h"
#include "../core/xalloc.h"

#define SO_TEXT_MAX (256u * 1024 * 1024)
#define SO_KEY_MAX 64

/* ---- JSON repair ------------------------------------------------------------------------ */

/* What an open container expects next. */
enum { E_KEY, E_COLON, E_VALUE, E_COMMA };

struct repair {
    struct buf out;
    char stack[SO_MAX_DEPTH]; /* '{' or '[' */
    int expect[SO_MAX_DEPTH];
    int depth;
};

static bool is_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A value (or, in an object expecting a key, a key) ended at the current level. */
static void value_done(struct repair *r)
{
    if (r->depth == 0)
        return;
    int *e = &r->expect[r->depth - 1];
    *e = (r->stack[r->depth - 1] == '{' && *e == E_KEY) ? E_COLON : E_COMMA;
}

/* Completes what the current level was in the middle of, then closes it. */
static void close_level(struct repair *r)
{
    int e = r->expect[r->depth - 1];
    if (r->stack[r->depth - 1] == '{') {
        if (e == E_COLON)
            buf_appends(&r->out, ":null");
        else if (e == E_VALUE)
            buf_appends(&r->out, "null");
    }
    buf_appendc(&r->out, r->stack[r->depth - 1] == '{' ? '}' : ']');
    r->depth--;
    value_done(r);
}

/* Length of a complete escape at p (n bytes left): 2, or 6 for \uXXXX; 0 if cut off. */
static size_t escape_len(const char *p, size_t n)
{
    if (n < 2)
        return 0;
    if (p[1] != 'u')
        return 2;
    return n >= 6 ? 6 : 0;
}

/* Copies a string body starting after its opening quote; returns the bytes consumed and sets
 * *closed when the closing quote was copied. Control characters are escaped (models write raw
 * newlines into strings). A cut-off escape at the end is dropped. */
static size_t copy_string(struct repair *r, const char *p, size_t n, bool *closed)
{
    size_t i = 0;
    *closed = false;
    while (i < n) {
        char c = p[i];
        if (c == '"') {
            buf_appendc(&r->out, '"');
            *closed = true;
            return i + 1;
        }
        if (c == '\\') {
            size_t el = escape_len(p + i, n - i);
            if (el == 0)
                return n; /* cut off: dropped */
            buf_append(&r->out, p + i, el);
            i += el;
            continue;
        }
        if ((unsigned char)c < 0x20)
            buf_appendf(&r->out, "\\u%04x", (unsigned)(unsigned char)c);
        else
            buf_appendc(&r->out, c);
        i++;
    }
    return n;
}

/* A bare token (number or literal); at the end of the text, a cut-off literal is completed and
 * a number cut after its sign, point or exponent is trimmed. */
static size_t copy_token(struct repair *r, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && strchr("{}[],:\" \t\r\n", p[i]) == NULL)
        i++;
    if (i < n) {
        buf_append(&r->out, p, i);
        return i;
    }
    static const char *const lits[] = {"true", "false", "null"};
    for (size_t k = 0; k < 3; k++) {
        if (i <= strlen(lits[k]) && strncmp(p, lits[k], i) == 0) {
            buf_appends(&r->out, lits[k]);
            return i;
        }
    }
    size_t keep = i;
    while (keep > 0 && strchr("+-.eE", p[keep - 1]) != NULL)
        keep--;
    if (keep == 0)
        buf_appends(&r->out, "null");
    else
        buf_append(&r->out, p, keep);
    return i;
}

/* Drops a markdown fence around the text: "```json\n...\n```". */
static void strip_fence(const char **s, size_t *len)
{
    const char *p = *s;
    size_t n = *len;
    while (n > 0 && is_ws(*p))
        p++, n--;
    if (n >= 3 && memcmp(p, "```", 3) == 0) {
        const char *nl = memchr(p, '\n', n);
        if (nl == NULL)
            return;
        n -= (size_t)(nl + 1 - p);
        p = nl + 1;
        while (n > 0 && is_ws(p[n - 1]))
            n--;
        if (n >= 3 && memcmp(p + n - 3, "```", 3) == 0)
            n -= 3;
    }
    *s = p;
    *len = n;
}

static bool next_closes(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && is_ws(p[i]))
        i++;
    return i == n || p[i] == '}' || p[i] == ']';
}

/* One byte outside strings. Returns the bytes consumed, or 0 to stop (root closed). */
static size_t repair_step(struct repair *r, const char *p, size_t n, struct so_repair *info)
{
    char c = *p;
    if (is_ws(c)) {
        buf_appendc(&r->out, c);
        return 1;
    }
    if (c == '{' || c == '[') {
        if (r->depth == SO_MAX_DEPTH)
            return (size_t)-1;
        buf_appendc(&r->out, c);
        r->stack[r->depth] = c;
        r->expect[r->depth++] = c == '{' ? E_KEY : E_VALUE;
        return 1;
    }
    if (c == '}' || c == ']') {
        char open = c == '}' ? '{' : '[';
        int k = r->depth;
        while (k > 0 && r->stack[k - 1] != open)
            k--;
        if (k == 0)
            return 1; /* a closer that matches nothing is dropped */
        while (r->depth >= k)
            close_level(r);
        return r->depth == 0 ? 0 : 1;
    }
    if (c == ',') {
        if (next_closes(p + 1, n - 1)) {
            info->commas_dropped = true;
            return 1;
        }
        buf_appendc(&r->out, ',');
        r->expect[r->depth - 1] = r->stack[r->depth - 1] == '{' ? E_KEY : E_VALUE;
        return 1;
    }
    if (c == ':') {
        buf_appendc(&r->out, ':');
        r->expect[r->depth - 1] = E_VALUE;
        return 1;
    }
    size_t used = copy_token(r, p, n);
    value_done(r);
    return used;
}

char *so_json_repair(const char *s, size_t len, struct so_repair *info)
{
    memset(info, 0, sizeof(*info));
    strip_fence(&s, &len);
    while (len > 0 && is_ws(*s))
        s++, len--;
    if (len == 0 || (*s != '{' && *s != '['))
        return NULL;
    struct repair r = {.depth = 0};
    buf_init(&r.out, SO_TEXT_MAX);
    size_t i = 0;
    while (i < len) {
        if (s[i] == '"') {
            buf_appendc(&r.out, '"');
            bool closed;
            i += 1 + copy_string(&r, s + i + 1, len - i - 1, &closed);
            if (!closed) {
                info->string_depth = r.depth;
                buf_appendc(&r.out, '"');
            }
            value_done(&r);
            continue;
        }
        size_t used = repair_step(&r, s + i, len - i, info);
        if (used == (size_t)-1) {
            buf_release(&r.out);
            return NULL;
        }
        if (used == 0)
            break;
        i += used;
    }
    info->open_at_end = r.depth;
    while (r.depth > 0)
        close_level(&r);
    return buf_detach(&r.out, NULL);
}

/* ---- streaming parser ------------------------------------------------------------------- */

enum { M_UNDECIDED, M_FENCE, M_JSON, M_DONE, M_TEXT };

static void default_id(char out[PE_ID_MAX], size_t seq, void *data)
{
    (void)seq;
    (void)data;
    char rnd[10];
    rand_base36(rnd, 9);
    snprintf(out, PE_ID_MAX, "call_%lld_%s", (long long)now_ms(), rnd);
}

void so_parser_init(struct so_parser *p, const struct llm_callbacks *cb, void *data)
{
    memset(p, 0, sizeof(*p));
    p->cb = cb;
    p->data = data;
    p->make_id = default_id;
    buf_init(&p->raw, SO_TEXT_MAX);
    buf_init(&p->key, SO_KEY_MAX);
    buf_init(&p->content, SO_TEXT_MAX);
}

static void put_utf8(struct buf *b, unsigned cp)
{
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    buf_append(b, u, n);
}

static int hex4(const char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* Decodes one escape at p (n bytes left) into out. Returns the bytes used, 0 when it is cut off
 * (more input may complete it). */
static size_t decode_escape(const char *p, size_t n, struct buf *out)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    if (n < 2)
        return 0;
    if (p[1] != 'u') {
        const char *k = strchr(from, p[1]);
        buf_appendc(out, k && p[1] ? to[k - from] : p[1]);
        return 2;
    }
    if (n < 6)
        return 0;
    int hi = hex4(p + 2);
    if (hi < 0) {
        buf_append(out, p, 2); /* not an escape after all: kept as written */
        return 2;
    }
    if (hi >= 0xD800 && hi <= 0xDBFF) {
        /* A high surrogate wants "\uDCxx" next; wait while that may still come. */
        if (n < 12 && (n == 6 || (p[6] == '\\' && (n == 7 || p[7] == 'u'))))
            return 0;
        int lo = n >= 12 && p[6] == '\\' && p[7] == 'u' ? hex4(p + 8) : -1;
        if (lo >= 0xDC00 && lo <= 0xDFFF) {
            put_utf8(out, 0x10000 + (((unsigned)hi - 0xD800) << 10) + ((unsigned)lo - 0xDC00));
            return 12;
        }
        put_utf8(out, 0xFFFD);
        return 6;
    }
    put_utf8(out, hi >= 0xDC00 && hi <= 0xDFFF ? 0xFFFD : (unsigned)hi);
    return 6;
}

/* Decodes a string body into out up to its closing quote (consumed; *closed set) or up to a
 * cut-off escape at the end. Returns the bytes consumed. */
static size_t decode_string(const char *p, size_t n, struct buf *out, bool *closed)
{
    size_t i = 0;
    *closed = false;
    while (i < n) {
        if (p[i] == '"') {
            *closed = true;
            return i + 1;
        }
        if (p[i] == '\\') {
            size_t used = decode_escape(p + i, n - i, out);
            if (used == 0)
                return i;
            i += used;
            continue;
        }
        size_t run = i;
        while (run < n && p[run] != '"' && p[run] != '\\')
            run++;
        buf_append(out, p + i, run - i);
        i = run;
    }
    return i;
}

/* One byte of the object outside the content string. */
static void scan_byte(struct so_parser *p, char c)
{
    if (p->in_str) {
        if (p->esc) {
            p->esc = false;
        } else if (c == '\\') {
            p->esc = true;
        } else if (c == '"') {
            p->in_str = false;
            if (p->depth == 1 && p->key_pos) {
                p->key_is_content = p->key.len == 7 && memcmp(p->key.data, "content", 7) == 0;
                p->expect = E_COLON;
            } else if (p->depth == 1) {
                p->expect = E_COMMA;
            }
            return;
        }
        if (p->key_pos)
            buf_appendc(&p->key, c);
        return;
    }
    switch (c) {
    case '"':
        if (p->depth == 1 && p->expect == E_VALUE && p->key_is_content && !p->content_done) {
            p->in_content = true;
            return;
        }
        p->in_str = true;
        p->key_pos = p->depth == 1 && p->expect == E_KEY;
        buf_reset(&p->key);
        return;
    case '{':
    case '[':
        p->depth++;
        return;
    case '}':
    case ']':
        p->depth--;
        if (p->depth == 1)
            p->expect = E_COMMA;
        else if (p->depth <= 0)
            p->mode = M_DONE;
        return;
    case ':':
        if (p->depth == 1)
            p->expect = E_VALUE;
        return;
    case ',':
        if (p->depth == 1) {
            p->expect = E_KEY;
            p->key_is_content = false;
        }
        return;
    default:
        return;
    }
}

/* Decides the mode from the first bytes: '{' is JSON, a ``` line is skipped once, anything
 * else is plain text. Returns false to wait for more input. */
static bool decide(struct so_parser *p, const char *r, size_t n)
{
    if (p->mode == M_FENCE) {
        size_t have = n - p->fence_start;
        if (memcmp(r + p->fence_start, "```", have < 3 ? have : 3) != 0) {
            p->mode = M_TEXT;
            return true;
        }
        const char *nl = have > 3 ? memchr(r + p->fence_start + 3, '\n', have - 3) : NULL;
        if (nl == NULL) {
            p->scan_pos = n;
            return false;
        }
        p->scan_pos = (size_t)(nl + 1 - r);
        p->fenced = true;
        p->mode = M_UNDECIDED;
        return true;
    }
    char c = r[p->scan_pos];
    if (is_ws(c)) {
        p->scan_pos++;
    } else if (c == '{') {
        p->mode = M_JSON;
    } else if (c == '`' && !p->fenced) {
        p->mode = M_FENCE;
        p->fence_start = p->scan_pos;
    } else {
        p->mode = M_TEXT;
    }
    return true;
}

static void scan(struct so_parser *p)
{
    const char *r = buf_str(&p->raw);
    size_t n = p->raw.len;
    while (p->scan_pos < n) {
        if (p->mode == M_UNDECIDED || p->mode == M_FENCE) {
            if (!decide(p, r, n))
                return;
        } else if (p->mode != M_JSON) {
            p->scan_pos = n; /* text is reported as it is; after the object, nothing matters */
        } else if (p->in_content) {
            bool closed;
            p->scan_pos += decode_string(r + p->scan_pos, n - p->scan_pos, &p->content, &closed);
            if (!closed)
                return;
            p->in_content = false;
            p->content_done = true;
            p->expect = E_COMMA;
        } else {
            scan_byte(p, r[p->scan_pos++]);
        }
    }
}

/* Length of s without an incomplete UTF-8 sequence at its end. */
static size_t utf8_whole(const char *s, size_t len)
{
    size_t i = len, back = 0;
    while (i > 0 && back < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--, back++;
    if (i == 0)
        return len;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    return back + 1 < need ? i - 1 : len;
}

static void report(struct so_parser *p, const struct buf *b, size_t *done)
{
    size_t whole = utf8_whole(b->data, b->len);
    if (whole > *done && p->cb && p->cb->on_content)
        p->cb->on_content(p->data, b->data + *done, whole - *done);
    if (whole > *done)
        *done = whole;
}

void so_parser_feed(struct so_parser *p, const char *s, size_t len)
{
    if (len == 0 || buf_append(&p->raw, s, len) < 0)
        return;
    scan(p);
    if (p->mode == M_TEXT)
        report(p, &p->raw, &p->text_emitted);
    else
        report(p, &p->content, &p->emitted);
}

/* ---- the end of the answer -------------------------------------------------------------- */

/* The toolCall member as a call, when it is well formed: a non-empty name and args as an
 * object (or as the JSON text of one). */
static bool take_call(struct so_parser *p, const json_t *tc)
{
    const char *name = json_get_str(tc, "name");
    const json_t *args = json_object_get(tc, "args");
    json_t *parsed = json_is_string(args) ? json_loads(json_string_value(args), 0, NULL) : NULL;
    if (parsed != NULL)
        args = parsed;
    bool ok = name != NULL && *name != '\0' && json_is_object(args);
    if (ok) {
        p->make_id(p->call_id, 0, p->data);
        p->call.id = p->call_id;
        p->call.name = xstrdup(name);
        p->call.arguments = json_dump_compact(args, NULL);
        p->have_call = true;
    }
    json_decref(parsed);
    return ok;
}

static void fill(struct so_parser *p, struct llm_result *res)
{
    res->raw_content = buf_str(&p->raw);
    res->content = p->final_content;
    res->tool_calls = p->have_call ? &p->call : NULL;
    res->n_tool_calls = p->have_call ? 1 : 0;
    if (p->have_call)
        res->finish_reason = "tool_calls";
}

void so_parser_finish(struct so_parser *p, struct llm_result *res)
{
    if (p->final_content != NULL) { /* finished before: the same result again */
        fill(p, res);
        return;
    }
    const char *raw = buf_str(&p->raw);
    struct so_repair info;
    char *fixed = so_json_repair(raw, p->raw.len, &info);
    json_t *j = fixed ? json_loads(fixed, 0, NULL) : NULL;
    xfree(fixed);
    if (fixed == NULL) {
        p->final_content = xstrdup(raw); /* not JSON: a plain answer */
    } else if (!json_is_object(j)) {
        /* Hopeless: what streamed out of it, else the text itself, so the user sees something. */
        p->final_content = xstrdup(p->content.len ? buf_str(&p->content) : raw);
    } else {
        const char *c = json_get_str(j, "content");
        p->final_content = xstrdup(c ? c : buf_str(&p->content));
        /* A call is run only when its object was complete in the text: the repair may close
         * the answer, but never a call's cut-off arguments or name. */
        const json_t *tc = json_object_get(j, "toolCall");
        if (json_is_object(tc) && info.open_at_end <= 2 && info.string_depth <= 1)
            take_call(p, tc);
    }
    json_decref(j);
    fill(p, res);
}

void so_parser_release(struct so_parser *p)
{
    buf_release(&p->raw);
    buf_release(&p->key);
    buf_release(&p->content);
    xfree(p->final_content);
    xfree(p->call.name);
    xfree(p->call.arguments);
    memset(p, 0, sizeof(*p));
}

/* ---- request side ----------------------------------------------------------------------- */

static const char instruction_tail[] =
    "\n"
    "Always answer with exactly one JSON object and nothing around it.\n"
    "\n"
    "To call a tool (one per answer):\n"
    "{\n"
    "  \"content\": \"A short note on what you are about to do\",\n"
    "  \"toolCall\": {\n"
    "    \"name\": \"the_exact_tool_name\",\n"
    "    \"args\": { \"param1\": \"value1\" }\n"
    "  }\n"
    "}\n"
    "Give both \"content\" and \"toolCall\" when you call a tool; \"args\" must match the tool's "
    "Parameters schema. The tool's result comes back to you in a user message.\n"
    "\n"
    "To give your final answer without calling a tool:\n"
    "{\n"
    "  \"content\": \"Your complete answer to the user\"\n"
    "}";

char *so_tool_instruction(const json_t *tools)
{
    struct buf b;
    buf_init(&b, SO_TEXT_MAX);
    size_t i, n = 0;
    const json_t *t;
    json_array_foreach(tools, i, t)
    {
        const json_t *fn = json_object_get(t, "function");
        const char *name = json_get_str(fn, "name");
        if (name == NULL)
            continue;
        const char *desc = json_get_str(fn, "description");
        const json_t *schema = json_object_get(fn, "parameters");
        char *js = schema ? json_dumps(schema, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        buf_appendf(&b, "%s\nTool name: %s\nDescription: %s\nParameters: %s\n",
                    n++ ? "" : "AVAILABLE TOOLS:\n", name, desc ? desc : "", js ? js : "{}");
        xfree(js);
    }
    if (n > 0)
        buf_appends(&b, instruction_tail);
    return buf_detach(&b, NULL);
}

/* An assistant turn with tool calls goes back as the JSON the model wrote (the agent keeps the
 * raw text); history from another engine gets that JSON written from its tool_calls. */
static json_t *so_assistant(const json_t *msg)
{
    const json_t *calls = json_object_get(msg, "tool_calls");
    if (json_array_size(calls) == 0)
        return json_incref((json_t *)msg);
    const json_t *content = json_object_get(msg, "content");
    const char *text = json_is_string(content) ? json_string_value(content) : "";
    const char *p = text;
    while (is_ws(*p))
        p++;
    if (*p == '{')
        return json_pack("{s:s, s:s}", "role", "assistant", "content", text);
    struct buf b;
    buf_init(&b, SO_TEXT_MAX);
    size_t i;
    const json_t *tc;
    json_array_foreach(calls, i, tc)
    {
        const json_t *fn = json_object_get(tc, "function");
        const char *args = json_get_str(fn, "arguments");
        json_t *a = args ? json_loads(args, 0, NULL) : NULL;
        const char *name = json_get_str(fn, "name");
        json_t *o = json_pack("{s:s, s:{s:s, s:o}}", "content", i == 0 ? text : "", "toolCall",
                              "name", name ? name : "", "args",
                              json_is_object(a) ? json_incref(a) : json_object());
        json_decref(a);
        char *js = json_dump_compact(o, NULL);
        json_decref(o);
        buf_appendf(&b, "%s%s", i ? "\n" : "", js);
        xfree(js);
    }
    json_t *out = json_pack("{s:s, s:s%}", "role", "assistant", "content", b.data ? b.data : "",
                            b.len);
    buf_release(&b);
    return out;
}

json_t *so_prepare_messages(const json_t *messages, const json_t *tools)
{
    char *instruction = so_tool_instruction(tools);
    json_t *out = pe_rewrite_history(messages, instruction, so_assistant);
    xfree(instruction);
    return out;
}

/* The original's agent_response_schema: content and/or a call {name, args}. */
json_t *so_response_format(void)
{
    json_t *schema = json_pack(
        "{s:s, s:{s:{s:s, s:s}, s:{s:s, s:{s:{s:s, s:s}, s:{s:s, s:s}}, s:[s, s]}},"
        " s:[{s:[s]}, {s:[s]}]}",
        "type", "object", "properties", "content", "type", "string", "description",
        "Your response text to the user", "toolCall", "type", "object", "properties", "name",
        "type", "string", "description", "The exact name of the tool to call", "args", "type",
        "object", "description", "The arguments for the tool call", "required", "name", "args",
        "anyOf", "required", "content", "required", "toolCall");
    return json_pack("{s:s, s:{s:s, s:b, s:o}}", "type", "json_schema", "json_schema", "name",
                     "agent_response_schema", "strict", 1, "schema", schema);
}
