/* SPDX-License-Identifier: MIT */
/* routes.c -- the route table, request body parsing, the session-restore rule of the final API
 * (anchor-api.md §3.2.1) and the early routes' validation in their order and wording (§1.4). */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "../core/log.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "../obs/obs.h"
#include "../sio/sio.h"
#include "../ui/ui.h"
#include "api_int.h"
#include "router.h"

const struct api_options *api__opts;

enum route_id {
    R_HEALTH, R_CREATE, R_QUERY, R_QUERY_ID, R_STREAM, R_ABORT, R_ABORT_ID,
    /* final API; the ones from V_SESSIONS on go through the restore rule */
    V_LIST, V_CREATE, V_ONESHOT, V_ONESHOT_STREAM, V_VERSION, V_OPTIONS, V_MODELS,
    V_RT_GET, V_RT_POST, V_SHARE_CONFIG, V_CSRF, V_LATEST, V_UPLOAD,
    V_SESSIONS, /* marker */
    V_DETAILS, V_EVENTS, V_EVENTS_STREAM, V_STATUS, V_UPDATE, V_DELETE, V_SUMMARY,
    V_SHARE, V_FILES, V_SEARCH, V_VALIDATE, V_QUERY, V_STREAM, V_ABORT, V_MODEL, V_APPROVAL,
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
    {"GET", "/api/v1/sessions", V_LIST},
    {"POST", "/api/v1/sessions/create", V_CREATE},
    {"POST", "/api/v1/oneshot/query", V_ONESHOT},
    {"POST", "/api/v1/oneshot/query/stream", V_ONESHOT_STREAM},
    {"GET", "/api/v1/version", V_VERSION},
    {"GET", "/api/v1/agent/options", V_OPTIONS},
    {"GET", "/api/v1/models", V_MODELS},
    {"GET", "/api/v1/runtime-settings", V_RT_GET},
    {"POST", "/api/v1/runtime-settings", V_RT_POST},
    {"GET", "/api/v1/share/config", V_SHARE_CONFIG},
    {"GET", "/api/v1/csrf-token", V_CSRF},
    {"POST", "/api/v1/files/upload", V_UPLOAD},
    {"GET", "/api/v1/sessions/details", V_DETAILS},
    {"GET", "/api/v1/sessions/events", V_EVENTS},
    {"GET", "/api/v1/sessions/events/latest", V_LATEST},
    {"GET", "/api/v1/sessions/events/stream", V_EVENTS_STREAM},
    {"GET", "/api/v1/sessions/status", V_STATUS},
    {"POST", "/api/v1/sessions/update", V_UPDATE},
    {"POST", "/api/v1/sessions/delete", V_DELETE},
    {"POST", "/api/v1/sessions/generate-summary", V_SUMMARY},
    {"POST", "/api/v1/sessions/share", V_SHARE},
    {"GET", "/api/v1/sessions/workspace/files", V_FILES},
    {"GET", "/api/v1/sessions/workspace/search", V_SEARCH},
    {"POST", "/api/v1/sessions/workspace/validate", V_VALIDATE},
    {"POST", "/api/v1/sessions/query", V_QUERY},
    {"POST", "/api/v1/sessions/query/stream", V_STREAM},
    {"POST", "/api/v1/sessions/abort", V_ABORT},
    {"POST", "/api/v1/sessions/model", V_MODEL},
    {"POST", "/api/v1/sessions/tool-approval", V_APPROVAL},
};

void api_init(const struct api_options *opts)
{
    api__opts = opts;
    ui_init(opts->config);
}

/* ---- helpers ---- */

void api__error2(struct http_req *req, int status, const char *error, const char *message)
{
    json_t *j = json_pack("{s:s}", "error", error);
    if (message)
        json_object_set_new(j, "message", json_string_lossy(message, strlen(message)));
    bool given;
    const char *rid = http_req_id(req, &given);
    if (given) /* the caller's correlation id, as http_respond_error adds it */
        json_object_set_new(j, "requestId", json_string(rid));
    obs_http_error(status, error);
    http_respond_json(req, status, j);
    json_decref(j);
}

void api__exec_error(struct http_req *req, const char *message)
{
    const char *m = message ? message : "Unknown agent execution error";
    json_t *j = json_pack("{s:b, s:{s:s, s:o}}", "success", 0, "error", "code",
                          "AGENT_EXECUTION_ERROR", "message", json_string_lossy(m, strlen(m)));
    http_respond_json(req, 500, j);
    json_decref(j);
}

