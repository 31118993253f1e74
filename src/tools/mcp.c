/* SPDX-License-Identifier: MIT */
/* mcp.c -- the Model Context Protocol client (agent-tools-llm.md §3). Each configured server has
 * a small state machine (down -> starting -> ready) driven by one uv timer, and one of two
 * transports: a child process spoken to in newline-delimited JSON-RPC over pipes, or Streamable
 * HTTP over libcurl on the loop. Tool calls carry their own timer: the per-call timeout, then the
 * 0 ms tick that delivers the result, so on_done never runs inside a caller's frame. */
#include "mcp.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/list.h"
#include "core/log.h"
#include "core/map.h"
#include "core/util.h"
#include "core/xalloc.h"
#include "jsonrpc.h"
#include "obs/obs.h"
#include "llm/curl_uv.h"
#include "llm/sse_reader.h"
#include "mcp_int.h"
#include "tools.h"
#include "tools_int.h"

#define PROTOCOL_VERSION "2025-06-18"
#define CLIENT_NAME "agent-tars-server"
#define CLIENT_VERSION "0.3.0"

#define DEFAULT_CALL_TIMEOUT_MS 120000
#define DEFAULT_INIT_TIMEOUT_MS 30000
#define DEFAULT_PING_TIMEOUT_MS 5000
#define DEFAULT_BACKOFF_MS 1000
#define MAX_BACKOFF_MS 30000
#define KILL_GRACE_MS 2000
#define EOF_GRACE_MS 1000
#define CONNECT_TIMEOUT_MS 10000
#define MAX_LINE JSONRPC_DEFAULT_MAX_LINE /* screenshots are hundreds of KB on one line */
#define MAX_HTTP_BODY (16u * 1024 * 1024)
#define MAX_WRITE_QUEUE (64u * 1024 * 1024) /* bytes queued to a child that does not read */
#define MAX_TOOL_PAGES 100
#define MAX_TOOLS 4096
#define STDERR_LINE_MAX 2048
#define STDERR_TAIL 2048

/* What the SDK-based original reports for these (McpError codes of the TypeScript SDK). */
#define ERR_CLOSED "MCP error -32000: Connection closed"
#define ERR_TIMEOUT "MCP error -32001: Request timed out"

enum srv_state {
    S_DOWN,     /* no connection: not started yet, failed, or died; restarted on next use */
    S_STARTING, /* initialize / tools/list in flight */
    S_READY,
    S_CLOSED, /* mcp_shutdown */
};

struct mcp_server;

/* A transport (STYLE §2.2 ops table): a child process or Streamable HTTP. */
struct transport_ops {
    /* Opens the connection before initialize. Returns 0 or <0 with a heap message in *err. */
    int (*open)(struct mcp_server *s, char **err);
    /* Sends one encoded message (line ends in \n; taken over). id is the request id the answer
     * will carry, 0 for notifications and responses. Returns 0 or <0 (nothing was sent). */
    int (*send)(struct mcp_server *s, char *line, size_t len, json_int_t id);
    /* No answer to request id is wanted any more. */
    void (*forget)(struct mcp_server *s, json_int_t id);
    /* Closes the connection: hard kills at once, graceful lets the child exit first. */
    void (*drop)(struct mcp_server *s, bool graceful);
};

struct child;

struct mcp_server {
    char *name;
    const struct transport_ops *ops;
    enum srv_state state;
    bool settled; /* the first start finished, ready or not (mcp_ready) */
    uint64_t call_timeout_ms;
    json_int_t next_id;
    json_int_t hs_id;   /* the initialize or tools/list request in flight */
    json_int_t ping_id; /* the liveness ping in flight */
    json_t *listing;    /* tools gathered by the tools/list pages so far */
    int pages;
    json_t *tools;            /* the last complete tool list (MCP tool objects) */
    char *proto;              /* negotiated protocol version */
    struct list_node calls;   /* sent, waiting for their answer */
    struct list_node waiting; /* waiting for the server to become ready */
    uv_timer_t timer;         /* S_STARTING: handshake deadline; S_DOWN: restart after backoff;
                               * S_READY: ping deadline */
    unsigned failures;        /* failed starts in a row */
    uint64_t retry_at;        /* mono_ms before which no restart happens */
    /* stdio */
    char **argv, **envp, *cwd;
    bool sandbox; /* mcpServers.<name>.sandbox: run under bubblewrap like the commands */
    struct child *child;
    /* Streamable HTTP */
    char *url;
    char **headers; /* "Name: value" */
    size_t nheaders;
    char *session; /* Mcp-Session-Id */
    struct list_node xfers;
};

enum call_state { CALL_QUEUED, CALL_SENT, CALL_DONE };

struct mcp_call {
    struct list_node node;  /* srv->waiting or srv->calls; alone once done */
    struct mcp_server *srv; /* NULL once done */
    enum call_state state;
    char *tool;
    json_t *args;
    json_int_t id;    /* 0 until sent */
    uv_timer_t timer; /* the timeout, then the 0 ms tick that delivers the result */
    tool_done_cb on_done;
    void *data;
    json_t *content; /* the result, once done */
    char *error;
};

static struct {
    bool inited;
    uv_loop_t *loop;
    struct mcp_server **servers;
    size_t nservers;
    uint64_t call_timeout_ms, init_timeout_ms, ping_timeout_ms, backoff_ms;
    struct curl_uv *cu;
    json_t *schema;    /* OpenAI tools array */
    json_t *described; /* name -> {name, description, schema} */
    struct map owner;  /* name -> struct mcp_server * */
    bool dirty;
} M;

static void srv_fail(struct mcp_server *s, const char *reason);
static void srv_on_message(struct mcp_server *s, const struct jsonrpc_msg *m);
static void on_srv_timer(uv_timer_t *t);
static void on_call_timer(uv_timer_t *t);

/* ================================================================ tool results -> LLM parts */

