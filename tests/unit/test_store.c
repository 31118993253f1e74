/* SPDX-License-Identifier: MIT */
/* test_store.c -- both store back ends through the same tests, then what only SQLite has:
 * persistence, batching, databases written by the original (v1/v2/final), and failures (not a
 * database, read-only, disk full, corruption). STORE_BENCH=1 adds a throughput run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h> /* after the four above, which it needs */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "core/xalloc.h"
#include "store/store.h"
#include "store/store_int.h"

struct fx {
    bool sqlite;
    char dir[64];   /* temp dir, removed at teardown */
    char path[128]; /* db path, in a sub directory that store_open must create */
    struct store *st;
};

static struct fx fx_mem = {.sqlite = false};
static struct fx fx_sql = {.sqlite = true};

/* ---- helpers ---- */

static int rm_one(const char *p, const struct stat *sb, int type, struct FTW *ftw)
{
    chmod(p, 0700);
    return remove(p);
}

static int setup(void **state)
{
    struct fx *f = *state;
    snprintf(f->dir, sizeof(f->dir), "/tmp/test_store.XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof(f->path), "%s/a/b/store.db", f->dir);
    char *err = NULL;
    assert_int_equal(store_open(f->sqlite ? f->path : NULL, &f->st, &err), 0);
    assert_null(err);
    assert_string_equal(store_kind(f->st), f->sqlite ? "sqlite" : "memory");
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    store_close(f->st);
    f->st = NULL;
    nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void reopen(struct fx *f)
{
    store_close(f->st);
    char *err = NULL;
    int rc = store_open(f->path, &f->st, &err);
    if (rc < 0)
        fail_msg("reopen: %s", err);
}

static json_t *info(const char *id, int64_t created, const char *metadata_json)
{
    json_t *j = json_pack("{s:s, s:I, s:I, s:s}", "id", id, "createdAt", (json_int_t)created,
                          "updatedAt", (json_int_t)created, "workspace", "/w");
    if (metadata_json)
        json_object_set_new(j, "metadata", json_loads(metadata_json, 0, NULL));
    return j;
}

static void create(struct store *st, const char *id, int64_t created, const char *meta)
{
    json_t *j = info(id, created, meta);
    int rc = store_session_create(st, j);
    json_decref(j);
    if (rc != 0)
        fail_msg("create %s: %d %s", id, rc, store_last_error(st));
}

static void assert_json(const json_t *got, const char *want_text)
{
    json_t *want = json_loads(want_text, 0, NULL);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *g = json_dump_compact(got, NULL);
        print_error("got  %s\nwant %s\n", g, want_text);
        xfree(g);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

static void append(struct store *st, const char *id, const char *json)
{
    int rc = store_event_append(st, id, json, strlen(json));
    if (rc != 0)
        fail_msg("append to %s: %d %s", id, rc, store_last_error(st));
}

struct collected {
    int64_t first, last, n;
    int64_t stop_at; /* return 1 from the callback at this position */
    char last_json[64];
};

static int collect(void *data, int64_t pos, const char *json, size_t len)
{
    struct collected *c = data;
    assert_int_equal(strlen(json), len);
    if (c->n == 0)
        c->first = pos;
    else
        assert_int_equal(pos, c->last + 1);
    c->last = pos;
    c->n++;
    snprintf(c->last_json, sizeof(c->last_json), "%s", json);
    return pos == c->stop_at;
}

static int64_t raw_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return v;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *db;
    char *msg = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("raw sql: %s", msg);
    sqlite3_close(db);
}

static void write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

/* ---- both back ends ---- */

static void test_sessions(void **state)
{
    struct fx *f = *state;
    struct store *st = f->st;
    create(st, "s1", 1000, NULL);
    create(st, "s2", 2000, "{\"name\":\"two\",\"tags\":[\"x\"]}");
    create(st, "s3", 1500, "{}");

    json_t *dup = info("s1", 5, NULL);
    assert_int_equal(store_session_create(st, dup), -EEXIST);
    assert_non_null(strstr(store_last_error(st), "already exists"));
    json_decref(dup);

    json_t *s = store_session_get(st, "s1"); /* no metadata key at all */
    assert_json(s, "{\"id\":\"s1\",\"createdAt\":1000,\"updatedAt\":1000,\"workspace\":\"/w\"}");
    json_decref(s);
    assert_null(store_session_get(st, "nope"));
    assert_string_equal(store_last_error(st), ""); /* absent is not an error */

    json_t *list = store_session_list(st); /* updatedAt descending */
    assert_int_equal(json_array_size(list), 3);
    assert_string_equal(json_get_str(json_array_get(list, 0), "id"), "s2");
    assert_string_equal(json_get_str(json_array_get(list, 1), "id"), "s3");
    assert_string_equal(json_get_str(json_array_get(list, 2), "id"), "s1");
    assert_json(json_array_get(list, 0), "{\"id\":\"s2\",\"createdAt\":2000,\"updatedAt\":2000,"
                                         "\"workspace\":\"/w\",\"metadata\":{\"name\":\"two\","
                                         "\"tags\":[\"x\"]}}");
    json_decref(list);

    /* update: replace metadata, bump updatedAt; NULL keeps metadata; json null removes it */
    json_t *meta = json_pack("{s:s}", "name", "renamed");
    assert_int_equal(store_session_update(st, "s1", meta, 3000), 0);
    json_object_set_new(meta, "name", json_string("changed after the call"));
    s = store_session_get(st, "s1");
    assert_json(s, "{\"id\":\"s1\",\"createdAt\":1000,\"updatedAt\":3000,\"workspace\":\"/w\","
                   "\"metadata\":{\"name\":\"renamed\"}}");
    json_object_set_new(s, "active", json_true()); /* the caller owns what it gets */
    json_decref(s);
    assert_int_equal(store_session_update(st, "s1", NULL, 3100), 0);
    s = store_session_get(st, "s1");
    assert_json(s, "{\"id\":\"s1\",\"createdAt\":1000,\"updatedAt\":3100,\"workspace\":\"/w\","
                   "\"metadata\":{\"name\":\"renamed\"}}");
    json_decref(s);
    json_t *null = json_null();
    assert_int_equal(store_session_update(st, "s2", null, 3200), 0);
    s = store_session_get(st, "s2");
    assert_null(json_object_get(s, "metadata"));
    json_decref(s);
    assert_int_equal(store_session_update(st, "nope", meta, 1), -ENOENT);
    assert_non_null(strstr(store_last_error(st), "not found"));
    json_decref(meta);

    list = store_session_list(st);
    assert_string_equal(json_get_str(json_array_get(list, 0), "id"), "s2");
    assert_string_equal(json_get_str(json_array_get(list, 1), "id"), "s1");
    json_decref(list);

    assert_int_equal(store_session_delete(st, "s1"), 0);
    assert_int_equal(store_session_delete(st, "s1"), -ENOENT);
    assert_null(store_session_get(st, "s1"));
    list = store_session_list(st);
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);
}

static void test_list_ties(void **state)
{
    struct fx *f = *state;
    create(f->st, "a", 500, NULL);
    create(f->st, "b", 500, NULL);
    create(f->st, "c", 500, NULL);
    json_t *list = store_session_list(f->st); /* equal updatedAt: newest first */
    assert_string_equal(json_get_str(json_array_get(list, 0), "id"), "c");
    assert_string_equal(json_get_str(json_array_get(list, 2), "id"), "a");
    json_decref(list);
}

static void test_events(void **state)
{
    struct fx *f = *state;
    struct store *st = f->st;
    assert_int_equal(store_event_append(st, "nope", "{}", 2), -ENOENT);
    assert_non_null(strstr(store_last_error(st), "not found"));
    create(st, "s", 1000, NULL);
    create(st, "other", 1000, NULL);
    assert_int_equal(store_event_count(st, "s"), 0);
    int64_t before = now_ms();
    char ev[64];
    for (int i = 1; i <= 5; i++) {
        snprintf(ev, sizeof(ev), "{\"type\":\"e\",\"i\":%d}", i);
        append(st, "s", ev);
        append(st, "other", "{\"type\":\"x\"}");
    }
    assert_int_equal(store_event_count(st, "s"), 5);
    json_t *s = store_session_get(st, "s"); /* append bumps updatedAt to now */
    assert_true(json_integer_value(json_object_get(s, "updatedAt")) >= before);
    json_decref(s);

    struct collected c = {0};
    assert_int_equal(store_events_load(st, "s", 0, 0, collect, &c), 0);
    assert_int_equal(c.first, 1);
    assert_int_equal(c.n, 5);
    assert_string_equal(c.last_json, "{\"type\":\"e\",\"i\":5}");
    c = (struct collected){0};
    assert_int_equal(store_events_load(st, "s", 1, 2, collect, &c), 0);
    assert_int_equal(c.first, 2);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.last_json, "{\"type\":\"e\",\"i\":3}");
    c = (struct collected){.stop_at = 4};
    assert_int_equal(store_events_load(st, "s", 2, 0, collect, &c), 0);
    assert_int_equal(c.n, 2); /* 3, 4 then stop */
    c = (struct collected){0};
    assert_int_equal(store_events_load(st, "s", 5, 0, collect, &c), 0);
    assert_int_equal(c.n, 0);
    /* a client's resume position of 2^63-1 (issue 11: the memory store overflowed after + 1) */
    assert_int_equal(store_events_load(st, "s", INT64_MAX, 0, collect, &c), 0);
    assert_int_equal(store_events_load(st, "s", INT64_MAX, 3, collect, &c), 0);
    assert_int_equal(store_events_load(st, "s", INT64_MAX - 1, INT64_MAX, collect, &c), 0);
    assert_int_equal(c.n, 0);
    assert_int_equal(store_events_load(st, "nope", 0, 0, collect, &c), -ENOENT);
    assert_int_equal(store_event_count(st, "nope"), -ENOENT);

    /* delete takes the events along */
    assert_int_equal(store_session_delete(st, "s"), 0);
    assert_int_equal(store_event_count(st, "s"), -ENOENT);
    assert_int_equal(store_event_count(st, "other"), 5);
    create(st, "s", 1000, NULL); /* same id again starts an empty log */
    assert_int_equal(store_event_count(st, "s"), 0);
    assert_int_equal(store_flush(st), 0);
    if (f->sqlite)
        assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM events"), 5);
}

