/* SPDX-License-Identifier: MIT */
/* run.c -- the agent loop of one query: LLM call, tool calls in order, LLM call, ... until an
 * assistant message without tool calls, maxIterations, an abort, a budget, the run's time limit
 * or an error (anchor-api.md §5). A run is a small state machine driven by the LLM and tool
 * callbacks, the approval decisions of tool calls that need one (RUN_APPROVAL) and two timers:
 * approval expiry and the run's deadline. Exactly one agent_run_end ends every run. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "../obs/obs.h"
#include "../tools/tools.h"
#include "run_int.h"

/* Runs beyond max_concurrent_runs wait here, first come first served. */
static struct list_node waiting = {&waiting, &waiting};
static size_t nwaiting;
static bool shutting_down;
unsigned agent__running;

static void start_waiting(void);

void agent__run_unref(struct run *r)
{
    if (--r->refs > 0)
        return;
    buf_release(&r->think);
    buf_release(&r->compact_text);
    json_decref(r->calls);
    json_decref(r->final_msg);
    json_decref(r->approvals);
    json_decref(r->usage);
    xfree(r);
}

static void make_message_id(char *out, size_t n, const char *prefix)
{
    char rnd[9];
    rand_base36(rnd, 8);
    snprintf(out, n, "%s%lld_%s", prefix, (long long)now_ms(), rnd);
}

static void emit_system(struct agent_session *s, const char *level, const char *msg)
{
    json_t *ev = agent__event_new("system");
    json_object_set_new(ev, "level", json_string(level));
    json_object_set_new(ev, "message", json_string_lossy(msg, strlen(msg)));
    agent__emit_new(s, ev);
}

/* Ends the run: agent_run_end, session back to idle, completion callback. */
void agent__run_finish(struct run *r, enum agent_run_status status, const char *errmsg)
{
    static const char *names[] = {"idle", "aborted", "error"};
    struct agent_session *s = r->s;
    r->state = RUN_DONE;
    r->s = NULL;
    if (r->queued) {
        list_remove(&r->qnode);
        r->queued = false;
        nwaiting--;
    }
    agent__timer_stop(&r->approval_timer);
    agent__timer_stop(&r->deadline);
    obs_span_end(r->tool_span, "run ended"); /* no-ops unless a call was cut off */
    obs_span_end(r->llm_span, "run ended");
    obs_span_end(r->span, status == AGENT_RUN_ERROR ? (errmsg ? errmsg : "error") : NULL);
    s->run = NULL;
    s->status = names[status];
    json_t *ev = agent__event_new("agent_run_end");
    json_object_set_new(ev, "sessionId", json_string(s->id));
    json_object_set_new(ev, "iterations", json_integer(r->iterations));
    json_object_set_new(ev, "elapsedMs", json_integer((json_int_t)(mono_ms() - r->start_ms)));
    json_object_set_new(ev, "status", json_string(names[status]));
    if (r->usage)
        json_object_set(ev, "usage", r->usage);
    agent__emit_new(s, ev);
    if (json_integer_value(json_object_get(r->usage, "llmCalls")) > 0)
        agent__session_save_usage(s);
    if (r->on_done)
        r->on_done(r->done_data, status, r->final_msg, errmsg);
    if (r->counted) {
        agent__running--;
        start_waiting();
    }
    agent__run_unref(r);
}

static void fail(struct run *r, const char *msg)
{
    char *m = xasprintf("Error in agent execution: %s", msg);
    emit_system(r->s, "error", m);
    agent__run_finish(r, AGENT_RUN_ERROR, msg);
    xfree(m);
}

/* ---- LLM callbacks ---- */

static void flush_thinking(struct run *r)
{
    if (r->think.len == 0 || r->think_done)
        return;
    r->think_done = true;
    json_t *ev = agent__event_new("assistant_thinking_message");
    json_object_set_new(ev, "content", json_string_lossy(r->think.data, r->think.len));
    json_object_set_new(ev, "isComplete", json_true());
    json_object_set_new(ev, "thinkingDurationMs",
                        json_integer((json_int_t)(mono_ms() - r->think_start_ms)));
    json_object_set_new(ev, "messageId", json_string(r->message_id));
    agent__emit_new(r->s, ev);
}

