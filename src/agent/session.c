/* SPDX-License-Identifier: MIT */
/* session.c -- the session table, event numbering and logging, and fan-out to subscribers. */
#include <errno.h>
#include <string.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/map.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "../obs/obs.h"
#include "../store/store.h"
#include "../tools/tools.h"
#include "agent_int.h"

struct agent_options agent__opts;
static struct map sessions;

void agent_init(const struct agent_options *opts)
{
    agent__opts = *opts;
    if (agent__opts.max_log_events == 0)
        agent__opts.max_log_events = 1000;
    if (agent__opts.max_images == 0)
        agent__opts.max_images = 5;
    map_init(&sessions);
}

/* ---- events ---- */

void agent_event_ref(struct agent_event *ev)
{
    ev->refs++;
}

void agent_event_unref(struct agent_event *ev)
{
    if (ev && --ev->refs == 0)
        xfree(ev);
}

json_t *agent__event_new(const char *type)
{
    char id[37];
    uuid_v4(id);
    return json_pack("{s:s, s:s, s:I}", "id", id, "type", type, "timestamp",
                     (json_int_t)now_ms());
}

static bool is_streaming_type(const char *t)
{
    return strcmp(t, "assistant_streaming_message") == 0 ||
           strcmp(t, "assistant_streaming_thinking_message") == 0 ||
           strcmp(t, "assistant_streaming_tool_call") == 0 ||
           strcmp(t, "final_answer_streaming") == 0;
}

/* Types are interned so that events can carry a static pointer. */
static const char *intern_type(const char *t)
{
    static const char *types[] = {
        "user_message", "assistant_message", "assistant_thinking_message",
        "assistant_streaming_message", "assistant_streaming_thinking_message",
        "assistant_streaming_tool_call", "tool_call", "tool_result", "system", "agent_run_start",
        "agent_run_end", "environment_input", "final_answer", "final_answer_streaming",
    };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(types[i], t) == 0)
            return types[i];
    return "unknown";
}

static void log_append(struct agent_session *s, struct agent_event *ev)
{
    if (s->log == NULL) {
        s->log_cap = agent__opts.max_log_events;
        s->log = xcalloc(s->log_cap, sizeof(*s->log));
    }
    size_t slot = (s->log_head + s->log_len) % s->log_cap;
    if (s->log_len == s->log_cap) {
        agent_event_unref(s->log[s->log_head]);
        s->log_head = (s->log_head + 1) % s->log_cap;
        s->log_len--;
    }
    agent_event_ref(ev);
    s->log[slot] = ev;
    s->log_len++;
}

static void persist(struct agent_session *s, struct agent_event *ev)
{
    if (agent__opts.store == NULL)
        return;
    if (store_event_append(agent__opts.store, s->id, ev->json, ev->len) == 0)
        return;
    /* The event still reaches the clients; say once per session that it is not stored. */
    if (!s->store_failed)
        log_error("sess %s: cannot store event %lld: %s", s->id, (long long)ev->seq,
                  store_last_error(agent__opts.store));
    s->store_failed = true;
}

static void fan_out(struct agent_session *s, struct agent_event *ev)
{
    if (ev->persisted) {
        log_append(s, ev);
        persist(s, ev);
    }
    struct list_node *n = s->subs.next;
    while (n != &s->subs) {
        struct list_node *next = n->next; /* a subscriber may remove itself */
        struct agent_sub *sub = LIST_ENTRY(n, struct agent_sub, node);
        sub->on_event(sub, ev);
        n = next;
    }
    agent_event_unref(ev);
}

static struct agent_event *event_alloc(struct agent_session *s, const char *type, size_t len)
{
    struct agent_event *ev = xmalloc(sizeof(*ev) + len + 1);
    ev->refs = 1;
    ev->type = intern_type(type);
    ev->persisted = !is_streaming_type(type);
    ev->seq = ev->persisted ? ++s->seq : s->seq;
    ev->ends_stream = false;
    ev->len = len;
    return ev;
}