static void test_events_10k(void **state)
{
    struct fx *f = *state;
    struct store *st = f->st;
    create(st, "big", 1, NULL);
    char ev[64];
    for (int i = 1; i <= 10000; i++) {
        snprintf(ev, sizeof(ev), "{\"n\":%d}", i);
        append(st, "big", ev);
        if (i % 100 == 0)
            assert_int_equal(store_flush(st), 0);
    }
    assert_int_equal(store_event_count(st, "big"), 10000);
    struct collected c = {0};
    assert_int_equal(store_events_load(st, "big", 0, 0, collect, &c), 0);
    assert_int_equal(c.n, 10000);
    c = (struct collected){0};
    assert_int_equal(store_events_load(st, "big", 9990, 0, collect, &c), 0);
    assert_int_equal(c.first, 9991);
    assert_int_equal(c.n, 10);
    assert_string_equal(c.last_json, "{\"n\":10000}");
    c = (struct collected){0};
    assert_int_equal(store_events_load(st, "big", 4999, 3, collect, &c), 0);
    assert_int_equal(c.first, 5000);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.last_json, "{\"n\":5002}");
    c = (struct collected){0};
    assert_int_equal(store_events_load(st, "big", 20000, 5, collect, &c), 0);
    assert_int_equal(c.n, 0);
}

