/* SPDX-License-Identifier: MIT */
/* store_sqlite.c -- the SQLite back end: one connection, cached prepared statements, and event
 * appends batched into one open write transaction that store_flush commits. This is the one
 * place where the loop thread blocks on disk; every statement is short. */
#include "store_int.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "core/xalloc.h"
#include "obs/obs.h"

#define BUSY_TIMEOUT_MS 2000

enum stmt_id {
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_SESSION_INSERT,
    STMT_SESSION_GET,
    STMT_SESSION_LIST,
    STMT_SESSION_SET,
    STMT_SESSION_TOUCH,
    STMT_SESSION_DELETE,
    STMT_SESSION_EXISTS,
    STMT_EVENTS_DELETE,
    STMT_EVENT_INSERT,
    STMT_EVENT_COUNT,
    STMT_EVENTS_LOAD,
    STMT__COUNT
};

#define SESSION_COLS "id, createdAt, updatedAt, workspace, metadata"

static const char *const stmt_sql[STMT__COUNT] = {
    /* IMMEDIATE takes the write lock up front, so busy_timeout applies to it (a deferred
     * transaction that later upgrades can fail at once with SQLITE_BUSY). */
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_SESSION_INSERT] = "INSERT INTO sessions (" SESSION_COLS ") VALUES (?1, ?2, ?3, ?4, ?5)",
    [STMT_SESSION_GET] = "SELECT " SESSION_COLS " FROM sessions WHERE id = ?1",
    [STMT_SESSION_LIST] =
        "SELECT " SESSION_COLS " FROM sessions ORDER BY updatedAt DESC, rowid DESC",
    [STMT_SESSION_SET] = "UPDATE sessions SET metadata = ?2, updatedAt = ?3 WHERE id = ?1",
    [STMT_SESSION_TOUCH] = "UPDATE sessions SET updatedAt = ?2 WHERE id = ?1",
    [STMT_SESSION_DELETE] = "DELETE FROM sessions WHERE id = ?1",
    [STMT_SESSION_EXISTS] = "SELECT 1 FROM sessions WHERE id = ?1",
    [STMT_EVENTS_DELETE] = "DELETE FROM events WHERE sessionId = ?1",
    [STMT_EVENT_INSERT] =
        "INSERT INTO events (sessionId, timestamp, eventData) VALUES (?1, ?2, ?3)",
    [STMT_EVENT_COUNT] = "SELECT COUNT(*) FROM events WHERE sessionId = ?1",
    /* idx_events_sessionId holds (sessionId, rowid), so this walks the index in id order
     * without sorting. OFFSET still steps over `after` entries: O(after), fine for logs of a
     * few thousand events; a rowid bound would need the caller to keep event ids. */
    [STMT_EVENTS_LOAD] = "SELECT eventData FROM events WHERE sessionId = ?1 ORDER BY id "
                         "LIMIT ?2 OFFSET ?3",
};

/* v1 databases keep "workingDirectory TEXT NOT NULL"; the original fills it on insert too. */
static const char sql_session_insert_legacy[] =
    "INSERT INTO sessions (" SESSION_COLS ", workingDirectory) VALUES (?1, ?2, ?3, ?4, ?5, ?4)";

struct sql_store {
    struct store base; /* first: the public handle */
    sqlite3 *db;
    char *path;
    sqlite3_stmt *stmts[STMT__COUNT]; /* prepared on first use, finalized at close */
    bool legacy_workdir;              /* see sql_session_insert_legacy */
    bool in_txn;                      /* our write transaction is open */
    bool loading;                     /* STMT_EVENTS_LOAD is stepping (a callback is running) */
    int64_t pending;                  /* writes in the open transaction */
};

static struct sql_store *sql(struct store *st)
{
    return (struct sql_store *)st;
}

int store__sqlite_errno(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_NOMEM:
        return -ENOMEM;
    default:
        return -EIO;
    }
}