static int js_string(struct buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    static const char short_esc[0x20] = {
        ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
    int rc = buf_appendc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < len && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc = buf_append(b, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', (char)c};
        size_t n = 2;
        if (c < 0x20 && short_esc[c]) {
            esc[1] = short_esc[c];
        } else if (c < 0x20) {
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if (rc == 0)
            rc = buf_append(b, esc, n);
    }
    if (rc == 0)
        rc = buf_append(b, s + run, len - run);
    return rc == 0 ? buf_appendc(b, '"') : rc;
}

/* Number::toString (ECMA-262 §6.1.6.1.20): the shortest digits that read back as the same
 * double, in plain notation for 1e-7 <= |x| < 1e21 and exponent notation outside. */
static int js_number(struct buf *b, double x)
{
    if (!isfinite(x))
        return buf_append_lit(b, "null");
    if (x == 0)
        return buf_appendc(b, '0');
    char tmp[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof(tmp), "%.*e", p - 1, x);
        if (strtod(tmp, NULL) == x)
            break;
    }
    const char *s = tmp;
    int rc = 0;
    if (*s == '-') {
        rc = buf_appendc(b, '-');
        s++;
    }
    char digits[24];
    int k = 0;
    for (; *s && *s != 'e'; s++)
        if (*s != '.')
            digits[k++] = *s;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    int n = (int)strtol(s + 1, NULL, 10) + 1; /* x = 0.d1d2... * 10^n */
    if (k <= n && n <= 21) {
        rc |= buf_append(b, digits, (size_t)k);
        for (int i = k; i < n; i++)
            rc |= buf_appendc(b, '0');
    } else if (0 < n && n <= 21) {
        rc |= buf_append(b, digits, (size_t)n);
        rc |= buf_appendc(b, '.');
        rc |= buf_append(b, digits + n, (size_t)(k - n));
    } else if (-6 < n && n <= 0) {
        rc |= buf_append_lit(b, "0.");
        for (int i = 0; i < -n; i++)
            rc |= buf_appendc(b, '0');
        rc |= buf_append(b, digits, (size_t)k);
    } else {
        rc |= buf_appendc(b, digits[0]);
        if (k > 1) {
            rc |= buf_appendc(b, '.');
            rc |= buf_append(b, digits + 1, (size_t)(k - 1));
        }
        rc |= buf_appendf(b, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
    }
    return rc < 0 ? BUF_ERR_TOOBIG : 0;
}

static int js_newline(struct buf *b, int indent, int depth)
{
    if (indent == 0)
        return 0;
    int rc = buf_appendc(b, '\n');
    for (int i = 0; i < indent * depth && rc == 0; i++)
        rc = buf_appendc(b, ' ');
    return rc;
}

static int js_value(struct buf *b, const json_t *v, int indent, int depth);

static int js_array(struct buf *b, const json_t *v, int indent, int depth)
{
    if (json_array_size(v) == 0)
        return buf_append_lit(b, "[]");
    int rc = buf_appendc(b, '[');
    for (size_t i = 0; i < json_array_size(v) && rc == 0; i++) {
        if (i > 0)
            rc = buf_appendc(b, ',');
        if (rc == 0)
            rc = js_newline(b, indent, depth + 1);
        if (rc == 0)
            rc = js_value(b, json_array_get(v, i), indent, depth + 1);
    }
    if (rc == 0)
        rc = js_newline(b, indent, depth);
    return rc == 0 ? buf_appendc(b, ']') : rc;
}

static int js_object(struct buf *b, const json_t *v, int indent, int depth)
{
    if (json_object_size(v) == 0)
        return buf_append_lit(b, "{}");
    int rc = buf_appendc(b, '{');
    bool first = true;
    const char *k;
    size_t klen;
    json_t *item;
    json_object_keylen_foreach((json_t *)v, k, klen, item)
    {
        if (rc < 0)
            break;
        if (!first)
            rc = buf_appendc(b, ',');
        first = false;
        if (rc == 0)
            rc = js_newline(b, indent, depth + 1);
        if (rc == 0)
            rc = js_string(b, k, klen);
        if (rc == 0)
            rc = indent ? buf_append_lit(b, ": ") : buf_appendc(b, ':');
        if (rc == 0)
            rc = js_value(b, item, indent, depth + 1);
    }
    if (rc == 0)
        rc = js_newline(b, indent, depth);
    return rc == 0 ? buf_appendc(b, '}') : rc;
}

static int js_value(struct buf *b, const json_t *v, int indent, int depth)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return js_object(b, v, indent, depth);
    case JSON_ARRAY:
        return js_array(b, v, indent, depth);
    case JSON_STRING:
        return js_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return buf_append_i64(b, (long long)json_integer_value(v));
    case JSON_REAL:
        return js_number(b, json_real_value(v));
    case JSON_TRUE:
        return buf_append_lit(b, "true");
    case JSON_FALSE:
        return buf_append_lit(b, "false");
    default:
        return buf_append_lit(b, "null");
    }
}

int mcp__js_stringify(struct buf *b, const json_t *v, int indent)
{
    return v ? js_value(b, v, indent, 0) : buf_append_lit(b, "null");
}

static json_t *text_part_stringified(const json_t *v)
{
    struct buf b;
    buf_init(&b, SIZE_MAX - 1);
    mcp__js_stringify(&b, v, 2);
    json_t *part = json_pack("{s:s, s:s%}", "type", "text", "text", buf_str(&b), b.len);
    buf_release(&b);
    return part;
}

static bool is_base64(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || c == '=';
        if (!ok)
            return false;
    }
    return true;
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* multimodal.ts extractImageData: an object whose type names an image or screenshot and that
 * has string data; or, failing that, any object whose trimmed data looks like base64 (the MIME
 * type is then guessed from the magic bytes, PNG when unknown). Returns the data URI part. */
static json_t *image_part(const json_t *obj)
{
    const char *type = json_get_str(obj, "type");
    const char *data = json_get_str(obj, "data");
    if (data == NULL || *data == '\0')
        return NULL;
    const char *mime = NULL;
    size_t dlen = strlen(data);
    if (type && *type && (strstr(type, "screenshot") || strstr(type, "image"))) {
        mime = json_get_str(obj, "mimeType");
        if (mime == NULL || *mime == '\0')
            mime = strstr(type, "png")                           ? "image/png"
                   : strstr(type, "jpg") || strstr(type, "jpeg") ? "image/jpeg"
                   : strstr(type, "gif")                         ? "image/gif"
                   : strstr(type, "webp")                        ? "image/webp"
                                                                 : "image/png";
    } else {
        while (*data == ' ' || *data == '\t' || *data == '\n' || *data == '\r')
            data++, dlen--;
        while (dlen > 0 && strchr(" \t\n\r", data[dlen - 1]))
            dlen--;
        if (!is_base64(data, dlen))
            return NULL;
        mime = has_prefix(data, "/9j/")     ? "image/jpeg"
               : has_prefix(data, "R0lGOD") ? "image/gif"
               : has_prefix(data, "UklGR")  ? "image/webp"
                                            : "image/png";
    }
    char *url = xasprintf("data:%s;base64,%.*s", mime, (int)dlen, data);
    json_t *part = json_pack("{s:s, s:{s:s}}", "type", "image_url", "image_url", "url", url);
    xfree(url);
    return part;
}

/* The object without its image fields, or NULL when nothing else is left. */
static json_t *image_remainder(const json_t *obj)
{
    json_t *rest = json_copy((json_t *)obj);
    json_object_del(rest, "data");
    json_object_del(rest, "type");
    json_object_del(rest, "mimeType");
    if (json_object_size(rest) > 0)
        return rest;
    json_decref(rest);
    return NULL;
}

static void array_parts(json_t *parts, const json_t *content)
{
    json_t *kept = json_array();
    bool image = false;
    size_t i;
    json_t *item;
    json_array_foreach(content, i, item)
    {
        json_t *img = json_is_object(item) ? image_part(item) : NULL;
        if (img == NULL) {
            json_array_append(kept, item);
            continue;
        }
        image = true;
        json_array_append_new(parts, img);
        json_t *rest = image_remainder(item);
        if (rest)
            json_array_append_new(kept, rest);
    }
    if (json_array_size(kept) > 0)
        json_array_append_new(parts, text_part_stringified(kept));
    if (!image && json_array_size(parts) == 0)
        json_array_append_new(parts, text_part_stringified(content));
    json_decref(kept);
}

json_t *mcp_content_to_parts(const json_t *content)
{
    json_t *parts = json_array();
    if (json_is_string(content)) {
        json_array_append_new(parts,
                              json_pack("{s:s, s:s%}", "type", "text", "text",
                                        json_string_value(content), json_string_length(content)));
    } else if (json_is_array(content)) {
        array_parts(parts, content);
    } else if (json_is_object(content)) {
        json_t *img = image_part(content);
        json_t *rest = img ? image_remainder(content) : NULL;
        json_array_append_new(parts, img ? img : text_part_stringified(content));
        if (rest)
            json_array_append_new(parts, text_part_stringified(rest));
        json_decref(rest);
    } else {
        /* String(null) and friends; a missing result reads "undefined" in the original. */
        struct buf b;
        buf_init(&b, 64);
        if (content)
            mcp__js_stringify(&b, content, 0);
        else
            buf_append_lit(&b, "undefined");
        json_array_append_new(parts, json_pack("{s:s, s:s}", "type", "text", "text", buf_str(&b)));
        buf_release(&b);
    }
    if (json_array_size(parts) == 0)
        json_array_append_new(parts, json_pack("{s:s, s:s}", "type", "text", "text", ""));
    return parts;
}

/* ================================================================ calls */

static void on_call_closed(uv_handle_t *h)
{
    struct mcp_call *c = h->data;
    xfree(c->tool);
    json_decref(c->args);
    json_decref(c->content);
    xfree(c->error);
    xfree(c);
}

/* Ends a call with a result (content taken over) or an error (taken over); delivery waits for
 * the next loop turn. */
static void call_finish(struct mcp_call *c, json_t *content, char *error)
{
    list_remove(&c->node);
    c->srv = NULL;
    c->state = CALL_DONE;
    if (error) {
        json_decref(content);
        char *text = xasprintf("Error: %s", error);
        content = json_string_lossy(text, strlen(text));
        xfree(text);
    }
    c->content = content;
    c->error = error;
    uv_timer_start(&c->timer, on_call_timer, 0, 0);
}

/* The original wraps every failure of an MCP tool as "Failed to execute tool <name>: <why>"
 * (mcp-client-v2.ts callTool). */
static void call_fail(struct mcp_call *c, const char *why)
{
    call_finish(c, NULL, xasprintf("Failed to execute tool %s: %s", c->tool, why));
}