static void test_invalid(void **state)
{
    struct store *st = ((struct fx *)*state)->st;
    json_t *bad = json_pack("{s:s}", "id", "x"); /* no workspace */
    assert_int_equal(store_session_create(st, bad), -EINVAL);
    assert_non_null(strstr(store_last_error(st), "workspace"));
    json_decref(bad);
    bad = json_pack("{s:s, s:s, s:i}", "id", "x", "workspace", "/w", "metadata", 3);
    assert_int_equal(store_session_create(st, bad), -EINVAL);
    json_decref(bad);
    bad = json_array();
    assert_int_equal(store_session_create(st, bad), -EINVAL);
    json_decref(bad);
    /* timestamps default to now; JavaScript reals are accepted */
    bad = json_pack("{s:s, s:s, s:f}", "id", "x", "workspace", "/w", "createdAt", 12.0);
    assert_int_equal(store_session_create(st, bad), 0);
    json_decref(bad);
    json_t *s = store_session_get(st, "x");
    assert_int_equal(json_integer_value(json_object_get(s, "createdAt")), 12);
    assert_int_equal(json_integer_value(json_object_get(s, "updatedAt")), 12);
    json_decref(s);
    assert_int_equal(store_event_append(st, "x", "", 0), -EINVAL);
    assert_int_equal(store_event_append(st, NULL, "{}", 2), -EINVAL);
    assert_int_equal(store_events_load(st, "x", -1, 0, collect, NULL), -EINVAL);
    assert_int_equal(store_events_load(st, "x", 0, 0, NULL, NULL), -EINVAL);
    assert_null(store_session_get(st, NULL));
    assert_non_null(strstr(store_last_error(st), "invalid"));
    char long_id[400];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_null(store_session_get(st, long_id));
    assert_int_equal(store_session_delete(st, long_id), -ENOENT);
    assert_int_equal(store_event_append(st, "x", "{}", 2), 0); /* a success clears the error */
    assert_string_equal(store_last_error(st), "");
}

struct reenter {
    struct store *st;
    int64_t seen;
    int64_t inner;
};

/* Appends to the log being read, and reads it again from inside the callback. */
static int reenter_cb(void *data, int64_t pos, const char *json, size_t len)
{
    struct reenter *r = data;
    r->seen++;
    if (pos == 1) {
        assert_int_equal(store_event_append(r->st, "s", "{\"late\":1}", 10), 0);
        struct collected c = {0};
        assert_int_equal(store_events_load(r->st, "s", 0, 0, collect, &c), 0);
        r->inner = c.n;
        assert_int_equal(store_session_delete(r->st, "gone"), 0);
    }
    return 0;
}

static void test_reentrant_load(void **state)
{
    struct store *st = ((struct fx *)*state)->st;
    create(st, "s", 1, NULL);
    create(st, "gone", 1, NULL);
    append(st, "s", "{\"a\":1}");
    append(st, "s", "{\"a\":2}");
    struct reenter r = {.st = st};
    assert_int_equal(store_events_load(st, "s", 0, 0, reenter_cb, &r), 0);
    assert_int_equal(r.inner, 3);
    assert_true(r.seen == 2 || r.seen == 3); /* whether the late one shows is unspecified */
    assert_int_equal(store_event_count(st, "s"), 3);
    assert_null(store_session_get(st, "gone"));
}