static void on_content(void *data, const char *p, size_t len)
{
    struct run *r = data;
    if (len)
        obs_first_token(&r->llm_first_ms); /* a token, not an empty role chunk */
    flush_thinking(r);
    if (len)
        agent__emit_delta(r->s, "assistant_streaming_message", p, len, r->message_id);
}

static void on_reasoning(void *data, const char *p, size_t len)
{
    struct run *r = data;
    if (len == 0 || r->think_done)
        return;
    obs_first_token(&r->llm_first_ms);
    if (r->think.len == 0)
        r->think_start_ms = mono_ms();
    buf_append(&r->think, p, len); /* capped by llm's line cap times chunks; see buf max */
    agent__emit_delta(r->s, "assistant_streaming_thinking_message", p, len, r->message_id);
}

static void emit_tool_delta(struct run *r, const char *id, const char *name, const char *args,
                            size_t len, bool complete)
{
    json_t *ev = agent__event_new("assistant_streaming_tool_call");
    json_object_set_new(ev, "toolCallId", json_string_lossy(id, strlen(id)));
    json_object_set_new(ev, "toolName", json_string_lossy(name, strlen(name)));
    json_object_set_new(ev, "arguments", json_string_lossy(args, len));
    json_object_set_new(ev, "isComplete", json_boolean(complete));
    json_object_set_new(ev, "messageId", json_string(r->message_id));
    agent__emit_new(r->s, ev);
}

static void on_tool_call_delta(void *data, size_t index, const char *id, const char *name,
                               const char *args, size_t len)
{
    struct run *r = data;
    obs_first_token(&r->llm_first_ms);
    flush_thinking(r);
    emit_tool_delta(r, id, name, args, len, false);
}

static json_t *tool_calls_json(const struct llm_result *res)
{
    json_t *a = json_array();
    for (size_t i = 0; i < res->n_tool_calls; i++) {
        const struct llm_tool_call *c = &res->tool_calls[i];
        json_array_append_new(
            a, json_pack("{s:o, s:s, s:{s:o, s:o}}", "id", json_string_lossy(c->id, strlen(c->id)),
                         "type", "function", "function", "name",
                         json_string_lossy(c->name, strlen(c->name)), "arguments",
                         json_string_lossy(c->arguments, strlen(c->arguments))));
    }
    return a;
}

