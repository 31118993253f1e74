/* SPDX-License-Identifier: MIT */
/* store.h -- durable sessions and events. Two back ends behind one interface: SQLite (WAL, the
 * original's schema, anchor-api.md §3.7.2-§3.7.3) and memory. All calls run on the loop thread;
 * SQLite statements are short and are the one named place where the loop blocks on disk.
 *
 * Writes of events are batched: store_event_append adds to an open transaction, which is
 * committed by store_flush (called once per loop iteration before any byte goes to a client) or
 * when a read needs it. No fsync per event (WAL, synchronous=NORMAL): a process crash loses
 * nothing committed. */
#ifndef STORE_STORE_H
#define STORE_STORE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* Opens the store. path NULL (or "") = memory back end; otherwise an SQLite file, its parent
 * directories created, schema created or migrated (PRAGMA user_version), WAL enabled. Returns 0,
 * or <0 with a heap message in *err that says what is wrong (e.g. "cannot open database
 * '/x/y.db': file is not a database"). */
int store_open(const char *path, struct store **out, char **err);
/* Commits pending writes and closes. NULL ok. */
void store_close(struct store *st);
/* "sqlite" or "memory". */
const char *store_kind(const struct store *st);
/* The message of the last failed call (valid until the next call). */
const char *store_last_error(const struct store *st);

/* ---- sessions: SessionInfo objects {id, createdAt, updatedAt, workspace, metadata?} ---- */

/* Inserts a session; info is borrowed. Returns 0, -EEXIST, or <0 (storage error). */
int store_session_create(struct store *st, const json_t *info);
/* A new reference to the SessionInfo, or NULL if absent (or on error: check store_last_error).
 * Rows written by older schemas come back in the final shape (metadata {name, tags,
 * modelConfig} and workspace from workingDirectory). */
json_t *store_session_get(struct store *st, const char *id);
/* A new array of every SessionInfo, updatedAt descending; NULL on error. */
json_t *store_session_list(struct store *st);
/* Replaces metadata (when not NULL; borrowed) and sets updatedAt. Returns 0, -ENOENT or <0. */
int store_session_update(struct store *st, const char *id, const json_t *metadata,
                         int64_t updated_at_ms);
/* Deletes the session and its events. Returns 0, -ENOENT or <0. */
int store_session_delete(struct store *st, const char *id);

/* ---- events ---- */

/* Appends one event (its one-line JSON, borrowed) to the session's log and bumps the session's
 * updatedAt to now. Returns 0, -ENOENT (no such session) or <0. */
int store_event_append(struct store *st, const char *session_id, const char *json, size_t len);
/* Number of events stored for the session (its log length), or <0. */
int64_t store_event_count(struct store *st, const char *session_id);
/* Calls cb for the session's events at positions after+1 .. after+limit (positions start at 1,
 * insertion order; limit 0 = no limit). json is NUL-terminated and borrowed for the call.
 * cb returns 0 to go on, non-zero to stop. Returns 0 or <0. */
typedef int (*store_event_cb)(void *data, int64_t pos, const char *json, size_t len);
int store_events_load(struct store *st, const char *session_id, int64_t after, int64_t limit,
                      store_event_cb cb, void *data);
/* Commits the open write transaction, if any. Returns 0 or <0. */
int store_flush(struct store *st);

/* ---- server metadata: small key/value pairs of the server itself (e.g. its secret) ---- */

/* The value (caller owns it), or NULL when absent or when the back end keeps none (memory). */
char *store_meta_get(struct store *st, const char *key);
/* Stores a value durably (a no-op for the memory back end). Returns 0 or <0. */
int store_meta_set(struct store *st, const char *key, const char *value);

#endif
