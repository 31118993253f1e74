/* SPDX-License-Identifier: MIT */
/* query.c -- running queries for HTTP clients: the non-streaming answer, the POST SSE stream (an
 * "id: n" block before each data frame, so that the original web UI, which parses every frame as
 * JSON after "data: ", keeps working), the one-shot routes, and the resumable GET stream. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "api_int.h"
#include "sse.h"

#define SSE_HEADERS "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n"
#define BUSY_QUEUE_MSG "Too many concurrent runs, try again later"

struct query_ctx {
    struct http_req *req;
    struct agent_session *s;
    struct agent_sub sub;
    enum api_flavor flavor;
    bool standard_sse;  /* GET stream: "id:" and "data:" in one frame */
    int64_t replayed;   /* GET stream: stored events up to this id were sent by the replay */
    bool replaying;     /* GET stream: still replaying; live events are fetched by the replay */
    char *oneshot_id;   /* one-shot: answer carries the session id */
    struct buf frame;   /* scratch for one SSE frame */
};

static struct query_ctx *query_ctx_new(struct http_req *req, struct agent_session *s,
                                       enum api_flavor flavor)
{
    struct query_ctx *q = xcalloc(1, sizeof(*q));
    q->req = req;
    q->s = s;
    q->flavor = flavor;
    buf_init(&q->frame, (size_t)-1);
    return q;
}

static void query_ctx_free(struct query_ctx *q)
{
    buf_release(&q->frame);
    xfree(q->oneshot_id);
    xfree(q);
}

static void respond_queue_full(struct http_req *req)
{
    json_t *j = json_pack("{s:s}", "error", BUSY_QUEUE_MSG);
    api__respond_json_headers(req, 429, j, "Retry-After: 1\r\n");
    json_decref(j);
}

/* ---- non-streaming ---- */

static void on_query_done(void *data, enum agent_run_status status, const json_t *final_msg,
                          const char *errmsg)
{
    struct query_ctx *q = data;
    if (status == AGENT_RUN_ERROR && q->flavor == API_SEED) {
        api__error2(q->req, 500, "Failed to process query", errmsg);
    } else if (status == AGENT_RUN_ERROR && q->oneshot_id) {
        json_t *j = json_pack("{s:s, s:b, s:{s:s, s:s}}", "sessionId", q->oneshot_id, "success", 0,
                              "error", "code", "AGENT_EXECUTION_ERROR", "message",
                              errmsg ? errmsg : "Unknown agent execution error");
        http_respond_json(q->req, 500, j);
        json_decref(j);
    } else if (status == AGENT_RUN_ERROR) {
        api__exec_error(q->req, errmsg);
    } else {
        json_t *j = json_pack("{s:s*, s:O?}", "sessionId", q->oneshot_id, "result", final_msg);
        http_respond_json(q->req, 200, j);
        json_decref(j);
    }
    query_ctx_free(q);
}

static void on_query_close(struct http_req *req, void *data)
{
    struct query_ctx *q = data;
    agent_run_forget(q->s, q);
    query_ctx_free(q);
}

/* budget.maxTokensPerSession is used up: no new run. */
static void respond_over_budget(struct http_req *req)
{
    api__error2(req, 429, "Session budget exceeded",
                "This session has used its budget.maxTokensPerSession; start a new session.");
}

void api__run_query(struct http_req *req, struct agent_session *s, const json_t *query,
                    enum api_flavor flavor)
{
    if (agent_run_check(s) == -EDQUOT) {
        respond_over_budget(req);
        return;
    }
    if (agent_session_running(s)) {
        if (flavor == API_SEED)
            api__error2(req, 500, "Failed to process query", AGENT_BUSY_MSG);
        else
            api__exec_error(req, AGENT_BUSY_MSG);
        return;
    }
    struct query_ctx *q = query_ctx_new(req, s, flavor);
    http_req_on_close(req, on_query_close, q);
    int rc = agent_run_start(s, query, false, on_query_done, q); /* may answer at once */
    if (rc == -EAGAIN) {
        http_req_on_close(req, NULL, NULL);
        query_ctx_free(q);
        respond_queue_full(req);
    }
}

/* ---- streams ---- */

static void stream_finish(struct query_ctx *q, bool ok)
{
    agent_unsubscribe(q->s, &q->sub);
    if (ok)
        http_stream_end(q->req);
    else
        http_stream_abort(q->req);
    query_ctx_free(q);
}

