/* SPDX-License-Identifier: MIT */
/* store_schema.c -- pragmas, schema creation and migration of an SQLite store at open time.
 * The final schema is anchor-api.md §3.7.2; databases written by the original (§3.7.3: v1
 * name/workingDirectory/tags, v2 workspace + modelConfig, v3 metadata) carry user_version 0
 * and are migrated the way the original does it, leaving legacy columns in place. */
#include "store_int.h"

#include <errno.h>
#include <sqlite3.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/util.h"
#include "core/xalloc.h"

static const char schema_sessions[] = "CREATE TABLE IF NOT EXISTS sessions ("
                                      " id TEXT PRIMARY KEY,"
                                      " createdAt INTEGER NOT NULL,"
                                      " updatedAt INTEGER NOT NULL,"
                                      " workspace TEXT NOT NULL,"
                                      " metadata TEXT)";

static const char schema_events[] =
    "CREATE TABLE IF NOT EXISTS events ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " sessionId TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,"
    " timestamp INTEGER NOT NULL,"
    " eventData TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS idx_events_sessionId ON events(sessionId)";

/* Columns we look for, in either table. */
enum {
    COL_ID = 1u << 0,
    COL_CREATED_AT = 1u << 1,
    COL_UPDATED_AT = 1u << 2,
    COL_WORKSPACE = 1u << 3,
    COL_METADATA = 1u << 4,
    COL_NAME = 1u << 5,
    COL_WORKING_DIR = 1u << 6,
    COL_TAGS = 1u << 7,
    COL_MODEL_CONFIG = 1u << 8,
    COL_SESSION_ID = 1u << 9,
    COL_TIMESTAMP = 1u << 10,
    COL_EVENT_DATA = 1u << 11,
};

static const struct {
    const char *name;
    unsigned bit;
} known_cols[] = {
    {"id", COL_ID},
    {"createdAt", COL_CREATED_AT},
    {"updatedAt", COL_UPDATED_AT},
    {"workspace", COL_WORKSPACE},
    {"metadata", COL_METADATA},
    {"name", COL_NAME},
    {"workingDirectory", COL_WORKING_DIR},
    {"tags", COL_TAGS},
    {"modelConfig", COL_MODEL_CONFIG},
    {"sessionId", COL_SESSION_ID},
    {"timestamp", COL_TIMESTAMP},
    {"eventData", COL_EVENT_DATA},
};

#define SESSIONS_REQUIRED (COL_ID | COL_CREATED_AT | COL_UPDATED_AT)
#define EVENTS_REQUIRED (COL_ID | COL_SESSION_ID | COL_TIMESTAMP | COL_EVENT_DATA)

/* What open found in the file. */
struct found {
    int version;       /* PRAGMA user_version */
    bool has_sessions; /* table exists */
    bool has_events;
    unsigned sessions; /* COL_* bits */
    unsigned events;
};

static int fail(sqlite3 *db, int rc, char **msg, const char *what)
{
    *msg = xasprintf("%s: %s", what, sqlite3_errmsg(db));
    return store__sqlite_errno(rc);
}

static int exec(sqlite3 *db, const char *sql, char **msg, const char *what)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : fail(db, rc, msg, what);
}

static unsigned column_bit(const char *name)
{
    for (size_t i = 0; i < sizeof(known_cols) / sizeof(known_cols[0]); i++)
        if (strcasecmp(name, known_cols[i].name) == 0) /* SQL names are case-insensitive */
            return known_cols[i].bit;
    return 0;
}

static int table_columns(sqlite3 *db, const char *table, bool *exists, unsigned *cols, char **msg)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info(?1)", -1, &q, NULL);
    if (rc != SQLITE_OK)
        return fail(db, rc, msg, "cannot read the schema");
    sqlite3_bind_text(q, 1, table, -1, SQLITE_STATIC);
    *exists = false;
    *cols = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(q, 0);
        *exists = true;
        *cols |= name ? column_bit(name) : 0;
    }
    int ret = rc == SQLITE_DONE ? 0 : fail(db, rc, msg, "cannot read the schema");
    sqlite3_finalize(q);
    return ret;
}

