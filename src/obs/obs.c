/* SPDX-License-Identifier: MIT */
/* obs.c -- the metrics this server exposes and the one-line calls that update them, request
 * ids and the access log, and the process gauges (RSS, descriptors, event-loop lag) read at
 * scrape time. Every update is a few integer operations on the loop thread; label sets are
 * bounded (route templates, status classes, provider/model, tool names, capped per family). */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "../core/log.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "obs_int.h"

/* Microsecond bounds: 1 ms .. 300 s for requests, runs, model and tool calls. */
/* clang-format off */
static const uint64_t lat_bounds[] = {1000,    5000,    10000,   25000,    50000,    100000,
                                      250000,  500000,  1000000, 2500000,  5000000,  10000000,
                                      30000000, 60000000, 300000000};
#define NLAT (sizeof(lat_bounds) / sizeof(lat_bounds[0]))
/* Event-loop lag: 0.1 ms .. 5 s. */
static const uint64_t lag_bounds[] = {100,   500,    1000,   5000,   10000,  25000,
                                      50000, 100000, 250000, 1000000, 5000000};
#define NLAG (sizeof(lag_bounds) / sizeof(lag_bounds[0]))

#define COUNTER(n, h, ...) {.name = n, .help = h, .type = OBS_COUNTER, .labels = {__VA_ARGS__}}
#define GAUGE(n, h) {.name = n, .help = h, .type = OBS_GAUGE}
#define HIST(n, h, b, ...)                                                                     \
    {.name = n, .help = h, .type = OBS_HISTOGRAM, .bounds = b, .nbounds = sizeof(b) / 8,       \
     .scale = 1e6, .labels = {__VA_ARGS__}}

enum fam {
    F_HTTP_REQS, F_HTTP_LAT, F_HTTP_ERRS, F_HTTP_IN, F_HTTP_OUT, F_SSE_OPEN, F_SIO_CLIENTS,
    F_RUNS_STARTED, F_RUNS_ENDED, F_RUN_LAT, F_APPROVALS, F_EVENTS,
    F_MODEL_REQS, F_MODEL_TTFT, F_MODEL_LAT, F_MODEL_TOKENS, F_MODEL_RETRIES,
    F_TOOL_CALLS, F_TOOL_LAT, F_MCP_UP, F_MCP_STARTS, F_MCP_TIMEOUTS,
    F_STORE_COMMITS, F_STORE_LAT, F_STORE_WRITES,
    F_LOOP_LAG, F_SPANS, F_AGIO, F_BUILD,
    F_COUNT
};
/* clang-format on */

