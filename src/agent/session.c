/* SPDX-License-Identifier: MIT */
/* session.c -- the session table, event numbering and logging, and fan-out to subscribers. */
#include <errno.h>
#include <string.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/map.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "../tools/tools.h"
#include "agent_int.h"

struct agent_options agent__opts;
static struct map sessions;

void agent_init(const struct agent_options *opts)
{
    agent__opts = *opts;
    if (agent__opts.max_log_events == 0)
        agent__opts.max_log_events = 1000;
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

static void fan_out(struct agent_session *s, struct agent_event *ev)
{
    if (ev->persisted)
        log_append(s, ev);
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

void agent__emit_new(struct agent_session *s, json_t *j)
{
    const char *type = json_get_str(j, "type");
    size_t len = json_dumpb(j, NULL, 0, JSON_COMPACT);
    struct agent_event *ev = event_alloc(s, type ? type : "unknown", len);
    json_dumpb(j, ev->json, len, JSON_COMPACT);
    ev->json[len] = '\0';
    const char *level = json_get_str(j, "level");
    ev->ends_stream = strcmp(ev->type, "agent_run_end") == 0 ||
                      (strcmp(ev->type, "system") == 0 && level && strcmp(level, "error") == 0);
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

struct agent_session *agent_session_create(char **err)
{
    struct agent_session *s = xcalloc(1, sizeof(*s));
    do
        nanoid(s->id);
    while (map_get(&sessions, s->id) != NULL);
    s->workspace =
        workspace_path(agent__opts.workspace, s->id, agent__opts.isolate_sessions);
    int rc = workspace_mkdirs(s->workspace);
    if (rc < 0) {
        *err = xasprintf("Failed to initialize agent workspace: %s: %s", strerror(-rc),
                         s->workspace);
        xfree(s->workspace);
        xfree(s);
        return NULL;
    }
    s->history = json_array();
    s->status = "idle";
    list_init(&s->subs);
    map_set(&sessions, s->id, s);
    return s;
}

struct agent_session *agent_session_find(const char *id)
{
    return id ? map_get(&sessions, id) : NULL;
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

int agent_replay(struct agent_session *s, int64_t after,
                 void (*cb)(void *data, struct agent_event *ev), void *data)
{
    for (size_t i = 0; i < s->log_len; i++) {
        struct agent_event *ev = s->log[(s->log_head + i) % s->log_cap];
        if (ev->seq > after)
            cb(data, ev);
    }
    return 0;
}

void agent_subscribe(struct agent_session *s, struct agent_sub *sub)
{
    list_insert_tail(&s->subs, &sub->node);
}

void agent_unsubscribe(struct agent_session *s, struct agent_sub *sub)
{
    list_remove(&sub->node);
}

static void session_free(struct agent_session *s)
{
    agent_abort(s);
    for (size_t i = 0; i < s->log_len; i++)
        agent_event_unref(s->log[(s->log_head + i) % s->log_cap]);
    xfree(s->log);
    json_decref(s->history);
    xfree(s->workspace);
    xfree(s);
}

void agent_shutdown(void)
{
    const char *k;
    void *v;
    for (size_t i = 0; map_next(&sessions, &i, &k, &v);)
        session_free(v);
    map_release(&sessions);
}
