/* SPDX-License-Identifier: MIT */
/* v1.c -- the session routes of the final API (anchor-api.md §3.3 F1-F13, F19-F26) over the
 * store. The session-restore rule has already run: every handler taking a session gets a live
 * one. */
#include <errno.h>
#include <string.h>

#include "../core/log.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "../store/store.h"
#include "api_int.h"

#define SERVER_VERSION "0.3.0"
#ifndef TARS_BUILD_TIME_MS
#define TARS_BUILD_TIME_MS 0
#endif
#ifndef TARS_GIT_HASH
#define TARS_GIT_HASH "unknown"
#endif

static void respond_obj(struct http_req *req, int status, json_t *j /* stolen */)
{
    http_respond_json(req, status, j);
    json_decref(j);
}

/* The session's token usage (kept in metadata.usage at the end of every run) is shown at the
 * top of SessionInfo too. */
static json_t *with_usage(json_t *info)
{
    json_t *u = json_object_get(json_object_get(info, "metadata"), "usage");
    if (json_is_object(u))
        json_object_set(info, "usage", u);
    return info;
}

static json_t *session_info(struct agent_session *s)
{
    return with_usage(store_session_get(api__opts->store, agent_session_id(s)));
}

static int collect_event(void *data, int64_t pos, const char *json, size_t len)
{
    json_t *ev = json_loadb(json, len, 0, NULL);
    if (ev == NULL)
        ev = json_pack("{s:s, s:s, s:I}", "type", "system", "message",
                       "Failed to parse event data", "timestamp", (json_int_t)now_ms());
    json_array_append_new(data, ev);
    return 0;
}

static json_t *stored_events(const char *id)
{
    json_t *events = json_array();
    if (store_events_load(api__opts->store, id, 0, 0, collect_event, events) < 0) {
        json_decref(events);
        return NULL;
    }
    return events;
}

bool api__exclusive_busy(struct http_req *req)
{
    const char *running = api__opts->exclusive ? agent_running_session() : NULL;
    if (running == NULL)
        return false;
    respond_obj(req, 409,
                json_pack("{s:s, s:s}", "error",
                          "Server is in exclusive mode and another session is currently running",
                          "runningSessionId", running));
    return true;
}

/* F1 */
void api__sessions_list(struct http_req *req)
{
    json_t *list = store_session_list(api__opts->store);
    if (list == NULL) {
        api__error2(req, 500, "Failed to get sessions", store_last_error(api__opts->store));
        return;
    }
    size_t i;
    json_t *info;
    json_array_foreach(list, i, info)
        with_usage(info);
    respond_obj(req, 200, json_pack("{s:o}", "sessions", list));
}

static const json_t *runtime_schema(void);

/* agentOptions from a request may only choose the agent mode: anything else (mcpServers with a
 * command, tools, a model) would let a client reconfigure the server. Answers 400 and returns
 * false otherwise. */
static bool agent_options_ok(struct http_req *req, const json_t *ao)
{
    if (ao == NULL || json_is_null(ao))
        return true;
    json_t *rejected = json_array();
    const char *k;
    json_t *v;
    if (!json_is_object(ao))
        json_array_append_new(rejected, json_string("(not an object)"));
    else
        json_object_foreach((json_t *)ao, k, v) if (strcmp(k, "agentMode") != 0)
            json_array_append_new(rejected, json_string_lossy(k, strlen(k)));
    if (json_array_size(rejected) == 0) {
        json_decref(rejected);
        return true;
    }
    respond_obj(req, 400, json_pack("{s:s, s:[s], s:o}", "error", "Unsupported agentOptions",
                                    "allowed", "agentMode", "rejected", rejected));
    return false;
}

/* The settings the server's runtimeSettings schema declares; the rest is dropped. */
static json_t *declared_settings(const json_t *rs)
{
    const json_t *props = json_object_get(runtime_schema(), "properties");
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)rs, k, v) if (json_object_get(props, k))
        json_object_set(out, k, v);
    return out;
}

/* Metadata is merged on every update and sent with every session list: at most 64 KiB (compact
 * JSON) per session, 413 beyond (issue 11: 8 updates made the session list 9.25 MB). */
#define MAX_METADATA_BYTES (64 * 1024)
#define METADATA_TOO_LARGE "Session metadata over 64 KiB"

static bool metadata_fits(const json_t *meta)
{
    return json_dumpb(meta, NULL, 0, JSON_COMPACT) <= MAX_METADATA_BYTES;
}