static int inspect(sqlite3 *db, struct found *f, char **msg)
{
    sqlite3_stmt *q = NULL;
    /* The first read of the file: a non-database or a corrupt header fails here. */
    int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        /* SQLite's own words ("file is not a database") say it best, except here: */
        if (rc == SQLITE_READONLY_DIRECTORY || rc == SQLITE_READONLY_CANTINIT)
            *msg = xstrdup("it is a WAL database in a read-only directory, so its -wal and "
                           "-shm files cannot be created");
        else
            *msg = xstrdup(sqlite3_errmsg(db));
        sqlite3_finalize(q);
        return store__sqlite_errno(rc);
    }
    f->version = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if (f->version > STORE_SCHEMA_VERSION) {
        *msg = xasprintf("schema version %d is newer than this program supports (%d)", f->version,
                         STORE_SCHEMA_VERSION);
        return -EPROTO;
    }
    rc = table_columns(db, "sessions", &f->has_sessions, &f->sessions, msg);
    if (rc == 0)
        rc = table_columns(db, "events", &f->has_events, &f->events, msg);
    if (rc < 0)
        return rc;
    if ((f->has_sessions && (f->sessions & SESSIONS_REQUIRED) != SESSIONS_REQUIRED) ||
        (f->has_events && (f->events & EVENTS_REQUIRED) != EVENTS_REQUIRED)) {
        *msg = xstrdup("its 'sessions' or 'events' table lacks required columns (not an Agent "
                       "TARS database?)");
        return -EPROTO;
    }
    return 0;
}

static bool needs_migration(const struct found *f)
{
    return f->version < STORE_SCHEMA_VERSION || !f->has_sessions || !f->has_events ||
           !(f->sessions & COL_WORKSPACE) || !(f->sessions & COL_METADATA);
}

/* Whether the schema itself (not just user_version) must change. */
static bool needs_schema_change(const struct found *f)
{
    return !f->has_sessions || !f->has_events || !(f->sessions & COL_WORKSPACE) ||
           !(f->sessions & COL_METADATA);
}

/* ---- v3 migration of a legacy sessions table (§3.7.3) ---- */

/* A legacy JSON text column as a value; NULL when empty or unparseable (logged). */
static json_t *legacy_json(sqlite3_stmt *q, int col, const char *id, const char *what)
{
    const char *text = (const char *)sqlite3_column_text(q, col);
    if (text == NULL || *text == '\0')
        return NULL;
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    if (v == NULL)
        log_warn("store: session '%s': legacy %s is not JSON; dropped", id ? id : "?", what);
    return v;
}

/* metadata for one legacy row: {version:1, name?, tags?, modelConfig?}, NULL if none is set. */
static char *legacy_metadata(sqlite3_stmt *q)
{
    const char *id = (const char *)sqlite3_column_text(q, 1);
    const char *name = (const char *)sqlite3_column_text(q, 2);
    json_t *tags = legacy_json(q, 3, id, "tags");
    json_t *model = legacy_json(q, 4, id, "modelConfig");
    if ((name == NULL || *name == '\0') && tags == NULL && model == NULL)
        return NULL;
    json_t *meta = json_pack("{s:i}", "version", 1);
    if (name && *name)
        json_object_set_new(meta, "name", json_string_lossy(name, strlen(name)));
    if (tags)
        json_object_set_new(meta, "tags", tags);
    if (model)
        json_object_set_new(meta, "modelConfig", model);
    char *text = json_dumps(meta, JSON_COMPACT);
    json_decref(meta);
    return text;
}