/* A stream ends after agent_run_end and after a system event of level error (§3.4). */
static bool ends_stream(const char *type, const json_t *j)
{
    const char *level = json_get_str(j, "level");
    return strcmp(type, "agent_run_end") == 0 ||
           (strcmp(type, "system") == 0 && level && strcmp(level, "error") == 0);
}

void agent__emit_new(struct agent_session *s, json_t *j)
{
    const char *type = json_get_str(j, "type");
    size_t len = json_dumpb(j, NULL, 0, JSON_COMPACT);
    struct agent_event *ev = event_alloc(s, type ? type : "unknown", len);
    json_dumpb(j, ev->json, len, JSON_COMPACT);
    ev->json[len] = '\0';
    ev->ends_stream = ends_stream(ev->type, j);
    obs_agent_event(s->id, j);
    json_decref(j);
    fan_out(s, ev);
}

/* JSON string escaping for the hot path (RFC 8259 §7); input is valid UTF-8 from the decoder. */
static void escape_into(struct buf *b, const char *p, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        buf_append(b, p + start, i - start);
        start = i + 1;
        switch (c) {
        case '"': buf_append(b, "\\\"", 2); break;
        case '\\': buf_append(b, "\\\\", 2); break;
        case '\n': buf_append(b, "\\n", 2); break;
        case '\r': buf_append(b, "\\r", 2); break;
        case '\t': buf_append(b, "\\t", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            buf_append(b, u, 6);
        }
        }
    }
    buf_append(b, p + start, len - start);
}

void agent__emit_delta(struct agent_session *s, const char *type, const char *content, size_t len,
                       const char *message_id)
{
    static struct buf b = {NULL, 0, 0, (size_t)-1};
    char id[37];
    uuid_v4(id);
    buf_reset(&b);
    buf_append_lit(&b, "{\"id\":\"");
    buf_append(&b, id, 36);
    buf_append_lit(&b, "\",\"type\":\"");
    buf_appends(&b, type);
    buf_append_lit(&b, "\",\"timestamp\":");
    buf_append_i64(&b, (long long)now_ms());
    buf_append_lit(&b, ",\"content\":\"");
    escape_into(&b, content, len);
    buf_append_lit(&b, "\",\"isComplete\":false,\"messageId\":\"");
    buf_appends(&b, message_id);
    buf_append_lit(&b, "\"}");
    struct agent_event *ev = event_alloc(s, type, b.len);
    memcpy(ev->json, b.data, b.len + 1);
    fan_out(s, ev);
}

/* ---- sessions ---- */

/* A session is loaded again from the store on its next lookup, so one that nobody holds can
 * leave memory: no run, no subscriber, no lookup in the last second (a handler may still hold a
 * session it looked up in this loop turn). Without such a session the cap is exceeded for now.
 * Issue 11: 5,000 sessions created in 0.3 s all stayed in memory. */
#define UNLOAD_IDLE_MS 1000

static uint64_t tick_ms(void)
{
    return agent__opts.loop ? uv_now(agent__opts.loop) : 0;
}

static void unload_idle(const struct agent_session *keep)
{
    size_t max = agent__opts.max_loaded_sessions;
    if (max == 0 || agent__opts.store == NULL)
        return;
    uint64_t now = tick_ms();
    while (sessions.len > max) {
        struct agent_session *lru = NULL;
        const char *k;
        void *v;
        for (size_t i = 0; map_next(&sessions, &i, &k, &v);) {
            struct agent_session *s = v;
            if (s != keep && !s->run && s->refs == 1 && list_empty(&s->subs) &&
                s->used_at + UNLOAD_IDLE_MS <= now && (!lru || s->used_at < lru->used_at))
                lru = s;
        }
        if (lru == NULL)
            return;
        log_debug("sess %s: unloaded (server.maxLoadedSessions %zu)", lru->id, max);
        map_del(&sessions, lru->id);
        agent__session_unref(lru);
    }
}

