/* SPDX-License-Identifier: MIT */
/* agent_int.h -- shared between session.c (table, event log, fan-out) and run.c (the loop). */
#ifndef AGENT_AGENT_INT_H
#define AGENT_AGENT_INT_H

#include "agent.h"

struct run;

struct agent_session {
    char *id;                  /* owned; any length the store accepts (was 21 bytes: issue 11) */
    char *workspace;           /* absolute, created */
    json_t *history;           /* LLM messages without the system prompt */
    int64_t seq;               /* id of the last persisted event */
    struct list_node subs;     /* struct agent_sub */
    struct agent_event **log;  /* ring of the newest persisted events */
    size_t log_cap, log_head, log_len;
    struct run *run;           /* the run in progress, or NULL */
    const char *status;        /* "idle", "executing", "aborted", "error" (static) */
    unsigned refs;             /* 1 for the session table + 1 per subscriber */
    bool deleted;
    bool store_failed;         /* a storage error was logged for this session already */
    json_t *usage;             /* tokens used so far (sum of the runs), or NULL */
    uint64_t used_at;          /* uv_now of its last lookup (least-recently-used unloading) */
};

extern struct agent_options agent__opts;

/* Runs that wait for a slot, and the number running (run.c). */
void agent__runs_abort_all(void);
/* At shutdown: lets go of a run that waits for tool approval without ending it, so that it
 * resumes after the restart. Returns true if there was one. */
bool agent__run_suspend(struct agent_session *s);
extern unsigned agent__running;
void agent__session_unref(struct agent_session *s);

/* Appends the tool message(s) for a tool result to the history (text capped; images in a user
 * message of their own). */
void agent__history_tool(struct agent_session *s, const char *call_id, const json_t *content);

/* model.c: the model config the session's next run uses (metadata.modelConfig in the model
 * catalogue, else the default); valid for the process lifetime. */
const struct llm_config *agent__session_model(struct agent_session *s);

/* Keeps s->usage in the stored metadata (metadata.usage), for the session list. */
void agent__session_save_usage(struct agent_session *s);

/* govern.c: the policy of a tool ("auto", "ask" or "deny"). */
const char *agent__approval_policy(const char *tool);
/* A usage object from a provider's (OpenAI-shaped; NULL when it sent none: then estimated from
 * the characters sent and received, marked estimated: true), priced by model.pricing. */
json_t *agent__usage_new(const json_t *provider_usage, size_t prompt_chars,
                         size_t completion_chars);
/* Adds the counts (and cost) of u to sum. */
void agent__usage_add(json_t *sum, const json_t *u);
void agent__usage_price(json_t *u);
uint64_t agent__usage_total(const json_t *u);

/* compact.c: replaces all but the last `kept` messages of history by the summary (put in front
 * of the first kept message). */
void agent__compact_apply(json_t *history, size_t kept, const char *summary);

/* run.c: continues a run that a restart cut off while tool calls waited for approval. calls
 * are the turn's tool calls (borrowed), call_idx the first without a result, approvals the
 * requests and decisions seen so far (object toolCallId -> entry; stolen). */
void agent__run_resume(struct agent_session *s, const json_t *calls, size_t call_idx,
                       json_t *approvals);

/* A new event object {id, type, timestamp}. */
json_t *agent__event_new(const char *type);
/* Serializes `ev` (stolen), numbers it, logs it if persisted and hands it to every subscriber. */
void agent__emit_new(struct agent_session *s, json_t *ev);
/* Emits a streaming delta event built without jansson (hot path): type, content (delta bytes)
 * plus messageId. */
void agent__emit_delta(struct agent_session *s, const char *type, const char *content, size_t len,
                       const char *message_id);

#endif