/* F2 */
void api__session_create_v1(struct http_req *req, const json_t *body)
{
    const json_t *rt = json_object_get(body, "runtimeSettings");
    const json_t *ao = json_object_get(body, "agentOptions");
    if (!agent_options_ok(req, ao))
        return;
    json_t *extra = json_object();
    if (json_is_object(rt))
        json_object_set_new(extra, "runtimeSettings", declared_settings(rt));
    if (json_is_object(ao))
        json_object_set(extra, "agentOptions", (json_t *)ao);
    if (!metadata_fits(extra)) {
        json_decref(extra);
        http_respond_error(req, 413, METADATA_TOO_LARGE);
        return;
    }
    char *err = NULL;
    struct agent_session *s = agent_session_create(extra, &err);
    json_decref(extra);
    if (s == NULL) {
        log_error("cannot create session: %s", err);
        api__error2(req, 500, "Failed to create session", err);
        xfree(err);
        return;
    }
    json_t *info = session_info(s);
    respond_obj(req, 201, json_pack("{s:s, s:o*, s:[]}", "sessionId", agent_session_id(s),
                                    "session", info, "events"));
}

/* F3 */
void api__session_details(struct http_req *req, struct agent_session *s)
{
    json_t *info = session_info(s);
    if (info == NULL)
        http_respond_error(req, 404, "Session not found");
    else
        respond_obj(req, 200, json_pack("{s:o}", "session", info));
}

/* F4 */
void api__session_events(struct http_req *req, struct agent_session *s)
{
    json_t *events = stored_events(agent_session_id(s));
    if (events == NULL)
        api__error2(req, 500, "Failed to get session events", store_last_error(api__opts->store));
    else
        respond_obj(req, 200, json_pack("{s:o}", "events", events));
}

/* F5: the most recently updated session, whatever id was given. */
void api__events_latest(struct http_req *req)
{
    json_t *list = store_session_list(api__opts->store);
    json_t *info = json_array_get(list, 0);
    if (list == NULL) {
        api__error2(req, 500, "Failed to get latest session events",
                    store_last_error(api__opts->store));
    } else if (info == NULL) {
        http_respond_error(req, 404, "No sessions found");
    } else {
        with_usage(info);
        const char *id = json_get_str(info, "id");
        json_t *events = stored_events(id);
        respond_obj(req, 200, json_pack("{s:s, s:O, s:o?}", "sessionId", id, "sessionInfo", info,
                                        "events", events ? events : json_array()));
    }
    json_decref(list);
}

/* F6 */
void api__session_status(struct http_req *req, struct agent_session *s)
{
    bool running = agent_session_running(s);
    json_t *pending = agent_session_pending_approvals(s);
    bool waiting = running && json_array_size(pending) > 0;
    json_t *st = json_pack("{s:b, s:s}", "isProcessing", running, "state",
                           waiting   ? "awaiting_approval"
                           : running ? "executing"
                                     : agent_session_status(s));
    if (waiting)
        json_object_set(st, "pendingApprovals", pending);
    json_decref(pending);
    respond_obj(req, 200, json_pack("{s:s, s:o}", "sessionId", agent_session_id(s), "status", st));
}

/* POST /api/v1/sessions/tool-approval {sessionId, toolCallId, approved, reason?} */
void api__tool_approval(struct http_req *req, struct agent_session *s, const json_t *body)
{
    const char *id = json_get_str(body, "toolCallId");
    const json_t *approved = json_object_get(body, "approved");
    const json_t *reason = json_object_get(body, "reason");
    if (id == NULL || *id == '\0' || !json_is_boolean(approved) ||
        (reason && !json_is_null(reason) && !json_is_string(reason))) {
        http_respond_error(req, 400,
                           "toolCallId (string) and approved (boolean) are required; reason is "
                           "an optional string");
        return;
    }
    if (agent_tool_approval(s, id, json_is_true(approved), json_string_value(reason), "api") < 0) {
        http_respond_error(req, 404, "No pending approval for that toolCallId");
        return;
    }
    respond_obj(req, 200, json_pack("{s:b}", "success", 1));
}

/* Shallow-merges `patch` into the stored metadata and stores it; returns the new SessionInfo, or
 * NULL with *rc -ENOENT, -E2BIG (over MAX_METADATA_BYTES; nothing stored) or a store error. */