static void fail_list(struct list_node *head, const char *why)
{
    while (!list_empty(head))
        call_fail(LIST_ENTRY(head->next, struct mcp_call, node), why);
}

static struct mcp_call *find_call(struct mcp_server *s, json_int_t id)
{
    for (struct list_node *n = s->calls.next; n != &s->calls; n = n->next) {
        struct mcp_call *c = LIST_ENTRY(n, struct mcp_call, node);
        if (c->id == id)
            return c;
    }
    return NULL;
}

/* Joined text of the text items of an isError result, for the error message. */
static char *error_text(const json_t *content, const char *tool)
{
    struct buf b;
    buf_init(&b, 64 * 1024);
    size_t i;
    json_t *item;
    json_array_foreach(content, i, item)
    {
        const char *t = json_get_str(item, "text");
        if (t == NULL)
            continue;
        if (b.len > 0)
            buf_appendc(&b, '\n');
        buf_appends(&b, t);
    }
    while (b.len > 0 && (b.data[b.len - 1] == '\n' || b.data[b.len - 1] == ' '))
        b.data[--b.len] = '\0';
    if (b.len == 0)
        buf_appendf(&b, "Tool %s returned an error", tool);
    return buf_detach(&b, NULL);
}

/* tools/call answer. A result's content array is the tool result, as the original's
 * callTool returns result.content; isError makes it an error result (the original drops the
 * flag; the issue asks for it to be respected). */
static void call_answer(struct mcp_call *c, const struct jsonrpc_msg *m)
{
    if (m->error) {
        char *t = jsonrpc_error_text(m->error);
        call_fail(c, t);
        xfree(t);
        return;
    }
    const json_t *content = json_object_get(m->result, "content");
    if (content == NULL)
        content = json_object_get(m->result, "toolResult"); /* 2024-11-05 compatibility shape */
    json_t *own = content ? json_incref((json_t *)content) : json_array();
    if (json_is_true(json_object_get(m->result, "isError"))) {
        char *err = error_text(own, c->tool);
        json_decref(own);
        call_finish(c, NULL, err);
        return;
    }
    call_finish(c, own, NULL);
}

/* ================================================================ sending */

static json_int_t srv_request(struct mcp_server *s, const char *method, const json_t *params)
{
    json_int_t id = ++s->next_id;
    size_t len;
    char *line = jsonrpc_encode_request(id, method, params, &len);
    if (s->ops->send(s, line, len, id) < 0)
        return -1;
    return id;
}

static void srv_notify(struct mcp_server *s, const char *method, const json_t *params)
{
    size_t len;
    char *line = jsonrpc_encode_notification(method, params, &len);
    s->ops->send(s, line, len, 0);
}

static void send_cancelled(struct mcp_server *s, json_int_t id, const char *reason)
{
    s->ops->forget(s, id);
    json_t *p = json_pack("{s:I, s:s}", "requestId", id, "reason", reason);
    srv_notify(s, "notifications/cancelled", p);
    json_decref(p);
}

static void call_send(struct mcp_call *c)
{
    struct mcp_server *s = c->srv;
    list_remove(&c->node);
    list_insert_tail(&s->calls, &c->node);
    c->state = CALL_SENT;
    json_t *p = json_pack("{s:s, s:O}", "name", c->tool, "arguments", c->args);
    json_int_t id = srv_request(s, "tools/call", p);
    json_decref(p);
    if (id < 0) {
        call_fail(c, ERR_CLOSED);
        return;
    }
    c->id = id;
}

/* ================================================================ server state machine */

static uint64_t backoff_ms(unsigned failures)
{
    uint64_t d = M.backoff_ms;
    for (unsigned i = 1; i < failures && d < MAX_BACKOFF_MS; i++)
        d *= 2;
    return d < MAX_BACKOFF_MS ? d : MAX_BACKOFF_MS;
}

/* Connection lost or handshake failed: everything waiting gets an error result and the next
 * call restarts the server, right away if it had been ready, after a growing backoff if it
 * could not even start. */
static void srv_fail(struct mcp_server *s, const char *reason)
{
    if (s->state == S_CLOSED || s->state == S_DOWN)
        return;
    bool starting = s->state == S_STARTING;
    if (s->state == S_READY)
        obs_mcp(OBS_MCP_DOWN);
    log_warn("mcp server '%s' %s: %s", s->name, starting ? "failed to start" : "lost", reason);
    s->ops->drop(s, false);
    s->state = S_DOWN;
    s->settled = true;
    s->hs_id = 0;
    s->ping_id = 0;
    json_decref(s->listing);
    s->listing = NULL;
    uv_timer_stop(&s->timer);
    if (starting)
        s->failures++;
    s->retry_at = mono_ms() + (starting ? backoff_ms(s->failures) : 0);
    fail_list(&s->calls, ERR_CLOSED);
    fail_list(&s->waiting, ERR_CLOSED);
}

static void srv_start(struct mcp_server *s)
{
    uv_timer_stop(&s->timer);
    obs_mcp(OBS_MCP_START);
    s->state = S_STARTING;
    xfree(s->proto);
    s->proto = NULL;
    char *err = NULL;
    if (s->ops->open(s, &err) < 0) {
        srv_fail(s, err);
        xfree(err);
        return;
    }
    json_t *p =
        json_pack("{s:s, s:{}, s:{s:s, s:s}}", "protocolVersion", PROTOCOL_VERSION, "capabilities",
                  "clientInfo", "name", CLIENT_NAME, "version", CLIENT_VERSION);
    s->hs_id = srv_request(s, "initialize", p);
    json_decref(p);
    if (s->hs_id < 0) {
        srv_fail(s, "cannot send initialize");
        return;
    }
    uv_timer_start(&s->timer, on_srv_timer, M.init_timeout_ms, 0);
}

/* A call for a server that is down: start it now, or when its backoff ends. */
static void srv_wake(struct mcp_server *s)
{
    if (s->state != S_DOWN || uv_is_active((uv_handle_t *)&s->timer))
        return;
    uint64_t now = mono_ms();
    if (now >= s->retry_at)
        srv_start(s);
    else
        uv_timer_start(&s->timer, on_srv_timer, s->retry_at - now, 0);
}

static void srv_ready(struct mcp_server *s)
{
    uv_timer_stop(&s->timer);
    obs_mcp(OBS_MCP_UP);
    s->state = S_READY;
    s->settled = true;
    s->failures = 0;
    if (s->tools == NULL || !json_equal(s->tools, s->listing)) {
        json_decref(s->tools);
        s->tools = s->listing;
        M.dirty = true;
    } else {
        json_decref(s->listing);
    }
    s->listing = NULL;
    log_info("mcp server '%s' ready: %zu tools (protocol %s)", s->name, json_array_size(s->tools),
             s->proto);
    while (!list_empty(&s->waiting) && s->state == S_READY)
        call_send(LIST_ENTRY(s->waiting.next, struct mcp_call, node));
}

static void list_page(struct mcp_server *s, const char *cursor)
{
    json_t *p = cursor ? json_pack("{s:s}", "cursor", cursor) : json_object();
    s->hs_id = srv_request(s, "tools/list", p);
    json_decref(p);
    if (s->hs_id < 0)
        srv_fail(s, "cannot send tools/list");
}

static void on_initialized(struct mcp_server *s, const json_t *result)
{
    const char *v = json_get_str(result, "protocolVersion");
    if (v == NULL) {
        srv_fail(s, "initialize result has no protocolVersion");
        return;
    }
    s->proto = xstrdup(v);
    srv_notify(s, "notifications/initialized", NULL);
    s->listing = json_array();
    s->pages = 0;
    list_page(s, NULL);
}

/* One tools/list page: tools without a string name are dropped; nextCursor is followed. */
static void on_tools_page(struct mcp_server *s, const json_t *result)
{
    const json_t *tools = json_object_get(result, "tools");
    if (!json_is_array(tools)) {
        srv_fail(s, "tools/list result has no tools array");
        return;
    }
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
    {
        if (json_is_object(t) && json_get_str(t, "name") && json_array_size(s->listing) < MAX_TOOLS)
            json_array_append(s->listing, t);
    }
    const char *cursor = json_get_str(result, "nextCursor");
    if (cursor && *cursor && ++s->pages < MAX_TOOL_PAGES)
        list_page(s, cursor);
    else
        srv_ready(s);
}