static void on_llm_done(void *data, int status, const struct llm_result *res, const char *errmsg)
{
    struct run *r = data;
    r->llm = NULL; /* freed by llm after we return */
    obs_model_done(r->llm_span, r->cfg->provider, r->cfg->model, status, errmsg, r->llm_start_ms,
                   r->llm_first_ms, res ? res->usage : NULL);
    flush_thinking(r);
    if (status != LLM_OK && !r->compact_retried && agent__context_error(errmsg)) {
        /* "context length exceeded": compact once and try again */
        r->compact_retried = true;
        r->compacted = false;
        r->iterations--;
        if (agent__compact_start(r, r->prompt_chars, true))
            return;
        r->iterations++;
    }
    if (status != LLM_OK) {
        fail(r, errmsg ? errmsg : "LLM request failed");
        return;
    }
    r->compacted = false; /* the next call may compact again */
    json_t *calls = tool_calls_json(res);
    for (size_t i = 0; i < res->n_tool_calls; i++)
        emit_tool_delta(r, res->tool_calls[i].id, res->tool_calls[i].name, "", 0, true);
    const char *finish_reason = res->finish_reason && *res->finish_reason ? res->finish_reason
                                : res->n_tool_calls                        ? "tool_calls"
                                                                           : "stop";
    json_t *ev = agent__event_new("assistant_message");
    json_object_set_new(ev, "content", json_string_lossy(res->content, strlen(res->content)));
    if (res->n_tool_calls)
        json_object_set(ev, "toolCalls", calls);
    json_object_set_new(ev, "finishReason", json_string(finish_reason));
    json_object_set_new(ev, "messageId", json_string(r->message_id));
    json_object_set_new(ev, "elapsedMs", json_integer((json_int_t)(mono_ms() - r->llm_start_ms)));
    size_t out_chars = strlen(res->content) + strlen(res->reasoning);
    for (size_t i = 0; i < res->n_tool_calls; i++)
        out_chars += strlen(res->tool_calls[i].name) + strlen(res->tool_calls[i].arguments);
    json_t *usage = agent__usage_new(res->usage, r->prompt_chars, out_chars);
    json_object_set_new(ev, "usage", usage);
    agent__usage_add(r->usage, usage);
    json_object_set_new(r->usage, "llmCalls", json_integer(r->iterations));
    if (r->s->usage == NULL)
        r->s->usage = json_object();
    agent__usage_add(r->s->usage, usage);
    /* Prompt engineering: the event also carries the unparsed text, and the history keeps it
     * (the llm layer sends it back as the model wrote it). */
    bool raw = res->raw_content && strcmp(res->raw_content, res->content) != 0;
    if (raw)
        json_object_set_new(ev, "rawContent",
                            json_string_lossy(res->raw_content, strlen(res->raw_content)));
    json_t *msg = json_pack("{s:s, s:O}", "role", "assistant", "content",
                            json_object_get(ev, raw ? "rawContent" : "content"));
    if (res->n_tool_calls)
        json_object_set(msg, "tool_calls", calls);
    /* A signed thinking block (Anthropic) must come back with the turn that made the tool
     * calls; the OpenAI wire drops the signature, and the reasoning unless the provider takes
     * it back (llm_replays_reasoning). */
    if (res->reasoning && *res->reasoning)
        json_object_set_new(msg, "reasoning_content",
                            json_string_lossy(res->reasoning, strlen(res->reasoning)));
    if (res->reasoning_signature && *res->reasoning_signature)
        json_object_set_new(msg, "reasoning_signature", json_string(res->reasoning_signature));
    json_array_append_new(r->s->history, msg);
    json_decref(r->final_msg);
    r->final_msg = json_incref(ev);
    agent__emit_new(r->s, ev);
    if (res->n_tool_calls == 0) {
        json_decref(calls);
        agent__run_finish(r, AGENT_RUN_IDLE, NULL);
        return;
    }
    json_decref(r->calls);
    r->calls = calls;
    r->call_idx = 0;
    r->state = RUN_TOOLS;
    if (agent__over_token_budget(r))
        return;
    agent__request_approvals(r);
    agent__next_tool(r);
}

/* ---- tools ---- */

/* Text for the model, cut to the configured size (users hit "prompt too long" on big results). */
static json_t *capped_text(const char *p, size_t len)
{
    size_t max = agent__opts.max_tool_result_bytes;
    if (max == 0 || len <= max)
        return json_string_lossy(p, len);
    while (max > 0 && ((unsigned char)p[max] & 0xc0) == 0x80)
        max--; /* do not cut a UTF-8 sequence */
    char *t = xasprintf("%.*s\n[truncated: the result is %zu bytes, showing the first %zu]",
                        (int)max, p, len, max);
    json_t *j = json_string_lossy(t, strlen(t));
    xfree(t);
    return j;
}

static bool is_image_part(const json_t *part)
{
    const char *t = json_get_str(part, "type");
    return t && strcmp(t, "image_url") == 0;
}

/* As the original's native engine (agent-tools-llm.md §2.4): the result becomes content parts
 * (mcp_content_to_parts: images as image_url, everything else JSON text), the text goes into one
 * tool message and the images, if any, into a user message of their own (tool messages take
 * text only). */
