/* SPDX-License-Identifier: MIT */
/* routes.c -- request validation in the original's order and wording (anchor-api.md §1.4), the
 * non-streaming query answer, and the SSE stream of a query (§1.5, with an id block per event). */
#include <errno.h>
#include <string.h>

#include "../agent/agent.h"
#include "../core/buf.h"
#include "../core/log.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "api.h"
#include "router.h"
#include "sse.h"

enum route_id {
    R_HEALTH,
    R_CREATE,
    R_QUERY,
    R_QUERY_ID,
    R_STREAM,
    R_ABORT,
    R_ABORT_ID,
};

static const struct route routes[] = {
    {"GET", "/api/v1/health", R_HEALTH},
    {"GET", "/api/health", R_HEALTH},
    {"POST", "/api/sessions/create", R_CREATE},
    {"POST", "/api/sessions/query", R_QUERY},
    {"POST", "/api/sessions/query/stream", R_STREAM},
    {"POST", "/api/sessions/abort", R_ABORT},
    {"POST", "/api/sessions/:sessionId/query", R_QUERY_ID},
    {"POST", "/api/sessions/:sessionId/abort", R_ABORT_ID},
};

/* ---- helpers ---- */

static void respond_error2(struct http_req *req, int status, const char *error, const char *message)
{
    json_t *j = json_pack("{s:s}", "error", error);
    if (message)
        json_object_set_new(j, "message", json_string_lossy(message, strlen(message)));
    http_respond_json(req, status, j);
    json_decref(j);
}

/* JS truthiness of the query value: missing, null, false, "" and 0 are rejected. */
static bool truthy(const json_t *j)
{
    if (j == NULL || json_is_null(j) || json_is_false(j))
        return false;
    if (json_is_string(j))
        return json_string_length(j) > 0;
    if (json_is_number(j))
        return json_number_value(j) != 0;
    return true;
}

/* ---- queries ---- */

struct query_ctx {
    struct http_req *req;
    struct agent_session *s;
    struct agent_sub sub;
    struct buf frame; /* scratch for one SSE frame */
};

static void query_ctx_free(struct query_ctx *q)
{
    buf_release(&q->frame);
    xfree(q);
}