static void on_handshake_reply(struct mcp_server *s, const struct jsonrpc_msg *m)
{
    s->hs_id = 0;
    if (m->error) {
        char *t = jsonrpc_error_text(m->error);
        srv_fail(s, t);
        xfree(t);
    } else if (s->listing == NULL) {
        on_initialized(s, m->result);
    } else {
        on_tools_page(s, m->result);
    }
}

static void srv_on_response(struct mcp_server *s, const struct jsonrpc_msg *m)
{
    if (!json_is_integer(m->id))
        return; /* we only send integer ids */
    json_int_t id = json_integer_value(m->id);
    if (s->state == S_STARTING && id == s->hs_id) {
        on_handshake_reply(s, m);
    } else if (id == s->ping_id && s->ping_id != 0) {
        s->ping_id = 0; /* any answer, even an error, shows it is alive */
        if (s->state == S_READY)
            uv_timer_stop(&s->timer);
    } else {
        struct mcp_call *c = find_call(s, id);
        if (c)
            call_answer(c, m); /* else late: timed out or cancelled */
    }
}

/* Requests from the server: we declare no capabilities, so only ping is answered with a
 * result; roots/list, sampling/createMessage, elicitation/create... get -32601. */
static void srv_on_request(struct mcp_server *s, const struct jsonrpc_msg *m)
{
    size_t len;
    char *line;
    if (strcmp(m->method, "ping") == 0) {
        json_t *empty = json_object();
        line = jsonrpc_encode_result(m->id, empty, &len);
        json_decref(empty);
    } else {
        log_debug("mcp server '%s' asked for %s: not supported", s->name, m->method);
        line = jsonrpc_encode_error(m->id, JSONRPC_METHOD_NOT_FOUND, "Method not found", &len);
    }
    s->ops->send(s, line, len, 0);
}

static void srv_on_message(struct mcp_server *s, const struct jsonrpc_msg *m)
{
    if (s->state != S_STARTING && s->state != S_READY)
        return;
    switch (m->kind) {
    case JSONRPC_RESPONSE:
        srv_on_response(s, m);
        break;
    case JSONRPC_REQUEST:
        srv_on_request(s, m);
        break;
    case JSONRPC_NOTIFICATION:
        log_debug("mcp server '%s' notification %s ignored", s->name, m->method);
        break;
    }
}

/* After a call timed out: a server that does not even answer a ping is hung, and is killed so
 * that the next call starts a fresh one. A slow tool on a live server keeps it. */
static void srv_check_alive(struct mcp_server *s)
{
    if (s->state != S_READY || s->ping_id != 0 || s->child == NULL)
        return;
    s->ping_id = srv_request(s, "ping", NULL);
    if (s->ping_id < 0) {
        s->ping_id = 0;
        srv_fail(s, "cannot send ping");
        return;
    }
    uv_timer_start(&s->timer, on_srv_timer, M.ping_timeout_ms, 0);
}

static void on_srv_timer(uv_timer_t *t)
{
    struct mcp_server *s = t->data;
    switch (s->state) {
    case S_STARTING:
        srv_fail(s, "initialize: " ERR_TIMEOUT);
        break;
    case S_DOWN:
        if (!list_empty(&s->waiting))
            srv_start(s);
        break;
    case S_READY:
        if (s->ping_id != 0)
            srv_fail(s, "no answer to ping after a call timed out");
        break;
    case S_CLOSED:
        break;
    }
}

/* The call's timer: first its deadline, then (CALL_DONE) the delivery tick. */
static void on_call_timer(uv_timer_t *t)
{
    struct mcp_call *c = t->data;
    if (c->state == CALL_DONE) {
        struct tool_result res = {.content = c->content, .error = c->error};
        c->on_done(c->data, &res);
        uv_close((uv_handle_t *)&c->timer, on_call_closed);
        return;
    }
    struct mcp_server *s = c->srv;
    bool sent = c->state == CALL_SENT;
    log_warn("mcp tool %s on '%s' timed out", c->tool, s->name);
    obs_mcp(OBS_MCP_TIMEOUT);
    if (sent)
        send_cancelled(s, c->id, "Request timed out");
    call_fail(c, ERR_TIMEOUT);
    if (sent)
        srv_check_alive(s);
}

/* ================================================================ stdio transport */

struct child {
    struct mcp_server *srv; /* NULL once dropped */
    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_timer_t kill_timer; /* attached: grace after stdout EOF; dropped: SIGKILL when SIGTERM
                            * was not enough */
    int open;              /* handles not closed yet */
    bool exited;
    int pid;
    char *name;
    struct jsonrpc_reader rd;
    struct buf errline;     /* the current stderr line */
    char tail[STDERR_TAIL]; /* the last stderr bytes, for the log when it dies */
    size_t tail_len;
};

struct wreq {
    uv_write_t req;
    char *line;
};

static char read_buf[64 * 1024]; /* one loop thread: alloc and read never interleave */

static void on_child_handle_closed(uv_handle_t *h)
{
    struct child *c = h->data;
    if (--c->open > 0)
        return;
    jsonrpc_reader_release(&c->rd);
    buf_release(&c->errline);
    xfree(c->name);
    xfree(c);
}

static void child_close(struct child *c, uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_child_handle_closed);
}

/* The whole process group: the server and whatever it started (commands, chromium). */
static void child_kill(struct child *c, int sig)
{
    if (c->exited || c->pid <= 0)
        return;
    if (kill(-c->pid, sig) < 0)
        uv_process_kill(&c->proc, sig);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    *b = uv_buf_init(read_buf, sizeof(read_buf));
}

static void tail_add(struct child *c, const char *p, size_t n)
{
    if (n >= sizeof(c->tail)) {
        memcpy(c->tail, p + n - sizeof(c->tail), sizeof(c->tail));
        c->tail_len = sizeof(c->tail);
        return;
    }
    if (c->tail_len + n > sizeof(c->tail)) {
        size_t drop = c->tail_len + n - sizeof(c->tail);
        memmove(c->tail, c->tail + drop, c->tail_len - drop);
        c->tail_len -= drop;
    }
    memcpy(c->tail + c->tail_len, p, n);
    c->tail_len += n;
}

/* stderr is the server's log: each line goes to our debug log, the tail is kept for the
 * message when the server dies. */
static void on_err_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct child *c = st->data;
    if (n < 0) {
        uv_read_stop(st);
        return;
    }
    tail_add(c, b->base, (size_t)n);
    for (ssize_t i = 0; i < n; i++) {
        char ch = b->base[i];
        if (ch != '\n' && buf_appendc(&c->errline, ch) == 0)
            continue;
        if (c->errline.len > 0)
            log_debug("mcp server '%s' stderr: %s", c->name, buf_str(&c->errline));
        buf_reset(&c->errline);
        if (ch != '\n')
            buf_appendc(&c->errline, ch);
    }
}

static int child_on_message(void *data, const struct jsonrpc_msg *m)
{
    struct child *c = data;
    if (c->srv)
        srv_on_message(c->srv, m);
    return 0;
}

static void child_on_skip(void *data, enum jsonrpc_skip why, const char *line, size_t len,
                          size_t total)
{
    struct child *c = data;
    if (why != JSONRPC_SKIP_TOO_LONG) {
        log_debug("mcp server '%s' stdout (not JSON-RPC, skipped): %.*s", c->name,
                  (int)(len > 300 ? 300 : len), line);
        return;
    }
    /* An answer we cannot read would leave its call hanging until the timeout. */
    if (c->srv) {
        char *why_s =
            xasprintf("sent a line of %zu bytes (over the %u byte cap)", total, (unsigned)MAX_LINE);
        srv_fail(c->srv, why_s);
        xfree(why_s);
    }
}

static const struct jsonrpc_cbs child_rpc = {child_on_message, child_on_skip};

/* stdout closed but the process is still there: it is given a moment to exit, so that the log
 * says how it ended; one that lingers is killed. */
static void on_eof_grace(uv_timer_t *t)
{
    struct child *c = t->data;
    if (c->srv)
        srv_fail(c->srv, "closed its stdout");
}