void agent__history_tool(struct agent_session *s, const char *call_id, const json_t *content)
{
    json_t *parts = mcp_content_to_parts(content);
    struct buf text;
    buf_init(&text, (size_t)-1);
    json_t *images = json_array();
    size_t i;
    json_t *part;
    json_array_foreach(parts, i, part)
    {
        const char *t = json_get_str(part, "text");
        if (is_image_part(part)) {
            json_array_append(images, part);
        } else if (t) {
            if (text.len)
                buf_appendc(&text, '\n');
            buf_appends(&text, t);
        }
    }
    json_array_append_new(s->history, json_pack("{s:s, s:s, s:o}", "role", "tool", "tool_call_id",
                                                call_id, "content",
                                                capped_text(buf_str(&text), text.len)));
    if (json_array_size(images))
        json_array_append_new(s->history,
                              json_pack("{s:s, s:O}", "role", "user", "content", images));
    json_decref(images);
    json_decref(parts);
    buf_release(&text);
}

static void emit_tool_result(struct run *r, const char *call_id, const char *name,
                             const json_t *content, const char *error, uint64_t elapsed_ms)
{
    json_t *ev = agent__event_new("tool_result");
    json_object_set_new(ev, "toolCallId", json_string(call_id));
    json_object_set_new(ev, "name", json_string(name));
    json_object_set(ev, "content", (json_t *)content);
    json_object_set_new(ev, "elapsedMs", json_integer((json_int_t)elapsed_ms));
    if (error)
        json_object_set_new(ev, "error", json_string_lossy(error, strlen(error)));
    agent__emit_new(r->s, ev);
    agent__history_tool(r->s, call_id, content);
}

const char *agent__call_field(const json_t *call, const char *key)
{
    const char *v = json_get_str(json_object_get(call, "function"), key);
    return v ? v : "";
}

static void on_tool_done(void *data, const struct tool_result *res)
{
    struct run *r = data;
    r->tool = NULL;
    obs_span_end(r->tool_span, res->error);
    if (r->state != RUN_DONE) {
        const json_t *call = json_array_get(r->calls, r->call_idx);
        emit_tool_result(r, json_get_str(call, "id"), agent__call_field(call, "name"), res->content,
                         res->error, mono_ms() - r->tool_start_ms);
        r->call_idx++;
        agent__next_tool(r);
    }
    agent__run_unref(r);
}

/* Parses the streamed argument text; "" (and whitespace) means {}. */
json_t *agent__parse_args(const char *text, char **err)
{
    const char *p = text;
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    if (*p == '\0')
        return json_object();
    json_error_t je;
    json_t *j = json_loads(p, JSON_DECODE_ANY, &je);
    if (j == NULL || !json_is_object(j)) {
        *err = j ? xstrdup("tool arguments must be a JSON object")
                 : xasprintf("Invalid JSON in tool arguments: %s", je.text);
        json_decref(j);
        return NULL;
    }
    return j;
}

/* The original's path-rewriting hook (anchor-api.md §6.4): non-empty relative paths of the
 * file and command tools are resolved against the workspace before the call, and the tool_call
 * event shows the rewritten arguments. Confinement still happens in the tool. */
static void rewrite_one(json_t *args, const char *key, const char *ws)
{
    const char *p = json_get_str(args, key);
    if (p == NULL || *p == '\0' || *p == '/')
        return;
    while (p[0] == '.' && p[1] == '/')
        p += 2;
    char *abs = strcmp(p, ".") == 0 ? xstrdup(ws) : xasprintf("%s/%s", ws, p);
    json_object_set_new(args, key, json_string_lossy(abs, strlen(abs)));
    xfree(abs);
}