static struct agent_session *session_new(const char *id, char *workspace)
{
    struct agent_session *s = xcalloc(1, sizeof(*s));
    s->id = xstrdup(id);
    s->workspace = workspace;
    s->history = json_array();
    s->status = "idle";
    s->refs = 1;
    list_init(&s->subs);
    map_set(&sessions, s->id, s);
    s->used_at = tick_ms();
    unload_idle(s);
    return s;
}

static json_t *model_config(void)
{
    const struct llm_config *l = agent__opts.llm_cfg;
    if (l == NULL)
        return json_object();
    /* Never the key or the URL: SessionInfo goes to clients (anchor-api.md §8.11). */
    return json_pack("{s:s?, s:s?}", "provider", l->provider, "id", l->model);
}

void agent__session_save_usage(struct agent_session *s)
{
    if (agent__opts.store == NULL || s->usage == NULL || s->deleted)
        return;
    json_t *info = store_session_get(agent__opts.store, s->id);
    if (info == NULL)
        return;
    json_t *meta = json_object_get(info, "metadata");
    meta = json_is_object(meta) ? json_deep_copy(meta) : json_object();
    json_object_set(meta, "usage", s->usage);
    if (store_session_update(agent__opts.store, s->id, meta, now_ms()) < 0)
        log_warn("sess %s: cannot store its usage: %s", s->id, store_last_error(agent__opts.store));
    json_decref(meta);
    json_decref(info);
}

struct agent_session *agent_session_create(const json_t *extra_metadata, char **err)
{
    char id[22];
    do
        nanoid(id);
    while (map_get(&sessions, id) != NULL);
    char *ws = workspace_path(agent__opts.workspace, id, agent__opts.isolate_sessions);
    int rc = workspace_mkdirs(ws);
    if (rc < 0) {
        *err = xasprintf("Failed to initialize agent workspace: %s: %s", strerror(-rc), ws);
        xfree(ws);
        return NULL;
    }
    if (agent__opts.store) {
        int64_t now = now_ms();
        json_t *meta = json_pack("{s:{s:s, s:I}, s:o}", "agentInfo", "name", "Agent TARS",
                                 "configuredAt", (json_int_t)now, "modelConfig", model_config());
        if (json_is_object(extra_metadata))
            json_object_update(meta, (json_t *)extra_metadata);
        json_t *info = json_pack("{s:s, s:I, s:I, s:s, s:o}", "id", id, "createdAt",
                                 (json_int_t)now, "updatedAt", (json_int_t)now, "workspace", ws,
                                 "metadata", meta);
        rc = store_session_create(agent__opts.store, info);
        json_decref(info);
        if (rc < 0) {
            *err = xasprintf("cannot store session: %s", store_last_error(agent__opts.store));
            xfree(ws);
            return NULL;
        }
    }
    return session_new(id, ws);
}

/* ---- rebuilding a stored session (after a restart) ---- */

struct rebuild {
    struct agent_session *s;
    json_t *pending;    /* tool call ids of the last assistant message without a result yet */
    json_t *calls;      /* the tool calls of that message, or NULL */
    json_t *approvals;  /* its approval requests and decisions: toolCallId -> entry */
    json_t *usage;      /* the sum of the answers' usage, or NULL */
    bool running;       /* an agent_run_start without its agent_run_end */
    const char *status;
    int64_t count;
};

static bool json_array_contains_str(const json_t *a, const char *v)
{
    size_t i;
    json_t *e;
    json_array_foreach(a, i, e) if (v && json_string_value(e) && strcmp(json_string_value(e), v) == 0)
        return true;
    return false;
}

static void answer_pending(struct rebuild *rb)
{
    size_t i;
    json_t *id;
    json_array_foreach(rb->pending, i, id)
        json_array_append_new(
            rb->s->history,
            json_pack("{s:s, s:O, s:s}", "role", "tool", "tool_call_id", id, "content",
                      "Error: the run was interrupted before this tool call finished"));
    json_array_clear(rb->pending);
}

