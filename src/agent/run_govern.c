/* SPDX-License-Identifier: MIT */
/* run_govern.c -- what governs a run, applied to it (the rules themselves are in govern.c):
 * tool approvals (requests, decisions, expiry, suspension across a restart), the budgets and
 * the run's deadline, which stop a run at once. Shares struct run with run.c (run_int.h). */
#include <errno.h>
#include <string.h>

#include "../core/log.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "../tools/tools.h"
#include "run_int.h"

static void timer_closed(uv_handle_t *h)
{
    struct run_timer *t = h->data;
    agent__run_unref(t->r);
    xfree(t);
}

struct run_timer *agent__timer_start(struct run *r, uv_timer_cb cb, uint64_t ms)
{
    struct run_timer *t = xcalloc(1, sizeof(*t));
    t->r = r;
    r->refs++;
    uv_timer_init(agent__opts.loop, &t->t);
    t->t.data = t;
    uv_timer_start(&t->t, cb, ms, 0);
    return t;
}

void agent__timer_stop(struct run_timer **t)
{
    if (*t) {
        uv_close((uv_handle_t *)&(*t)->t, timer_closed);
        *t = NULL;
    }
}

/* Stops the run at once for a budget or the run's time limit: the model stream is cut, a
 * running tool is ended, and the run ends with status error. */
void agent__stop_run(struct run *r, const char *budget, uint64_t used, uint64_t limit,
                     const char *unit)
{
    if (r->llm) {
        llm_request_cancel(r->llm);
        r->llm = NULL;
    }
    if (r->tool)
        tool_run_abort(r->tool); /* its on_done still comes, and is ignored */
    if (r->state == RUN_TOOLS || r->state == RUN_APPROVAL) {
        json_t *stopped = json_string("Error: the run was stopped before this tool call");
        for (size_t i = r->call_idx; i < json_array_size(r->calls); i++)
            agent__history_tool(r->s, json_get_str(json_array_get(r->calls, i), "id"), stopped);
        json_decref(stopped);
    }
    r->state = RUN_DONE;
    char *msg = strcmp(budget, "run.maxMs") == 0
                    ? xasprintf("run time limit reached: run.maxMs (%llu of %llu %s)",
                                (unsigned long long)used, (unsigned long long)limit, unit)
                    : xasprintf("budget exceeded: %s (%llu of %llu%s%s)", budget,
                                (unsigned long long)used, (unsigned long long)limit,
                                *unit ? " " : "", unit);
    json_t *ev = agent__event_new("system");
    json_object_set_new(ev, "level", json_string("error"));
    json_object_set_new(ev, "message", json_string(msg));
    json_object_set_new(ev, "code", json_string(strcmp(budget, "run.maxMs") == 0
                                                    ? "run_timeout"
                                                    : "budget_exceeded"));
    json_object_set_new(ev, "budget", json_string(budget));
    agent__emit_new(r->s, ev);
    agent__run_finish(r, AGENT_RUN_ERROR, msg);
    xfree(msg);
}

void agent__on_deadline(uv_timer_t *t)
{
    struct run *r = ((struct run_timer *)t->data)->r;
    if (r->state == RUN_DONE || r->s == NULL)
        return;
    uint64_t used = mono_ms() - r->start_ms;
    bool budget = agent__opts.budget.run_ms &&
                  (agent__opts.run_max_ms == 0 || agent__opts.budget.run_ms <= agent__opts.run_max_ms);
    agent__stop_run(r, budget ? "maxRunMs" : "run.maxMs", used,
             budget ? agent__opts.budget.run_ms : agent__opts.run_max_ms, "ms");
}

/* Tokens of this run and of the session against their budgets; stops the run when one is
 * used up. Returns true if it stopped. */
bool agent__over_token_budget(struct run *r)
{
    uint64_t run_used = agent__usage_total(r->usage);
    uint64_t limit = agent__opts.budget.tokens_per_run;
    if (limit && run_used >= limit) {
        agent__stop_run(r, "maxTokensPerRun", run_used, limit, "tokens");
        return true;
    }
    limit = agent__opts.budget.tokens_per_session;
    uint64_t sess_used = agent__usage_total(r->s->usage);
    if (limit && sess_used >= limit) {
        agent__stop_run(r, "maxTokensPerSession", sess_used, limit, "tokens");
        return true;
    }
    return false;
}


static void approval_decide(struct run *r, json_t *entry, bool approved, const char *reason,
                            const char *by)
{
    json_object_set_new(entry, "approved", json_boolean(approved));
    json_object_set_new(entry, "reason", reason ? json_string_lossy(reason, strlen(reason))
                                                : json_null());
    json_t *ev = agent__event_new("tool_approval_result");
    json_object_set(ev, "toolCallId", json_object_get(entry, "toolCallId"));
    json_object_set_new(ev, "approved", json_boolean(approved));
    json_object_set(ev, "reason", json_object_get(entry, "reason"));
    json_object_set_new(ev, "by", json_string(by));
    agent__emit_new(r->s, ev);
}