static void rewrite_paths(json_t *args, const char *tool, const char *ws)
{
    static const char *path_tools[] = {"write_file",     "read_file",      "edit_file",
                                       "create_directory", "list_directory", "directory_tree",
                                       "search_files",   "get_file_info"};
    for (size_t i = 0; i < sizeof(path_tools) / sizeof(path_tools[0]); i++)
        if (strcmp(tool, path_tools[i]) == 0)
            rewrite_one(args, "path", ws);
    if (strcmp(tool, "move_file") == 0) {
        rewrite_one(args, "source", ws);
        rewrite_one(args, "destination", ws);
    }
    if (strcmp(tool, "run_command") == 0 || strcmp(tool, "run_script") == 0)
        rewrite_one(args, "cwd", ws);
    json_t *paths = json_object_get(args, "paths");
    if (strcmp(tool, "read_multiple_files") == 0 && json_is_array(paths)) {
        for (size_t i = 0; i < json_array_size(paths); i++) {
            json_t *holder = json_pack("{s:O}", "p", json_array_get(paths, i));
            rewrite_one(holder, "p", ws);
            json_array_set(paths, i, json_object_get(holder, "p"));
            json_decref(holder);
        }
    }
}

static bool start_tool(struct run *r, const json_t *call)
{
    const char *id = json_get_str(call, "id");
    const char *name = agent__call_field(call, "name");
    char *err = NULL;
    json_t *args = agent__parse_args(agent__call_field(call, "arguments"), &err);
    if (args == NULL) {
        /* As the original: a parse failure comes before the tool_call event (§5.3). */
        char *msg = xasprintf("Error: %s", err);
        json_t *content = json_string_lossy(msg, strlen(msg));
        emit_tool_result(r, id, name, content, err, 0);
        json_decref(content);
        xfree(msg);
        xfree(err);
        return false;
    }
    rewrite_paths(args, name, r->s->workspace);
    json_t *ev = agent__event_new("tool_call");
    json_object_set_new(ev, "toolCallId", json_string(id));
    json_object_set_new(ev, "name", json_string(name));
    json_object_set(ev, "arguments", args);
    r->tool_start_ms = mono_ms();
    json_object_set_new(ev, "startTime", json_integer((json_int_t)now_ms()));
    const json_t *desc = tools_describe(name);
    json_object_set_new(ev, "tool", desc ? json_deep_copy(desc)
                                         : json_pack("{s:s, s:s, s:{}}", "name", name,
                                                     "description", "Unknown tool", "schema"));
    agent__emit_new(r->s, ev);
    r->refs++;
    r->tool_span = obs_tool_span_start(r->span, name);
    uint32_t outer = obs_span_enter(r->tool_span); /* MCP-over-HTTP, search: its traceparent */
    int rc = tool_run_start(agent__opts.loop, r->s->workspace, name, args, on_tool_done, r,
                            &r->tool);
    obs_span_enter(outer);
    json_decref(args);
    if (rc < 0) {
        r->refs--;
        json_t *content = json_string("Error: cannot start tool");
        emit_tool_result(r, id, name, content, "cannot start tool", 0);
        json_decref(content);
        return false;
    }
    return true;
}

/* A call that will not run: its card, then a failed result the model reads. */
static void refuse_call(struct run *r, const json_t *call, const char *why)
{
    const char *id = json_get_str(call, "id");
    const char *name = agent__call_field(call, "name");
    char *err = NULL;
    json_t *args = agent__parse_args(agent__call_field(call, "arguments"), &err);
    json_t *ev = agent__event_new("tool_call");
    json_object_set_new(ev, "toolCallId", json_string(id));
    json_object_set_new(ev, "name", json_string(name));
    json_object_set_new(ev, "arguments", args ? args : json_object());
    json_object_set_new(ev, "startTime", json_integer((json_int_t)now_ms()));
    agent__emit_new(r->s, ev);
    xfree(err);
    char *msg = xasprintf("Error: %s", why);
    json_t *content = json_string_lossy(msg, strlen(msg));
    emit_tool_result(r, id, name, content, why, 0);
    json_decref(content);
    xfree(msg);
}

