/* SPDX-License-Identifier: MIT */
/* store_int.h -- what store.c shares with the back ends: the ops table every back end fills,
 * the validated form of a SessionInfo, error helpers, and test hooks for the SQLite back end. */
#ifndef STORE_STORE_INT_H
#define STORE_STORE_INT_H

#include <stdint.h>

#include "store.h"

/* Longest session id accepted (nanoid is 21, "session_<ms>" is 21; this leaves room). */
#define STORE_MAX_ID_BYTES 256

/* A SessionInfo after validation by store.c; every pointer is borrowed. */
struct store_session {
    const char *id;
    int64_t created_at_ms;
    int64_t updated_at_ms;
    const char *workspace;
    const json_t *metadata; /* an object, or NULL when the session has none */
};

/* One back end. store.c validates arguments and clears the last error before each call, so a
 * back end sees only well-formed input and sets the error only when it fails. */
struct store_ops {
    const char *kind;
    void (*close)(struct store *st);
    int (*session_create)(struct store *st, const struct store_session *s);
    json_t *(*session_get)(struct store *st, const char *id);
    json_t *(*session_list)(struct store *st);
    /* metadata: NULL = keep, json null = remove, object = replace */
    int (*session_update)(struct store *st, const char *id, const json_t *metadata,
                          int64_t updated_at_ms);
    int (*session_delete)(struct store *st, const char *id);
    int (*event_append)(struct store *st, const char *session_id, const char *json, size_t len,
                        int64_t now_ms);
    int64_t (*event_count)(struct store *st, const char *session_id);
    int (*events_load)(struct store *st, const char *session_id, int64_t after, int64_t limit,
                       store_event_cb cb, void *data);
    int (*flush)(struct store *st);
    /* server metadata; NULL in back ends that keep none (memory) */
    char *(*meta_get)(struct store *st, const char *key);
    int (*meta_set)(struct store *st, const char *key, const char *value);
};

/* The head of every back end's state (a back end embeds it first and casts). */
struct store {
    const struct store_ops *ops;
    char *err; /* message of the last failed call (heap), NULL after a success */
};

extern const struct store_ops store__mem_ops;
extern const struct store_ops store__sqlite_ops;

int store__mem_open(struct store **out);
/* flags: SQLite open flags; 0 = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE (production). Tests
 * pass SQLITE_OPEN_READONLY to reach the read-only paths even when running as root. */
int store__sqlite_open(const char *path, int flags, struct store **out, char **err);

/* ---- SQLite internals shared by store_sqlite.c and store_schema.c ---- */

/* Our PRAGMA user_version: 0 = written by the original (any of §3.7.3), 1 = final schema. */
#define STORE_SCHEMA_VERSION 1

struct sqlite3;
/* Sets the pragmas and creates or migrates the schema of a freshly opened database (path is
 * for messages). Sets
 * *legacy_workdir when sessions still has the v1 "workingDirectory NOT NULL" column (inserts
 * must fill it). Returns 0, or <0 with a heap message in *msg. */
int store__schema_setup(struct sqlite3 *db, const char *path, bool *legacy_workdir, char **msg);
/* Maps an SQLite result code to a negative errno (SQLITE_FULL -> -ENOSPC, SQLITE_READONLY ->
 * -EROFS, SQLITE_BUSY/LOCKED -> -EBUSY, SQLITE_PERM/AUTH -> -EACCES, others -> -EIO). */
int store__sqlite_errno(int rc);

/* Sets the last error (printf format); returns nothing so callers can pick their code. */
void store__set_error(struct store *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The final SessionInfo shape {id, createdAt, updatedAt, workspace, metadata?}; metadata (may be
 * NULL) is stolen. Returns a new reference. */
json_t *store__session_json_new(const char *id, int64_t created_at_ms, int64_t updated_at_ms,
                                const char *workspace, json_t *metadata);

/* Test hook: the SQLite handle of an SQLite store (NULL for memory), for fault injection such
 * as PRAGMA max_page_count. Not for production callers. */
struct sqlite3 *store__sqlite_db(struct store *st);

#endif
