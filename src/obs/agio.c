/* SPDX-License-Identifier: MIT */
/* agio.c -- the original's telemetry push (AGIO, "Agent Insights and Observations"): with
 * agio.provider set to a URL, agent activity becomes AGIO events (agent_initialized,
 * agent_run_start/end, agent_loop_start/end, agent_ttft, agent_tps, tool_call, tool_result)
 * POSTed as {"events": [...]} in batches of 20 or every 5 s, as the original does. Errors are
 * ignored; at most AGIO_QUEUE_MAX events wait (beyond that they are dropped and counted).
 * No user data leaves: run inputs are reduced to their length and tool arguments are left out.
 * Events come from obs_agent_event (every stored agent event), obs_agent_loop and the last
 * model call's numbers from obs_model_done, all on the loop. */
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "../core/log.h"
#include "../core/map.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "obs_int.h"

#define AGIO_BATCH 20
#define AGIO_FLUSH_MS 5000
#define AGIO_QUEUE_MAX 2000
#define AGIO_SEEN_MAX 10000 /* sessions remembered as initialized (then forgotten at once) */

/* Per running session: what the run-level events need. */
struct agio_run {
    char run_id[37];
    int iteration;
    uint64_t loop_start_ms;
    char *error; /* the last error message of the run, or NULL */
};

static struct {
    bool on;
    char *url;
    json_t *queue; /* array of events */
    bool sending;
    bool timer_on;
    struct map runs; /* session id -> struct agio_run */
    struct map seen; /* session ids that had agent_initialized (value unused) */
    obs_post_fn send;
    /* the model call that just ended (obs_model_done), for the assistant_message after it */
    bool last_valid;
    uint64_t last_ttft_ms, last_dur_ms;
    char last_model[128];
} A;
static uv_timer_t agio_timer; /* outside A: A is cleared while the handle closes */
static const char *headers[] = {"Content-Type: application/json", NULL};

static void on_timer(uv_timer_t *t);

int obs__agio_init(uv_loop_t *loop, const json_t *root, char **err)
{
    const json_t *agio = json_object_get(root, "agio");
    const char *url = json_get_str(agio, "provider");
    if (url == NULL || *url == '\0' || loop == NULL)
        return 0;
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) {
        *err = xasprintf("agio.provider must be an http(s) URL, not '%s'", url);
        return -1;
    }
    A.url = xstrdup(url);
    A.queue = json_array();
    map_init(&A.runs);
    map_init(&A.seen);
    uv_timer_init(loop, &agio_timer);
    uv_timer_start(&agio_timer, on_timer, AGIO_FLUSH_MS, AGIO_FLUSH_MS);
    uv_unref((uv_handle_t *)&agio_timer);
    A.timer_on = true;
    A.on = true;
    log_info("agio: telemetry to %s", A.url);
    return 0;
}

void obs__agio_sender(obs_post_fn fn)
{
    A.send = fn;
}

/* ---- sending ---- */

static void on_sent(void *data, int status)
{
    size_t n = (size_t)(uintptr_t)data;
    A.sending = false;
    obs__agio_count(status >= 200 && status < 300 ? "sent" : "failed", (int64_t)n);
    if (A.on && json_array_size(A.queue) >= AGIO_BATCH)
        uv_timer_start(&agio_timer, on_timer, 0, AGIO_FLUSH_MS);
}

static void flush(void)
{
    size_t n = json_array_size(A.queue);
    if (A.sending || n == 0 || A.send == NULL)
        return;
    json_t *body = json_pack("{s:o}", "events", A.queue); /* the batch moves into body */
    A.queue = json_array();
    size_t len;
    char *text = json_dump_compact(body, &len);
    json_decref(body);
    A.sending = true;
    if (A.send(A.url, headers, text, len, on_sent, (void *)(uintptr_t)n) < 0) {
        A.sending = false;
        obs__agio_count("failed", (int64_t)n); /* errors are ignored, as the original does */
    }
    xfree(text);
}

static void on_timer(uv_timer_t *t)
{
    flush();
}

/* Steals ev. */
static void push_new(json_t *ev)
{
    if (json_array_size(A.queue) >= AGIO_QUEUE_MAX) {
        json_decref(ev);
        obs__agio_count("dropped", 1);
        return;
    }
    json_array_append_new(A.queue, ev);
    if (json_array_size(A.queue) >= AGIO_BATCH && !A.sending)
        uv_timer_start(&agio_timer, on_timer, 0, AGIO_FLUSH_MS);
}

