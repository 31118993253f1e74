/* SPDX-License-Identifier: MIT */
/* agent.h -- sessions and the agent loop. A session owns its LLM history, its workspace and at
 * most one run; every event a run emits is serialized once, numbered, kept in the session's
 * event log and handed to every subscriber (SSE streams today, Socket.IO later). All on the loop
 * thread. Event schema: anchor-api.md §4.2; loop semantics: §5. */
#ifndef AGENT_AGENT_H
#define AGENT_AGENT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../core/list.h"
#include "../llm/llm.h"

struct store;

struct agent_options {
    uv_loop_t *loop;
    struct llm_ctx *llm;
    const struct llm_config *llm_cfg; /* borrowed for the process lifetime */
    const char *model_error;          /* non-NULL: every run fails with this message */
    const char *workspace;            /* configured workspace (see workspace_path) */
    bool isolate_sessions;
    int max_iterations;
    const char *instructions;         /* appended to the system prompt, or NULL */
    size_t max_log_events;            /* events kept in memory per session (default 1000) */
    struct store *store;              /* where sessions and events live (required) */
    unsigned max_concurrent_runs;     /* 0 = unlimited; more runs wait in a FIFO queue */
    unsigned max_queued_runs;         /* beyond this agent_run_start answers -EAGAIN */
    size_t max_images;                /* images kept in what the model sees (default 5) */
    size_t max_tool_result_bytes;     /* tool result text cut to this for the model (0 = no cap) */
    size_t max_loaded_sessions;       /* sessions kept in memory (0 = no cap): past it, idle ones
                                       * are unloaded least recently used first (store needed) */
    /* governed runs (agent_govern_config reads them; 0 = no limit) */
    const json_t *approval;           /* tools.approval: name or glob -> "auto"|"ask"|"deny" */
    uint64_t approval_timeout_ms;     /* tools.approvalTimeoutMs (default 10 min) */
    uint64_t run_max_ms;              /* run.maxMs: every run ends by then (default 30 min) */
    struct agent_budget {
        uint64_t tokens_per_run, tokens_per_session, run_ms, tool_calls_per_run;
    } budget;                         /* budget.maxTokensPerRun, ...PerSession, maxRunMs, ... */
    const json_t *pricing;            /* model.pricing {inputPerMTokens, outputPerMTokens} */
    uint64_t max_prompt_tokens;       /* context.maxPromptTokens: compact above (0 = never) */
};

/* Reads tools.approval, tools.approvalTimeoutMs, run.maxMs, budget.*, model.pricing and
 * context.maxPromptTokens (default 75% of model.contextWindow, itself 128000) of the
 * config tree (borrowed for the process lifetime) into o. Returns 0, or -1 with a heap message. */
int agent_govern_config(struct agent_options *o, const json_t *root, char **err);

/* One serialized event, shared by all subscribers (refcounted). */
struct agent_event {
    unsigned refs;
    int64_t seq;         /* SSE id: position in the session log (streaming deltas reuse the last) */
    const char *type;    /* static string */
    bool persisted;      /* false for the streaming delta types */
    bool ends_stream;    /* agent_run_end, or a system event with level "error" */
    size_t len;
    char json[];         /* one-line JSON, NUL-terminated */
};

void agent_event_ref(struct agent_event *ev);
void agent_event_unref(struct agent_event *ev);

struct agent_session;

/* A subscriber receives every event of a session from the moment it subscribes. on_event must
 * not unsubscribe other subscribers; it may unsubscribe itself. */
struct agent_sub {
    struct list_node node; /* in session->subs */
    void (*on_event)(struct agent_sub *sub, struct agent_event *ev);
    /* Optional: the session is being deleted. The subscriber must unsubscribe (now or later);
     * the session stays allocated until the last subscriber has. */
    void (*on_gone)(struct agent_sub *sub);
    void *data;
};

/* Why a run ended: handed to the run's completion callback. */
enum agent_run_status { AGENT_RUN_IDLE, AGENT_RUN_ABORTED, AGENT_RUN_ERROR };

/* Fires once when the run ends. final_msg is the last assistant_message event object (borrowed,
 * may be NULL); errmsg is set when status is AGENT_RUN_ERROR. */