static int write_frame(struct query_ctx *q, struct agent_event *ev)
{
    buf_reset(&q->frame);
    if (q->standard_sse)
        sse_frame_joined(&q->frame, ev->seq, ev->json, ev->len);
    else
        sse_frame(&q->frame, ev->seq, ev->json, ev->len);
    return http_stream_write(q->req, q->frame.data, q->frame.len);
}

static void on_stream_event(struct agent_sub *sub, struct agent_event *ev)
{
    struct query_ctx *q = sub->data;
    if (q->replaying || (ev->persisted && ev->seq <= q->replayed))
        return; /* sent, or to be sent, by the replay (deltas meanwhile are not stored) */
    if (write_frame(q, ev) < 0) {
        log_info("conn %llu sess %s: dropping a stream that fell behind",
                 (unsigned long long)http_req_conn_id(q->req), agent_session_id(q->s));
        stream_finish(q, false);
        return;
    }
    if (ev->ends_stream)
        stream_finish(q, true);
}

static void on_stream_gone(struct agent_sub *sub)
{
    stream_finish(sub->data, true); /* the session was deleted */
}

static void on_stream_close(struct http_req *req, void *data)
{
    struct query_ctx *q = data;
    agent_unsubscribe(q->s, &q->sub); /* the run goes on without this client */
    query_ctx_free(q);
}

static struct query_ctx *stream_open(struct http_req *req, struct agent_session *s,
                                     enum api_flavor flavor)
{
    struct query_ctx *q = query_ctx_new(req, s, flavor);
    q->sub.on_event = on_stream_event;
    q->sub.on_gone = on_stream_gone;
    q->sub.data = q;
    http_stream_start(req, 200, "text/event-stream", SSE_HEADERS);
    http_req_on_close(req, on_stream_close, q);
    agent_subscribe(s, &q->sub);
    return q;
}

/* §3.4: an agent that cannot start answers with one system error event (not persisted). */
static void stream_start_error(struct http_req *req, const char *msg)
{
    http_stream_start(req, 200, "text/event-stream", SSE_HEADERS);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:I}", "type", "system", "level", "error", "message",
                           msg, "timestamp", (json_int_t)now_ms());
    size_t len;
    char *text = json_dump_compact(ev, &len);
    struct buf b;
    buf_init(&b, (size_t)-1);
    buf_append_lit(&b, "data: ");
    buf_append(&b, text, len);
    buf_append_lit(&b, "\n\n");
    http_stream_write(req, b.data, b.len);
    http_stream_end(req);
    buf_release(&b);
    xfree(text);
    json_decref(ev);
}

void api__run_stream(struct http_req *req, struct agent_session *s, const json_t *query,
                     enum api_flavor flavor)
{
    int rc = agent_run_check(s);
    if (rc == -EBUSY && flavor == API_SEED) {
        api__error2(req, 500, "Failed to process streaming query", AGENT_BUSY_MSG);
    } else if (rc == -EBUSY) {
        stream_start_error(req, AGENT_BUSY_MSG);
    } else if (rc == -EAGAIN) {
        respond_queue_full(req);
    } else if (rc == -EDQUOT) {
        respond_over_budget(req);
    } else {
        stream_open(req, s, flavor);
        agent_run_start(s, query, true, NULL, NULL); /* cannot fail after the check */
    }
}

/* ---- one-shot (F17, F18) ---- */