/* The base of every event: type, timestamp, sessionId, runId when a run is known. */
static json_t *base(const char *type, const char *sid, const struct agio_run *run)
{
    json_t *ev = json_pack("{s:s, s:I, s:s}", "type", type, "timestamp", (json_int_t)now_ms(),
                           "sessionId", sid);
    if (run)
        json_object_set_new(ev, "runId", json_string(run->run_id));
    return ev;
}

static json_t *token_usage(const json_t *usage)
{
    json_int_t in = json_integer_value(json_object_get(usage, "promptTokens"));
    json_int_t out = json_integer_value(json_object_get(usage, "completionTokens"));
    return json_pack("{s:I, s:I, s:I}", "input", in, "output", out, "total", in + out);
}

/* ---- from agent events ---- */

static void initialized(const char *sid, const json_t *ev)
{
    if (map_get(&A.seen, sid))
        return;
    if (A.seen.len >= AGIO_SEEN_MAX) {
        map_release(&A.seen);
        map_init(&A.seen);
    }
    map_set(&A.seen, sid, (void *)1);
    struct utsname u;
    bool have_uname = uname(&u) == 0;
    json_t *e = base("agent_initialized", sid, NULL);
    json_t *cfg = json_object();
    const char *provider = json_get_str(ev, "provider"), *model = json_get_str(ev, "model");
    if (provider)
        json_object_set_new(cfg, "modelProvider", json_string(provider));
    if (model)
        json_object_set_new(cfg, "modelName", json_string(model));
    json_object_set_new(e, "config", cfg);
    json_object_set_new(e, "system",
                        json_pack("{s:s, s:s, s:s}", "platform", "linux", "osVersion",
                                  have_uname ? u.release : "", "nodeVersion", "none"));
    push_new(e);
}

static void run_start(const char *sid, const json_t *ev)
{
    initialized(sid, ev);
    struct agio_run *run = map_get(&A.runs, sid);
    if (run == NULL) {
        run = xcalloc(1, sizeof(*run));
        map_set(&A.runs, sid, run);
    }
    xfree(run->error);
    memset(run, 0, sizeof(*run));
    uuid_v4(run->run_id);
    const json_t *opts = json_object_get(ev, "runOptions");
    json_t *e = base("agent_run_start", sid, run);
    /* The input itself is user data: only a placeholder of its size goes out. */
    const char *input = json_get_str(opts, "input");
    char *content = xasprintf("[%zu characters]", input ? strlen(input) : (size_t)0);
    json_object_set_new(e, "content", json_string(content));
    xfree(content);
    json_object_set_new(e, "streaming",
                        json_boolean(json_is_true(json_object_get(opts, "stream"))));
    push_new(e);
}

static void loop_end(const char *sid, struct agio_run *run, const json_t *usage)
{
    if (run->iteration == 0)
        return;
    json_t *e = base("agent_loop_end", sid, run);
    json_object_set_new(e, "iteration", json_integer(run->iteration));
    json_object_set_new(e, "durationMs",
                        json_integer((json_int_t)(mono_ms() - run->loop_start_ms)));
    if (usage)
        json_object_set_new(e, "tokenUsage", token_usage(usage));
    push_new(e);
}

static void run_end(const char *sid, const json_t *ev)
{
    struct agio_run *run = map_del(&A.runs, sid);
    if (run == NULL)
        return;
    loop_end(sid, run, NULL);
    const char *status = json_get_str(ev, "status");
    json_t *e = base("agent_run_end", sid, run);
    json_object_set_new(e, "executionTimeMs",
                        json_integer(json_integer_value(json_object_get(ev, "elapsedMs"))));
    json_object_set_new(e, "loopCount",
                        json_integer(json_integer_value(json_object_get(ev, "iterations"))));
    json_object_set_new(e, "tokenUsage", token_usage(json_object_get(ev, "usage")));
    bool ok = status && strcmp(status, "idle") == 0;
    json_object_set_new(e, "successful", json_boolean(ok));
    if (!ok)
        json_object_set_new(e, "error",
                            json_pack("{s:s, s:s}", "message",
                                      run->error ? run->error
                                      : status   ? status
                                                 : "error",
                                      "code", status ? status : "error"));
    push_new(e);
    xfree(run->error);
    xfree(run);
}