static void drop_pending(json_t *pending, const char *id)
{
    size_t i;
    json_t *v;
    json_array_foreach(pending, i, v) if (id && strcmp(json_string_value(v), id) == 0)
    {
        json_array_remove(pending, i);
        return;
    }
}

static void rebuild_assistant(struct rebuild *rb, json_t *ev)
{
    const char *finish = json_get_str(ev, "finishReason");
    if (finish && strcmp(finish, "abort") == 0)
        return; /* not something the model said */
    answer_pending(rb);
    json_t *content = json_object_get(ev, "rawContent");
    if (!json_is_string(content))
        content = json_object_get(ev, "content");
    json_t *msg = json_pack("{s:s, s:o}", "role", "assistant", "content",
                            json_is_string(content) ? json_incref(content) : json_string(""));
    const json_t *usage = json_object_get(ev, "usage");
    if (json_is_object(usage)) {
        if (rb->usage == NULL)
            rb->usage = json_object();
        agent__usage_add(rb->usage, usage);
    }
    json_t *calls = json_object_get(ev, "toolCalls");
    json_decref(rb->calls);
    rb->calls = NULL;
    json_object_clear(rb->approvals);
    if (json_is_array(calls) && json_array_size(calls) > 0) {
        rb->calls = json_incref(calls);
        json_object_set(msg, "tool_calls", calls);
        size_t i;
        json_t *c;
        json_array_foreach(calls, i, c) if (json_get_str(c, "id"))
            json_array_append_new(rb->pending, json_string(json_get_str(c, "id")));
    }
    json_array_append_new(rb->s->history, msg);
}

static int rebuild_event(void *data, int64_t pos, const char *text, size_t len)
{
    struct rebuild *rb = data;
    rb->count = pos;
    json_t *ev = json_loadb(text, len, 0, NULL);
    const char *type = json_get_str(ev, "type");
    if (type == NULL) {
        json_decref(ev);
        return 0;
    }
    if (strcmp(type, "user_message") == 0) {
        answer_pending(rb);
        json_array_append_new(rb->s->history, json_pack("{s:s, s:O}", "role", "user", "content",
                                                        json_object_get(ev, "content")));
    } else if (strcmp(type, "assistant_message") == 0) {
        rebuild_assistant(rb, ev);
    } else if (strcmp(type, "tool_result") == 0) {
        const char *id = json_get_str(ev, "toolCallId");
        if (id) {
            agent__history_tool(rb->s, id, json_object_get(ev, "content"));
            drop_pending(rb->pending, id);
        }
    } else if (strcmp(type, "context_compacted") == 0) {
        const char *summary = json_get_str(ev, "summary");
        json_int_t kept = json_integer_value(json_object_get(ev, "keptMessages"));
        if (summary && kept > 0)
            agent__compact_apply(rb->s->history, (size_t)kept, summary);
    } else if (strcmp(type, "tool_approval_request") == 0) {
        const char *id = json_get_str(ev, "toolCallId");
        if (id)
            json_object_set_new(rb->approvals, id,
                                json_pack("{s:s, s:O*, s:O*, s:O*}", "toolCallId", id, "name",
                                          json_object_get(ev, "name"), "arguments",
                                          json_object_get(ev, "arguments"), "expiresAt",
                                          json_object_get(ev, "expiresAt")));
    } else if (strcmp(type, "tool_approval_result") == 0) {
        json_t *e = json_object_get(rb->approvals, json_get_str(ev, "toolCallId"));
        if (e && json_is_boolean(json_object_get(ev, "approved"))) {
            json_object_set(e, "approved", json_object_get(ev, "approved"));
            json_object_set(e, "reason", json_object_get(ev, "reason"));
        }
    } else if (strcmp(type, "agent_run_start") == 0) {
        rb->running = true;
    } else if (strcmp(type, "agent_run_end") == 0) {
        rb->running = false;
        const char *st = json_get_str(ev, "status");
        rb->status = st && strcmp(st, "aborted") == 0 ? "aborted"
                     : st && strcmp(st, "error") == 0 ? "error"
                                                      : "idle";
    }
    json_decref(ev);
    return 0;
}