static struct obs_family fams[F_COUNT] = {
    [F_HTTP_REQS] = COUNTER("tars_http_requests_total",
                            "HTTP requests by route template, method and status class", "route",
                            "method", "code"),
    [F_HTTP_LAT] = HIST("tars_http_request_duration_seconds",
                        "HTTP request time from dispatch to the end of the response", lat_bounds),
    [F_HTTP_ERRS] = COUNTER("tars_http_errors_total",
                            "HTTP 4xx and 5xx answers by status and reason", "code", "reason"),
    [F_HTTP_IN] = COUNTER("tars_http_received_bytes_total", "Bytes read from client sockets"),
    [F_HTTP_OUT] = COUNTER("tars_http_sent_bytes_total", "Bytes written to client sockets"),
    [F_SSE_OPEN] = GAUGE("tars_http_sse_streams_open", "Open server-sent event streams"),
    [F_SIO_CLIENTS] = GAUGE("tars_socketio_clients",
                            "Connected Socket.IO clients (Engine.IO sessions on /socket.io/)"),
    [F_RUNS_STARTED] = COUNTER("tars_agent_runs_started_total", "Agent runs started"),
    [F_RUNS_ENDED] =
        COUNTER("tars_agent_runs_ended_total", "Agent runs ended, by final status", "status"),
    [F_RUN_LAT] = HIST("tars_agent_run_duration_seconds", "Agent run duration", lat_bounds),
    [F_APPROVALS] = GAUGE("tars_agent_approvals_pending", "Tool calls waiting for approval"),
    [F_EVENTS] = COUNTER("tars_agent_events_total", "Agent events emitted, by type", "type"),
    [F_MODEL_REQS] =
        COUNTER("tars_model_requests_total", "Model requests by provider, model and outcome",
                "provider", "model", "outcome"),
    [F_MODEL_TTFT] = HIST("tars_model_time_to_first_token_seconds",
                          "Time from a model request to its first streamed token", lat_bounds,
                          "provider", "model"),
    [F_MODEL_LAT] = HIST("tars_model_request_duration_seconds", "Model request duration",
                         lat_bounds, "provider", "model"),
    [F_MODEL_TOKENS] = COUNTER("tars_model_tokens_total",
                               "Tokens of model calls (as reported, else estimated)", "direction"),
    [F_MODEL_RETRIES] = COUNTER("tars_model_retries_total", "Model requests retried"),
    [F_TOOL_CALLS] =
        COUNTER("tars_tool_calls_total", "Tool calls by tool and outcome", "tool", "outcome"),
    [F_TOOL_LAT] = HIST("tars_tool_call_duration_seconds", "Tool call duration", lat_bounds),
    [F_MCP_UP] = GAUGE("tars_mcp_servers_up", "MCP servers connected and ready"),
    [F_MCP_STARTS] = COUNTER("tars_mcp_server_starts_total", "MCP server starts and restarts"),
    [F_MCP_TIMEOUTS] = COUNTER("tars_mcp_call_timeouts_total", "MCP tool calls that timed out"),
    [F_STORE_COMMITS] =
        COUNTER("tars_store_commits_total", "Store write transactions committed", "outcome"),
    [F_STORE_LAT] = HIST("tars_store_commit_duration_seconds", "Store commit duration", lat_bounds),
    [F_STORE_WRITES] = COUNTER("tars_store_writes_total", "Rows written through store commits"),
    [F_LOOP_LAG] = HIST("tars_event_loop_lag_seconds",
                        "Delay of a 500 ms repeating timer behind its schedule", lag_bounds),
    [F_SPANS] = COUNTER("tars_trace_spans_total", "Trace spans by fate", "result"),
    [F_AGIO] = COUNTER("tars_agio_events_total", "AGIO telemetry events by fate", "result"),
    [F_BUILD] = {.name = "tars_build_info",
                 .help = "Build information (value 1)",
                 .type = OBS_GAUGE,
                 .labels = {"version", "commit"}},
};

struct gauge_fn {
    const char *name, *help;
    obs_gauge_fn fn;
    void *data;
};

static struct {
    uv_loop_t *loop;
    uv_timer_t lag_timer;
    bool lag_on;
    uint64_t lag_last_ns;
    int64_t start_ms; /* wall clock at obs_init */
    bool access_log;
    struct gauge_fn gauges[16];
    size_t ngauges;
    char build[2][64];
} O = {.access_log = true};

uint64_t obs_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- set-up ---- */

#define LAG_INTERVAL_MS 500

static void on_lag_timer(uv_timer_t *t)
{
    uint64_t now = uv_hrtime();
    uint64_t expect = O.lag_last_ns + (uint64_t)LAG_INTERVAL_MS * 1000000u;
    obs__observe(&fams[F_LOOP_LAG], now > expect ? (now - expect) / 1000u : 0, NULL, NULL, NULL);
    O.lag_last_ns = now;
}

int obs_init(uv_loop_t *loop, const json_t *root, char **err)
{
    O.loop = loop;
    O.start_ms = now_ms();
    const json_t *log = json_object_get(root, "log");
    const char *fmt = json_get_str(log, "format");
    if (fmt && strcmp(fmt, "json") != 0 && strcmp(fmt, "text") != 0) {
        *err = xasprintf("log.format must be text or json, not '%s'", fmt);
        return -1;
    }
    log_set_json(fmt && strcmp(fmt, "json") == 0);
    const json_t *acc = json_object_get(log, "access");
    const char *accs = json_string_value(acc);
    O.access_log =
        !(json_is_false(acc) || (accs && (strcmp(accs, "false") == 0 || strcmp(accs, "0") == 0 ||
                                          strcmp(accs, "off") == 0)));
    if (loop) {
        uv_timer_init(loop, &O.lag_timer);
        O.lag_last_ns = uv_hrtime();
        uv_timer_start(&O.lag_timer, on_lag_timer, LAG_INTERVAL_MS, LAG_INTERVAL_MS);
        uv_unref((uv_handle_t *)&O.lag_timer);
        O.lag_on = true;
    }
    if (obs__trace_init(loop, err) < 0)
        return -1;
    return obs__agio_init(loop, root, err);
}

