/* SPDX-License-Identifier: MIT */
/* bridge.c -- the main namespace's events (anchor-api.md §1.6, §3.8) and the agent-event bridge
 * (§1.7 with the §3.8 changes). Each session with joined sockets has one hub subscribed to the
 * agent; every agent event is mapped and serialized once there, and the resulting packets are
 * shared (refcounted) by every joined socket's send queue, in the same order for all. */
#include <errno.h>
#include <string.h>

#include "../agent/agent.h"
#include "../core/log.h"
#include "../core/map.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "sio_int.h"

#define SESSION_NOT_FOUND "Session not found"
#define BUSY_QUEUE_MSG "Too many concurrent runs, try again later" /* as the HTTP 429 */

bool bridge__exclusive;

/* The joined sockets of one session. */
struct bridge_hub {
    struct agent_session *s;
    struct agent_sub sub;
    struct list_node members; /* struct bridge_join by hub_link */
    int busy;                 /* delivering: freeing waits */
};

struct bridge_join {
    struct bridge_hub *hub;
    struct sio_socket *sock;
    struct list_node hub_link;
    struct list_node sock_link; /* in sock->joins */
};

/* A send-query run whose failure is reported back to the socket that asked. */
struct bridge_run {
    struct sio_socket *sock;
    struct agent_session *s;
    struct list_node link; /* in sock->runs */
};

static struct map hubs; /* session id -> hub */
static bool hubs_ready;

/* ---- packets ---- */

/* 42["agent-event",{"type":<type>,"data":<data>,"seq":<seq>}] (seq < 0: none). */
static struct eio_msg *event_msg(const char *type, const char *data, size_t len, int64_t seq)
{
    struct buf b;
    buf_init(&b, (size_t)-1);
    buf_append_lit(&b, "42[\"agent-event\",{\"type\":");
    json_t *t = json_string(type);
    char *ts = json_dump_compact(t, NULL);
    json_decref(t);
    buf_appends(&b, ts);
    xfree(ts);
    buf_append_lit(&b, ",\"data\":");
    buf_append(&b, data, len);
    if (seq >= 0) {
        buf_append_lit(&b, ",\"seq\":");
        buf_append_i64(&b, seq);
    }
    buf_append_lit(&b, "}]");
    struct eio_msg *m = eio_msg_new(false, b.data, b.len);
    buf_release(&b);
    return m;
}

static struct eio_msg *event_msg_json(const char *type, json_t *data, int64_t seq)
{
    size_t len = 0;
    char *s = json_dump_compact(data, &len);
    json_decref(data);
    struct eio_msg *m = event_msg(type, s, len, seq);
    xfree(s);
    return m;
}

/* AgentStatusInfo {isProcessing, state?, phase?, message?, estimatedTime?} (§3.8). */
static json_t *status_json(bool processing, const char *state, const char *phase,
                           const char *message, const char *estimated)
{
    json_t *j = json_pack("{s:b}", "isProcessing", processing);
    if (state)
        json_object_set_new(j, "state", json_string(state));
    if (phase)
        json_object_set_new(j, "phase", json_string(phase));
    if (message)
        json_object_set_new(j, "message", json_string_lossy(message, strlen(message)));
    if (estimated)
        json_object_set_new(j, "estimatedTime", json_string(estimated));
    return j;
}

static struct eio_msg *status_msg(json_t *status, int64_t seq)
{
    return event_msg_json("agent-status", status, seq);
}

/* Copies ev[k] into o for the keys present in ev, in the order given; returns o. */
static json_t *pick_into(json_t *o, const json_t *ev, const char *const *keys)
{
    for (; *keys; keys++) {
        json_t *v = json_object_get(ev, *keys);
        if (v)
            json_object_set(o, *keys, v);
    }
    return o;
}

static json_t *pick(const json_t *ev, const char *const *keys)
{
    return pick_into(json_object(), ev, keys);
}