/* A run that has a start but no end was cut off by a crash: say so in its log. */
static void mark_interrupted(struct agent_session *s)
{
    json_t *ev = agent__event_new("system");
    json_object_set_new(ev, "level", json_string("error"));
    json_object_set_new(ev, "message",
                        json_string("Run interrupted: the server stopped before the run finished"));
    agent__emit_new(s, ev);
    ev = agent__event_new("agent_run_end");
    json_object_set_new(ev, "sessionId", json_string(s->id));
    json_object_set_new(ev, "iterations", json_integer(0));
    json_object_set_new(ev, "elapsedMs", json_integer(0));
    json_object_set_new(ev, "status", json_string("error"));
    agent__emit_new(s, ev);
    s->status = "error";
}

struct agent_session *agent_session_load(const char *id, char **err)
{
    struct agent_session *s = id ? map_get(&sessions, id) : NULL;
    if (s)
        s->used_at = tick_ms();
    if (s || id == NULL || agent__opts.store == NULL)
        return s;
    json_t *info = store_session_get(agent__opts.store, id);
    if (info == NULL) {
        if (err && *store_last_error(agent__opts.store))
            *err = xstrdup(store_last_error(agent__opts.store));
        return NULL;
    }
    const char *ws = json_get_str(info, "workspace");
    char *workspace = ws && *ws ? xstrdup(ws)
                                : workspace_path(agent__opts.workspace, id,
                                                 agent__opts.isolate_sessions);
    workspace_mkdirs(workspace); /* the tools report it if it is still missing */
    json_decref(info);
    s = session_new(id, workspace);
    struct rebuild rb = {
        .s = s, .pending = json_array(), .approvals = json_object(), .status = "idle"};
    int rc = store_events_load(agent__opts.store, id, 0, 0, rebuild_event, &rb);
    s->seq = rb.count;
    s->status = rb.status;
    s->usage = rb.usage;
    if (rc < 0)
        log_error("sess %s: cannot read its events: %s", id, store_last_error(agent__opts.store));
    /* A run that waited for tool approval when the server stopped goes on waiting. */
    size_t next = 0;
    while (rb.calls && next < json_array_size(rb.calls) &&
           !json_array_contains_str(rb.pending, json_get_str(json_array_get(rb.calls, next), "id")))
        next++;
    if (rc == 0 && rb.running && rb.calls && json_object_size(rb.approvals) > 0 &&
        next < json_array_size(rb.calls)) {
        agent__run_resume(s, rb.calls, next, json_incref(rb.approvals));
    } else {
        answer_pending(&rb);
        if (rb.running)
            mark_interrupted(s);
    }
    json_decref(rb.pending);
    json_decref(rb.calls);
    json_decref(rb.approvals);
    log_info("sess %s: loaded from storage (%lld events)", id, (long long)rb.count);
    return s;
}

struct agent_session *agent_session_find(const char *id)
{
    return agent_session_load(id, NULL);
}

const char *agent_session_id(const struct agent_session *s)
{
    return s->id;
}

const char *agent_session_workspace(const struct agent_session *s)
{
    return s->workspace;
}

bool agent_session_running(const struct agent_session *s)
{
    return s->run != NULL;
}

size_t agent_session_count(void)
{
    return sessions.len;
}

const char *agent_session_status(const struct agent_session *s)
{
    return s->status;
}

const char *agent_running_session(void)
{
    const char *k;
    void *v;
    for (size_t i = 0; map_next(&sessions, &i, &k, &v);)
        if (((struct agent_session *)v)->run)
            return k;
    return NULL;
}

struct replay_ctx {
    struct agent_session *s;
    void (*cb)(void *data, struct agent_event *ev);
    void *data;
    int64_t count; /* events delivered */
};