static json_t *update_metadata(struct agent_session *s, const json_t *patch, int *rc)
{
    json_t *info = session_info(s);
    if (info == NULL) {
        *rc = -ENOENT;
        return NULL;
    }
    json_t *meta = json_object_get(info, "metadata");
    if (!json_is_object(meta)) {
        meta = json_object();
        json_object_set_new(info, "metadata", meta);
    }
    if (json_is_object(patch))
        json_object_update(meta, (json_t *)patch);
    if (!metadata_fits(meta)) {
        json_decref(info);
        *rc = -E2BIG;
        return NULL;
    }
    int64_t now = now_ms();
    *rc = store_session_update(api__opts->store, agent_session_id(s), meta, now);
    json_object_set_new(info, "updatedAt", json_integer((json_int_t)now));
    if (*rc < 0) {
        json_decref(info);
        return NULL;
    }
    return info;
}

/* F7 */
void api__session_update(struct http_req *req, struct agent_session *s, const json_t *body)
{
    const json_t *md = json_object_get(body, "metadata");
    if (!agent_options_ok(req, json_object_get(md, "agentOptions")))
        return;
    json_t *patch = json_is_object(md) ? json_deep_copy(md) : NULL;
    const json_t *rt = json_object_get(patch, "runtimeSettings");
    if (json_is_object(rt))
        json_object_set_new(patch, "runtimeSettings", declared_settings(rt));
    int rc;
    json_t *info = update_metadata(s, patch ? patch : md, &rc);
    json_decref(patch);
    if (info)
        respond_obj(req, 200, json_pack("{s:o}", "session", info));
    else if (rc == -E2BIG)
        http_respond_error(req, 413, METADATA_TOO_LARGE);
    else if (rc == -ENOENT)
        http_respond_error(req, 404, "Session not found");
    else
        api__error2(req, 500, "Failed to update session", store_last_error(api__opts->store));
}

/* F8 */
void api__session_delete(struct http_req *req, struct agent_session *s)
{
    int rc = agent_session_delete(s);
    if (rc == 0)
        respond_obj(req, 200, json_pack("{s:b}", "success", 1));
    else if (rc == -ENOENT)
        http_respond_error(req, 404, "Session not found in storage");
    else
        api__error2(req, 500, "Failed to delete session", store_last_error(api__opts->store));
}

/* F20 */
void api__version(struct http_req *req)
{
    /* Both come from the Makefile (git and date at build time), when it could tell. */
    respond_obj(req, 200, json_pack("{s:s, s:I, s:s}", "version", SERVER_VERSION, "buildTime",
                                    (json_int_t)TARS_BUILD_TIME_MS, "gitHash", TARS_GIT_HASH));
}

/* F21: the key is masked as the original does (first 4, stars, last 4). */
static json_t *masked_model(void)
{
    const struct llm_config *l = api__opts->llm_cfg;
    json_t *m = json_pack("{s:s?, s:s?}", "provider", l->provider, "id", l->model);
    if (l->api_key && *l->api_key) {
        size_t n = strlen(l->api_key);
        char *mask;
        if (n <= 8) {
            mask = xmalloc(n + 1);
            memset(mask, '*', n);
            mask[n] = '\0';
        } else {
            size_t stars = n - 8 > 3 ? n - 8 : 3;
            mask = xmalloc(8 + stars + 1);
            memcpy(mask, l->api_key, 4);
            memset(mask + 4, '*', stars);
            memcpy(mask + 4 + stars, l->api_key + n - 4, 5);
        }
        json_object_set_new(m, "apiKey", json_string(mask));
        xfree(mask);
    }
    return m;
}