static size_t map_system(const json_t *j, int64_t seq, struct eio_msg *out[4])
{
    const char *level = json_get_str(j, "level");
    const char *msg = json_get_str(j, "message");
    static const char *const keys[] = {"message", NULL};
    size_t n = 0;
    out[n++] = event_msg_json(level ? level : "info", pick(j, keys), seq);
    if (!msg)
        return n;
    if (strstr(msg, "aborted")) {
        out[n++] = event_msg_json("aborted", pick(j, keys), seq);
        out[n++] = status_msg(status_json(false, "idle", NULL, NULL, NULL), seq);
    } else if (strstr(msg, "status")) {
        out[n++] = event_msg_json("status", pick(j, keys), seq);
    }
    if (n < 4 && strstr(msg, "model warming up"))
        out[n++] = status_msg(
            status_json(true, "warming_up", "model_warmup", "Warming up model...", NULL), seq);
    else if (n < 4 && strstr(msg, "generating"))
        out[n++] = status_msg(
            status_json(true, "generating", "response_generation", "Generating response...", NULL),
            seq);
    return n;
}

static size_t map_parsed(const struct agent_event *ev, const json_t *j, struct eio_msg *out[4])
{
    const char *t = ev->type;
    int64_t seq = ev->seq;
    json_t *content = json_object_get(j, "content");
    if (strcmp(t, "user_message") == 0) {
        out[0] = event_msg_json("query", json_pack("{s:O?}", "text", content), seq);
        out[1] = status_msg(status_json(true, "processing", "request_processing",
                                        "Processing your request...", NULL),
                            seq);
        return 2;
    }
    if (strcmp(t, "assistant_message") == 0) {
        out[0] = event_msg_json("answer", json_pack("{s:O?}", "text", content), seq);
        return 1;
    }
    if (strcmp(t, "tool_call") == 0) {
        static const char *const keys[] = {"name", "toolCallId", "arguments", NULL};
        json_t *d = pick_into(json_pack("{s:s}", "type", "tool_call"), j, keys);
        out[0] = event_msg_json("event", d, seq);
        const char *name = json_get_str(j, "name");
        char *m = xasprintf("Executing %s...", name ? name : "tool");
        out[1] = status_msg(status_json(true, "executing_tools", "tool_execution", m, NULL), seq);
        xfree(m);
        return 2;
    }
    if (strcmp(t, "tool_result") == 0) {
        static const char *const keys[] = {"name", "toolCallId", "content", "error", NULL};
        json_t *d = pick_into(json_pack("{s:s}", "type", "tool_result"), j, keys);
        out[0] = event_msg_json("event", d, seq);
        return 1;
    }
    if (strcmp(t, "system") == 0)
        return map_system(j, seq, out);
    if (strcmp(t, "assistant_streaming_message") == 0) {
        static const char *const keys[] = {"content", "isComplete", "messageId", NULL};
        out[0] = event_msg_json("streaming_message", pick(j, keys), seq);
        if (json_is_true(json_object_get(j, "isComplete")))
            return 1;
        out[1] = status_msg(
            status_json(true, "streaming", "first_token_received", "Generating response...", NULL),
            seq);
        return 2;
    }
    if (strcmp(t, "agent_run_start") == 0) {
        out[0] = status_msg(status_json(true, "initializing", "model_initialization",
                                        "Initializing model and processing request...", NULL),
                            seq);
        return 1;
    }
    /* agent_run_end */
    const char *st = json_get_str(j, "status");
    out[0] = status_msg(status_json(false, st ? st : "idle", NULL, NULL, NULL), seq);
    return 1;
}

static bool needs_parse(const char *t)
{
    static const char *types[] = {
        "user_message", "assistant_message",           "tool_call",       "tool_result",
        "system",       "assistant_streaming_message", "agent_run_start", "agent_run_end"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(types[i], t) == 0)
            return true;
    return false;
}

size_t bridge__map_event(const struct agent_event *ev, struct eio_msg *out[4])
{
    if (!needs_parse(ev->type)) {
        /* Everything else travels whole as an "event" (thinking, tool-call deltas, ...). */
        out[0] = event_msg("event", ev->json, ev->len, ev->seq);
        return 1;
    }
    json_t *j = json_loadb(ev->json, ev->len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        out[0] = event_msg("event", ev->json, ev->len, ev->seq);
        return 1;
    }
    size_t n = map_parsed(ev, j, out);
    json_decref(j);
    return n;
}

/* ---- hubs ---- */

static void hub_free(struct bridge_hub *h)
{
    agent_unsubscribe(h->s, &h->sub);
    map_del(&hubs, agent_session_id(h->s));
    xfree(h);
}

