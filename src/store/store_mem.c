/* SPDX-License-Identifier: MIT */
/* store_mem.c -- the memory back end: a map of sessions, each with its event log as an array of
 * JSON lines. Nothing survives the process; used when no storage path is configured and by the
 * tests as the reference behaviour for the SQLite back end. */
#include "store_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/map.h"
#include "core/xalloc.h"

struct mem_event {
    char *json; /* NUL-terminated, owned */
    size_t len;
};

struct mem_session {
    char *id;         /* owned; also the map key (copied by the map) */
    char *workspace;  /* owned */
    json_t *metadata; /* owned reference, NULL when absent */
    int64_t created_at_ms;
    int64_t updated_at_ms;
    uint64_t seq; /* creation order, breaks updatedAt ties in the list */
    struct mem_event *events;
    size_t n_events;
    size_t cap_events;
    int refs;  /* 1 for the map, +1 per events_load in progress */
    bool dead; /* deleted while a load held it */
};

struct mem_store {
    struct store base;   /* first: the public handle */
    struct map sessions; /* id -> struct mem_session * */
    uint64_t next_seq;
};

static struct mem_store *mem(struct store *st)
{
    return (struct mem_store *)st;
}

static void session_unref(struct mem_session *ms)
{
    if (--ms->refs > 0)
        return;
    for (size_t i = 0; i < ms->n_events; i++)
        xfree(ms->events[i].json);
    xfree(ms->events);
    json_decref(ms->metadata);
    xfree(ms->workspace);
    xfree(ms->id);
    xfree(ms);
}

static struct mem_session *find(struct store *st, const char *id)
{
    struct mem_session *ms = map_get(&mem(st)->sessions, id);
    if (ms == NULL)
        store__set_error(st, "session '%.64s' not found", id);
    return ms;
}

static json_t *session_json(const struct mem_session *ms)
{
    return store__session_json_new(ms->id, ms->created_at_ms, ms->updated_at_ms, ms->workspace,
                                   ms->metadata ? json_deep_copy(ms->metadata) : NULL);
}

static void mem_close(struct store *st)
{
    const char *key;
    void *v;
    for (size_t it = 0; map_next(&mem(st)->sessions, &it, &key, &v);)
        session_unref(v);
    map_release(&mem(st)->sessions);
    xfree(st);
}

static int mem_session_create(struct store *st, const struct store_session *s)
{
    if (map_get(&mem(st)->sessions, s->id)) {
        store__set_error(st, "session '%.64s' already exists", s->id);
        return -EEXIST;
    }
    struct mem_session *ms = xcalloc(1, sizeof(*ms));
    ms->id = xstrdup(s->id);
    ms->workspace = xstrdup(s->workspace);
    /* A deep copy: the caller may keep changing its object after handing it to us. */
    ms->metadata = s->metadata ? json_deep_copy(s->metadata) : NULL;
    ms->created_at_ms = s->created_at_ms;
    ms->updated_at_ms = s->updated_at_ms;
    ms->seq = mem(st)->next_seq++;
    ms->refs = 1;
    map_set(&mem(st)->sessions, ms->id, ms);
    return 0;
}

static json_t *mem_session_get(struct store *st, const char *id)
{
    struct mem_session *ms = map_get(&mem(st)->sessions, id);
    return ms ? session_json(ms) : NULL;
}

static int cmp_updated_desc(const void *a, const void *b)
{
    const struct mem_session *x = *(struct mem_session *const *)a;
    const struct mem_session *y = *(struct mem_session *const *)b;
    if (x->updated_at_ms != y->updated_at_ms)
        return x->updated_at_ms < y->updated_at_ms ? 1 : -1;
    return x->seq < y->seq ? 1 : (x->seq > y->seq ? -1 : 0); /* as SQLite's "rowid DESC" */
}

static json_t *mem_session_list(struct store *st)
{
    struct map *m = &mem(st)->sessions;
    struct mem_session **all = xmalloc((m->len ? m->len : 1) * sizeof(*all));
    size_t n = 0;
    const char *key;
    void *v;
    for (size_t it = 0; map_next(m, &it, &key, &v);)
        all[n++] = v;
    qsort(all, n, sizeof(*all), cmp_updated_desc);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, session_json(all[i]));
    xfree(all);
    return list;
}

static int mem_session_update(struct store *st, const char *id, const json_t *metadata,
                              int64_t updated_at_ms)
{
    struct mem_session *ms = find(st, id);
    if (ms == NULL)
        return -ENOENT;
    if (metadata) {
        json_decref(ms->metadata);
        ms->metadata = json_is_null(metadata) ? NULL : json_deep_copy(metadata);
    }
    ms->updated_at_ms = updated_at_ms;
    return 0;
}

static int mem_session_delete(struct store *st, const char *id)
{
    struct mem_session *ms = find(st, id);
    if (ms == NULL)
        return -ENOENT;
    map_del(&mem(st)->sessions, id);
    ms->dead = true;
    session_unref(ms);
    return 0;
}

static int mem_event_append(struct store *st, const char *session_id, const char *json, size_t len,
                            int64_t now)
{
    struct mem_session *ms = find(st, session_id);
    if (ms == NULL)
        return -ENOENT;
    if (ms->n_events == ms->cap_events) {
        ms->cap_events = ms->cap_events ? ms->cap_events * 2 : 16;
        ms->events = xrealloc(ms->events, ms->cap_events * sizeof(*ms->events));
    }
    ms->events[ms->n_events].json = xstrndup(json, len);
    ms->events[ms->n_events].len = len;
    ms->n_events++;
    ms->updated_at_ms = now;
    return 0;
}

static int64_t mem_event_count(struct store *st, const char *session_id)
{
    struct mem_session *ms = find(st, session_id);
    return ms ? (int64_t)ms->n_events : -ENOENT;
}

/* The callback may append (the array moves, so each event is fetched afresh) or delete the
 * session (our reference keeps it alive; the loop stops). */
static int mem_events_load(struct store *st, const char *session_id, int64_t after, int64_t limit,
                           store_event_cb cb, void *data)
{
    struct mem_session *ms = find(st, session_id);
    if (ms == NULL)
        return -ENOENT;
    /* Positions are compared as "index < count", never as after + 1, which overflows for an
     * after of INT64_MAX (a client's resume position; issue 11). */
    int64_t end = limit > 0 && limit <= INT64_MAX - after ? after + limit : INT64_MAX;
    ms->refs++;
    for (int64_t i = after; !ms->dead && i >= 0 && (uint64_t)i < ms->n_events && i < end; i++) {
        struct mem_event ev = ms->events[i];
        if (cb(data, i + 1, ev.json, ev.len) != 0)
            break;
    }
    session_unref(ms);
    return 0;
}

static int mem_flush(struct store *st)
{
    return 0;
}

const struct store_ops store__mem_ops = {
    .kind = "memory",
    .close = mem_close,
    .session_create = mem_session_create,
    .session_get = mem_session_get,
    .session_list = mem_session_list,
    .session_update = mem_session_update,
    .session_delete = mem_session_delete,
    .event_append = mem_event_append,
    .event_count = mem_event_count,
    .events_load = mem_events_load,
    .flush = mem_flush,
};

int store__mem_open(struct store **out)
{
    struct mem_store *m = xcalloc(1, sizeof(*m));
    m->base.ops = &store__mem_ops;
    map_init(&m->sessions);
    *out = &m->base;
    return 0;
}