/* Sets "<context>: <what SQLite said>" and returns the matching negative errno. */
static int db_fail(struct sql_store *s, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int db_fail(struct sql_store *s, int rc, const char *fmt, ...)
{
    char ctx[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx, sizeof(ctx), fmt, ap);
    va_end(ap);
    /* errmsg belongs to the last call on the connection; use it only if it is this error. */
    const char *why =
        sqlite3_extended_errcode(s->db) == rc ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    store__set_error(&s->base, "%s: %s", ctx, why);
    return store__sqlite_errno(rc);
}

static sqlite3_stmt *stmt(struct sql_store *s, enum stmt_id id)
{
    if (s->stmts[id])
        return s->stmts[id];
    const char *text = stmt_sql[id];
    if (id == STMT_SESSION_INSERT && s->legacy_workdir)
        text = sql_session_insert_legacy;
    int rc = sqlite3_prepare_v3(s->db, text, -1, SQLITE_PREPARE_PERSISTENT, &s->stmts[id], NULL);
    if (rc != SQLITE_OK) {
        db_fail(s, rc, "cannot prepare a statement on '%s'", s->path);
        s->stmts[id] = NULL;
    }
    return s->stmts[id];
}

/* Steps a statement that returns no rows and resets it. Returns an SQLite code. */
static int run(sqlite3_stmt *q)
{
    int rc = sqlite3_step(q);
    sqlite3_reset(q); /* keeps the error message of a failed step on the connection */
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int run_id(struct sql_store *s, enum stmt_id id)
{
    sqlite3_stmt *q = stmt(s, id);
    return q ? run(q) : SQLITE_ERROR;
}

/* ---- the batched write transaction ---- */

static int txn_begin(struct sql_store *s)
{
    if (s->in_txn)
        return 0;
    int rc = run_id(s, STMT_BEGIN);
    if (rc != SQLITE_OK)
        return db_fail(s, rc, "cannot start a write transaction on '%s'", s->path);
    s->in_txn = true;
    s->pending = 0;
    return 0;
}

/* Reports a failed write inside our transaction. SQLite rolls the whole transaction back by
 * itself on some errors (SQLITE_FULL, IOERR, NOMEM): then the earlier unflushed writes are gone,
 * and the message says so. */
static int write_fail(struct sql_store *s, int rc, const char *what, const char *id)
{
    int code = db_fail(s, rc, "cannot %s '%.64s' in '%s'", what, id, s->path);
    if (s->in_txn && sqlite3_get_autocommit(s->db)) {
        if (s->pending > 0)
            store__set_error(&s->base, "%s (%lld earlier unflushed writes were rolled back)",
                             s->base.err, (long long)s->pending);
        s->in_txn = false;
        s->pending = 0;
    }
    return code;
}

static int sql_flush(struct store *st)
{
    struct sql_store *s = sql(st);
    if (!s->in_txn)
        return 0;
    uint64_t t0 = obs_now_us();
    int rc = run_id(s, STMT_COMMIT);
    obs_store_commit(t0, rc == SQLITE_OK, s->pending);
    if (rc == SQLITE_OK) {
        s->in_txn = false;
        s->pending = 0;
        return 0;
    }
    int code = db_fail(s, rc, "cannot commit %lld writes to '%s'", (long long)s->pending, s->path);
    /* A failed COMMIT (e.g. SQLITE_BUSY) can leave the transaction open: end it, so that the
     * next write starts clean, and say that the writes are lost. */
    if (!sqlite3_get_autocommit(s->db))
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    store__set_error(st, "%s (rolled back)", st->err);
    s->in_txn = false;
    s->pending = 0;
    return code;
}

/* Session writes are rare: each one commits at once (with any batched events before it), so
 * its result is final when the call returns. */
static int session_write_end(struct sql_store *s, int code)
{
    int frc = sql_flush(&s->base);
    return frc < 0 ? frc : code;
}

/* ---- sessions ---- */

static int sql_session_create(struct store *st, const struct store_session *ss)
{
    struct sql_store *s = sql(st);
    int code = txn_begin(s);
    sqlite3_stmt *q = code == 0 ? stmt(s, STMT_SESSION_INSERT) : NULL;
    if (q == NULL)
        return session_write_end(s, code < 0 ? code : -EIO);
    char *meta = ss->metadata ? json_dumps(ss->metadata, JSON_COMPACT) : NULL;
    sqlite3_bind_text(q, 1, ss->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, ss->created_at_ms);
    sqlite3_bind_int64(q, 3, ss->updated_at_ms);
    sqlite3_bind_text(q, 4, ss->workspace, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 5, meta, -1, SQLITE_STATIC); /* NULL binds SQL NULL */
    int rc = run(q);
    sqlite3_clear_bindings(q); /* meta is freed below */
    xfree(meta);
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY || rc == SQLITE_CONSTRAINT_UNIQUE) {
        store__set_error(st, "session '%.64s' already exists", ss->id);
        code = -EEXIST;
    } else if (rc != SQLITE_OK) {
        code = write_fail(s, rc, "store session", ss->id);
    } else {
        s->pending++;
    }
    return session_write_end(s, code);
}

/* A row of SESSION_COLS as the final SessionInfo. */
static json_t *row_json(sqlite3_stmt *q)
{
    const char *id = (const char *)sqlite3_column_text(q, 0);
    const char *ws = (const char *)sqlite3_column_text(q, 3);
    const char *meta_text = (const char *)sqlite3_column_text(q, 4);
    json_t *meta = NULL;
    if (meta_text) {
        meta = json_loads(meta_text, JSON_DECODE_ANY, NULL);
        if (meta == NULL)
            log_warn("store: session '%s': metadata is not JSON; left out", id ? id : "?");
        if (json_is_null(meta)) {
            json_decref(meta);
            meta = NULL;
        }
    }
    return store__session_json_new(id ? id : "", sqlite3_column_int64(q, 1),
                                   sqlite3_column_int64(q, 2), ws ? ws : "", meta);
}

static json_t *sql_session_get(struct store *st, const char *id)
{
    struct sql_store *s = sql(st);
    sqlite3_stmt *q = sql_flush(st) == 0 ? stmt(s, STMT_SESSION_GET) : NULL;
    if (q == NULL)
        return NULL;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    json_t *info = NULL;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        info = row_json(q);
    else if (rc != SQLITE_DONE)
        db_fail(s, rc, "cannot read session '%.64s' from '%s'", id, s->path);
    sqlite3_reset(q);
    return info;
}

static json_t *sql_session_list(struct store *st)
{
    struct sql_store *s = sql(st);
    sqlite3_stmt *q = sql_flush(st) == 0 ? stmt(s, STMT_SESSION_LIST) : NULL;
    if (q == NULL)
        return NULL;
    json_t *list = json_array();
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW)
        json_array_append_new(list, row_json(q));
    if (rc != SQLITE_DONE) {
        db_fail(s, rc, "cannot list sessions in '%s'", s->path);
        json_decref(list);
        list = NULL;
    }
    sqlite3_reset(q);
    return list;
}

