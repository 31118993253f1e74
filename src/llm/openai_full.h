/* SPDX-License-Identifier: MIT */
/* openai_full.h -- pure decoder for one unstreamed OpenAI chat.completion answer (the
 * openai-non-streaming provider): the body is collected, and at the end its choices[0].message
 * is reported through the same llm_callbacks a stream uses, as one delta per kind (reasoning,
 * content, each tool call), so that the agent's events carry the whole answer at once. */
#ifndef LLM_OPENAI_FULL_H
#define LLM_OPENAI_FULL_H

#include "../core/buf.h"
#include "llm.h"

/* Fields are read-only outside openai_full.c. */
struct oai_full {
    const struct llm_callbacks *cb; /* on_done is not called */
    void *data;
    struct buf body;             /* the answer so far, capped */
    json_t *answer;              /* parsed by oai_full_emit, or NULL */
    struct llm_tool_call *calls; /* from message.tool_calls */
    size_t ncalls;
    bool emitted;
    bool done;   /* the body parsed as a chat.completion */
    char *error; /* message of an error object or of a protocol error */
    int status;  /* LLM_ERR_STREAM, LLM_ERR_PROTOCOL or LLM_ERR_TRUNCATED; 0 otherwise */
};

void oai_full_init(struct oai_full *d, const struct llm_callbacks *cb, void *data,
                   size_t max_bytes);
/* Collects body bytes. Returns 0, or <0 when the body is over the cap (d->status set). */
int oai_full_feed(struct oai_full *d, const char *p, size_t len);
/* At the end of the body: parses it and reports reasoning, content and tool calls (each once,
 * in that order). Returns 0, LLM_ERR_STREAM for an {"error"} answer, LLM_ERR_TRUNCATED when the
 * body is not complete JSON, LLM_ERR_PROTOCOL when it is JSON but no chat.completion. Calling it
 * again does nothing and returns the same. */
int oai_full_emit(struct oai_full *d);
/* Fills *res (pointers into d until oai_full_release). No callbacks; returns d->status (or
 * LLM_ERR_TRUNCATED if oai_full_emit never ran). */
int oai_full_finish(struct oai_full *d, struct llm_result *res);
void oai_full_release(struct oai_full *d);

#endif
