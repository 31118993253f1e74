/* SPDX-License-Identifier: MIT */
/* mcp.c -- the Model Context Protocol client (agent-tools-llm.md §3): the calls, the registry of
 * servers and their tools, and each server's small state machine (down -> starting -> ready)
 * driven by one uv timer. A server speaks through its transport's ops (mcp_int.h): a child
 * process over pipes (mcp_stdio.c) or Streamable HTTP over libcurl on the loop (mcp_http.c);
 * mcp_config.c reads the servers from the config. Tool calls carry their own timer: the per-call
 * timeout, then the 0 ms tick that delivers the result, so on_done never runs inside a caller's
 * frame. */
#include "mcp.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/list.h"
#include "core/log.h"
#include "core/map.h"
#include "core/util.h"
#include "core/xalloc.h"
#include "jsonrpc.h"
#include "mcp_int.h"
#include "obs/obs.h"
#include "tools.h"

#define PROTOCOL_VERSION "2025-06-18"
#define CLIENT_NAME "agent-tars-server"
#define CLIENT_VERSION "0.3.0"

#define MAX_BACKOFF_MS 30000
#define MAX_TOOL_PAGES 100
#define MAX_TOOLS 4096

/* What the SDK-based original reports for these (McpError codes of the TypeScript SDK). */
#define ERR_CLOSED "MCP error -32000: Connection closed"
#define ERR_TIMEOUT "MCP error -32001: Request timed out"

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
    struct mcp_settings set;
    json_t *schema;    /* OpenAI tools array */
    json_t *described; /* name -> {name, description, schema} */
    struct map owner;  /* name -> struct mcp_server * */
    bool dirty;
} M;

static void on_srv_timer(uv_timer_t *t);
static void on_call_timer(uv_timer_t *t);

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
    uint64_t d = M.set.backoff_ms;
    for (unsigned i = 1; i < failures && d < MAX_BACKOFF_MS; i++)
        d *= 2;
    return d < MAX_BACKOFF_MS ? d : MAX_BACKOFF_MS;
}

/* Connection lost or handshake failed: everything waiting gets an error result and the next
 * call restarts the server, right away if it had been ready, after a growing backoff if it
 * could not even start. */
void mcp__srv_fail(struct mcp_server *s, const char *reason)
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
        mcp__srv_fail(s, err);
        xfree(err);
        return;
    }
    json_t *p =
        json_pack("{s:s, s:{}, s:{s:s, s:s}}", "protocolVersion", PROTOCOL_VERSION, "capabilities",
                  "clientInfo", "name", CLIENT_NAME, "version", CLIENT_VERSION);
    s->hs_id = srv_request(s, "initialize", p);
    json_decref(p);
    if (s->hs_id < 0) {
        mcp__srv_fail(s, "cannot send initialize");
        return;
    }
    uv_timer_start(&s->timer, on_srv_timer, M.set.init_timeout_ms, 0);
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
        mcp__srv_fail(s, "cannot send tools/list");
}

static void on_initialized(struct mcp_server *s, const json_t *result)
{
    const char *v = json_get_str(result, "protocolVersion");
    if (v == NULL) {
        mcp__srv_fail(s, "initialize result has no protocolVersion");
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
        mcp__srv_fail(s, "tools/list result has no tools array");
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
        mcp__srv_fail(s, t);
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

bool mcp__srv_unanswered(struct mcp_server *s, json_int_t id, const char *why)
{
    if (s->state == S_STARTING && id == s->hs_id) {
        mcp__srv_fail(s, why);
        return true;
    }
    struct mcp_call *c = find_call(s, id);
    if (c)
        call_fail(c, why);
    return false;
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

void mcp__srv_on_message(struct mcp_server *s, const struct jsonrpc_msg *m)
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
    if (s->state != S_READY || s->ping_id != 0 || !s->ops->pingable(s))
        return;
    s->ping_id = srv_request(s, "ping", NULL);
    if (s->ping_id < 0) {
        s->ping_id = 0;
        mcp__srv_fail(s, "cannot send ping");
        return;
    }
    uv_timer_start(&s->timer, on_srv_timer, M.set.ping_timeout_ms, 0);
}

static void on_srv_timer(uv_timer_t *t)
{
    struct mcp_server *s = t->data;
    switch (s->state) {
    case S_STARTING:
        mcp__srv_fail(s, "initialize: " ERR_TIMEOUT);
        break;
    case S_DOWN:
        if (!list_empty(&s->waiting))
            srv_start(s);
        break;
    case S_READY:
        if (s->ping_id != 0)
            mcp__srv_fail(s, "no answer to ping after a call timed out");
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

/* True when no server before servers[i] uses its transport: each transport in use is set up and
 * torn down once. */
static bool first_of_its_kind(size_t i)
{
    for (size_t j = 0; j < i; j++)
        if (M.servers[j]->ops == M.servers[i]->ops)
            return false;
    return true;
}

int mcp_init(uv_loop_t *loop, const json_t *config_root, char **err)
{
    if (M.inited)
        mcp_shutdown();
    memset(&M, 0, sizeof(M));
    M.loop = loop;
    map_init(&M.owner);
    *err = NULL;
    int rc = mcp__config_read(config_root, &M.set, &M.servers, &M.nservers, err);
    for (size_t i = 0; rc == 0 && i < M.nservers; i++) {
        const struct mcp_transport_ops *ops = M.servers[i]->ops;
        if (ops->setup && first_of_its_kind(i))
            rc = ops->setup(loop, err);
    }
    if (rc < 0) {
        for (size_t i = 0; i < M.nservers; i++)
            mcp__srv_free(M.servers[i]);
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
    mcp__srv_free(h->data);
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
    for (size_t i = 0; i < M.nservers; i++)
        if (M.servers[i]->ops->teardown && first_of_its_kind(i))
            M.servers[i]->ops->teardown();
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