void api__agent_options(struct http_req *req)
{
    const json_t *c = api__opts->config;
    json_t *o = json_object();
    json_object_set_new(o, "model", masked_model());
    static const char *keys[] = {"maxTokens", "temperature", "thinking", "toolCallEngine",
                                 "maxIterations", "context", "tool", "logLevel"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (json_object_get(c, keys[i]))
            json_object_set(o, keys[i], json_object_get(c, keys[i]));
    const char *ins = json_get_str(c, "instructions");
    if (ins) {
        size_t n = strlen(ins);
        char *t = n > 100 ? xasprintf("%.100s...", ins) : xstrdup(ins);
        json_object_set_new(o, "instructions", json_string_lossy(t, strlen(t)));
        xfree(t);
    }
    const char *ws = api__opts->workspace ? api__opts->workspace : "";
    const char *base = strrchr(ws, '/');
    json_object_set_new(o, "workspace", json_string(ws));
    json_object_set_new(o, "workspaceName", json_string(base ? base + 1 : ws));
    respond_obj(req, 200, json_pack("{s:o}", "options", o));
}

/* F24: the model catalogue (llm/catalog.c): the configured model, then server.models and
 * model.providers, first occurrence of an id wins; ids, providers and names only. */
static json_t *model_list(void)
{
    const struct llm_catalog *cat = llm_catalog_installed();
    if (cat != NULL)
        return llm_catalog_public(cat);
    const struct llm_config *l = api__opts->llm_cfg;
    return json_pack("[{s:s, s:s}]", "id", l->model, "provider", l->provider);
}

void api__models(struct http_req *req)
{
    respond_obj(req, 200, json_pack("{s:o}", "models", model_list()));
}

/* F25 */
void api__session_model(struct http_req *req, struct agent_session *s, const json_t *body)
{
    const json_t *model = json_object_get(body, "model");
    const char *prov = json_get_str(model, "provider");
    const char *id = json_get_str(model, "id");
    if (prov == NULL || id == NULL) {
        http_respond_error(req, 400, "Missing required parameters: sessionId, model (with provider and id)");
        return;
    }
    json_t *list = model_list();
    json_t *found = NULL;
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m) if (strcmp(json_get_str(m, "id"), id) == 0 &&
                                       strcmp(json_get_str(m, "provider"), prov) == 0) found = m;
    if (found == NULL) {
        json_decref(list);
        http_respond_error(req, 400, "Invalid model configuration");
        return;
    }
    json_t *patch = json_pack("{s:O}", "modelConfig", found);
    json_decref(list);
    int rc;
    json_t *info = update_metadata(s, patch, &rc);
    json_decref(patch);
    if (info)
        respond_obj(req, 200, json_pack("{s:b, s:o}", "success", 1, "sessionInfo", info));
    else if (rc == -E2BIG)
        http_respond_error(req, 413, METADATA_TOO_LARGE);
    else if (rc == -ENOENT)
        http_respond_error(req, 404, "Session not found");
    else
        api__error2(req, 500, "Failed to update session model", store_last_error(api__opts->store));
}

/* F22, F23 */
static const json_t *runtime_schema(void)
{
    const json_t *rs = json_object_get(json_object_get(api__opts->config, "server"),
                                       "runtimeSettings");
    return json_object_get(rs, "schema");
}

void api__runtime_settings_get(struct http_req *req)
{
    const json_t *schema = runtime_schema();
    json_t *current = json_object();
    char *sid = http_req_query_param(req, "sessionId");
    if (schema && sid && *sid) {
        json_t *info = store_session_get(api__opts->store, sid);
        json_t *saved = json_object_get(json_object_get(info, "metadata"), "runtimeSettings");
        const char *k;
        json_t *prop;
        json_object_foreach(json_object_get(schema, "properties"), k, prop)
            if (json_object_get(prop, "default"))
                json_object_set(current, k, json_object_get(prop, "default"));
        if (json_is_object(saved))
            json_object_update(current, saved);
        json_decref(info);
    }
    xfree(sid);
    json_t *j = schema ? json_pack("{s:O, s:o}", "schema", schema, "currentValues", current)
                       : json_pack("{s:{s:s, s:{}}, s:o}", "schema", "type", "object",
                                   "properties", "currentValues", current);
    respond_obj(req, 200, j);
}

void api__runtime_settings_post(struct http_req *req, const json_t *body)
{
    const char *sid = json_get_str(body, "sessionId");
    const json_t *rs = json_object_get(body, "runtimeSettings");
    if (sid == NULL || *sid == '\0') {
        http_respond_error(req, 400, "Session ID is required");
        return;
    }
    if (!json_is_object(rs)) {
        http_respond_error(req, 400, "Runtime settings object is required");
        return;
    }
    struct agent_session *s = agent_session_find(sid);
    if (s == NULL) {
        http_respond_error(req, 404, "Session not found");
        return;
    }
    json_t *kept = declared_settings(rs);
    json_t *patch = json_pack("{s:O}", "runtimeSettings", kept);
    int rc;
    json_t *info = update_metadata(s, patch, &rc);
    json_decref(patch);
    if (info) {
        respond_obj(req, 200, json_pack("{s:o, s:o}", "session", info, "runtimeSettings", kept));
        return;
    }
    json_decref(kept);
    if (rc == -E2BIG)
        http_respond_error(req, 413, METADATA_TOO_LARGE);
    else
        api__error2(req, 500, "Failed to update runtime settings",
                    store_last_error(api__opts->store));
}

/* F26 */
void api__share_config(struct http_req *req)
{
    const char *p = json_get_str(json_object_get(api__opts->config, "share"), "provider");
    respond_obj(req, 200, json_pack("{s:b, s:s?}", "hasShareProvider", p != NULL,
                                    "shareProvider", p));
}