static int sql_session_update(struct store *st, const char *id, const json_t *metadata,
                              int64_t updated_at_ms)
{
    struct sql_store *s = sql(st);
    int code = txn_begin(s);
    sqlite3_stmt *q = code == 0 ? stmt(s, metadata ? STMT_SESSION_SET : STMT_SESSION_TOUCH) : NULL;
    if (q == NULL)
        return session_write_end(s, code < 0 ? code : -EIO);
    char *meta = json_is_object(metadata) ? json_dumps(metadata, JSON_COMPACT) : NULL;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    if (metadata) {
        sqlite3_bind_text(q, 2, meta, -1, SQLITE_STATIC); /* json null -> SQL NULL */
        sqlite3_bind_int64(q, 3, updated_at_ms);
    } else {
        sqlite3_bind_int64(q, 2, updated_at_ms);
    }
    int rc = run(q);
    sqlite3_clear_bindings(q);
    xfree(meta);
    if (rc != SQLITE_OK) {
        code = write_fail(s, rc, "update session", id);
    } else if (sqlite3_changes(s->db) == 0) {
        store__set_error(st, "session '%.64s' not found", id);
        code = -ENOENT;
    } else {
        s->pending++;
    }
    return session_write_end(s, code);
}

/* Deletes the events explicitly, as the original does: legacy files may lack the cascade. */
static int sql_session_delete(struct store *st, const char *id)
{
    struct sql_store *s = sql(st);
    int code = txn_begin(s);
    sqlite3_stmt *ev = code == 0 ? stmt(s, STMT_EVENTS_DELETE) : NULL;
    sqlite3_stmt *q = ev ? stmt(s, STMT_SESSION_DELETE) : NULL;
    if (q == NULL)
        return session_write_end(s, code < 0 ? code : -EIO);
    sqlite3_bind_text(ev, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    int rc = run(ev);
    if (rc == SQLITE_OK)
        rc = run(q);
    if (rc != SQLITE_OK) {
        code = write_fail(s, rc, "delete session", id);
    } else if (sqlite3_changes(s->db) == 0) {
        store__set_error(st, "session '%.64s' not found", id);
        code = -ENOENT;
    } else {
        s->pending++;
    }
    return session_write_end(s, code);
}

/* ---- events ---- */

static int sql_event_append(struct store *st, const char *session_id, const char *json, size_t len,
                            int64_t now)
{
    struct sql_store *s = sql(st);
    int code = txn_begin(s);
    if (code < 0)
        return code;
    sqlite3_stmt *touch = stmt(s, STMT_SESSION_TOUCH);
    sqlite3_stmt *ins = touch ? stmt(s, STMT_EVENT_INSERT) : NULL;
    if (ins == NULL)
        return -EIO;
    /* The bump doubles as the existence check ("Session not found" in the original). */
    sqlite3_bind_text(touch, 1, session_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(touch, 2, now);
    int rc = run(touch);
    if (rc != SQLITE_OK)
        return write_fail(s, rc, "store an event for session", session_id);
    if (sqlite3_changes(s->db) == 0) {
        store__set_error(st, "session '%.64s' not found", session_id);
        return -ENOENT;
    }
    sqlite3_bind_text(ins, 1, session_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 2, now); /* save time, not the event's own timestamp (§3.7.2) */
    sqlite3_bind_text(ins, 3, json, (int)len, SQLITE_STATIC);
    rc = run(ins);
    if (rc != SQLITE_OK)
        return write_fail(s, rc, "store an event for session", session_id);
    s->pending++;
    return 0;
}

/* Flushes, then checks that the session exists. Returns 0, -ENOENT or <0. */
static int read_begin(struct sql_store *s, const char *id)
{
    int rc = sql_flush(&s->base);
    sqlite3_stmt *q = rc == 0 ? stmt(s, STMT_SESSION_EXISTS) : NULL;
    if (q == NULL)
        return rc < 0 ? rc : -EIO;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    rc = sqlite3_step(q);
    sqlite3_reset(q);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc == SQLITE_DONE) {
        store__set_error(&s->base, "session '%.64s' not found", id);
        return -ENOENT;
    }
    return db_fail(s, rc, "cannot read session '%.64s' from '%s'", id, s->path);
}

static int64_t sql_event_count(struct store *st, const char *session_id)
{
    struct sql_store *s = sql(st);
    int rc = read_begin(s, session_id);
    sqlite3_stmt *q = rc == 0 ? stmt(s, STMT_EVENT_COUNT) : NULL;
    if (q == NULL)
        return rc < 0 ? rc : -EIO;
    sqlite3_bind_text(q, 1, session_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(q);
    int64_t n = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : -1;
    sqlite3_reset(q);
    if (rc != SQLITE_ROW)
        return db_fail(s, rc, "cannot count events of session '%.64s' in '%s'", session_id,
                       s->path);
    return n;
}

/* The cached statement, or a private one when a callback of an outer load is still using it
 * (the callback called store_events_load again). */
static sqlite3_stmt *load_stmt(struct sql_store *s, bool *owned)
{
    *owned = s->loading;
    if (!*owned)
        return stmt(s, STMT_EVENTS_LOAD);
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(s->db, stmt_sql[STMT_EVENTS_LOAD], -1, &q, NULL);
    if (rc != SQLITE_OK)
        db_fail(s, rc, "cannot prepare a statement on '%s'", s->path);
    return q;
}

static int sql_events_load(struct store *st, const char *session_id, int64_t after, int64_t limit,
                           store_event_cb cb, void *data)
{
    struct sql_store *s = sql(st);
    int rc = read_begin(s, session_id);
    bool owned = false;
    sqlite3_stmt *q = rc == 0 ? load_stmt(s, &owned) : NULL;
    if (q == NULL)
        return rc < 0 ? rc : -EIO;
    if (!owned)
        s->loading = true;
    sqlite3_bind_text(q, 1, session_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, limit > 0 ? limit : -1); /* negative LIMIT = none */
    sqlite3_bind_int64(q, 3, after);
    int64_t pos = after;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *json = (const char *)sqlite3_column_text(q, 0);
        size_t len = (size_t)sqlite3_column_bytes(q, 0);
        if (cb(data, ++pos, json ? json : "", json ? len : 0) != 0) {
            rc = SQLITE_DONE;
            break;
        }
    }
    int code = 0;
    if (rc != SQLITE_DONE)
        code =
            db_fail(s, rc, "cannot read events of session '%.64s' from '%s'", session_id, s->path);
    if (owned) {
        sqlite3_finalize(q);
    } else {
        sqlite3_reset(q);
        s->loading = false;
    }
    return code;
}

/* ---- open and close ---- */

static void sql_close(struct store *st)
{
    struct sql_store *s = sql(st);
    if (sql_flush(st) < 0)
        log_error("store: %s", st->err);
    for (int i = 0; i < STMT__COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    if (sqlite3_close(s->db) != SQLITE_OK)
        log_error("store: cannot close '%s': %s", s->path, sqlite3_errmsg(s->db));
    xfree(s->path);
    xfree(s);
}

/* ---- server metadata (our own table beside the original's schema) ---- */

static const char meta_table[] =
    "CREATE TABLE IF NOT EXISTS tars_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)";

static char *sql_meta_get(struct store *st, const char *key)
{
    struct sql_store *s = sql(st);
    sqlite3_stmt *q = NULL;
    char *out = NULL;
    int rc = sqlite3_prepare_v2(s->db, "SELECT value FROM tars_meta WHERE key = ?1", -1, &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0))
            out = xstrdup((const char *)sqlite3_column_text(q, 0));
    }
    sqlite3_finalize(q); /* a missing table (older database) reads as no value */
    return out;
}