void api__oneshot(struct http_req *req, const json_t *body, bool stream)
{
    const json_t *query = json_object_get(body, "query");
    if (!api__truthy(query)) {
        http_respond_error(req, 400, "Query is required");
        return;
    }
    json_t *meta = json_object();
    const char *name = json_get_str(body, "sessionName");
    const json_t *tags = json_object_get(body, "sessionTags");
    if (name || json_is_array(tags)) {
        json_object_set_new(meta, "version", json_integer(1));
        if (name)
            json_object_set_new(meta, "name", json_string(name));
        if (json_is_array(tags))
            json_object_set(meta, "tags", (json_t *)tags);
    }
    if (json_dumpb(meta, NULL, 0, JSON_COMPACT) > 64 * 1024) { /* as v1.c's metadata cap */
        json_decref(meta);
        http_respond_error(req, 413, "Session metadata over 64 KiB");
        return;
    }
    char *err = NULL;
    struct agent_session *s = agent_session_create(meta, &err);
    json_decref(meta);
    if (s == NULL) {
        api__exec_error(req, err);
        xfree(err);
        return;
    }
    if (!stream) {
        int rc = agent_run_check(s);
        if (rc == -EAGAIN) {
            respond_queue_full(req);
            return;
        }
        struct query_ctx *q = query_ctx_new(req, s, API_V1);
        q->oneshot_id = xstrdup(agent_session_id(s));
        http_req_on_close(req, on_query_close, q);
        agent_run_start(s, query, false, on_query_done, q);
        return;
    }
    if (agent_run_check(s) == -EAGAIN) {
        respond_queue_full(req);
        return;
    }
    struct query_ctx *q = stream_open(req, s, API_V1);
    /* The synthetic first frame of F18: no id, not stored. */
    json_t *created = json_pack("{s:s, s:s, s:I}", "type", "session_created", "sessionId",
                                agent_session_id(s), "timestamp", (json_int_t)now_ms());
    size_t len;
    char *text = json_dump_compact(created, &len);
    buf_append_lit(&q->frame, "data: ");
    buf_append(&q->frame, text, len);
    buf_append_lit(&q->frame, "\n\n");
    http_stream_write(req, q->frame.data, q->frame.len);
    xfree(text);
    json_decref(created);
    agent_run_start(s, query, true, NULL, NULL);
}

/* ---- the resumable stream: GET /api/v1/sessions/events/stream ---- */

struct replay_state {
    struct query_ctx *q;
    bool failed;
    bool full; /* the connection's queue passed REPLAY_HIGH_WATER: the rest waits for a drain */
};

#define REPLAY_BATCH 256
#define REPLAY_HIGH_WATER (1 << 20)

static void on_replay_event(void *data, struct agent_event *ev)
{
    struct replay_state *rs = data;
    if (rs->failed || rs->full)
        return;
    if (write_frame(rs->q, ev) < 0)
        rs->failed = true;
    rs->q->replayed = ev->seq;
    rs->full = rs->q->standard_sse && rs->q->replaying &&
               http_stream_pending(rs->q->req) > REPLAY_HIGH_WATER;
}

/* The resume position: ?after=N, else Last-Event-ID. Digits only (a count of events); past
 * INT64_MAX it is clamped, since no log is that long. Returns -1 for anything else (issue 11:
 * 2^63-1 used to overflow the memory store's index). */
static int64_t parse_after(struct http_req *req)
{
    char *v = http_req_query_param(req, "after");
    const char *h = http_req_header(req, "Last-Event-ID");
    const char *p = v ? v : h;
    int64_t after = 0;
    for (size_t i = 0; p && p[i]; i++) {
        if (p[i] < '0' || p[i] > '9') {
            after = -1;
            break;
        }
        int d = p[i] - '0';
        after = after > (INT64_MAX - d) / 10 ? INT64_MAX : after * 10 + d;
    }
    xfree(v);
    return after;
}

/* The replay goes out in batches: a long session log is not written all at once (the
 * connection's queue is bounded); once REPLAY_HIGH_WATER bytes wait, the rest waits until the
 * client has taken them. */
static void replay_more(struct http_req *req, void *data)
{
    struct query_ctx *q = data;
    for (;;) {
        struct replay_state rs = {.q = q};
        int n = agent_replay_n(q->s, q->replayed, REPLAY_BATCH, on_replay_event, &rs);
        if (n < 0 || rs.failed) {
            stream_finish(q, !rs.failed);
            return;
        }
        if (n == 0)
            break;
        if (rs.full) {
            http_stream_on_drain(q->req, replay_more, q);
            return;
        }
    }
    /* Caught up: from here on, live events (stored ones after q->replayed, and deltas). */
    http_stream_on_drain(q->req, NULL, NULL);
    q->replaying = false;
    if (!agent_session_running(q->s))
        stream_finish(q, true); /* nothing live to follow */
}

void api__events_stream(struct http_req *req, struct agent_session *s)
{
    int64_t after = parse_after(req);
    if (after < 0) {
        http_respond_error(req, 400, "after and Last-Event-ID must be a non-negative integer");
        return;
    }
    struct query_ctx *q = stream_open(req, s, API_V1);
    q->standard_sse = true;
    q->replayed = after;
    q->replaying = true;
    replay_more(req, q);
}