static void hub_on_event(struct agent_sub *sub, struct agent_event *ev)
{
    struct bridge_hub *h = sub->data;
    struct eio_msg *msgs[4];
    size_t n = bridge__map_event(ev, msgs);
    h->busy++;
    struct list_node *node = h->members.next;
    while (node != &h->members) {
        struct list_node *next = node->next; /* a socket past its cap leaves during the send */
        struct bridge_join *jn = LIST_ENTRY(node, struct bridge_join, hub_link);
        for (size_t i = 0; i < n; i++)
            if (sio_send_msg(jn->sock, msgs[i]) < 0)
                break;
        node = next;
    }
    h->busy--;
    for (size_t i = 0; i < n; i++)
        eio_msg_unref(msgs[i]);
    if (!h->busy && list_empty(&h->members))
        hub_free(h);
}

/* Sends m to every joined socket of h. */
static void hub_send(struct bridge_hub *h, struct eio_msg *m)
{
    h->busy++;
    struct list_node *node = h->members.next;
    while (node != &h->members) {
        struct list_node *next = node->next; /* a socket past its cap leaves during the send */
        sio_send_msg(LIST_ENTRY(node, struct bridge_join, hub_link)->sock, m);
        node = next;
    }
    h->busy--;
}

static void leave(struct bridge_join *jn);

/* The session was deleted: its sockets hear "closed" (the early server's lifecycle event) and
 * leave. */
static void hub_on_gone(struct agent_sub *sub)
{
    struct bridge_hub *h = sub->data;
    json_t *d = json_pack("{s:s}", "sessionId", agent_session_id(h->s));
    struct eio_msg *m = event_msg_json("closed", d, -1);
    hub_send(h, m);
    eio_msg_unref(m);
    h->busy++;
    while (!list_empty(&h->members))
        leave(LIST_ENTRY(h->members.next, struct bridge_join, hub_link));
    h->busy--;
    hub_free(h);
}

static struct bridge_hub *hub_get(struct agent_session *s)
{
    if (!hubs_ready) {
        map_init(&hubs);
        hubs_ready = true;
    }
    struct bridge_hub *h = map_get(&hubs, agent_session_id(s));
    if (h)
        return h;
    h = xcalloc(1, sizeof(*h));
    h->s = s;
    list_init(&h->members);
    h->sub.on_event = hub_on_event;
    h->sub.on_gone = hub_on_gone;
    h->sub.data = h;
    agent_subscribe(s, &h->sub);
    map_set(&hubs, agent_session_id(s), h);
    return h;
}

static void leave(struct bridge_join *jn)
{
    struct bridge_hub *h = jn->hub;
    list_remove(&jn->hub_link);
    list_remove(&jn->sock_link);
    xfree(jn);
    if (!h->busy && list_empty(&h->members))
        hub_free(h);
}

static struct bridge_join *find_join(struct sio_socket *sock, struct bridge_hub *h)
{
    for (struct list_node *n = sock->joins.next; n != &sock->joins; n = n->next) {
        struct bridge_join *jn = LIST_ENTRY(n, struct bridge_join, sock_link);
        if (jn->hub == h)
            return jn;
    }
    return NULL;
}

/* ---- event handlers ---- */

static void reply_error(struct sio_socket *sock, int64_t ack_id, const char *msg)
{
    json_t *m = json_string(msg);
    sio_emit(sock, "error", m);
    json_decref(m);
    if (ack_id >= 0) {
        json_t *a = json_pack("[{s:b, s:s}]", "success", 0, "error", msg);
        sio_ack(sock, ack_id, a);
        json_decref(a);
    }
}

static void ack_success(struct sio_socket *sock, int64_t ack_id)
{
    if (ack_id < 0)
        return;
    json_t *a = json_pack("[{s:b}]", "success", 1);
    sio_ack(sock, ack_id, a);
    json_decref(a);
}

static void replay_one(void *data, struct agent_event *ev)
{
    struct sio_socket *sock = data;
    if (sock->gone)
        return; /* fell over its cap earlier in the replay */
    struct eio_msg *msgs[4];
    size_t n = bridge__map_event(ev, msgs);
    for (size_t i = 0; i < n; i++) {
        sio_send_msg(sock, msgs[i]);
        eio_msg_unref(msgs[i]);
    }
}