void agent__next_tool(struct run *r)
{
    while (r->call_idx < json_array_size(r->calls)) {
        const json_t *call = json_array_get(r->calls, r->call_idx);
        const char *policy = agent__approval_policy(agent__call_field(call, "name"));
        const json_t *entry = json_object_get(r->approvals, json_get_str(call, "id"));
        if (strcmp(policy, "deny") == 0) {
            refuse_call(r, call, "denied by policy (tools.approval)");
            r->call_idx++;
            continue;
        }
        if (entry && !json_is_boolean(json_object_get(entry, "approved"))) {
            r->state = RUN_APPROVAL; /* agent_tool_approval or the expiry timer continues */
            return;
        }
        r->state = RUN_TOOLS;
        if (entry && json_is_false(json_object_get(entry, "approved"))) {
            const char *why = json_get_str(entry, "reason");
            char *m = xasprintf("denied by the user: %s", why && *why ? why : "no reason given");
            refuse_call(r, call, m);
            xfree(m);
            r->call_idx++;
            continue;
        }
        uint64_t limit = agent__opts.budget.tool_calls_per_run;
        if (limit && r->tool_calls >= limit) {
            agent__stop_run(r, "maxToolCallsPerRun", r->tool_calls + 1, limit, "");
            return;
        }
        r->tool_calls++;
        if (start_tool(r, call))
            return; /* on_tool_done continues */
        r->call_idx++;
    }
    json_decref(r->approvals);
    r->approvals = NULL;
    r->state = RUN_LLM;
    agent__next_iteration(r);
}

/* ---- iterations ---- */

static json_t *system_message(const struct run *r)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    buf_appendf(&b,
                "You are Agent TARS, a multimodal AI agent that solves tasks step by step. Use the "
                "tools you are given to read, write and list files; reply with a final answer when "
                "the task is done.\n\nYour working directory is %s. Relative paths refer to it; "
                "you cannot reach files outside it.",
                r->s->workspace);
    if (agent__opts.instructions && *agent__opts.instructions)
        buf_appendf(&b, "\n\n%s", agent__opts.instructions);
    char when[64];
    time_t t = time(NULL);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(when, sizeof(when), "%m/%d/%Y, %I:%M:%S %p", &tm);
    buf_appendf(&b, "\n\nCurrent time: %s", when);
    json_t *m = json_pack("{s:s, s:o}", "role", "system", "content",
                          json_string_lossy(b.data, b.len));
    buf_release(&b);
    return m;
}

/* Keeps the newest context.maxImagesCount images; older ones become a text part, as the
 * original does. Messages are shared with the history, so a message is copied before it is
 * changed. */
static void limit_images(json_t *messages)
{
    size_t seen = 0, max = agent__opts.max_images;
    for (size_t i = json_array_size(messages); i-- > 0;) {
        json_t *msg = json_array_get(messages, i);
        json_t *parts = json_object_get(msg, "content");
        if (!json_is_array(parts))
            continue;
        json_t *copy = NULL;
        for (size_t k = json_array_size(parts); k-- > 0;) {
            if (!is_image_part(json_array_get(parts, k)) || seen++ < max)
                continue;
            if (copy == NULL) {
                copy = json_deep_copy(msg);
                json_array_set(messages, i, copy);
                json_decref(copy);
            }
            json_array_set_new(json_object_get(copy, "content"), k,
                               json_pack("{s:s, s:s}", "type", "text", "text",
                                         "[Image omitted to conserve context]"));
        }
    }
}

static void max_iterations_reached(struct run *r)
{
    char *m = xasprintf("Maximum iterations reached (%d), forcing termination",
                        agent__opts.max_iterations);
    emit_system(r->s, "warning", m);
    xfree(m);
    json_t *ev = agent__event_new("assistant_message");
    json_object_set_new(
        ev, "content",
        json_string("Sorry, I could not complete this task. Maximum iterations reached."));
    json_object_set_new(ev, "finishReason", json_string("max_iterations"));
    make_message_id(r->message_id, sizeof(r->message_id), "msg_");
    json_object_set_new(ev, "messageId", json_string(r->message_id));
    json_decref(r->final_msg);
    r->final_msg = json_incref(ev);
    agent__emit_new(r->s, ev);
    agent__run_finish(r, AGENT_RUN_IDLE, NULL);
}