static void on_out_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct child *c = st->data;
    if (n > 0) {
        jsonrpc_reader_feed(&c->rd, b->base, (size_t)n, &child_rpc, c);
        return;
    }
    if (n == 0)
        return;
    uv_read_stop(st);
    if (c->srv == NULL)
        return;
    if (n != UV_EOF)
        srv_fail(c->srv, uv_strerror((int)n));
    else if (!c->exited)
        uv_timer_start(&c->kill_timer, on_eof_grace, EOF_GRACE_MS, 0);
}

static void log_tail(struct child *c, int level)
{
    if (c->tail_len == 0 || log_level < level)
        return;
    log_write(level, "mcp server '%s' stderr tail:\n%.*s", c->name, (int)c->tail_len, c->tail);
}

static void on_child_exit(uv_process_t *p, int64_t status, int sig)
{
    struct child *c = p->data;
    c->exited = true;
    if (c->pid > 0)
        kill(-c->pid, SIGKILL); /* what it left behind in its group */
    uv_timer_stop(&c->kill_timer);
    if (c->srv) {
        char *why = sig ? xasprintf("exited on signal %d", sig)
                        : xasprintf("exited with code %lld", (long long)status);
        log_tail(c, LOG_WARN);
        srv_fail(c->srv, why);
        xfree(why);
    } else {
        log_debug("mcp server '%s' (pid %d) ended (code %lld, signal %d)", c->name, c->pid,
                  (long long)status, sig);
    }
    child_close(c, (uv_handle_t *)&c->kill_timer);
    child_close(c, (uv_handle_t *)&c->proc);
}

static void on_kill_timer(uv_timer_t *t)
{
    struct child *c = t->data;
    log_warn("mcp server '%s' (pid %d) ignored SIGTERM, killing it", c->name, c->pid);
    child_kill(c, SIGKILL);
}

static struct child *child_new(struct mcp_server *s)
{
    struct child *c = xcalloc(1, sizeof(*c));
    c->srv = s;
    c->name = xstrdup(s->name);
    jsonrpc_reader_init(&c->rd, MAX_LINE);
    buf_init(&c->errline, STDERR_LINE_MAX);
    uv_pipe_init(M.loop, &c->in, 0);
    uv_pipe_init(M.loop, &c->out, 0);
    uv_pipe_init(M.loop, &c->err, 0);
    uv_timer_init(M.loop, &c->kill_timer);
    c->in.data = c->out.data = c->err.data = c->kill_timer.data = c->proc.data = c;
    c->open = 4;
    return c;
}

/* The argv that starts s: its own, or (sandbox) bwrap's with the workspace bound read-write,
 * the network on, and the workspace (or its configured cwd) as the working directory. */
static char **stdio_argv(struct mcp_server *s)
{
    size_t n = 0;
    while (s->argv[n] != NULL)
        n++;
    if (!s->sandbox) {
        char **v = xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
            v[i] = xstrdup(s->argv[i]);
        return v;
    }
    const char *ws = tool__sandbox_workspace();
    workspace_mkdirs(ws);
    return tool__sandbox_argv(ws, s->cwd ? s->cwd : ws, s->argv, true);
}

static int stdio_open(struct mcp_server *s, char **err)
{
    char **argv = stdio_argv(s);
    fd_cloexec_all(); /* the child inherits its three pipes and nothing else */
    struct child *c = child_new(s);
    uv_stdio_container_t io[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&c->in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&c->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&c->err},
    };
    uv_process_options_t o = {
        .exit_cb = on_child_exit,
        .file = argv[0],
        .args = argv,
        .env = s->envp,
        .cwd = s->sandbox ? NULL : s->cwd, /* in the sandbox: bwrap --chdir */
        .flags = UV_PROCESS_DETACHED, /* setsid: its own process group, killed as a whole */
        .stdio_count = 3,
        .stdio = io,
    };
    int rc = uv_spawn(M.loop, &c->proc, &o);
    tool__strv_free(argv);
    c->open++; /* the process handle is initialized even when the spawn failed */
    if (rc < 0) {
        *err = xasprintf("cannot spawn '%s': %s", s->argv[0], uv_strerror(rc));
        c->srv = NULL;
        c->exited = true;
        child_close(c, (uv_handle_t *)&c->in);
        child_close(c, (uv_handle_t *)&c->out);
        child_close(c, (uv_handle_t *)&c->err);
        child_close(c, (uv_handle_t *)&c->kill_timer);
        child_close(c, (uv_handle_t *)&c->proc);
        return rc;
    }
    c->pid = c->proc.pid;
    uv_read_start((uv_stream_t *)&c->out, on_alloc, on_out_read);
    uv_read_start((uv_stream_t *)&c->err, on_alloc, on_err_read);
    s->child = c;
    log_info("mcp server '%s' started: %s (pid %d%s)", s->name, s->argv[0], c->pid,
             s->sandbox ? ", sandboxed" : "");
    return 0;
}

static void on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    if (status < 0 && status != UV_ECANCELED)
        log_debug("mcp write failed: %s", uv_strerror(status));
    xfree(w->line);
    xfree(w);
}

static int stdio_send(struct mcp_server *s, char *line, size_t len, json_int_t id)
{
    struct child *c = s->child;
    if (c == NULL || c->exited ||
        uv_stream_get_write_queue_size((uv_stream_t *)&c->in) > MAX_WRITE_QUEUE) {
        xfree(line);
        return -EPIPE;
    }
    struct wreq *w = xmalloc(sizeof(*w));
    w->line = line;
    uv_buf_t b = uv_buf_init(line, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->in, &b, 1, on_written);
    if (rc < 0) {
        xfree(line);
        xfree(w);
    }
    return rc;
}

static void stdio_forget(struct mcp_server *s, json_int_t id)
{
    /* The answer may still come; srv_on_response drops answers nobody waits for. */
}

/* Closing stdin is the polite shutdown of the stdio transport (§3.1); SIGTERM follows at once
 * and SIGKILL after a grace period, because some servers (the browser one) ignore EOF. */
static void stdio_drop(struct mcp_server *s, bool graceful)
{
    struct child *c = s->child;
    if (c == NULL)
        return;
    s->child = NULL;
    c->srv = NULL;
    child_close(c, (uv_handle_t *)&c->in);
    child_close(c, (uv_handle_t *)&c->out);
    child_close(c, (uv_handle_t *)&c->err);
    if (c->exited)
        return;
    if (graceful) {
        child_kill(c, SIGTERM);
        uv_timer_start(&c->kill_timer, on_kill_timer, KILL_GRACE_MS, 0);
    } else {
        child_kill(c, SIGKILL);
    }
}

static const struct transport_ops stdio_ops = {stdio_open, stdio_send, stdio_forget, stdio_drop};

/* ================================================================ Streamable HTTP transport */

/* One POST. Its answer comes back as one JSON body or as an SSE stream that may carry server
 * requests and notifications before the response (§3.2). */
struct http_xfer {
    struct list_node node; /* srv->xfers */
    struct mcp_server *srv;
    struct curl_uv_xfer *x;
    json_int_t id; /* the request it carries; 0 for notifications and responses */
    long status;
    bool sse;      /* Content-Type: text/event-stream */
    bool answered; /* the response to id arrived */
    bool in_cb;    /* our callback is on the stack: free later */
    bool dead;     /* dropped while in_cb */
    struct sse_reader rd;
    struct buf body;
};

static void xfer_free(struct http_xfer *xf)
{
    sse_reader_release(&xf->rd);
    buf_release(&xf->body);
    xfree(xf);
}

static void xfer_kill(struct http_xfer *xf)
{
    list_remove(&xf->node);
    curl_uv_cancel(xf->x);
    if (xf->in_cb)
        xf->dead = true;
    else
        xfer_free(xf);
}

static void xfer_deliver(struct http_xfer *xf, const struct jsonrpc_msg *m)
{
    if (m->kind == JSONRPC_RESPONSE && json_is_integer(m->id) &&
        json_integer_value(m->id) == xf->id)
        xf->answered = true;
    if (!xf->dead)
        srv_on_message(xf->srv, m);
}

static void xfer_deliver_json(struct http_xfer *xf, json_t *j)
{
    struct jsonrpc_msg m;
    if (jsonrpc_classify(j, &m) < 0) {
        log_debug("mcp server '%s' sent a body that is not JSON-RPC", xf->srv->name);
        return;
    }
    xfer_deliver(xf, &m);
    jsonrpc_msg_release(&m);
}

