/* SPDX-License-Identifier: MIT */
/* run_int.h -- the run object shared by run.c (the loop) and run_govern.c (approvals, budgets,
 * deadline). Nothing outside src/agent includes it. */
#ifndef AGENT_RUN_INT_H
#define AGENT_RUN_INT_H

#include "../core/buf.h"
#include "agent_int.h"

enum run_state { RUN_LLM, RUN_TOOLS, RUN_APPROVAL, RUN_DONE };

struct run;
/* A timer owned by a run: the run stays allocated until the handle is closed. */
struct run_timer {
    uv_timer_t t;
    struct run *r;
};

struct run {
    struct agent_session *s; /* NULL once the run is done */
    unsigned refs;           /* 1 for the session, +1 while a tool is on the threadpool */
    enum run_state state;
    bool stream;
    agent_done_cb on_done;
    void *done_data;
    int iterations;          /* LLM calls made */
    uint64_t start_ms;
    struct llm_request *llm;
    struct tool_run *tool;
    char message_id[40];     /* shared by the deltas and the final message of one LLM call */
    uint64_t llm_start_ms, think_start_ms;
    struct buf think;        /* reasoning of the current call, until its thinking message */
    bool think_done;
    json_t *calls;           /* tool calls of the current assistant message */
    size_t call_idx;
    uint64_t tool_start_ms;
    uint32_t span, llm_span, tool_span; /* trace spans (obs.h): the run, its model and tool call */
    uint64_t llm_first_ms;   /* mono_ms of the current model call's first token, 0 = none yet */
    json_t *final_msg;       /* the last assistant_message event object */
    struct list_node qnode;  /* in `waiting` while queued for a run slot */
    bool queued;             /* waiting for a slot (max_concurrent_runs) */
    bool counted;            /* holds a slot in agent__running */
    json_t *approvals;       /* this turn's approval entries: toolCallId -> {toolCallId, name,
                              * arguments, expiresAt, approved?, reason?} */
    struct run_timer *approval_timer; /* fires at the earliest undecided expiry */
    struct run_timer *deadline;       /* run.maxMs / budget.maxRunMs */
    json_t *usage;           /* the run's sum, with llmCalls */
    size_t prompt_chars;     /* characters sent in the current call (usage estimate) */
    uint64_t tool_calls;     /* tool calls started in this run */
    const struct llm_config *cfg; /* the session's model when the run began (model.c) */
    /* context compaction (compact.c) */
    bool compacted;          /* tried for the coming model call already */
    bool compacting;         /* the summary call is running (r->llm is it) */
    bool compact_retried;    /* a context-length error was retried once in this run */
    size_t compact_from;     /* messages before the current turn, being summarized */
    size_t compact_prompt_chars;
    struct buf compact_text; /* the summary as it streams */
};


/* run.c */
void agent__run_unref(struct run *r);
/* Ends the run: agent_run_end (with its usage), session back to idle, completion callback. */
void agent__run_finish(struct run *r, enum agent_run_status status, const char *errmsg);
/* Runs the turn's next tool call, waits for its approval, or goes on to the next LLM call. */
void agent__next_tool(struct run *r);
/* Parses the streamed argument text; "" (and whitespace) means {}. NULL with *err (heap). */
json_t *agent__parse_args(const char *text, char **err);
/* call.function[key] as a string, "" when absent. */
const char *agent__call_field(const json_t *call, const char *key);

/* Builds the next model request and starts it (or compacts first, or ends at maxIterations). */
void agent__next_iteration(struct run *r);

/* compact.c */
/* Starts the summary call when the prompt (prompt_chars) is above context.maxPromptTokens, or
 * when forced (a context-length error); returns true if it did (agent__next_iteration follows
 * when it is done), false when there is nothing to compact. */
bool agent__compact_start(struct run *r, size_t prompt_chars, bool force);
/* Whether a provider's error message says the prompt is too long for the model. */
bool agent__context_error(const char *msg);

/* run_govern.c */
/* A timer owned by r (r stays allocated until it is closed). */
struct run_timer *agent__timer_start(struct run *r, uv_timer_cb cb, uint64_t ms);
void agent__timer_stop(struct run_timer **t); /* NULL ok; sets *t to NULL */
/* Stops the run at once: model stream cut, tool ended, system error event with code
 * budget_exceeded (or run_timeout for run.maxMs), agent_run_end status error. */
void agent__stop_run(struct run *r, const char *budget, uint64_t used, uint64_t limit,
                     const char *unit);
void agent__on_deadline(uv_timer_t *t);
/* Checks the run's and the session's tokens against their budgets; stops the run and returns
 * true when one is used up. */
bool agent__over_token_budget(struct run *r);
/* Emits a tool_approval_request for every call of the turn whose policy is "ask". */
void agent__request_approvals(struct run *r);
void agent__approval_timer_arm(struct run *r);

#endif