void obs_shutdown(void)
{
    if (O.lag_on) {
        uv_timer_stop(&O.lag_timer);
        uv_close((uv_handle_t *)&O.lag_timer, NULL);
        O.lag_on = false;
    }
    obs__trace_shutdown();
    obs__agio_shutdown();
}

void obs_set_build_info(const char *version, const char *commit)
{
    obs__add(&fams[F_BUILD], 1, version, commit, NULL);
}

void obs_gauge_register(const char *name, const char *help, obs_gauge_fn fn, void *data)
{
    if (O.ngauges < sizeof(O.gauges) / sizeof(O.gauges[0]))
        O.gauges[O.ngauges++] = (struct gauge_fn){name, help, fn, data};
}

/* ---- process ---- */

static double rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    unsigned long long size = 0, resident = 0;
    int n = fscanf(f, "%llu %llu", &size, &resident);
    fclose(f);
    return n == 2 ? (double)resident * (double)sysconf(_SC_PAGESIZE) : 0;
}

static double open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n > 0 ? (double)(n - 1) : 0; /* not the directory's own descriptor */
}

void obs_metrics_render(struct buf *out)
{
    for (int i = 0; i < F_COUNT; i++)
        obs__render(out, &fams[i]);
    for (size_t i = 0; i < O.ngauges; i++)
        obs__render_value(out, O.gauges[i].name, O.gauges[i].help, "gauge",
                          O.gauges[i].fn(O.gauges[i].data));
    obs__render_value(out, "process_resident_memory_bytes", "Resident memory size in bytes",
                      "gauge", rss_bytes());
    obs__render_value(out, "process_open_fds", "Open file descriptors", "gauge", open_fds());
    obs__render_value(out, "process_start_time_seconds",
                      "Start time of the process since the unix epoch in seconds", "gauge",
                      (double)(O.start_ms / 1000));
    obs__render_value(out, "tars_uptime_seconds", "Seconds since the server started", "gauge",
                      (double)(now_ms() - O.start_ms) / 1000.0);
}

/* ---- HTTP ---- */

bool obs__req_id_ok(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  strchr("._:/+=-", c) != NULL;
        if (!ok || n >= OBS_REQ_ID_MAX - 1)
            return false;
    }
    return n > 0;
}

void obs_req_begin(struct obs_req *o, const char *method, const char *path, const char *xrid,
                   const char *tt_logid, const char *traceparent, size_t bytes_in)
{
    o->start_us = obs_now_us();
    o->bytes_in = bytes_in;
    const char *given = xrid && obs__req_id_ok(xrid)           ? xrid
                        : tt_logid && obs__req_id_ok(tt_logid) ? tt_logid
                                                               : NULL;
    o->tt_logid = tt_logid != NULL;
    if (given) {
        o->id_given = true;
        snprintf(o->id, sizeof(o->id), "%s", given);
    } else {
        uint8_t r[16];
        rand_bytes(r, sizeof(r));
        obs__hex(o->id, r, sizeof(r));
    }
    log_set_request_id(o->id);
    o->span = obs__req_span_begin(o, method, path, traceparent);
}

void obs_req_leave(void)
{
    log_set_request_id(NULL);
    obs__trace_leave();
}

void obs_req_status(struct obs_req *o, int status, const char *content_type)
{
    o->status = status;
    if (content_type && strncasecmp(content_type, "text/event-stream", 17) == 0 && !o->sse) {
        o->sse = true;
        obs__add(&fams[F_SSE_OPEN], 1, NULL, NULL, NULL);
    }
}

/* Requests the API did not name (the UI, Socket.IO, unknown paths) under a few fixed names. */
static const char *derived_route(const char *path)
{
    if (strncmp(path, "/socket.io/", 11) == 0 || strncmp(path, "/engine.io/", 11) == 0)
        return "/socket.io/";
    if (strncmp(path, "/api/", 5) == 0)
        return "unmatched";
    return "static";
}