static int on_sse_event(void *data, const char *event, const char *payload, size_t len)
{
    struct http_xfer *xf = data;
    if (*event && strcmp(event, "message") != 0)
        return 0;
    struct jsonrpc_msg m;
    enum jsonrpc_skip why;
    if (jsonrpc_decode(payload, len, &m, &why) < 0)
        return 0;
    xfer_deliver(xf, &m);
    jsonrpc_msg_release(&m);
    return xf->dead ? -1 : 0;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value,
                      size_t *vlen)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return false;
    const char *v = line + n + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    *value = v;
    *vlen = (size_t)(end - v);
    return true;
}

static int on_http_header(void *data, const char *line, size_t len)
{
    struct http_xfer *xf = data;
    const char *v;
    size_t vlen;
    if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
        const char *sp = memchr(line, ' ', len);
        xf->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        xf->sse = false;
    } else if (header_is(line, len, "content-type", &v, &vlen)) {
        xf->sse = vlen >= 17 && strncasecmp(v, "text/event-stream", 17) == 0;
    } else if (header_is(line, len, "mcp-session-id", &v, &vlen) && vlen > 0 && vlen < 1024) {
        xfree(xf->srv->session);
        xf->srv->session = xstrndup(v, vlen);
    }
    return 0;
}

static int on_http_body(void *data, const char *p, size_t len)
{
    struct http_xfer *xf = data;
    if (!(xf->status >= 200 && xf->status < 300 && xf->sse))
        return buf_append(&xf->body, p, len) < 0 ? -1 : 0;
    xf->in_cb = true;
    int rc = sse_reader_feed(&xf->rd, p, len, on_sse_event, xf);
    xf->in_cb = false;
    if (xf->dead) {
        xfer_free(xf);
        return -1;
    }
    return rc < 0 ? -1 : 0;
}

static char *http_failure(struct http_xfer *xf, CURLcode rc, const char *errmsg)
{
    if (rc != CURLE_OK)
        return xasprintf("Streamable HTTP error: %s", *errmsg ? errmsg : curl_easy_strerror(rc));
    if (xf->status < 200 || xf->status >= 300)
        return xasprintf("Streamable HTTP error: Error POSTing to endpoint (HTTP %ld): %.*s",
                         xf->status, (int)(xf->body.len > 500 ? 500 : xf->body.len),
                         buf_str(&xf->body));
    return xstrdup("Streamable HTTP error: no response in the answer");
}

/* The POST ended without the response to its request: the call (or the handshake) fails. A 404
 * on a session means it expired: the server is re-initialized on next use (§3.2). */
static void xfer_unanswered(struct http_xfer *xf, const char *why)
{
    struct mcp_server *s = xf->srv;
    if (s->state == S_STARTING && xf->id == s->hs_id) {
        srv_fail(s, why);
        return;
    }
    struct mcp_call *c = find_call(s, xf->id);
    if (c)
        call_fail(c, why);
    if (xf->status == 404 && s->session)
        srv_fail(s, "session expired (HTTP 404)");
}

static void on_http_done(void *data, CURLcode rc, const char *errmsg)
{
    struct http_xfer *xf = data;
    xf->in_cb = true;
    if (rc == CURLE_OK && !xf->sse && xf->status >= 200 && xf->status < 300 && xf->body.len > 0) {
        json_t *j = json_loadb(xf->body.data, xf->body.len, 0, NULL);
        if (json_is_array(j)) {
            for (size_t i = 0; i < json_array_size(j) && !xf->dead; i++)
                xfer_deliver_json(xf, json_array_get(j, i));
        } else if (j) {
            xfer_deliver_json(xf, j);
        }
        json_decref(j);
    }
    if (!xf->dead && xf->id != 0 && !xf->answered) {
        char *why = http_failure(xf, rc, errmsg);
        xfer_unanswered(xf, why);
        xfree(why);
    } else if (!xf->dead && (rc != CURLE_OK || xf->status >= 300)) {
        log_debug("mcp server '%s': POST without answer failed (HTTP %ld, curl %d)", xf->srv->name,
                  xf->status, (int)rc);
    }
    if (!xf->dead)
        list_remove(&xf->node);
    xfer_free(xf);
}

static const struct curl_uv_cbs http_cbs = {on_http_header, on_http_body, on_http_done};

static int http_open(struct mcp_server *s, char **err)
{
    xfree(s->session);
    s->session = NULL;
    return 0;
}

static struct curl_slist *http_headers(struct mcp_server *s)
{
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Accept: application/json, text/event-stream");
    for (size_t i = 0; i < s->nheaders; i++)
        h = curl_slist_append(h, s->headers[i]);
    if (s->session) {
        char *v = xasprintf("Mcp-Session-Id: %s", s->session);
        h = curl_slist_append(h, v);
        xfree(v);
    }
    if (s->proto) {
        char *v = xasprintf("MCP-Protocol-Version: %s", s->proto);
        h = curl_slist_append(h, v);
        xfree(v);
    }
    char tp[80]; /* W3C trace context of the tool call being sent, if traced (obs.h) */
    obs_traceparent_header(obs_current_span(), tp);
    if (tp[0])
        h = curl_slist_append(h, tp);
    return h;
}

static int http_send(struct mcp_server *s, char *line, size_t len, json_int_t id)
{
    CURL *e = curl_easy_init();
    if (e == NULL || M.cu == NULL) {
        if (e)
            curl_easy_cleanup(e);
        xfree(line);
        return -ENOMEM;
    }
    curl_easy_setopt(e, CURLOPT_URL, s->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(len - 1)); /* without \n */
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, line);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    xfree(line);
    struct curl_slist *headers = http_headers(s);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    struct http_xfer *xf = xcalloc(1, sizeof(*xf));
    xf->srv = s;
    xf->id = id;
    sse_reader_init(&xf->rd, MAX_LINE);
    buf_init(&xf->body, MAX_HTTP_BODY);
    xf->x = curl_uv_add(M.cu, e, headers, &http_cbs, xf);
    if (xf->x == NULL) {
        xfer_free(xf);
        return -EIO;
    }
    list_insert_tail(&s->xfers, &xf->node);
    return 0;
}

static void http_forget(struct mcp_server *s, json_int_t id)
{
    for (struct list_node *n = s->xfers.next; n != &s->xfers; n = n->next) {
        struct http_xfer *xf = LIST_ENTRY(n, struct http_xfer, node);
        if (xf->id == id) {
            xfer_kill(xf);
            return;
        }
    }
}

static void http_drop(struct mcp_server *s, bool graceful)
{
    while (!list_empty(&s->xfers))
        xfer_kill(LIST_ENTRY(s->xfers.next, struct http_xfer, node));
    xfree(s->session);
    s->session = NULL;
}

static const struct transport_ops http_ops = {http_open, http_send, http_forget, http_drop};

/* ================================================================ configuration */

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        xfree(v[i]);
    xfree(v);
}

static void srv_free(struct mcp_server *s)
{
    xfree(s->name);
    strv_free(s->argv);
    strv_free(s->envp);
    xfree(s->cwd);
    xfree(s->url);
    for (size_t i = 0; i < s->nheaders; i++)
        xfree(s->headers[i]);
    xfree(s->headers);
    xfree(s->session);
    xfree(s->proto);
    json_decref(s->tools);
    json_decref(s->listing);
    xfree(s);
}

/* A config value as the string Node would pass on: strings as they are, numbers and booleans
 * in their JSON form. Caller owns the result; NULL for anything else. */
static char *scalar_str(const json_t *v)
{
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    if (json_is_number(v) || json_is_boolean(v)) {
        struct buf b;
        buf_init(&b, 64);
        mcp__js_stringify(&b, v, 0);
        return buf_detach(&b, NULL);
    }
    return NULL;
}

static const char *const inherited_env[] = {"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER"};

/* PATH plus the places @agent-infra/mcp-client adds on Linux, so that npx, uvx and friends
 * are found as they are by the original. */