/* ---- SQLite only ---- */

static void test_persistence(void **state)
{
    struct fx *f = *state;
    create(f->st, "p1", 1000, "{\"name\":\"persist\",\"modelConfig\":{\"provider\":\"openai\"}}");
    create(f->st, "p2", 2000, NULL);
    append(f->st, "p1", "{\"type\":\"user_message\",\"content\":\"hi\"}");
    append(f->st, "p1", "{\"type\":\"assistant_message\",\"content\":\"h\\u00e9\"}");
    reopen(f); /* close commits without an explicit flush */
    json_t *s = store_session_get(f->st, "p1");
    assert_json(json_object_get(s, "metadata"),
                "{\"name\":\"persist\",\"modelConfig\":{\"provider\":\"openai\"}}");
    json_decref(s);
    assert_int_equal(store_event_count(f->st, "p1"), 2);
    struct collected c = {0};
    assert_int_equal(store_events_load(f->st, "p1", 1, 0, collect, &c), 0);
    assert_string_equal(c.last_json, "{\"type\":\"assistant_message\",\"content\":\"h\\u00e9\"}");
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 1);
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' "
                                      "AND name = 'idx_events_sessionId'"),
                     1);
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM pragma_table_info('sessions') WHERE "
                                      "name IN ('id','createdAt','updatedAt','workspace',"
                                      "'metadata')"),
                     5);
    /* events.timestamp is the save time, not anything in the event */
    assert_true(raw_int(f->path, "SELECT MIN(timestamp) FROM events") > 1700000000000);

    sqlite3 *db = store__sqlite_db(f->st);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA foreign_keys", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), 1);
    sqlite3_finalize(q);
}

static void test_batching(void **state)
{
    struct fx *f = *state;
    create(f->st, "b", 1, NULL);
    char ev[64];
    for (int i = 1; i <= 250; i++) {
        snprintf(ev, sizeof(ev), "{\"n\":%d}", i);
        append(f->st, "b", ev);
        if (i % 100 == 0)
            assert_int_equal(store_flush(f->st), 0);
    }
    /* Another connection sees only what was flushed (WAL readers see committed data). */
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM events"), 200);
    assert_int_equal(store_flush(f->st), 0);
    assert_int_equal(store_flush(f->st), 0); /* nothing pending: no-op */
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM events"), 250);
    append(f->st, "b", "{\"n\":251}");
    assert_int_equal(store_event_count(f->st, "b"), 251); /* a read flushes first */
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM events"), 251);
    append(f->st, "b", "{\"n\":252}");
    reopen(f);
    assert_int_equal(store_event_count(f->st, "b"), 252);
    assert_int_equal(raw_int(f->path, "SELECT MAX(updatedAt) FROM sessions") >= 1700000000000, 1);
}

static const char v1_schema[] =
    "CREATE TABLE sessions (id TEXT PRIMARY KEY, createdAt INTEGER NOT NULL, updatedAt INTEGER "
    "NOT NULL, name TEXT, workingDirectory TEXT NOT NULL, tags TEXT);"
    "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, sessionId TEXT NOT NULL, "
    "timestamp INTEGER NOT NULL, eventData TEXT NOT NULL, FOREIGN KEY (sessionId) REFERENCES "
    "sessions (id) ON DELETE CASCADE);"
    "CREATE INDEX idx_events_sessionId ON events (sessionId);"
    "INSERT INTO sessions VALUES ('session_1748000000000', 1748000000000, 1748000001000, "
    "'My task', '/home/u/work', '[\"a\",\"b\"]');"
    "INSERT INTO sessions VALUES ('session_1748000002000', 1748000002000, 1748000003000, NULL, "
    "'/home/u/other', NULL);"
    "INSERT INTO events (sessionId, timestamp, eventData) VALUES "
    "('session_1748000000000', 1748000000100, '{\"type\":\"user_message\",\"content\":\"hi\"}'),"
    "('session_1748000000000', 1748000000200, '{\"type\":\"assistant_message\"}');";

/* The old file path: the test writes the database itself, then opens it with the store. */
static void open_prebuilt(struct fx *f, const char *sql)
{
    store_close(f->st);
    f->st = NULL;
    snprintf(f->path, sizeof(f->path), "%s/agent-tars.db", f->dir);
    raw_exec(f->path, sql);
    reopen(f);
}

