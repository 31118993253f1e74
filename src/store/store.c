/* SPDX-License-Identifier: MIT */
/* store.c -- the public store API: argument checks, the last-error slot and dispatch to the
 * memory or SQLite back end through their struct store_ops. Both back ends therefore see the
 * same validated input and behave the same way (anchor-api.md §3.6-§3.7). */
#include "store_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/util.h"
#include "core/xalloc.h"

/* Messages are short; a longer one is cut, never overflowed. */
#define STORE_MAX_ERROR_BYTES 1024

void store__set_error(struct store *st, const char *fmt, ...)
{
    char msg[STORE_MAX_ERROR_BYTES];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap); /* formatted first: an argument may be st->err */
    va_end(ap);
    xfree(st->err);
    st->err = xstrdup(msg);
}

static void clear_error(struct store *st)
{
    xfree(st->err);
    st->err = NULL;
}

json_t *store__session_json_new(const char *id, int64_t created_at_ms, int64_t updated_at_ms,
                                const char *workspace, json_t *metadata)
{
    json_t *j = json_pack("{s:s, s:I, s:I, s:s}", "id", id, "createdAt", (json_int_t)created_at_ms,
                          "updatedAt", (json_int_t)updated_at_ms, "workspace", workspace);
    if (j == NULL) { /* only when a string is not UTF-8: keep the row visible anyway */
        j = json_pack("{s:o, s:I, s:I, s:o}", "id", json_string_lossy(id, strlen(id)), "createdAt",
                      (json_int_t)created_at_ms, "updatedAt", (json_int_t)updated_at_ms,
                      "workspace", json_string_lossy(workspace, strlen(workspace)));
    }
    if (metadata)
        json_object_set_new(j, "metadata", metadata);
    return j;
}

int store_open(const char *path, struct store **out, char **err)
{
    *out = NULL;
    if (err)
        *err = NULL;
    if (path == NULL || *path == '\0')
        return store__mem_open(out);
    return store__sqlite_open(path, 0, out, err);
}

void store_close(struct store *st)
{
    if (st == NULL)
        return;
    char *err = st->err;
    st->ops->close(st); /* frees st */
    xfree(err);
}

const char *store_kind(const struct store *st)
{
    return st->ops->kind;
}

const char *store_last_error(const struct store *st)
{
    return st && st->err ? st->err : "";
}

/* ---- argument checks ---- */

static int invalid(struct store *st, const char *what)
{
    store__set_error(st, "invalid argument: %s", what);
    return -EINVAL;
}

/* An id that no session can have: answered as "absent", not as a usage error. */
static bool id_impossible(const char *id)
{
    return *id == '\0' || strnlen(id, STORE_MAX_ID_BYTES + 1) > STORE_MAX_ID_BYTES;
}

static int not_found(struct store *st, const char *id)
{
    store__set_error(st, "session '%.64s' not found", id);
    return -ENOENT;
}

/* obj[key] as epoch ms: absent -> dflt; JavaScript numbers may arrive as reals. */
static int get_ms(const json_t *obj, const char *key, int64_t dflt, int64_t *out)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        *out = dflt;
    else if (json_is_integer(v))
        *out = json_integer_value(v);
    else if (json_is_real(v))
        *out = (int64_t)json_real_value(v);
    else
        return -1;
    return 0;
}

static int session_from_json(struct store *st, const json_t *info, struct store_session *s)
{
    if (!json_is_object(info))
        return invalid(st, "session info is not an object");
    s->id = json_get_str(info, "id");
    if (s->id == NULL || id_impossible(s->id))
        return invalid(st, "session info has no valid 'id'");
    s->workspace = json_get_str(info, "workspace");
    if (s->workspace == NULL)
        return invalid(st, "session info has no 'workspace' string");
    int64_t now = now_ms();
    if (get_ms(info, "createdAt", now, &s->created_at_ms) < 0 ||
        get_ms(info, "updatedAt", s->created_at_ms, &s->updated_at_ms) < 0)
        return invalid(st, "session info has a non-numeric 'createdAt' or 'updatedAt'");
    s->metadata = json_object_get(info, "metadata");
    if (json_is_null(s->metadata))
        s->metadata = NULL;
    if (s->metadata && !json_is_object(s->metadata))
        return invalid(st, "session metadata is not an object");
    return 0;
}

/* ---- sessions ---- */

int store_session_create(struct store *st, const json_t *info)
{
    clear_error(st);
    struct store_session s;
    int rc = session_from_json(st, info, &s);
    if (rc < 0)
        return rc;
    return st->ops->session_create(st, &s);
}

json_t *store_session_get(struct store *st, const char *id)
{
    clear_error(st);
    if (id == NULL) {
        invalid(st, "session id is NULL");
        return NULL;
    }
    if (id_impossible(id))
        return NULL;
    return st->ops->session_get(st, id);
}

json_t *store_session_list(struct store *st)
{
    clear_error(st);
    return st->ops->session_list(st);
}

int store_session_update(struct store *st, const char *id, const json_t *metadata,
                         int64_t updated_at_ms)
{
    clear_error(st);
    if (id == NULL)
        return invalid(st, "session id is NULL");
    if (metadata && !json_is_object(metadata) && !json_is_null(metadata))
        return invalid(st, "session metadata is not an object");
    if (id_impossible(id))
        return not_found(st, id);
    return st->ops->session_update(st, id, metadata, updated_at_ms);
}

int store_session_delete(struct store *st, const char *id)
{
    clear_error(st);
    if (id == NULL)
        return invalid(st, "session id is NULL");
    if (id_impossible(id))
        return not_found(st, id);
    return st->ops->session_delete(st, id);
}

/* ---- events ---- */

int store_event_append(struct store *st, const char *session_id, const char *json, size_t len)
{
    clear_error(st);
    if (session_id == NULL || json == NULL || len == 0 || len > INT32_MAX)
        return invalid(st, "event append needs a session id and a non-empty event");
    if (id_impossible(session_id))
        return not_found(st, session_id);
    return st->ops->event_append(st, session_id, json, len, now_ms());
}

int64_t store_event_count(struct store *st, const char *session_id)
{
    clear_error(st);
    if (session_id == NULL)
        return invalid(st, "session id is NULL");
    if (id_impossible(session_id))
        return not_found(st, session_id);
    return st->ops->event_count(st, session_id);
}

int store_events_load(struct store *st, const char *session_id, int64_t after, int64_t limit,
                      store_event_cb cb, void *data)
{
    clear_error(st);
    if (session_id == NULL || cb == NULL || after < 0 || limit < 0)
        return invalid(st, "events load needs a session id, a callback and after, limit >= 0");
    if (id_impossible(session_id))
        return not_found(st, session_id);
    return st->ops->events_load(st, session_id, after, limit, cb, data);
}

int store_flush(struct store *st)
{
    clear_error(st);
    return st->ops->flush(st);
}

char *store_meta_get(struct store *st, const char *key)
{
    clear_error(st);
    return st->ops->meta_get ? st->ops->meta_get(st, key) : NULL;
}

int store_meta_set(struct store *st, const char *key, const char *value)
{
    clear_error(st);
    return st->ops->meta_set ? st->ops->meta_set(st, key, value) : 0;
}