static char *enhanced_path(void)
{
    const char *path = getenv("PATH");
    const char *home = getenv("HOME");
    struct buf b;
    buf_init(&b, 1 << 20);
    buf_appends(&b, path ? path : "");
    const char *extra[] = {
        "/bin",       "/usr/bin",    "/usr/local/bin", "/.nvm/current/bin", "/.npm-global/bin",
        "/.yarn/bin", "/.cargo/bin", "/snap/bin"};
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
        bool in_home = i >= 3 && i <= 6;
        char *dir = in_home ? xasprintf("%s%s", home ? home : "", extra[i]) : xstrdup(extra[i]);
        char *wrapped = xasprintf(":%s:", buf_str(&b));
        char *needle = xasprintf(":%s:", dir);
        if (strstr(wrapped, needle) == NULL)
            buf_appendf(&b, "%s%s", b.len ? ":" : "", dir);
        xfree(wrapped);
        xfree(needle);
        xfree(dir);
    }
    return buf_detach(&b, NULL);
}

/* The child's environment, as the original's stdio transport builds it: a short list of
 * inherited variables (the SDK's getDefaultEnvironment, so our API keys never reach a server),
 * PATH widened, then the configured env on top. */
static int env_build(struct mcp_server *s, const json_t *env, char **err)
{
    json_t *vars = json_object();
    for (size_t i = 0; i < sizeof(inherited_env) / sizeof(inherited_env[0]); i++) {
        const char *v = getenv(inherited_env[i]);
        if (v)
            json_object_set_new(vars, inherited_env[i], json_string_lossy(v, strlen(v)));
    }
    char *path = enhanced_path();
    json_object_set_new(vars, "PATH", json_string_lossy(path, strlen(path)));
    xfree(path);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)env, k, v)
    {
        char *sv = scalar_str(v);
        if (sv == NULL || strchr(k, '=') || *k == '\0') {
            *err = xasprintf("mcpServers.%s.env.%s must be a string", s->name, k);
            xfree(sv);
            json_decref(vars);
            return -EINVAL;
        }
        json_object_set_new(vars, k, json_string_lossy(sv, strlen(sv)));
        xfree(sv);
    }
    s->envp = xcalloc(json_object_size(vars) + 1, sizeof(char *));
    size_t n = 0;
    json_object_foreach(vars, k, v) s->envp[n++] = xasprintf("%s=%s", k, json_string_value(v));
    json_decref(vars);
    return 0;
}

static int read_stdio(struct mcp_server *s, const json_t *cfg, char **err)
{
    const json_t *args = json_object_get(cfg, "args");
    const json_t *env = json_object_get(cfg, "env");
    const json_t *cwd = json_object_get(cfg, "cwd");
    if ((args && !json_is_array(args) && !json_is_null(args)) ||
        (env && !json_is_object(env) && !json_is_null(env)) || (cwd && !json_is_string(cwd))) {
        *err =
            xasprintf("mcpServers.%s: args must be an array, env an object, cwd a string", s->name);
        return -EINVAL;
    }
    size_t n = json_array_size(args);
    s->argv = xcalloc(n + 2, sizeof(char *));
    s->argv[0] = xstrdup(json_string_value(json_object_get(cfg, "command")));
    for (size_t i = 0; i < n; i++) {
        s->argv[i + 1] = scalar_str(json_array_get(args, i));
        if (s->argv[i + 1] == NULL) {
            *err = xasprintf("mcpServers.%s.args[%zu] must be a string", s->name, i);
            return -EINVAL;
        }
    }
    if (cwd)
        s->cwd = xstrdup(json_string_value(cwd));
    s->ops = &stdio_ops;
    const json_t *sandbox = json_object_get(cfg, "sandbox");
    if (sandbox && !json_is_boolean(sandbox) && !json_is_null(sandbox)) {
        *err = xasprintf("mcpServers.%s.sandbox must be true or false", s->name);
        return -EINVAL;
    }
    s->sandbox = json_is_true(sandbox);
    if (s->sandbox && tool__sandbox_mode() != TOOL_SANDBOX_BWRAP) {
        *err = xasprintf("mcpServers.%s.sandbox needs the bubblewrap sandbox, which is off "
                         "(command.sandbox none, or bwrap missing: apt-get install bubblewrap)",
                         s->name);
        return -EINVAL;
    }
    int rc = env_build(s, json_is_object(env) ? env : NULL, err);
    /* In the sandbox the server's home is absent: HOME is the private /tmp, where npx and
     * friends keep their caches for the sandbox's lifetime, unless the config sets one. */
    for (size_t i = 0; rc == 0 && s->sandbox && s->envp[i] != NULL; i++)
        if (strncmp(s->envp[i], "HOME=", 5) == 0 &&
            json_object_get(json_is_object(env) ? env : NULL, "HOME") == NULL) {
            xfree(s->envp[i]);
            s->envp[i] = xstrdup("HOME=/tmp");
        }
    return rc;
}

static int read_http(struct mcp_server *s, const json_t *cfg, char **err)
{
    const char *type = json_get_str(cfg, "type");
    if (type && strcmp(type, "streamable-http") != 0) {
        *err = xasprintf("mcpServers.%s: transport type '%s' is not supported "
                         "(only streamable-http)",
                         s->name, type);
        return -EINVAL;
    }
    const json_t *headers = json_object_get(cfg, "headers");
    if (headers && !json_is_object(headers) && !json_is_null(headers)) {
        *err = xasprintf("mcpServers.%s.headers must be an object", s->name);
        return -EINVAL;
    }
    s->url = xstrdup(json_get_str(cfg, "url"));
    s->headers = xcalloc(json_object_size(headers) + 1, sizeof(char *));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)headers, k, v)
    {
        char *sv = scalar_str(v);
        if (sv == NULL || strpbrk(k, ":\r\n") || strpbrk(sv, "\r\n")) {
            *err = xasprintf("mcpServers.%s.headers.%s must be a one-line string", s->name, k);
            xfree(sv);
            return -EINVAL;
        }
        s->headers[s->nheaders++] = xasprintf("%s: %s", k, sv);
        xfree(sv);
    }
    s->ops = &http_ops;
    return 0;
}

