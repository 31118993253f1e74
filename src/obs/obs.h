/* SPDX-License-Identifier: MIT */
/* obs.h -- observability: Prometheus metrics, request ids, the access log and OpenTelemetry
 * spans. Depends on core only, so every module may call it; the instrumentation points are
 * one-line calls. Everything runs on the loop thread: counters are plain integers, and a scrape
 * formats them (GET /metrics, api/metrics.c). Traces leave through a sender set by main
 * (llm_http_post), so this module never includes anything above core. See docs/internals/OBS.md. */
#ifndef OBS_OBS_H
#define OBS_OBS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../core/buf.h"

#define OBS_REQ_ID_MAX 65 /* an accepted X-Request-Id is at most 64 chars */

/* ---- set-up ---- */

/* Reads log.format ("text" | "json"), log.access (default true), agio.provider and the OTEL_*
 * environment;
 * starts the event-loop lag timer (unref'd: it keeps nothing alive). config_root borrowed. */
int obs_init(uv_loop_t *loop, const json_t *config_root, char **err);
/* Stops the timers and drops unsent spans (a last export is attempted first when possible). */
void obs_shutdown(void);
void obs_set_build_info(const char *version, const char *commit);
/* A gauge read at scrape time (open connections, loaded sessions...). name and help static. */
typedef double (*obs_gauge_fn)(void *data);
void obs_gauge_register(const char *name, const char *help, obs_gauge_fn fn, void *data);
/* Appends the Prometheus text exposition (format 0.0.4) of every metric to out. */
void obs_metrics_render(struct buf *out);
#define OBS_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- HTTP requests (src/http) ----
 * Embedded in every request (zeroed with it). The http module fills it; nothing else reads it. */
struct obs_req {
    char id[OBS_REQ_ID_MAX]; /* X-Request-Id / x-tt-logid as sent, or generated */
    bool id_given;           /* the client sent one: error bodies then carry it too */
    bool tt_logid;           /* the client sent x-tt-logid: echoed under that name too */
    bool sse;                /* counted in the open-SSE-streams gauge */
    int status;              /* response status, 0 until one is sent */
    const char *route;       /* route template (static), NULL = derived from the path */
    uint64_t start_us;       /* monotonic; 0 = never dispatched (nothing recorded) */
    uint64_t bytes_in, bytes_out;
    uint32_t span; /* trace span slot + 1, 0 = not traced */
};

/* The request reached the handler: takes or makes its id, starts its span, and makes it the
 * current request of the log until obs_req_leave. Header values may be NULL. */
void obs_req_begin(struct obs_req *o, const char *method, const char *path, const char *xrid,
                   const char *tt_logid, const char *traceparent, size_t bytes_in);
/* The handler returned: log lines no longer belong to the request. */
void obs_req_leave(void);
/* A response head went out with this status (content_type may be NULL). */
void obs_req_status(struct obs_req *o, int status, const char *content_type);
/* Called from the request's free, whatever ended it: metrics, access log line, span end. */
void obs_req_end(struct obs_req *o, const char *method, const char *path);
/* Bytes read from and written to client sockets (all connections, WebSockets included). */
void obs_http_io(size_t in, size_t out);
/* Socket.IO clients (Engine.IO sessions on /socket.io/) opened (+1) and closed (-1). */
void obs_sio_client(int delta);
/* A 4xx/5xx answer and its reason (error text; the number of distinct reasons is capped). */
void obs_http_error(int status, const char *reason);

/* ---- agent, model, tools, store ---- */

/* Every agent event of a session (agent__emit_new): counts by type, and reads runs, tokens,
 * tool results and approvals from the events that carry them; feeds AGIO. ev borrowed. */
void obs_agent_event(const char *session_id, const json_t *ev);
/* A run of session_id starts its model call number `iteration` (1-based; AGIO loops). */
void obs_agent_loop(const char *session_id, int iteration);
/* Sets *first_ms to mono_ms() unless already set (time to first token of a model call). */
void obs_first_token(uint64_t *first_ms);
/* A model call ended. status: 0 ok, an llm_status (<0), or OBS_MODEL_ABORTED. start_ms and
 * first_ms (0 = no token) are mono_ms() values; errmsg and usage (the provider's usage object)
 * may be NULL. Ends span (from obs_model_span_start) with the GenAI attributes. */
#define OBS_MODEL_ABORTED 1
void obs_model_done(uint32_t span, const char *provider, const char *model, int status,
                    const char *errmsg, uint64_t start_ms, uint64_t first_ms, const json_t *usage);
void obs_model_retry(void);
enum obs_mcp_what { OBS_MCP_UP, OBS_MCP_DOWN, OBS_MCP_START, OBS_MCP_TIMEOUT };
void obs_mcp(enum obs_mcp_what what);
/* A store commit that began at start_us (obs_now_us) with `writes` batched writes. */
void obs_store_commit(uint64_t start_us, bool ok, long long writes);
uint64_t obs_now_us(void);

/* ---- traces (OpenTelemetry) ---- */

/* Whether spans are recorded at all (an OTLP endpoint is set and the sampler may say yes). */
bool obs_tracing(void);
/* The current span of the request being handled (the parent of a run started now), 0 if none. */
uint32_t obs_current_span(void);
/* Starts a span under parent (0 = a new root); kind 1 internal, 2 server, 3 client. Returns
 * its handle, 0 when not traced. name static. */
uint32_t obs_span_start(uint32_t parent, const char *name, int kind);
/* Makes span current (the parent of what starts now, and the span an outgoing model request
 * names in its traceparent); returns the previous current span. */
uint32_t obs_span_enter(uint32_t span);
/* A model call span (gen_ai.system, gen_ai.request.model) under parent, made current until
 * obs_span_leave (so the request started in between carries its traceparent). */
uint32_t obs_model_span_start(uint32_t parent, const char *provider, const char *model);
void obs_span_leave(void);
/* A tool call span (gen_ai.tool.name) under parent. */
uint32_t obs_tool_span_start(uint32_t parent, const char *tool);
void obs_span_attr_str(uint32_t span, const char *key, const char *value);
void obs_span_attr_int(uint32_t span, const char *key, long long value);
/* Ends it (error non-NULL: status error with that message). The handle is invalid after. */
void obs_span_end(uint32_t span, const char *error);
/* "traceparent: 00-<trace>-<span>-01" for an outgoing request made under span, or "" when not
 * traced. out has room for 80 bytes. */
void obs_traceparent_header(uint32_t span, char out[80]);

/* How spans leave: main sets a function that POSTs body (JSON) to url with the header lines
 * (NULL-terminated "Name: value" strings, borrowed). cb(data, status) fires once unless the
 * sender returned <0. */
typedef void (*obs_post_done_cb)(void *data, int status);
typedef int (*obs_post_fn)(const char *url, const char *const *headers, const char *body,
                           size_t len, obs_post_done_cb cb, void *data);
void obs_set_sender(obs_post_fn fn);

#endif