static void test_legacy_v1(void **state)
{
    struct fx *f = *state;
    open_prebuilt(f, v1_schema);
    json_t *list = store_session_list(f->st);
    assert_json(list, "[{\"id\":\"session_1748000002000\",\"createdAt\":1748000002000,"
                      "\"updatedAt\":1748000003000,\"workspace\":\"/home/u/other\"},"
                      "{\"id\":\"session_1748000000000\",\"createdAt\":1748000000000,"
                      "\"updatedAt\":1748000001000,\"workspace\":\"/home/u/work\",\"metadata\":"
                      "{\"version\":1,\"name\":\"My task\",\"tags\":[\"a\",\"b\"]}}]");
    json_decref(list);
    struct collected c = {0};
    assert_int_equal(store_events_load(f->st, "session_1748000000000", 0, 0, collect, &c), 0);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.last_json, "{\"type\":\"assistant_message\"}");
    append(f->st, "session_1748000000000", "{\"type\":\"new\"}");
    create(f->st, "newid", 5, "{\"name\":\"n\"}"); /* workingDirectory NOT NULL is filled */
    assert_int_equal(store_flush(f->st), 0);
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM sessions WHERE id = 'newid' AND "
                                      "workingDirectory = '/w'"),
                     1);
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM pragma_table_info('sessions') WHERE "
                                      "name IN ('name','workingDirectory','tags')"),
                     3);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 1);
    reopen(f); /* version 1 now, legacy column still there */
    create(f->st, "newer", 6, NULL);
    assert_int_equal(store_event_count(f->st, "session_1748000000000"), 3);
    assert_int_equal(store_session_delete(f->st, "session_1748000000000"), 0);
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM events"), 0);
    list = store_session_list(f->st);
    assert_int_equal(json_array_size(list), 3);
    json_decref(list);
}

static const char v2_schema[] =
    "CREATE TABLE sessions (id TEXT PRIMARY KEY, createdAt INTEGER NOT NULL, updatedAt INTEGER "
    "NOT NULL, name TEXT, workspace TEXT NOT NULL, tags TEXT, modelConfig TEXT);"
    "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, sessionId TEXT NOT NULL, "
    "timestamp INTEGER NOT NULL, eventData TEXT NOT NULL, FOREIGN KEY (sessionId) REFERENCES "
    "sessions (id) ON DELETE CASCADE);"
    "CREATE INDEX idx_events_sessionId ON events (sessionId);"
    "INSERT INTO sessions VALUES ('V1StGXR8_Z5jdHi6B-myT', 1754000000000, 1754000005000, "
    "'Chat', '/ws', '[]', '{\"provider\":\"openai\",\"modelId\":\"gpt-4o\",\"configuredAt\":1}');"
    "INSERT INTO sessions VALUES ('only-model', 1754000001000, 1754000001000, NULL, '/ws2', "
    "'not json', '{\"provider\":\"anthropic\",\"modelId\":\"c\"}');"
    "INSERT INTO events (sessionId, timestamp, eventData) VALUES "
    "('V1StGXR8_Z5jdHi6B-myT', 1754000000100, '{\"type\":\"user_message\"}');";

static void test_legacy_v2(void **state)
{
    struct fx *f = *state;
    int saved = log_level;
    log_set_level(LOG_ERROR); /* the bad tags are logged as a warning */
    open_prebuilt(f, v2_schema);
    log_set_level(saved);
    json_t *s = store_session_get(f->st, "V1StGXR8_Z5jdHi6B-myT");
    assert_json(s, "{\"id\":\"V1StGXR8_Z5jdHi6B-myT\",\"createdAt\":1754000000000,\"updatedAt\":"
                   "1754000005000,\"workspace\":\"/ws\",\"metadata\":{\"version\":1,\"name\":"
                   "\"Chat\",\"tags\":[],\"modelConfig\":{\"provider\":\"openai\",\"modelId\":"
                   "\"gpt-4o\",\"configuredAt\":1}}}");
    json_decref(s);
    s = store_session_get(f->st, "only-model");
    assert_json(json_object_get(s, "metadata"),
                "{\"version\":1,\"modelConfig\":{\"provider\":\"anthropic\",\"modelId\":\"c\"}}");
    json_decref(s);
    assert_int_equal(store_event_count(f->st, "V1StGXR8_Z5jdHi6B-myT"), 1);
    append(f->st, "only-model", "{\"type\":\"x\"}");
    create(f->st, "fresh", 1, NULL);
    json_t *list = store_session_list(f->st);
    assert_string_equal(json_get_str(json_array_get(list, 0), "id"), "only-model");
    assert_int_equal(json_array_size(list), 3);
    json_decref(list);
}

/* The original's final schema has user_version 0: opened as is, then stamped. */
static void test_original_final(void **state)
{
    struct fx *f = *state;
    open_prebuilt(f, "CREATE TABLE sessions (id TEXT PRIMARY KEY, createdAt INTEGER NOT NULL, "
                     "updatedAt INTEGER NOT NULL, workspace TEXT NOT NULL, metadata TEXT);"
                     "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, sessionId TEXT "
                     "NOT NULL, timestamp INTEGER NOT NULL, eventData TEXT NOT NULL, FOREIGN KEY "
                     "(sessionId) REFERENCES sessions (id) ON DELETE CASCADE);"
                     "INSERT INTO sessions VALUES ('x', 1, 2, '/ws', '{\"name\":\"n\"}');");
    json_t *s = store_session_get(f->st, "x");
    assert_json(s, "{\"id\":\"x\",\"createdAt\":1,\"updatedAt\":2,\"workspace\":\"/ws\","
                   "\"metadata\":{\"name\":\"n\"}}");
    json_decref(s);
    assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 1);
    assert_int_equal(raw_int(f->path, "SELECT COUNT(*) FROM sqlite_master WHERE name = "
                                      "'idx_events_sessionId'"),
                     1);
}