/* join-session: "id", {sessionId} or {sessionId, since}. The replay and the subscription
 * happen in one loop turn, so nothing is missed or repeated between them. */
static void on_join(struct sio_socket *sock, const json_t *arg, int64_t ack_id)
{
    const char *id = json_is_string(arg) ? json_string_value(arg) : json_get_str(arg, "sessionId");
    const json_t *since = json_object_get(arg, "since");
    struct agent_session *s = agent_session_find(id);
    if (!s) {
        reply_error(sock, ack_id, SESSION_NOT_FOUND);
        return;
    }
    /* A resume position is a non-negative integer (huge ones replay nothing; issue 11). */
    if (since && !json_is_null(since) &&
        !(json_is_integer(since) && json_integer_value(since) >= 0)) {
        reply_error(sock, ack_id, "since must be a non-negative integer");
        return;
    }
    struct bridge_hub *h = hub_get(s);
    json_t *st = json_pack("{s:b, s:s}", "isProcessing", agent_session_running(s), "state",
                           agent_session_status(s));
    sio_emit(sock, "agent-status", st);
    json_decref(st);
    if (json_is_integer(since) && json_integer_value(since) >= 0)
        agent_replay(s, json_integer_value(since), replay_one, sock);
    if (sock->gone) {
        /* fell over its cap during the replay */
        if (list_empty(&h->members))
            hub_free(h);
        return;
    }
    if (!find_join(sock, h)) {
        struct bridge_join *jn = xcalloc(1, sizeof(*jn));
        jn->hub = h;
        jn->sock = sock;
        list_insert_tail(&h->members, &jn->hub_link);
        list_insert_tail(&sock->joins, &jn->sock_link);
    }
    ack_success(sock, ack_id);
}

static void on_run_done(void *data, enum agent_run_status status, const json_t *final_msg,
                        const char *errmsg)
{
    struct bridge_run *r = data;
    struct sio_socket *sock = r->sock;
    list_remove(&r->link); /* first: the emit below may disconnect the socket */
    xfree(r);
    if (status == AGENT_RUN_ERROR && errmsg) {
        json_t *m = json_string_lossy(errmsg, strlen(errmsg));
        sio_emit(sock, "error", m); /* nothing touches sock after this */
        json_decref(m);
    }
}

/* JavaScript truthiness of the query, as the HTTP routes check it. */
static bool truthy(const json_t *j)
{
    if (!j || json_is_null(j) || json_is_false(j))
        return false;
    if (json_is_string(j))
        return json_string_length(j) > 0;
    if (json_is_number(j))
        return json_number_value(j) != 0;
    return true;
}

static void on_send_query(struct sio_socket *sock, const json_t *arg, int64_t ack_id)
{
    struct agent_session *s = agent_session_find(json_get_str(arg, "sessionId"));
    const json_t *query = json_object_get(arg, "query");
    if (!s) {
        reply_error(sock, ack_id, SESSION_NOT_FOUND);
        return;
    }
    if (!truthy(query)) {
        reply_error(sock, ack_id, "Query is required");
        return;
    }
    int rc = agent_run_check(s);
    if (rc < 0) {
        reply_error(sock, ack_id, rc == -EBUSY ? AGENT_BUSY_MSG : BUSY_QUEUE_MSG);
        return;
    }
    struct bridge_hub *h = hubs_ready ? map_get(&hubs, agent_session_id(s)) : NULL;
    if (h) {
        /* What the original's runQuery announces before the run starts (§3.8). */
        struct eio_msg *m =
            status_msg(status_json(true, "initializing", "query_preparation",
                                   "Preparing to process your request...", "5-15 seconds"),
                       -1);
        hub_send(h, m);
        eio_msg_unref(m);
        if (list_empty(&h->members))
            hub_free(h);
        if (sock->gone)
            return;
    }
    struct bridge_run *r = xcalloc(1, sizeof(*r));
    r->sock = sock;
    r->s = s;
    list_insert_tail(&sock->runs, &r->link);
    ack_success(sock, ack_id); /* before the run's first events */
    if (agent_run_start(s, query, true, on_run_done, r) < 0) {
        list_remove(&r->link);
        xfree(r);
    }
}