static void on_approval_expiry(uv_timer_t *t);

/* Re-arms the expiry timer for the earliest undecided request. */
void agent__approval_timer_arm(struct run *r)
{
    agent__timer_stop(&r->approval_timer);
    int64_t first = 0;
    const char *k;
    json_t *e;
    json_object_foreach(r->approvals, k, e) if (!json_is_boolean(json_object_get(e, "approved")))
    {
        int64_t at = json_integer_value(json_object_get(e, "expiresAt"));
        if (first == 0 || at < first)
            first = at;
    }
    if (first) {
        int64_t wait = first - now_ms();
        r->approval_timer = agent__timer_start(r, on_approval_expiry, wait > 0 ? (uint64_t)wait : 0);
    }
}

static void on_approval_expiry(uv_timer_t *t)
{
    struct run *r = ((struct run_timer *)t->data)->r;
    if (r->state == RUN_DONE || r->s == NULL)
        return;
    int64_t now = now_ms();
    const char *k;
    json_t *e;
    json_object_foreach(r->approvals, k, e) if (!json_is_boolean(json_object_get(e, "approved")) &&
                                                json_integer_value(json_object_get(e, "expiresAt")) <= now)
        approval_decide(r, e, false, "approval timed out", "timeout");
    agent__approval_timer_arm(r);
    if (r->state == RUN_APPROVAL)
        agent__next_tool(r);
}

/* Emits a tool_approval_request for every call of the turn whose policy is "ask", so that all
 * of them can be decided at once; the calls still run in order. */
void agent__request_approvals(struct run *r)
{
    json_decref(r->approvals);
    r->approvals = json_object();
    int64_t expires = now_ms() + (int64_t)agent__opts.approval_timeout_ms;
    size_t i;
    json_t *call;
    json_array_foreach(r->calls, i, call)
    {
        const char *name = agent__call_field(call, "name");
        const char *id = json_get_str(call, "id");
        if (id == NULL || strcmp(agent__approval_policy(name), "ask") != 0)
            continue;
        char *err = NULL;
        json_t *args = agent__parse_args(agent__call_field(call, "arguments"), &err);
        if (args == NULL)
            args = json_string_lossy(agent__call_field(call, "arguments"),
                                     strlen(agent__call_field(call, "arguments")));
        xfree(err);
        json_t *entry = json_pack("{s:s, s:s, s:o, s:I}", "toolCallId", id, "name", name,
                                  "arguments", args, "expiresAt", (json_int_t)expires);
        json_object_set_new(r->approvals, id, entry);
        json_t *ev = agent__event_new("tool_approval_request");
        json_object_update(ev, entry);
        agent__emit_new(r->s, ev);
    }
    agent__approval_timer_arm(r);
}

int agent_tool_approval(struct agent_session *s, const char *id, bool approved,
                        const char *reason, const char *by)
{
    struct run *r = s->run;
    json_t *e = r && id ? json_object_get(r->approvals, id) : NULL;
    if (e == NULL || json_is_boolean(json_object_get(e, "approved")) || r->state == RUN_DONE)
        return -ENOENT;
    approval_decide(r, e, approved, reason, by);
    agent__approval_timer_arm(r);
    if (r->state == RUN_APPROVAL)
        agent__next_tool(r);
    return 0;
}

json_t *agent_session_pending_approvals(const struct agent_session *s)
{
    json_t *out = json_array();
    const char *k;
    json_t *e;
    if (s->run)
        json_object_foreach(s->run->approvals, k, e) if (!json_is_boolean(
                                                           json_object_get(e, "approved")))
            json_array_append_new(out, json_pack("{s:O, s:O, s:O, s:O}", "toolCallId",
                                                 json_object_get(e, "toolCallId"), "name",
                                                 json_object_get(e, "name"), "arguments",
                                                 json_object_get(e, "arguments"), "expiresAt",
                                                 json_object_get(e, "expiresAt")));
    return out;
}

json_t *agent_session_usage(const struct agent_session *s)
{
    return s->usage ? json_deep_copy(s->usage) : NULL;
}

bool agent__run_suspend(struct agent_session *s)
{
    struct run *r = s->run;
    if (r == NULL || r->state != RUN_APPROVAL)
        return false;
    /* No events: the stored log still shows the run waiting, and the next start resumes it. */
    agent__timer_stop(&r->approval_timer);
    agent__timer_stop(&r->deadline);
    if (r->counted)
        agent__running--;
    r->state = RUN_DONE;
    r->s = NULL;
    s->run = NULL;
    agent__run_unref(r);
    return true;
}