static int sql_meta_set(struct store *st, const char *key, const char *value)
{
    struct sql_store *s = sql(st);
    int rc = sql_flush(st);
    if (rc < 0)
        return rc;
    sqlite3_stmt *q = NULL;
    rc = sqlite3_exec(s->db, meta_table, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO tars_meta (key, value) VALUES (?1, ?2)",
                                -1, &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, value, -1, SQLITE_STATIC);
        rc = sqlite3_step(q) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(s->db);
    }
    sqlite3_finalize(q);
    if (rc != SQLITE_OK)
        return db_fail(s, rc, "cannot write server metadata to '%s'", s->path);
    return 0;
}

const struct store_ops store__sqlite_ops = {
    .kind = "sqlite",
    .close = sql_close,
    .session_create = sql_session_create,
    .session_get = sql_session_get,
    .session_list = sql_session_list,
    .session_update = sql_session_update,
    .session_delete = sql_session_delete,
    .event_append = sql_event_append,
    .event_count = sql_event_count,
    .events_load = sql_events_load,
    .flush = sql_flush,
    .meta_get = sql_meta_get,
    .meta_set = sql_meta_set,
};

struct sqlite3 *store__sqlite_db(struct store *st)
{
    return st && st->ops == &store__sqlite_ops ? sql(st)->db : NULL;
}