static void on_abort(struct sio_socket *sock, const json_t *arg, int64_t ack_id)
{
    struct agent_session *s = agent_session_find(json_get_str(arg, "sessionId"));
    if (!s) {
        reply_error(sock, ack_id, SESSION_NOT_FOUND);
        return;
    }
    json_t *res = json_pack("{s:b}", "success", agent_abort(s));
    sio_emit(sock, "abort-result", res);
    if (ack_id >= 0) {
        json_t *a = json_pack("[O]", res);
        sio_ack(sock, ack_id, a);
        json_decref(a);
    }
    json_decref(res);
}

/* tool-approval {sessionId, toolCallId, approved, reason?}: as POST /api/v1/sessions/tool-approval */
static void on_tool_approval(struct sio_socket *sock, const json_t *arg, int64_t ack_id)
{
    struct agent_session *s = agent_session_find(json_get_str(arg, "sessionId"));
    const char *id = json_get_str(arg, "toolCallId");
    const json_t *approved = json_object_get(arg, "approved");
    const json_t *reason = json_object_get(arg, "reason");
    if (!s)
        reply_error(sock, ack_id, SESSION_NOT_FOUND);
    else if (!id || !json_is_boolean(approved) || (reason && !json_is_null(reason) && !json_is_string(reason)))
        reply_error(sock, ack_id, "toolCallId (string) and approved (boolean) are required");
    else if (agent_tool_approval(s, id, json_is_true(approved), json_string_value(reason),
                                 "socket.io") < 0)
        reply_error(sock, ack_id, "No pending approval for that toolCallId");
    else
        ack_success(sock, ack_id);
}

static void on_server_status(struct sio_socket *sock, int64_t ack_id)
{
    const char *running = agent_running_session();
    json_t *st = json_pack("{s:b, s:s?, s:b}", "isExclusive", bridge__exclusive, "runningSessionId",
                           running, "canAcceptNewRequest", !bridge__exclusive || !running);
    if (!running)
        json_object_set_new(st, "runningSessionId", json_null());
    sio_emit(sock, "server-status", st);
    if (ack_id >= 0) {
        json_t *a = json_pack("[O]", st);
        sio_ack(sock, ack_id, a);
        json_decref(a);
    }
    json_decref(st);
}

static void main_on_event(struct sio_socket *sock, const char *name, const json_t *args,
                          int64_t ack_id, struct eio_msg **atts, unsigned natts)
{
    const json_t *arg = json_array_get(args, 1);
    if (strcmp(name, "join-session") == 0) {
        on_join(sock, arg, ack_id);
    } else if (strcmp(name, "send-query") == 0) {
        on_send_query(sock, arg, ack_id);
    } else if (strcmp(name, "abort-query") == 0) {
        on_abort(sock, arg, ack_id);
    } else if (strcmp(name, "tool-approval") == 0) {
        on_tool_approval(sock, arg, ack_id);
    } else if (strcmp(name, "get-server-status") == 0) {
        on_server_status(sock, ack_id);
    } else if (strcmp(name, "ping") == 0) {
        if (ack_id >= 0)
            sio_ack(sock, ack_id, NULL);
    } else if (ack_id >= 0) {
        /* No handler: answer anyway, so that the client's callback is not left waiting. */
        char *msg = xasprintf("Unknown event: %s", name);
        json_t *a = json_pack("[{s:b, s:s}]", "success", 0, "error", msg);
        sio_ack(sock, ack_id, a);
        json_decref(a);
        xfree(msg);
    }
}

static void main_on_connect(struct sio_socket *sock, const json_t *auth)
{
}

static void main_on_disconnect(struct sio_socket *sock)
{
    while (!list_empty(&sock->joins))
        leave(LIST_ENTRY(sock->joins.next, struct bridge_join, sock_link));
    while (!list_empty(&sock->runs)) {
        struct bridge_run *r = LIST_ENTRY(sock->runs.next, struct bridge_run, link);
        agent_run_forget(r->s, r); /* the run goes on without this client */
        list_remove(&r->link);
        xfree(r);
    }
}

const struct sio_nsp bridge__main_nsp = {"/", false, main_on_connect, main_on_event,
                                         main_on_disconnect};

void bridge__shutdown(void)
{
    /* Every socket has left by now (eio_shutdown closed them), so no hub is left either. */
    if (hubs_ready) {
        map_release(&hubs);
        hubs_ready = false;
    }
}