static const struct llm_callbacks llm_cbs = {
    .on_content = on_content,
    .on_reasoning = on_reasoning,
    .on_tool_call_delta = on_tool_call_delta,
    .on_done = on_llm_done,
};

void agent__next_iteration(struct run *r)
{
    if (r->iterations >= agent__opts.max_iterations) {
        max_iterations_reached(r);
        return;
    }
    r->iterations++;
    obs_agent_loop(r->s->id, r->iterations);
    make_message_id(r->message_id, sizeof(r->message_id), "msg_");
    buf_reset(&r->think);
    r->think_done = false;
    r->llm_start_ms = mono_ms();
    json_t *messages = json_array();
    json_array_append_new(messages, system_message(r));
    json_array_extend(messages, r->s->history);
    limit_images(messages);
    r->prompt_chars = json_dumpb(messages, NULL, 0, JSON_COMPACT);
    if (agent__compact_start(r, r->prompt_chars, false)) {
        r->iterations--; /* the summary call is not an iteration; this one comes again */
        json_decref(messages);
        return;
    }
    r->llm_first_ms = 0;
    r->llm_span = obs_model_span_start(r->span, r->cfg->provider, r->cfg->model);
    int rc = llm_request_start(agent__opts.llm, r->cfg, messages,
                               tools_openai_schema(), &llm_cbs, r, &r->llm);
    obs_span_leave();
    json_decref(messages);
    if (rc < 0)
        fail(r, "cannot start the LLM request");
}

/* ---- public ---- */

/* Gives free slots to waiting runs, oldest first. */
static void start_waiting(void)
{
    while (!shutting_down && !list_empty(&waiting) &&
           (agent__opts.max_concurrent_runs == 0 ||
            agent__running < agent__opts.max_concurrent_runs)) {
        struct run *r = LIST_ENTRY(waiting.next, struct run, qnode);
        list_remove(&r->qnode);
        nwaiting--;
        r->queued = false;
        r->counted = true;
        agent__running++;
        agent__next_iteration(r);
    }
}

static void emit_run_start(struct agent_session *s, const json_t *query, bool stream)
{
    json_t *ev = agent__event_new("user_message");
    json_object_set(ev, "content", (json_t *)query);
    agent__emit_new(s, ev);
    ev = agent__event_new("agent_run_start");
    json_object_set_new(ev, "sessionId", json_string(s->id));
    json_t *input = json_is_string(query) ? json_incref((json_t *)query)
                                          : json_string("[Complex multimodal input]");
    json_object_set_new(ev, "runOptions", json_pack("{s:o, s:s, s:b}", "input", input,
                                                    "sessionId", s->id, "stream", stream));
    json_object_set_new(ev, "provider", json_string(s->run->cfg->provider));
    json_object_set_new(ev, "model", json_string(s->run->cfg->model));
    agent__emit_new(s, ev);
}

/* The state every run starts with, fresh or resumed: its clock and deadline, its usage sum. */
static void run_begin(struct run *r, struct agent_session *s)
{
    r->s = s;
    r->refs = 1;
    r->state = RUN_LLM;
    r->start_ms = mono_ms();
    r->span = obs_span_start(obs_current_span(), "invoke_agent", 1);
    r->usage = json_pack("{s:i, s:i, s:i, s:i}", "promptTokens", 0, "completionTokens", 0,
                         "totalTokens", 0, "llmCalls", 0);
    buf_init(&r->think, 16 << 20);
    buf_init(&r->compact_text, 1 << 20);
    list_init(&r->qnode);
    uint64_t limit = agent__opts.run_max_ms;
    if (agent__opts.budget.run_ms && (limit == 0 || agent__opts.budget.run_ms < limit))
        limit = agent__opts.budget.run_ms;
    if (limit)
        r->deadline = agent__timer_start(r, agent__on_deadline, limit);
    r->cfg = agent__session_model(s);
    s->run = r;
    s->status = "executing";
}

static bool slots_full(void)
{
    return agent__opts.max_concurrent_runs && agent__running >= agent__opts.max_concurrent_runs;
}

