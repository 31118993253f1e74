/* SPDX-License-Identifier: MIT */
/* api_int.h -- shared by the route files: routes.c (table, dispatch, restore rule), query.c
 * (queries and streams), v1.c (session routes of the final API), files.c (workspace routes). */
#ifndef API_API_INT_H
#define API_API_INT_H

#include <jansson.h>
#include <stdbool.h>

#include "../agent/agent.h"
#include "../http/http.h"
#include "api.h"

/* How a route family reports failures: the early server's {error} strings or the final one's
 * structured body (anchor-api.md §3.5). */
enum api_flavor { API_SEED, API_V1 };

extern const struct api_options *api__opts;

void api__error2(struct http_req *req, int status, const char *error, const char *message);
/* {success:false, error:{code:"AGENT_EXECUTION_ERROR", message}} with status 500. */
void api__exec_error(struct http_req *req, const char *message);
/* A JSON answer with extra header lines ("Name: value\r\n..."). */
void api__respond_json_headers(struct http_req *req, int status, const json_t *j,
                               const char *headers);
/* JS truthiness, for the original's `if (!query)` checks. */
bool api__truthy(const json_t *j);

/* access.c: the gate of every request (see there). Each returns true to go on, or false when
 * it has answered. api__access_auth sets *authed to false only for a Socket.IO request without
 * credentials, which must then authenticate in its CONNECT packet. */
bool api__access_front(struct http_req *req);
bool api__access_auth(struct http_req *req, bool *authed);
void api__csrf_token(struct http_req *req);

/* metrics.c: answers GET /metrics (behind api__access_auth or server.metrics.token) and
 * returns true; false for any other request. */
bool api__metrics(struct http_req *req);

/* query.c */
void api__run_query(struct http_req *req, struct agent_session *s, const json_t *query,
                    enum api_flavor flavor);
void api__run_stream(struct http_req *req, struct agent_session *s, const json_t *query,
                     enum api_flavor flavor);
void api__oneshot(struct http_req *req, const json_t *body, bool stream);
void api__events_stream(struct http_req *req, struct agent_session *s);

/* v1.c */
void api__sessions_list(struct http_req *req);
void api__session_create_v1(struct http_req *req, const json_t *body);
void api__session_details(struct http_req *req, struct agent_session *s);
void api__session_events(struct http_req *req, struct agent_session *s);
void api__events_latest(struct http_req *req);
void api__session_status(struct http_req *req, struct agent_session *s);
void api__tool_approval(struct http_req *req, struct agent_session *s, const json_t *body);
void api__session_update(struct http_req *req, struct agent_session *s, const json_t *body);
void api__session_delete(struct http_req *req, struct agent_session *s);
void api__generate_summary(struct http_req *req, struct agent_session *s, const json_t *body);
void api__share(struct http_req *req, struct agent_session *s);
void api__version(struct http_req *req);
void api__agent_options(struct http_req *req);
void api__models(struct http_req *req);
void api__session_model(struct http_req *req, struct agent_session *s, const json_t *body);
void api__runtime_settings_get(struct http_req *req);
void api__runtime_settings_post(struct http_req *req, const json_t *body);
void api__share_config(struct http_req *req);
/* Answers 409 (exclusive mode) and returns true when another session runs. */
bool api__exclusive_busy(struct http_req *req);

/* files.c */
void api__workspace_files(struct http_req *req, struct agent_session *s);
void api__workspace_search(struct http_req *req, struct agent_session *s);
void api__workspace_validate(struct http_req *req, struct agent_session *s, const json_t *body);

/* upload.c: POST /api/v1/files/upload, a streamed body (see http_req_read_body).
 * api__upload_route is the server's stream_body choice: true for that route's heads. */
bool api__upload_route(const struct http_req *req);
void api__files_upload(struct http_req *req);

#endif