void api__respond_json_headers(struct http_req *req, int status, const json_t *j,
                               const char *headers)
{
    size_t len;
    char *text = json_dump_compact(j, &len);
    http_respond_headers(req, status, "application/json", headers, text, len);
    xfree(text);
}

bool api__truthy(const json_t *j)
{
    if (j == NULL || json_is_null(j) || json_is_false(j))
        return false;
    if (json_is_string(j))
        return json_string_length(j) > 0;
    if (json_is_number(j))
        return json_number_value(j) != 0;
    return true;
}

/* ---- the early routes (§1.4) ---- */

static void handle_create(struct http_req *req)
{
    char *err = NULL;
    struct agent_session *s = agent_session_create(NULL, &err);
    if (s == NULL) {
        log_error("cannot create session: %s", err);
        api__error2(req, 500, "Failed to create session", err);
        xfree(err);
        return;
    }
    json_t *j = json_pack("{s:s}", "sessionId", agent_session_id(s));
    http_respond_json(req, 201, j);
    json_decref(j);
}

/* E3/E4/E6 validation order: sessionId, then query, then the session. */
static struct agent_session *lookup(struct http_req *req, const json_t *body, bool need_query)
{
    const char *id = json_get_str(body, "sessionId");
    if (id == NULL || *id == '\0') {
        http_respond_error(req, 400, "Session ID is required");
        return NULL;
    }
    if (need_query && !api__truthy(json_object_get(body, "query"))) {
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

static void dispatch_seed(struct http_req *req, const struct route_match *m, const json_t *body)
{
    struct agent_session *s;
    const json_t *query = json_object_get(body, "query");
    switch (m->id) {
    case R_CREATE:
        handle_create(req);
        break;
    case R_QUERY:
    case R_STREAM:
        s = lookup(req, body, true);
        if (s && m->id == R_QUERY)
            api__run_query(req, s, query, API_SEED);
        else if (s)
            api__run_stream(req, s, query, API_SEED);
        break;
    case R_QUERY_ID:
        s = agent_session_find(route_param(m, "sessionId"));
        if (s == NULL)
            http_respond_error(req, 404, "Session not found");
        else if (!api__truthy(query))
            /* The original does not validate here: the agent throws and this is its answer. */
            api__error2(req, 500, "Failed to process query", "Query is required");
        else
            api__run_query(req, s, query, API_SEED);
        break;
    case R_ABORT:
        s = lookup(req, body, false);
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

/* ---- the final API (§3.3) ---- */

static void dispatch_global(struct http_req *req, int id, const json_t *body)
{
    switch (id) {
    case V_LIST: api__sessions_list(req); break;
    case V_CREATE:
        if (!api__exclusive_busy(req))
            api__session_create_v1(req, body);
        break;
    case V_ONESHOT:
    case V_ONESHOT_STREAM:
        if (!api__exclusive_busy(req))
            api__oneshot(req, body, id == V_ONESHOT_STREAM);
        break;
    case V_VERSION: api__version(req); break;
    case V_OPTIONS: api__agent_options(req); break;
    case V_MODELS: api__models(req); break;
    case V_RT_GET: api__runtime_settings_get(req); break;
    case V_RT_POST: api__runtime_settings_post(req, body); break;
    case V_CSRF: api__csrf_token(req); break;
    case V_SHARE_CONFIG: api__share_config(req); break;
    }
}

static void dispatch_session(struct http_req *req, int id, struct agent_session *s,
                             const json_t *body)
{
    const json_t *query = json_object_get(body, "query");
    switch (id) {
    case V_DETAILS: api__session_details(req, s); break;
    case V_EVENTS: api__session_events(req, s); break;
    case V_LATEST: api__events_latest(req); break;
    case V_EVENTS_STREAM: api__events_stream(req, s); break;
    case V_STATUS: api__session_status(req, s); break;
    case V_UPDATE: api__session_update(req, s, body); break;
    case V_DELETE: api__session_delete(req, s); break;
    case V_SUMMARY: api__generate_summary(req, s, body); break;
    case V_SHARE: api__share(req, s); break;
    case V_FILES: api__workspace_files(req, s); break;
    case V_SEARCH: api__workspace_search(req, s); break;
    case V_VALIDATE: api__workspace_validate(req, s, body); break;
    case V_QUERY:
    case V_STREAM:
        if (!api__truthy(query))
            http_respond_error(req, 400, "Query is required");
        else if (id == V_QUERY)
            api__run_query(req, s, query, API_V1);
        else
            api__run_stream(req, s, query, API_V1);
        break;
    case V_ABORT: handle_abort(req, s); break;
    case V_MODEL: api__session_model(req, s, body); break;
    case V_APPROVAL: api__tool_approval(req, s, body); break;
    }
}

/* §3.2.1: the id comes from the query string, else the body; the session is loaded from
 * storage when it is not in memory. */
static void restore_and_dispatch(struct http_req *req, int id, const json_t *body)
{
    char *qid = http_req_query_param(req, "sessionId");
    const char *sid = qid && *qid ? qid : json_get_str(body, "sessionId");
    if (sid == NULL || *sid == '\0') {
        http_respond_error(req, 400, "Session ID is required");
    } else {
        char *err = NULL;
        struct agent_session *s = agent_session_load(sid, &err);
        if (s)
            dispatch_session(req, id, s, body);
        else if (err)
            api__error2(req, 500, "Internal server error", err);
        else
            http_respond_error(req, 404, "Session not found");
        xfree(err);
    }
    xfree(qid);
}

/* Whether a request names a session (query string, or a JSON body with a sessionId). */
static bool session_given(struct http_req *req)
{
    char *q = http_req_query_param(req, "sessionId");
    bool given = q && *q;
    xfree(q);
    if (given)
        return true;
    size_t len;
    const char *text = http_req_body(req, &len);
    json_t *body = len ? json_loadb(text, len, 0, NULL) : NULL;
    const char *id = json_get_str(body, "sessionId");
    given = id && *id;
    json_decref(body);
    return given;
}

/* A JSON body must say so: a form or text/plain POST is what a cross-site page can send
 * without a preflight. */
static bool json_content_type(const char *ct)
{
    if (ct == NULL)
        return false;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, "application/json", 16) != 0)
        return false;
    ct += 16;
    while (*ct == ' ')
        ct++;
    return *ct == '\0' || *ct == ';';
}

bool api_stream_body(const struct http_req *req, void *data)
{
    return api__upload_route(req);
}

void api_handle(struct http_req *req, void *data)
{
    if (!api__access_front(req)) /* Host, Origin, preflight, CSRF */
        return;
    if (!ui_route_base(req)) /* server.basePath: strips it, or 404 outside it */
        return;
    if (api__metrics(req)) /* GET /metrics: its own token, or the gate below */
        return;
    bool authed;
    if (!api__access_auth(req, &authed)) /* the access token */
        return;
    if (sio_handle(req, authed))
        return;
    const char *method = http_req_method(req);
    const char *path = http_req_path(req);
    struct route_match m;
    if (!router_match(routes, sizeof(routes) / sizeof(routes[0]), method, path, &m)) {
        if (ui_serve(req)) /* the built-in web UI: GET/HEAD outside /api/ */
            return;
        if (strncmp(path, "/api/v1/sessions/", 17) == 0 && !session_given(req)) {
            /* §3.2.1: the restore rule runs before the router for the whole prefix. */
            http_respond_error(req, 400, "Session ID is required");
            return;
        }
        char *msg = xasprintf("Cannot %s %s", method, path);
        http_respond_error(req, 404, msg);
        xfree(msg);
        return;
    }
    http_req_set_route(req, m.pattern);
    if (m.id == V_UPLOAD) {
        /* multipart, streamed to disk: exempt from the JSON-only rule below (the gate above,
         * Host, Origin, CSRF and token, applied as to every route) */
        api__files_upload(req);
        return;
    }
    size_t len;
    const char *text = http_req_body(req, &len);
    json_t *body = NULL;
    if (len > 0 && strcmp(method, "GET") != 0) {
        if (!json_content_type(http_req_header(req, "content-type"))) {
            http_respond_error(req, 415, "Content-Type must be application/json");
            return;
        }
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
    if (m.id == R_HEALTH)
        http_respond(req, 200, "application/json", "{\"status\":\"ok\"}", 15);
    else if (m.id < V_LIST)
        dispatch_seed(req, &m, body);
    else if (m.id < V_SESSIONS && m.id != V_LATEST)
        dispatch_global(req, m.id, body);
    else
        restore_and_dispatch(req, m.id, body);
    json_decref(body);
}