static int read_server(const char *name, const json_t *cfg, struct mcp_server **out, char **err)
{
    if (!json_is_object(cfg)) {
        *err = xasprintf("mcpServers.%s must be an object", name);
        return -EINVAL;
    }
    struct mcp_server *s = xcalloc(1, sizeof(*s));
    s->name = xstrdup(name);
    s->call_timeout_ms = M.call_timeout_ms;
    const json_t *timeout = json_object_get(cfg, "timeout"); /* seconds, as the original */
    int rc;
    if (timeout && !(json_is_number(timeout) && json_number_value(timeout) > 0)) {
        *err = xasprintf("mcpServers.%s.timeout must be a positive number of seconds", name);
        rc = -EINVAL;
    } else if (json_get_str(cfg, "command")) {
        rc = read_stdio(s, cfg, err);
    } else if (json_get_str(cfg, "url")) {
        rc = read_http(s, cfg, err);
    } else {
        *err = xasprintf("mcpServers.%s needs a \"command\" or a \"url\"", name);
        rc = -EINVAL;
    }
    if (timeout && rc == 0)
        s->call_timeout_ms = (uint64_t)(json_number_value(timeout) * 1000);
    if (rc < 0) {
        srv_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* mcpServer.include / exclude: arrays of name substrings (a string is split on commas, as a
 * repeated or comma-separated CLI flag gives it). Include first, then exclude, as the
 * original's filterItems. */
static bool matches_any(const json_t *patterns, const char *name)
{
    if (json_is_string(patterns)) {
        char *list = xstrdup(json_string_value(patterns));
        bool hit = false;
        char *save = NULL;
        for (char *p = strtok_r(list, ",", &save); p && !hit; p = strtok_r(NULL, ",", &save))
            hit = *p && strstr(name, p) != NULL;
        xfree(list);
        return hit;
    }
    size_t i;
    json_t *p;
    json_array_foreach(patterns, i, p)
    {
        if (json_is_string(p) && strstr(name, json_string_value(p)))
            return true;
    }
    return false;
}

static bool has_patterns(const json_t *p)
{
    return (json_is_string(p) && *json_string_value(p)) || json_array_size(p) > 0;
}

static bool filtered_out(const json_t *filter, const char *name)
{
    const json_t *inc = json_object_get(filter, "include");
    const json_t *exc = json_object_get(filter, "exclude");
    if (has_patterns(inc) && !matches_any(inc, name))
        return true;
    return has_patterns(exc) && matches_any(exc, name);
}

static int read_ms(const json_t *mcp, const char *key, uint64_t def, uint64_t *out, char **err)
{
    const json_t *v = json_object_get(mcp, key);
    *out = def;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_number(v) || json_number_value(v) <= 0 || json_number_value(v) > 86400000.0) {
        *err = xasprintf("mcp.%s must be a number of milliseconds", key);
        return -EINVAL;
    }
    *out = (uint64_t)json_number_value(v);
    return 0;
}

static int read_settings(const json_t *root, char **err)
{
    const json_t *mcp = json_object_get(root, "mcp");
    if (mcp && !json_is_object(mcp)) {
        *err = xstrdup("'mcp' must be an object");
        return -EINVAL;
    }
    int rc = read_ms(mcp, "callTimeoutMs", DEFAULT_CALL_TIMEOUT_MS, &M.call_timeout_ms, err);
    if (rc == 0)
        rc = read_ms(mcp, "initTimeoutMs", DEFAULT_INIT_TIMEOUT_MS, &M.init_timeout_ms, err);
    if (rc == 0)
        rc = read_ms(mcp, "pingTimeoutMs", DEFAULT_PING_TIMEOUT_MS, &M.ping_timeout_ms, err);
    if (rc == 0)
        rc = read_ms(mcp, "restartBackoffMs", DEFAULT_BACKOFF_MS, &M.backoff_ms, err);
    return rc;
}

static int read_servers(const json_t *root, char **err)
{
    const json_t *servers = json_object_get(root, "mcpServers");
    const json_t *filter = json_object_get(root, "mcpServer");
    if (servers && !json_is_object(servers) && !json_is_null(servers)) {
        *err = xstrdup("'mcpServers' must be an object");
        return -EINVAL;
    }
    M.servers = xcalloc(json_object_size(servers) + 1, sizeof(*M.servers));
    const char *name;
    json_t *cfg;
    json_object_foreach((json_t *)servers, name, cfg)
    {
        if (json_is_object(filter) && filtered_out(filter, name)) {
            log_info("mcp server '%s' filtered out by mcpServer.include/exclude", name);
            continue;
        }
        struct mcp_server *s;
        int rc = read_server(name, cfg, &s, err);
        if (rc < 0)
            return rc;
        M.servers[M.nservers++] = s;
    }
    return 0;
}

/* ================================================================ tool registry */

static void rebuild(void)
{
    if (!M.dirty)
        return;
    M.dirty = false;
    json_decref(M.schema);
    json_decref(M.described);
    map_release(&M.owner);
    map_init(&M.owner);
    M.described = json_object();
    /* In config order; a later server's tool replaces an earlier one of the same name, as the
     * original's name-keyed tool map does. */
    for (size_t i = 0; i < M.nservers; i++) {
        struct mcp_server *s = M.servers[i];
        size_t k;
        json_t *t;
        json_array_foreach(s->tools, k, t)
        {
            const char *name = json_get_str(t, "name");
            const char *d = json_get_str(t, "description");
            char *desc = d && *d ? xasprintf("[%s] %s", s->name, d)
                                 : xasprintf("[%s] %s - %s", s->name, s->name, name);
            json_t *schema = json_object_get(t, "inputSchema");
            json_t *params = json_is_object(schema)
                                 ? json_incref(schema)
                                 : json_pack("{s:s, s:{}}", "type", "object", "properties");
            json_object_set_new(
                M.described, name,
                json_pack("{s:s, s:s, s:o}", "name", name, "description", desc, "schema", params));
            map_set(&M.owner, name, s);
            xfree(desc);
        }
    }
    M.schema = json_array();
    const char *name;
    json_t *d;
    json_object_foreach(M.described, name, d)
    {
        json_array_append_new(M.schema, json_pack("{s:s, s:{s:s, s:O, s:O}}", "type", "function",
                                                  "function", "name", name, "description",
                                                  json_object_get(d, "description"), "parameters",
                                                  json_object_get(d, "schema")));
    }
}

const json_t *mcp_tools_schema(void)
{
    if (!M.inited)
        return NULL;
    rebuild();
    return M.schema;
}

const json_t *mcp_tool_describe(const char *name)
{
    if (!M.inited)
        return NULL;
    rebuild();
    return json_object_get(M.described, name);
}

/* ================================================================ public API */

int mcp_init(uv_loop_t *loop, const json_t *config_root, char **err)
{
    if (M.inited)
        mcp_shutdown();
    memset(&M, 0, sizeof(M));
    M.loop = loop;
    map_init(&M.owner);
    *err = NULL;
    int rc = read_settings(config_root, err);
    if (rc == 0)
        rc = read_servers(config_root, err);
    bool http = false;
    for (size_t i = 0; rc == 0 && i < M.nservers; i++)
        http |= M.servers[i]->ops == &http_ops;
    if (rc == 0 && http) {
        rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? curl_uv_new(loop, &M.cu) : -ENOMEM;
        if (rc < 0)
            *err = xasprintf("cannot set up the HTTP client for MCP: %s", uv_strerror(rc));
    }
    if (rc < 0) {
        for (size_t i = 0; i < M.nservers; i++)
            srv_free(M.servers[i]);
        xfree(M.servers);
        map_release(&M.owner);
        memset(&M, 0, sizeof(M));
        return rc;
    }
    M.inited = true;
    M.dirty = true;
    for (size_t i = 0; i < M.nservers; i++) {
        struct mcp_server *s = M.servers[i];
        list_init(&s->calls);
        list_init(&s->waiting);
        list_init(&s->xfers);
        uv_timer_init(loop, &s->timer);
        s->timer.data = s;
    }
    for (size_t i = 0; i < M.nservers; i++)
        srv_start(M.servers[i]);
    return 0;
}

bool mcp_ready(void)
{
    for (size_t i = 0; M.inited && i < M.nservers; i++)
        if (!M.servers[i]->settled)
            return false;
    return true;
}

static void on_srv_closed(uv_handle_t *h)
{
    srv_free(h->data);
}

static void on_cu_closed(void *data)
{
    curl_global_cleanup();
}

void mcp_shutdown(void)
{
    if (!M.inited)
        return;
    M.inited = false;
    for (size_t i = 0; i < M.nservers; i++) {
        struct mcp_server *s = M.servers[i];
        fail_list(&s->calls, ERR_CLOSED);
        fail_list(&s->waiting, ERR_CLOSED);
        s->ops->drop(s, true);
        s->state = S_CLOSED;
        uv_timer_stop(&s->timer);
        uv_close((uv_handle_t *)&s->timer, on_srv_closed);
    }
    if (M.cu)
        curl_uv_close(M.cu, on_cu_closed, NULL);
    M.cu = NULL;
    xfree(M.servers);
    M.servers = NULL;
    M.nservers = 0;
    json_decref(M.schema);
    json_decref(M.described);
    M.schema = M.described = NULL;
    map_release(&M.owner);
}

int mcp_call_start(const char *name, const json_t *args, tool_done_cb on_done, void *data,
                   struct mcp_call **out)
{
    if (!M.inited || name == NULL)
        return -ENOENT;
    rebuild();
    struct mcp_server *s = map_get(&M.owner, name);
    if (s == NULL)
        return -ENOENT;
    struct mcp_call *c = xcalloc(1, sizeof(*c));
    c->srv = s;
    c->tool = xstrdup(name);
    c->args = json_is_object(args) ? json_deep_copy(args) : json_object();
    c->on_done = on_done;
    c->data = data;
    uv_timer_init(M.loop, &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, on_call_timer, s->call_timeout_ms, 0);
    list_init(&c->node);
    list_insert_tail(&s->waiting, &c->node);
    if (out)
        *out = c;
    if (s->state == S_READY)
        call_send(c);
    else
        srv_wake(s);
    return 0;
}

void mcp_call_abort(struct mcp_call *c)
{
    if (c == NULL || c->state == CALL_DONE)
        return; /* a result that already arrived is delivered as it is */
    if (c->state == CALL_SENT)
        send_cancelled(c->srv, c->id, "aborted");
    call_finish(c, NULL, xstrdup("aborted"));
}