static void expect_open_error(const char *path, const char *needle)
{
    struct store *st = NULL;
    char *err = NULL;
    int rc = store_open(path, &st, &err);
    assert_true(rc < 0);
    assert_null(st);
    assert_non_null(err);
    if (strstr(err, needle) == NULL)
        fail_msg("open error '%s' lacks '%s'", err, needle);
    xfree(err);
}

static void test_open_errors(void **state)
{
    struct fx *f = *state;
    char p[192];
    snprintf(p, sizeof(p), "%s/garbage.db", f->dir);
    char junk[4096];
    memset(junk, 'x', sizeof(junk));
    write_file(p, junk, sizeof(junk));
    expect_open_error(p, "file is not a database");
    expect_open_error(f->dir, "is a directory");
    snprintf(p, sizeof(p), "%s/garbage.db/sub/x.db", f->dir);
    expect_open_error(p, "cannot create directory");
    snprintf(p, sizeof(p), "%s/newer.db", f->dir);
    raw_exec(p, "PRAGMA user_version = 7");
    expect_open_error(p, "schema version 7 is newer");
    snprintf(p, sizeof(p), "%s/foreign.db", f->dir);
    raw_exec(p, "CREATE TABLE sessions (id TEXT, title TEXT)");
    expect_open_error(p, "lacks required columns");
}

/* Read-only through the open flag: works for root too, and SQLite itself refuses the writes. */
static void test_readonly_flag(void **state)
{
    struct fx *f = *state;
    create(f->st, "r", 1, NULL);
    append(f->st, "r", "{\"a\":1}");
    store_close(f->st);
    f->st = NULL;
    char *err = NULL;
    assert_int_equal(store__sqlite_open(f->path, SQLITE_OPEN_READONLY, &f->st, &err), 0);
    assert_int_equal(store_event_count(f->st, "r"), 1);
    assert_int_equal(store_event_append(f->st, "r", "{\"a\":2}", 7), -EROFS);
    assert_non_null(strstr(store_last_error(f->st), "readonly"));
    assert_int_equal(store_flush(f->st), 0); /* the failed write left nothing pending */
    struct collected c = {0};
    assert_int_equal(store_events_load(f->st, "r", 0, 0, collect, &c), 0);
    assert_int_equal(c.n, 1);
}

static void test_readonly_flag_errors(void **state)
{
    struct fx *f = *state;
    char *err = NULL;
    struct store *st = NULL;
    char empty[192];
    snprintf(empty, sizeof(empty), "%s/empty.db", f->dir);
    write_file(empty, "", 0); /* a database without tables: the schema must be created */
    assert_true(store__sqlite_open(empty, SQLITE_OPEN_READONLY, &st, &err) < 0);
    assert_null(st);
    assert_non_null(strstr(err, "read-only and its schema must be created"));
    xfree(err);
    err = NULL;
    snprintf(empty, sizeof(empty), "%s/missing.db", f->dir);
    assert_true(store__sqlite_open(empty, SQLITE_OPEN_READONLY, &st, &err) < 0);
    assert_non_null(strstr(err, "unable to open database file"));
    xfree(err);
    err = NULL;

    /* every kind of write on a read-only handle fails cleanly; reads still work */
    create(f->st, "w", 1, NULL);
    store_close(f->st);
    f->st = NULL;
    assert_int_equal(store__sqlite_open(f->path, SQLITE_OPEN_READONLY, &f->st, &err), 0);
    json_t *j = info("w2", 1, NULL);
    assert_int_equal(store_session_create(f->st, j), -EROFS);
    json_decref(j);
    assert_int_equal(store_session_update(f->st, "w", NULL, 5), -EROFS);
    assert_int_equal(store_session_delete(f->st, "w"), -EROFS);
    assert_non_null(strstr(store_last_error(f->st), "readonly"));
    json_t *s = store_session_get(f->st, "w");
    assert_non_null(s);
    json_decref(s);
}

/* Real file permissions: chmod 0444 on the file (directories stay 0755, not writable by the
 * checker). Root ignores permissions, so as root the checks run in a child that switched to
 * uid/gid 65534 first. Returns a bit mask of failed checks. */