int agent_run_check(const struct agent_session *s)
{
    if (s->run)
        return -EBUSY;
    if (agent__opts.budget.tokens_per_session &&
        agent__usage_total(s->usage) >= agent__opts.budget.tokens_per_session)
        return -EDQUOT;
    if (slots_full() && nwaiting >= agent__opts.max_queued_runs)
        return -EAGAIN;
    return 0;
}

int agent_run_start(struct agent_session *s, const json_t *query, bool stream, agent_done_cb on_done,
                    void *data)
{
    int rc = agent_run_check(s);
    if (rc < 0)
        return rc;
    bool full = slots_full();
    struct run *r = xcalloc(1, sizeof(*r));
    r->stream = stream;
    r->on_done = on_done;
    r->done_data = data;
    run_begin(r, s);
    emit_run_start(s, query, stream);
    json_array_append_new(s->history,
                          json_pack("{s:s, s:O}", "role", "user", "content", query));
    if (agent__opts.model_error && r->cfg == agent__opts.llm_cfg) {
        emit_system(s, "error", agent__opts.model_error);
        agent__run_finish(r, AGENT_RUN_ERROR, agent__opts.model_error);
        return 0;
    }
    if (full) {
        r->queued = true;
        list_insert_tail(&waiting, &r->qnode);
        nwaiting++;
        return 0;
    }
    r->counted = true;
    agent__running++;
    agent__next_iteration(r);
    return 0;
}

void agent__run_resume(struct agent_session *s, const json_t *calls, size_t call_idx,
                       json_t *approvals)
{
    struct run *r = xcalloc(1, sizeof(*r));
    run_begin(r, s);
    r->calls = json_incref((json_t *)calls);
    r->call_idx = call_idx;
    r->approvals = approvals;
    r->state = RUN_TOOLS;
    r->counted = true; /* it held a slot before the restart */
    agent__running++;
    log_info("sess %s: resuming the run that waits for tool approval", s->id);
    agent__approval_timer_arm(r);
    agent__next_tool(r);
}

void agent_run_counts(unsigned *running, unsigned *queued)
{
    *running = agent__running;
    *queued = (unsigned)nwaiting;
}

void agent__runs_abort_all(void)
{
    shutting_down = true;
}

void agent_run_forget(struct agent_session *s, void *data)
{
    if (s->run && s->run->done_data == data)
        s->run->on_done = NULL;
}

bool agent_abort(struct agent_session *s)
{
    struct run *r = s->run;
    if (r == NULL)
        return false;
    if (r->llm) {
        obs_model_done(r->llm_span, r->cfg->provider, r->cfg->model, OBS_MODEL_ABORTED, NULL,
                       r->llm_start_ms, r->llm_first_ms, NULL);
        llm_request_cancel(r->llm);
        r->llm = NULL;
    }
    if (r->tool)
        tool_run_abort(r->tool); /* its on_done still comes, and is ignored */
    if (r->state == RUN_TOOLS || r->state == RUN_APPROVAL) {
        /* Every tool call of the last assistant message needs an answer in the history, or the
         * next request is invalid for the provider. */
        json_t *aborted = json_string("Error: Request was aborted");
        for (size_t i = r->call_idx; i < json_array_size(r->calls); i++)
            agent__history_tool(s, json_get_str(json_array_get(r->calls, i), "id"), aborted);
        json_decref(aborted);
    }
    r->state = RUN_DONE;
    emit_system(s, "warning", "Request was aborted");
    json_t *ev = agent__event_new("assistant_message");
    json_object_set_new(ev, "content", json_string("Request was aborted"));
    json_object_set_new(ev, "finishReason", json_string("abort"));
    make_message_id(r->message_id, sizeof(r->message_id), "msg_abort_");
    json_object_set_new(ev, "messageId", json_string(r->message_id));
    json_decref(r->final_msg);
    r->final_msg = json_incref(ev);
    agent__emit_new(s, ev);
    agent__run_finish(r, AGENT_RUN_ABORTED, NULL);
    return true;
}