typedef void (*agent_done_cb)(void *data, enum agent_run_status status, const json_t *final_msg,
                              const char *errmsg);

void agent_init(const struct agent_options *opts);
/* Aborts every run and frees every session. */
void agent_shutdown(void);

/* Creates a session with a fresh nanoid, its workspace directory and its stored SessionInfo
 * (metadata: agentInfo, modelConfig, plus the keys of `extra_metadata` if not NULL). Returns the
 * session (owned by the session table) or NULL with a heap message in *err. */
struct agent_session *agent_session_create(const json_t *extra_metadata, char **err);
/* The session with this id: in memory, or loaded from the store (history rebuilt from its events;
 * a run cut off by a crash is marked interrupted). NULL if unknown or on a storage error (then
 * *err, if not NULL, gets a heap message). */
struct agent_session *agent_session_find(const char *id);
struct agent_session *agent_session_load(const char *id, char **err);
/* Aborts its run, ends its subscribers (on_gone), removes it from memory and the store.
 * Returns 0, -ENOENT if the store had no such session, or <0 on a storage error. */
int agent_session_delete(struct agent_session *s);
/* Id of a session with a run in progress or queued, or NULL. */
const char *agent_running_session(void);
const char *agent_session_id(const struct agent_session *s);
const char *agent_session_workspace(const struct agent_session *s);
bool agent_session_running(const struct agent_session *s);
size_t agent_session_count(void);
/* Runs holding a run slot, and runs waiting for one (max_concurrent_runs). */
void agent_run_counts(unsigned *running, unsigned *queued);

/* "idle", "executing", "aborted" or "error" (anchor-api.md F6). */
const char *agent_session_status(const struct agent_session *s);

/* Hands the session's stored events with SSE id > after to cb, in order (from the store when
 * there is one, else from the in-memory log of the newest events). Returns 0 or <0. */
int agent_replay(struct agent_session *s, int64_t after,
                 void (*cb)(void *data, struct agent_event *ev), void *data);

/* The same for at most `limit` events (0 = all); returns how many were delivered, or <0. */
int agent_replay_n(struct agent_session *s, int64_t after, int64_t limit,
                   void (*cb)(void *data, struct agent_event *ev), void *data);

void agent_subscribe(struct agent_session *s, struct agent_sub *sub);
void agent_unsubscribe(struct agent_session *s, struct agent_sub *sub);

/* Starts a run with `query` (a string or an array of content parts; borrowed). Returns 0 (on_done
 * fires exactly once, possibly before this returns), -EBUSY if the session is already running, or
 * -EAGAIN if the run limit is reached and the queue is full, or -EDQUOT (session budget) (nothing
 * happens for any of them). A run
 * beyond max_concurrent_runs emits user_message and agent_run_start at once and waits for a slot. */
int agent_run_start(struct agent_session *s, const json_t *query, bool stream, agent_done_cb on_done,
                    void *data);
/* What agent_run_start would answer now: 0, -EBUSY, -EAGAIN, or -EDQUOT when the session has
 * used up budget.maxTokensPerSession. */
int agent_run_check(const struct agent_session *s);
/* Detaches a completion callback (its HTTP client went away); the run goes on. */
void agent_run_forget(struct agent_session *s, void *data);
/* Aborts the running query at once. Returns true if one was running. */
bool agent_abort(struct agent_session *s);

/* Decides a tool call that waits for approval (tools.approval "ask"); by names who decided
 * ("api", "socket.io"). Returns 0, or -ENOENT when the session has no undecided approval with
 * that id. */
int agent_tool_approval(struct agent_session *s, const char *tool_call_id, bool approved,
                        const char *reason, const char *by);
/* The undecided approvals of the session's run: a new array of {toolCallId, name, arguments,
 * expiresAt}, empty when none. */
json_t *agent_session_pending_approvals(const struct agent_session *s);
/* The session's token usage so far {promptTokens, completionTokens, totalTokens, ...}: a new
 * reference, NULL when no model call was made yet. */
json_t *agent_session_usage(const struct agent_session *s);

#define AGENT_BUSY_MSG                                                                         \
    "Agent is already executing a task. Complete or abort the current task before starting a " \
    "new one."

#endif