/* mkdir -p of the directory part of path (0700: the file may hold API keys, §8 item 11). */
static int make_parents(const char *path, char **err)
{
    char dir[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof(dir)) {
        *err = xasprintf("cannot open database '%.64s...': path too long", path);
        return -ENAMETOOLONG;
    }
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (slash == NULL || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        struct stat sb;
        if (mkdir(dir, 0700) < 0 &&
            (errno != EEXIST || stat(dir, &sb) < 0 || !S_ISDIR(sb.st_mode))) {
            int e = errno == EEXIST ? ENOTDIR : errno;
            *err = xasprintf("cannot create directory '%s': %s", dir, strerror(e));
            return -e;
        }
        *p = c;
        if (c == '\0')
            return 0;
    }
}

/* A clear reason for a failed sqlite3_open_v2 (its own message is "unable to open database
 * file" for every cause). */
static char *open_error(sqlite3 *db, const char *path, int rc)
{
    int e = db ? sqlite3_system_errno(db) : 0;
    return xasprintf("cannot open database '%s': %s%s%s%s", path,
                     db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), e ? " (" : "",
                     e ? strerror(e) : "", e ? ")" : "");
}

static int open_db(struct sql_store *s, int flags, char **err)
{
    int rc = sqlite3_open_v2(s->path, &s->db, flags, NULL);
    if (rc != SQLITE_OK) {
        *err = open_error(s->db, s->path, rc);
        int e = s->db ? sqlite3_system_errno(s->db) : 0;
        return e > 0 ? -e : store__sqlite_errno(rc);
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
    char *msg = NULL;
    int code = store__schema_setup(s->db, s->path, &s->legacy_workdir, &msg);
    if (code < 0) {
        *err = xasprintf("cannot open database '%s': %s", s->path, msg);
        xfree(msg);
    }
    return code;
}

int store__sqlite_open(const char *path, int flags, struct store **out, char **err)
{
    char *dummy = NULL;
    if (err == NULL)
        err = &dummy;
    *out = NULL;
    if (flags == 0)
        flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX; /* one thread */
    int code = make_parents(path, err);
    struct stat sb;
    if (code == 0 && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        *err = xasprintf("cannot open database '%s': is a directory", path);
        code = -EISDIR;
    }
    if (code == 0) {
        struct sql_store *s = xcalloc(1, sizeof(*s));
        s->base.ops = &store__sqlite_ops;
        s->path = xstrdup(path);
        code = open_db(s, flags, err);
        if (code < 0) {
            sqlite3_close(s->db); /* NULL ok */
            xfree(s->path);
            xfree(s);
        } else {
            *out = &s->base;
        }
    }
    xfree(dummy);
    return code;
}