static void on_query_done(void *data, enum agent_run_status status, const json_t *final_msg,
                          const char *errmsg)
{
    struct query_ctx *q = data;
    if (status == AGENT_RUN_ERROR) {
        respond_error2(q->req, 500, "Failed to process query", errmsg);
    } else {
        json_t *j = json_pack("{s:O?}", "result", final_msg);
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

static void run_query(struct http_req *req, struct agent_session *s, const json_t *query)
{
    if (agent_session_running(s)) {
        respond_error2(req, 500, "Failed to process query", AGENT_BUSY_MSG);
        return;
    }
    struct query_ctx *q = xcalloc(1, sizeof(*q));
    q->req = req;
    q->s = s;
    http_req_on_close(req, on_query_close, q);
    agent_run_start(s, query, false, on_query_done, q); /* may answer before it returns */
}

/* SSE: an "id: n" block of its own, then the data frame (see README, "SSE framing"). */
static void on_stream_event(struct agent_sub *sub, struct agent_event *ev)
{
    struct query_ctx *q = sub->data;
    buf_reset(&q->frame);
    sse_frame(&q->frame, ev->seq, ev->json, ev->len);
    if (http_stream_write(q->req, q->frame.data, q->frame.len) < 0) {
        log_info("conn %llu sess %s: dropping a stream that fell behind",
                 (unsigned long long)http_req_conn_id(q->req), agent_session_id(q->s));
        agent_unsubscribe(q->s, &q->sub);
        http_stream_abort(q->req);
        query_ctx_free(q);
        return;
    }
    if (ev->ends_stream) {
        agent_unsubscribe(q->s, &q->sub);
        http_stream_end(q->req);
        query_ctx_free(q);
    }
}

static void on_stream_close(struct http_req *req, void *data)
{
    struct query_ctx *q = data;
    agent_unsubscribe(q->s, &q->sub); /* the run goes on without this client */
    query_ctx_free(q);
}

static void run_stream(struct http_req *req, struct agent_session *s, const json_t *query)
{
    if (agent_session_running(s)) {
        respond_error2(req, 500, "Failed to process streaming query", AGENT_BUSY_MSG);
        return;
    }
    struct query_ctx *q = xcalloc(1, sizeof(*q));
    q->req = req;
    q->s = s;
    buf_init(&q->frame, (size_t)-1);
    q->sub.on_event = on_stream_event;
    q->sub.data = q;
    http_stream_start(req, 200, "text/event-stream",
                      "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
    http_req_on_close(req, on_stream_close, q);
    agent_subscribe(s, &q->sub);
    agent_run_start(s, query, true, NULL, NULL);
}

/* ---- handlers ---- */

static void handle_create(struct http_req *req)
{
    char *err = NULL;
    struct agent_session *s = agent_session_create(&err);
    if (s == NULL) {
        log_error("cannot create session: %s", err);
        respond_error2(req, 500, "Failed to create session", err);
        xfree(err);
        return;
    }
    json_t *j = json_pack("{s:s}", "sessionId", agent_session_id(s));
    http_respond_json(req, 201, j);
    json_decref(j);
}

/* E3/E4/E6 validation order: sessionId, then query, then the session (§1.4). */
static struct agent_session *lookup(struct http_req *req, const json_t *body, const char *id,
                                    bool need_query)
{
    if (id == NULL || *id == '\0') {
        http_respond_error(req, 400, "Session ID is required");
        return NULL;
    }
    if (need_query && !truthy(json_object_get(body, "query"))) {
        http_respond_error(req, 400, "Query is required");
        return NULL;
    }
    struct agent_session *s = agent_session_find(id);
    if (s == NULL)
        http_respond_error(req, 404, "Session not found");
    return s;
}

static void handle_abort(struct http_req *req, struct agent_session *s)
{
    json_t *j = json_pack("{s:b}", "success", agent_abort(s));
    http_respond_json(req, 200, j);
    json_decref(j);
}

static void dispatch(struct http_req *req, const struct route_match *m, const json_t *body)
{
    const char *body_id = json_get_str(body, "sessionId");
    struct agent_session *s;
    switch (m->id) {
    case R_HEALTH:
        http_respond(req, 200, "application/json", "{\"status\":\"ok\"}", 15);
        break;
    case R_CREATE:
        handle_create(req);
        break;
    case R_QUERY:
    case R_STREAM:
        s = lookup(req, body, body_id, true);
        if (s && m->id == R_QUERY)
            run_query(req, s, json_object_get(body, "query"));
        else if (s)
            run_stream(req, s, json_object_get(body, "query"));
        break;
    case R_QUERY_ID:
        s = agent_session_find(route_param(m, "sessionId"));
        if (s == NULL)
            http_respond_error(req, 404, "Session not found");
        else if (!truthy(json_object_get(body, "query")))
            /* The original does not validate here: the agent throws and this is its answer. */
            respond_error2(req, 500, "Failed to process query", "Query is required");
        else
            run_query(req, s, json_object_get(body, "query"));
        break;
    case R_ABORT:
        s = lookup(req, body, body_id, false);
        if (s)
            handle_abort(req, s);
        break;
    case R_ABORT_ID:
        s = agent_session_find(route_param(m, "sessionId"));
        if (s == NULL)
            http_respond_error(req, 404, "Session not found");
        else
            handle_abort(req, s);
        break;
    }
}

void api_handle(struct http_req *req, void *data)
{
    const char *method = http_req_method(req);
    const char *path = http_req_path(req);
    struct route_match m;
    if (!router_match(routes, sizeof(routes) / sizeof(routes[0]), method, path, &m)) {
        char *msg = xasprintf("Cannot %s %s", method, path);
        http_respond_error(req, 404, msg);
        xfree(msg);
        return;
    }
    size_t len;
    const char *text = http_req_body(req, &len);
    json_t *body = NULL;
    if (len > 0 && strcmp(method, "GET") != 0) {
        json_error_t je;
        body = json_loadb(text, len, JSON_DECODE_ANY, &je);
        if (body == NULL) {
            log_info("conn %llu: invalid JSON body: %s", (unsigned long long)http_req_conn_id(req),
                     je.text);
            http_respond_error(req, 400, "Invalid JSON body");
            return;
        }
    }
    if (!json_is_object(body)) {
        json_decref(body);
        body = json_object();
    }
    dispatch(req, &m, body);
    json_decref(body);
}