static int fill_metadata(sqlite3 *db, unsigned cols, char **msg)
{
    char *sql = xasprintf("SELECT rowid, id, %s, %s, %s FROM sessions",
                          cols & COL_NAME ? "name" : "NULL", cols & COL_TAGS ? "tags" : "NULL",
                          cols & COL_MODEL_CONFIG ? "modelConfig" : "NULL");
    sqlite3_stmt *q = NULL, *u = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &q, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(db, "UPDATE sessions SET metadata = ?1 WHERE rowid = ?2", -1, &u,
                                NULL);
    /* Updating a non-indexed column of the row under the cursor is safe in SQLite. */
    while (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        char *meta = legacy_metadata(q);
        if (meta == NULL) {
            rc = SQLITE_OK;
            continue;
        }
        sqlite3_bind_text(u, 1, meta, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(u, 2, sqlite3_column_int64(q, 0));
        rc = sqlite3_step(u);
        rc = rc == SQLITE_DONE ? sqlite3_reset(u) : rc;
        xfree(meta);
    }
    int ret = rc == SQLITE_DONE ? 0 : fail(db, rc, msg, "cannot migrate session metadata");
    sqlite3_finalize(u);
    sqlite3_finalize(q);
    xfree(sql);
    return ret;
}

static int migrate_sessions(sqlite3 *db, const struct found *f, char **msg)
{
    int rc = 0;
    if (!(f->sessions & COL_WORKSPACE)) {
        rc = exec(db, "ALTER TABLE sessions ADD COLUMN workspace TEXT NOT NULL DEFAULT ''", msg,
                  "cannot add column 'workspace'");
        if (rc == 0 && (f->sessions & COL_WORKING_DIR))
            rc = exec(db, "UPDATE sessions SET workspace = COALESCE(workingDirectory, '')", msg,
                      "cannot copy 'workingDirectory'");
    }
    if (rc == 0 && !(f->sessions & COL_METADATA)) {
        rc = exec(db, "ALTER TABLE sessions ADD COLUMN metadata TEXT", msg,
                  "cannot add column 'metadata'");
        if (rc == 0 && (f->sessions & (COL_NAME | COL_TAGS | COL_MODEL_CONFIG)))
            rc = fill_metadata(db, f->sessions, msg);
    }
    return rc;
}

/* One transaction with foreign keys off, as the original's migration runs. */
static int migrate(sqlite3 *db, const char *path, const struct found *f, char **msg)
{
    int rc = exec(db, "PRAGMA foreign_keys = OFF; BEGIN IMMEDIATE", msg, "cannot start migration");
    if (rc < 0)
        return rc;
    if (f->has_sessions) {
        rc = migrate_sessions(db, f, msg);
        if (rc == 0 && !(f->sessions & COL_METADATA))
            log_info("store: '%s': migrated a legacy sessions table to the metadata schema", path);
    } else
        rc = exec(db, schema_sessions, msg, "cannot create table 'sessions'");
    if (rc == 0)
        rc = exec(db, schema_events, msg, "cannot create table 'events'");
    if (rc == 0)
        rc = exec(db, "PRAGMA user_version = 1", msg, "cannot set user_version");
    if (rc == 0)
        rc = exec(db, "COMMIT", msg, "cannot commit the schema");
    if (rc < 0 && !sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

static int set_journal_wal(sqlite3 *db, const char *path, char **msg)
{
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(db, "PRAGMA journal_mode = WAL", -1, &q, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_step(q);
    if (rc != SQLITE_ROW) {
        int ret = fail(db, rc, msg, "cannot enable WAL");
        sqlite3_finalize(q);
        return ret;
    }
    const char *mode = (const char *)sqlite3_column_text(q, 0);
    if (mode == NULL || strcasecmp(mode, "wal") != 0) /* e.g. a filesystem without mmap */
        log_warn("store: '%s': journal_mode is '%s', not WAL", path, mode ? mode : "?");
    sqlite3_finalize(q);
    return 0;
}

int store__schema_setup(struct sqlite3 *db, const char *path, bool *legacy_workdir, char **msg)
{
    struct found f = {0};
    int rc = inspect(db, &f, msg);
    if (rc < 0)
        return rc;
    *legacy_workdir = (f.sessions & COL_WORKING_DIR) != 0;
    if (sqlite3_db_readonly(db, "main") == 1) {
        if (needs_schema_change(&f)) {
            *msg = xasprintf("the file is read-only and its schema must be %s",
                             f.has_sessions ? "migrated" : "created");
            return -EROFS;
        }
        log_warn("store: '%s' is read-only; every write will fail", path);
        return exec(db, "PRAGMA foreign_keys = ON", msg, "cannot enable foreign keys");
    }
    rc = set_journal_wal(db, path, msg);
    if (rc == 0)
        rc = exec(db, "PRAGMA synchronous = NORMAL", msg, "cannot set synchronous");
    if (rc == 0 && needs_migration(&f))
        rc = migrate(db, path, &f, msg);
    /* After the tables exist, as the original does (§3.7.2). */
    if (rc == 0)
        rc = exec(db, "PRAGMA foreign_keys = ON", msg, "cannot enable foreign keys");
    return rc;
}