static int readonly_check(const char *path, bool has_schema)
{
    struct store *st = NULL;
    char *err = NULL;
    int rc = store_open(path, &st, &err);
    int bad = 0;
    if (rc == 0) { /* allowed only for a current schema: then writes must fail */
        if (!has_schema || store_event_append(st, "r", "{}", 2) != -EROFS ||
            strstr(store_last_error(st), "readonly") == NULL)
            bad = 1;
        store_close(st);
    } else if (err == NULL || strstr(err, "cannot open database") == NULL ||
               (!has_schema && strstr(err, "read-only") == NULL)) {
        bad = 2;
    }
    if (getenv("STORE_TEST_VERBOSE"))
        fprintf(stderr, "read-only '%s': rc %d, %s\n", path, rc, err ? err : "opened");
    xfree(err);
    return bad;
}

/* A database inside a directory the checker may not enter. */
static int locked_dir_check(const char *path)
{
    struct store *st = NULL;
    char *err = NULL;
    int rc = store_open(path, &st, &err);
    int bad = rc < 0 && err && strstr(err, "Permission denied") ? 0 : 1;
    if (getenv("STORE_TEST_VERBOSE"))
        fprintf(stderr, "locked '%s': rc %d, %s\n", path, rc, err ? err : "opened");
    store_close(st);
    xfree(err);
    return bad;
}

static int readonly_checks(const char *wal, const char *plain, const char *empty,
                           const char *locked)
{
    return readonly_check(wal, true) | readonly_check(plain, true) << 2 |
           readonly_check(empty, false) << 4 | locked_dir_check(locked) << 6;
}

static void test_readonly_chmod(void **state)
{
    struct fx *f = *state;
    create(f->st, "r", 1, NULL); /* a WAL database written by us */
    store_close(f->st);
    f->st = NULL;
    char plain[192], empty[192], sub[192];
    snprintf(plain, sizeof(plain), "%s/plain.db", f->dir); /* rollback journal, as from a tool */
    snprintf(empty, sizeof(empty), "%s/empty.db", f->dir);
    raw_exec(plain, "CREATE TABLE sessions (id TEXT PRIMARY KEY, createdAt INTEGER NOT NULL, "
                    "updatedAt INTEGER NOT NULL, workspace TEXT NOT NULL, metadata TEXT);"
                    "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, sessionId TEXT "
                    "NOT NULL, timestamp INTEGER NOT NULL, eventData TEXT NOT NULL);"
                    "PRAGMA user_version = 1;"
                    "INSERT INTO sessions VALUES ('r', 1, 1, '/w', NULL)");
    write_file(empty, "", 0);
    char locked[192];
    snprintf(locked, sizeof(locked), "%s/locked", f->dir);
    assert_int_equal(mkdir(locked, 0700), 0);
    if (geteuid() != 0)
        assert_int_equal(chmod(locked, 0), 0);
    snprintf(locked, sizeof(locked), "%s/locked/x.db", f->dir);
    assert_int_equal(chmod(f->path, 0444), 0);
    assert_int_equal(chmod(plain, 0444), 0);
    assert_int_equal(chmod(empty, 0444), 0);
    assert_int_equal(chmod(f->dir, 0755), 0);
    snprintf(sub, sizeof(sub), "%s/a", f->dir);
    assert_int_equal(chmod(sub, 0755), 0);
    snprintf(sub, sizeof(sub), "%s/a/b", f->dir);
    assert_int_equal(chmod(sub, 0755), 0);
    if (geteuid() != 0) {
        assert_int_equal(readonly_checks(f->path, plain, empty, locked), 0);
        return;
    }
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgid(65534) < 0 || setuid(65534) < 0)
            _exit(100);
        _exit(readonly_checks(f->path, plain, empty, locked));
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 100)
        skip(); /* cannot drop privileges here */
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* Disk full, simulated with max_page_count: SQLite reports SQLITE_FULL exactly as for ENOSPC. */
static void test_disk_full(void **state)
{
    struct fx *f = *state;
    create(f->st, "full", 1, NULL);
    assert_int_equal(store_flush(f->st), 0);
    sqlite3 *db = store__sqlite_db(f->st);
    assert_int_equal(sqlite3_exec(db, "PRAGMA max_page_count = 12", NULL, NULL, NULL), SQLITE_OK);
    char big[2001];
    memset(big, 'z', sizeof(big) - 1);
    big[0] = '"';
    big[sizeof(big) - 2] = '"';
    big[sizeof(big) - 1] = '\0';
    int rc = 0, n = 0;
    while (rc == 0 && n < 1000) {
        rc = store_event_append(f->st, "full", big, strlen(big));
        n++;
        if (rc == 0 && n % 5 == 0)
            rc = store_flush(f->st);
    }
    assert_int_equal(rc, -ENOSPC);
    assert_non_null(strstr(store_last_error(f->st), "full"));
    if (getenv("STORE_TEST_VERBOSE"))
        fprintf(stderr, "disk full after %d appends: %s\n", n, store_last_error(f->st));
    /* The store stays usable: reads work, and writes work again once there is room. */
    assert_int_equal(store_flush(f->st), 0);
    int64_t kept = store_event_count(f->st, "full");
    assert_true(kept > 0 && kept < n);
    assert_int_equal(sqlite3_exec(db, "PRAGMA max_page_count = 100000", NULL, NULL, NULL),
                     SQLITE_OK);
    append(f->st, "full", big);
    assert_int_equal(store_event_count(f->st, "full"), kept + 1);
}