static void assistant_message(const char *sid, struct agio_run *run, const json_t *ev)
{
    if (!A.last_valid)
        return;
    A.last_valid = false;
    json_t *e = base("agent_ttft", sid, run);
    json_object_set_new(e, "ttftMs", json_integer((json_int_t)A.last_ttft_ms));
    push_new(e);
    json_int_t out =
        json_integer_value(json_object_get(json_object_get(ev, "usage"), "completionTokens"));
    e = base("agent_tps", sid, run);
    double secs = A.last_dur_ms > 0 ? (double)A.last_dur_ms / 1000.0 : 0.001;
    json_object_set_new(e, "tps", json_real((double)out / secs));
    json_object_set_new(e, "tokenCount", json_integer(out));
    json_object_set_new(e, "durationMs", json_integer((json_int_t)A.last_dur_ms));
    json_object_set_new(e, "modelName", json_string(A.last_model));
    push_new(e);
}

void obs__agio_event(const char *sid, const char *type, const json_t *ev)
{
    if (!A.on || sid == NULL)
        return;
    if (strcmp(type, "agent_run_start") == 0) {
        run_start(sid, ev);
        return;
    }
    if (strcmp(type, "agent_run_end") == 0) {
        run_end(sid, ev);
        return;
    }
    struct agio_run *run = map_get(&A.runs, sid);
    if (run == NULL)
        return;
    if (strcmp(type, "assistant_message") == 0) {
        assistant_message(sid, run, ev);
    } else if (strcmp(type, "tool_call") == 0) {
        json_t *e = base("tool_call", sid, run);
        json_object_set_new(e, "toolName", json_string(json_get_str(ev, "name")));
        json_object_set_new(e, "toolCallId", json_string(json_get_str(ev, "toolCallId")));
        json_object_set_new(e, "isCustomTool", json_false());
        push_new(e);
    } else if (strcmp(type, "tool_result") == 0) {
        json_t *e = base("tool_result", sid, run);
        json_object_set_new(e, "toolName", json_string(json_get_str(ev, "name")));
        json_object_set_new(e, "toolCallId", json_string(json_get_str(ev, "toolCallId")));
        json_object_set_new(e, "executionTimeMs",
                            json_integer(json_integer_value(json_object_get(ev, "elapsedMs"))));
        json_object_set_new(e, "successful", json_boolean(json_object_get(ev, "error") == NULL));
        const json_t *content = json_object_get(ev, "content");
        json_object_set_new(
            e, "resultSize",
            json_integer((json_int_t)json_dumpb(content, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY)));
        json_object_set_new(e, "contentType",
                            json_string(json_is_string(content) ? "text" : "json"));
        push_new(e);
    } else if (strcmp(type, "system") == 0) {
        const char *level = json_get_str(ev, "level"), *msg = json_get_str(ev, "message");
        if (level && strcmp(level, "error") == 0 && msg) {
            xfree(run->error);
            run->error = xstrdup(msg);
        }
    }
}

void obs_agent_loop(const char *session_id, int iteration)
{
    if (!A.on)
        return;
    struct agio_run *run = map_get(&A.runs, session_id);
    if (run == NULL)
        return;
    loop_end(session_id, run, NULL);
    run->iteration = iteration;
    run->loop_start_ms = mono_ms();
    json_t *e = base("agent_loop_start", session_id, run);
    json_object_set_new(e, "iteration", json_integer(iteration));
    push_new(e);
}

void obs__agio_model_done(const char *model, int status, uint64_t start_ms, uint64_t first_ms)
{
    if (!A.on)
        return;
    A.last_valid = status == 0 && start_ms && first_ms >= start_ms;
    if (!A.last_valid)
        return;
    A.last_ttft_ms = first_ms - start_ms;
    A.last_dur_ms = mono_ms() - start_ms;
    snprintf(A.last_model, sizeof(A.last_model), "%s", model ? model : "");
}

void obs__agio_shutdown(void)
{
    if (!A.on)
        return;
    flush(); /* best effort */
    A.on = false;
    if (A.timer_on) {
        uv_timer_stop(&agio_timer);
        uv_close((uv_handle_t *)&agio_timer, NULL);
    }
    const char *k;
    void *v;
    for (size_t i = 0; map_next(&A.runs, &i, &k, &v);) {
        struct agio_run *run = v;
        xfree(run->error);
        xfree(run);
    }
    map_release(&A.runs);
    map_release(&A.seen);
    json_decref(A.queue);
    xfree(A.url);
    memset(&A, 0, sizeof(A));
}