static int replay_one(void *data, int64_t pos, const char *json, size_t len)
{
    struct replay_ctx *rc = data;
    struct agent_event *ev = xmalloc(sizeof(*ev) + len + 1);
    ev->refs = 1;
    ev->seq = pos;
    json_t *j = json_loadb(json, len, 0, NULL);
    const char *type = json_get_str(j, "type");
    ev->type = intern_type(type ? type : "unknown");
    ev->persisted = true;
    ev->ends_stream = ends_stream(ev->type, j);
    json_decref(j);
    ev->len = len;
    memcpy(ev->json, json, len + 1);
    rc->cb(rc->data, ev);
    rc->count++;
    agent_event_unref(ev);
    return 0;
}

int agent_replay_n(struct agent_session *s, int64_t after, int64_t limit,
                   void (*cb)(void *data, struct agent_event *ev), void *data)
{
    struct replay_ctx rc = {s, cb, data, 0};
    if (agent__opts.store) {
        int r = store_events_load(agent__opts.store, s->id, after, limit, replay_one, &rc);
        return r < 0 ? r : (int)rc.count;
    }
    for (size_t i = 0; i < s->log_len && (limit == 0 || rc.count < limit); i++) {
        struct agent_event *ev = s->log[(s->log_head + i) % s->log_cap];
        if (ev->seq > after) {
            cb(data, ev);
            rc.count++;
        }
    }
    return (int)rc.count;
}

int agent_replay(struct agent_session *s, int64_t after,
                 void (*cb)(void *data, struct agent_event *ev), void *data)
{
    int n = agent_replay_n(s, after, 0, cb, data);
    return n < 0 ? n : 0;
}

void agent_subscribe(struct agent_session *s, struct agent_sub *sub)
{
    s->refs++;
    list_insert_tail(&s->subs, &sub->node);
}

static void session_free(struct agent_session *s)
{
    for (size_t i = 0; i < s->log_len; i++)
        agent_event_unref(s->log[(s->log_head + i) % s->log_cap]);
    xfree(s->log);
    json_decref(s->history);
    json_decref(s->usage);
    xfree(s->workspace);
    xfree(s->id);
    xfree(s);
}

void agent__session_unref(struct agent_session *s)
{
    if (--s->refs == 0)
        session_free(s);
}

void agent_unsubscribe(struct agent_session *s, struct agent_sub *sub)
{
    list_remove(&sub->node);
    agent__session_unref(s);
}

/* Takes the session out of the table, aborts its run and ends its subscribers. */
static void session_retire(struct agent_session *s)
{
    agent_abort(s);
    s->deleted = true;
    map_del(&sessions, s->id);
    struct list_node *n = s->subs.next;
    while (n != &s->subs) {
        struct list_node *next = n->next;
        struct agent_sub *sub = LIST_ENTRY(n, struct agent_sub, node);
        if (sub->on_gone)
            sub->on_gone(sub);
        n = next;
    }
    agent__session_unref(s);
}

int agent_session_delete(struct agent_session *s)
{
    agent_abort(s); /* its last events go to the store before the session leaves it */
    int rc = agent__opts.store ? store_session_delete(agent__opts.store, s->id) : 0;
    if (rc < 0 && rc != -ENOENT)
        return rc;
    session_retire(s);
    return rc;
}

void agent_shutdown(void)
{
    agent__runs_abort_all();
    const char *k;
    void *v;
    struct agent_session **all = xcalloc(sessions.len + 1, sizeof(*all));
    size_t n = 0;
    for (size_t i = 0; map_next(&sessions, &i, &k, &v);)
        all[n++] = v;
    for (size_t i = 0; i < n; i++) {
        if (agent__run_suspend(all[i]))
            log_info("sess %s: its run waits for tool approval; it goes on after a restart",
                     all[i]->id);
        session_retire(all[i]);
    }
    xfree(all);
    map_release(&sessions);
}