/* Garbage over the middle of a closed database: the damage shows on read as an error. */
static void test_corrupt(void **state)
{
    struct fx *f = *state;
    create(f->st, "c", 1, NULL);
    char ev[256];
    for (int i = 0; i < 2000; i++) {
        snprintf(ev, sizeof(ev), "{\"n\":%d,\"pad\":\"%0200d\"}", i, i);
        append(f->st, "c", ev);
    }
    store_close(f->st); /* checkpoints the WAL into the file */
    f->st = NULL;
    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_true(sb.st_size > 64 * 4096);
    char junk[4096 * 8];
    memset(junk, 0xA5, sizeof(junk));
    int fd = open(f->path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, junk, sizeof(junk), sb.st_size / 2 / 4096 * 4096),
                     (ssize_t)sizeof(junk));
    close(fd);
    char *err = NULL;
    int rc = store_open(f->path, &f->st, &err);
    if (getenv("STORE_TEST_VERBOSE"))
        fprintf(stderr, "corrupt: open rc %d %s\n", rc, err ? err : "");
    if (rc < 0) { /* also acceptable, as long as it says why */
        assert_non_null(strstr(err, "cannot open database"));
        xfree(err);
        return;
    }
    struct collected c = {0};
    rc = store_events_load(f->st, "c", 0, 0, collect, &c);
    assert_true(rc < 0);
    assert_non_null(strstr(store_last_error(f->st), "malformed"));
    if (getenv("STORE_TEST_VERBOSE"))
        fprintf(stderr, "corrupt: load rc %d after %lld events: %s\n", rc, (long long)c.n,
                store_last_error(f->st));
}

static double since(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* STORE_BENCH=1: 100k appends with one flush per 100 (the loop flushes once per iteration;
 * STORE_BENCH_EVERY=n changes the 100), a full load and a load of the last 10. */
static void test_bench(void **state)
{
    struct fx *f = *state;
    if (getenv("STORE_BENCH") == NULL)
        skip();
    const char *every_s = getenv("STORE_BENCH_EVERY");
    int every = every_s ? (int)strtol(every_s, NULL, 10) : 100;
    if (every < 1)
        every = 1;
    create(f->st, "bench", 1, NULL);
    const char *ev = "{\"id\":\"0a1b2c3d\",\"type\":\"assistant_message\",\"timestamp\":"
                     "1754000000000,\"content\":\"some text of a typical small message\","
                     "\"messageId\":\"msg_123\"}";
    size_t len = strlen(ev);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 1; i <= 100000; i++) {
        assert_int_equal(store_event_append(f->st, "bench", ev, len), 0);
        if (i % every == 0)
            assert_int_equal(store_flush(f->st), 0);
    }
    assert_int_equal(store_flush(f->st), 0);
    double s = since(&t0);
    print_message("%s: 100000 appends of %zu bytes, flush per %d: %.3f s, %.2f us/append\n",
                  store_kind(f->st), len, every, s, s * 1e6 / 100000);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    struct collected c = {0};
    assert_int_equal(store_events_load(f->st, "bench", 0, 0, collect, &c), 0);
    print_message("%s: load of %lld events: %.3f s\n", store_kind(f->st), (long long)c.n,
                  since(&t0));
    clock_gettime(CLOCK_MONOTONIC, &t0);
    c = (struct collected){0};
    assert_int_equal(store_events_load(f->st, "bench", 99990, 0, collect, &c), 0);
    assert_int_equal(c.n, 10);
    print_message("%s: load after 99990 (OFFSET): %.3f ms\n", store_kind(f->st), since(&t0) * 1e3);
}

#define BOTH(t)                                                                                    \
    cmocka_unit_test_prestate_setup_teardown(t, setup, teardown, &fx_mem),                         \
        cmocka_unit_test_prestate_setup_teardown(t, setup, teardown, &fx_sql)
#define SQL(t) cmocka_unit_test_prestate_setup_teardown(t, setup, teardown, &fx_sql)

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    const struct CMUnitTest tests[] = {
        BOTH(test_sessions),      BOTH(test_list_ties),
        BOTH(test_events),        BOTH(test_events_10k),
        BOTH(test_invalid),       BOTH(test_reentrant_load),
        SQL(test_persistence),    SQL(test_batching),
        SQL(test_legacy_v1),      SQL(test_legacy_v2),
        SQL(test_original_final), SQL(test_open_errors),
        SQL(test_readonly_flag),  SQL(test_readonly_flag_errors),
        SQL(test_readonly_chmod), SQL(test_disk_full),
        SQL(test_corrupt),        BOTH(test_bench),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