static const char *known_method(const char *m)
{
    static const char *ms[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH"};
    for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
        if (strcmp(m, ms[i]) == 0)
            return ms[i];
    return "other";
}

void obs_req_end(struct obs_req *o, const char *method, const char *path)
{
    if (o->start_us == 0)
        return;
    uint64_t us = obs_now_us() - o->start_us;
    static const char *classes[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
    int cls = o->status >= 100 && o->status < 600 ? o->status / 100 : 0;
    const char *route = o->route ? o->route : derived_route(path ? path : "");
    obs__add(&fams[F_HTTP_REQS], 1, route, known_method(method ? method : ""), classes[cls]);
    obs__observe(&fams[F_HTTP_LAT], us, NULL, NULL, NULL);
    if (o->sse)
        obs__add(&fams[F_SSE_OPEN], -1, NULL, NULL, NULL);
    if (O.access_log && log_level >= LOG_INFO) {
        char prev[OBS_REQ_ID_MAX];
        snprintf(prev, sizeof(prev), "%s", log_request_id());
        log_set_request_id(o->id);
        log_write(LOG_INFO, "%s %s %d %.1f ms %llu bytes", method ? method : "-", path ? path : "-",
                  o->status, (double)us / 1000.0, (unsigned long long)o->bytes_out);
        log_set_request_id(prev[0] ? prev : NULL);
    }
    obs__req_span_end(o, route);
    o->start_us = 0;
}

void obs_http_io(size_t in, size_t out)
{
    if (in)
        obs__add(&fams[F_HTTP_IN], (int64_t)in, NULL, NULL, NULL);
    if (out)
        obs__add(&fams[F_HTTP_OUT], (int64_t)out, NULL, NULL, NULL);
}

void obs_sio_client(int delta)
{
    obs__add(&fams[F_SIO_CLIENTS], delta, NULL, NULL, NULL);
}

void obs_http_error(int status, const char *reason)
{
    if (status < 400 || status > 599)
        return;
    char code[8];
    snprintf(code, sizeof(code), "%d", status);
    /* Reasons are the server's own fixed texts, except "Cannot GET /any/path" (404 of an
     * unknown route) which would carry the client's path: folded into one reason. */
    if (reason == NULL || strncmp(reason, "Cannot ", 7) == 0)
        reason = status == 404 ? "no such route" : "other";
    char cut[80];
    snprintf(cut, sizeof(cut), "%s", reason);
    obs__add(&fams[F_HTTP_ERRS], 1, code, cut, NULL);
}

/* ---- agent ---- */

static long long usage_field(const json_t *usage, const char *a, const char *b)
{
    const json_t *v = json_object_get(usage, a);
    if (!json_is_integer(v))
        v = json_object_get(usage, b);
    return json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

void obs_agent_event(const char *session_id, const json_t *ev)
{
    const char *type = json_get_str(ev, "type");
    if (type == NULL)
        return;
    obs__add(&fams[F_EVENTS], 1, type, NULL, NULL);
    obs__agio_event(session_id, type, ev);
    if (strcmp(type, "agent_run_start") == 0) {
        obs__add(&fams[F_RUNS_STARTED], 1, NULL, NULL, NULL);
    } else if (strcmp(type, "agent_run_end") == 0) {
        const char *st = json_get_str(ev, "status");
        obs__add(&fams[F_RUNS_ENDED], 1, st ? st : "unknown", NULL, NULL);
        json_int_t ms = json_integer_value(json_object_get(ev, "elapsedMs"));
        obs__observe(&fams[F_RUN_LAT], (uint64_t)(ms > 0 ? ms : 0) * 1000u, NULL, NULL, NULL);
    } else if (strcmp(type, "assistant_message") == 0) {
        const json_t *u = json_object_get(ev, "usage");
        long long in = usage_field(u, "promptTokens", "prompt_tokens");
        long long out = usage_field(u, "completionTokens", "completion_tokens");
        if (in > 0)
            obs__add(&fams[F_MODEL_TOKENS], in, "input", NULL, NULL);
        if (out > 0)
            obs__add(&fams[F_MODEL_TOKENS], out, "output", NULL, NULL);
    } else if (strcmp(type, "tool_result") == 0) {
        const char *name = json_get_str(ev, "name");
        bool err = json_object_get(ev, "error") != NULL;
        obs__add(&fams[F_TOOL_CALLS], 1, name ? name : "unknown", err ? "error" : "ok", NULL);
        json_int_t ms = json_integer_value(json_object_get(ev, "elapsedMs"));
        obs__observe(&fams[F_TOOL_LAT], (uint64_t)(ms > 0 ? ms : 0) * 1000u, NULL, NULL, NULL);
    } else if (strcmp(type, "tool_approval_request") == 0) {
        obs__add(&fams[F_APPROVALS], 1, NULL, NULL, NULL);
    } else if (strcmp(type, "tool_approval_result") == 0) {
        struct obs_series *s = obs__series(&fams[F_APPROVALS], NULL, NULL, NULL);
        if (s->value > 0)
            s->value--;
    }
}

void obs_first_token(uint64_t *first_ms)
{
    if (*first_ms == 0)
        *first_ms = mono_ms();
}

/* The values of enum llm_status (llm/llm.h), which this module cannot include. */
static const char *model_outcome(int status, const char *errmsg)
{
    switch (status) {
    case 0:
        return "ok";
    case OBS_MODEL_ABORTED:
        return "aborted";
    case -1001:
        if (errmsg && errmsg[0] == '4' && strncmp(errmsg, "429", 3) == 0)
            return "http_429";
        return errmsg && errmsg[0] == '4' ? "http_4xx" : "http_5xx";
    case -1002:
        return "stream_error";
    case -1003:
        return "truncated";
    case -1004:
        return "timeout";
    case -1005:
        return "connect";
    case -1006:
        return "protocol";
    case -1007:
        return "config";
    default:
        return "error";
    }
}

static long long usage_field(const json_t *usage, const char *a, const char *b);

void obs_model_done(uint32_t span, const char *provider, const char *model, int status,
                    const char *errmsg, uint64_t start_ms, uint64_t first_ms, const json_t *usage)
{
    provider = provider ? provider : "";
    model = model ? model : "";
    obs__add(&fams[F_MODEL_REQS], 1, provider, model, model_outcome(status, errmsg));
    obs__agio_model_done(model, status, start_ms, first_ms);
    uint64_t now = mono_ms();
    if (start_ms && now >= start_ms)
        obs__observe(&fams[F_MODEL_LAT], (now - start_ms) * 1000u, provider, model, NULL);
    if (first_ms && start_ms && first_ms >= start_ms)
        obs__observe(&fams[F_MODEL_TTFT], (first_ms - start_ms) * 1000u, provider, model, NULL);
    if (span == 0)
        return;
    if (usage) {
        obs_span_attr_int(span, "gen_ai.usage.input_tokens",
                          usage_field(usage, "prompt_tokens", "input_tokens"));
        obs_span_attr_int(span, "gen_ai.usage.output_tokens",
                          usage_field(usage, "completion_tokens", "output_tokens"));
    }
    if (first_ms && start_ms && first_ms >= start_ms)
        obs_span_attr_int(span, "gen_ai.response.time_to_first_token_ms",
                          (long long)(first_ms - start_ms));
    obs_span_end(span, status == 0 ? NULL : errmsg ? errmsg : model_outcome(status, errmsg));
}

void obs_model_retry(void)
{
    obs__add(&fams[F_MODEL_RETRIES], 1, NULL, NULL, NULL);
}

void obs_mcp(enum obs_mcp_what what)
{
    switch (what) {
    case OBS_MCP_UP:
        obs__add(&fams[F_MCP_UP], 1, NULL, NULL, NULL);
        break;
    case OBS_MCP_DOWN:
        obs__add(&fams[F_MCP_UP], -1, NULL, NULL, NULL);
        break;
    case OBS_MCP_START:
        obs__add(&fams[F_MCP_STARTS], 1, NULL, NULL, NULL);
        break;
    case OBS_MCP_TIMEOUT:
        obs__add(&fams[F_MCP_TIMEOUTS], 1, NULL, NULL, NULL);
        break;
    }
}

void obs_store_commit(uint64_t start_us, bool ok, long long writes)
{
    obs__add(&fams[F_STORE_COMMITS], 1, ok ? "ok" : "error", NULL, NULL);
    obs__observe(&fams[F_STORE_LAT], obs_now_us() - start_us, NULL, NULL, NULL);
    if (writes > 0)
        obs__add(&fams[F_STORE_WRITES], writes, NULL, NULL, NULL);
}

void obs__agio_count(const char *result, int64_t n)
{
    obs__add(&fams[F_AGIO], n, result, NULL, NULL);
}

void obs__span_count(const char *result, int64_t n)
{
    obs__add(&fams[F_SPANS], n, result, NULL, NULL);
}
