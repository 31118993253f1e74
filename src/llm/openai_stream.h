/* SPDX-License-Identifier: MIT */
/* openai_stream.h -- pure decoder for an OpenAI chat.completion.chunk SSE stream: bytes in,
 * llm_callbacks deltas out, assembled result at the end. No I/O; unit tests and fuzzers feed
 * it directly, split anywhere. Uses sse_reader.h for the SSE framing (WHATWG rules). */
#ifndef LLM_OPENAI_STREAM_H
#define LLM_OPENAI_STREAM_H

#include "../core/buf.h"
#include "llm.h"
#include "sse_reader.h"

struct oai_stream; /* fields in openai_stream.c would be nicer, but callers embed it: */

struct oai_slot {
    struct buf id, name, args;
    bool used;
};

struct oai_stream {
    struct sse_reader sse;
    const struct llm_callbacks *cb; /* on_done is not called by the decoder */
    void *data;
    struct buf content, reasoning;
    struct oai_slot *slots; /* indexed by tool-call index */
    size_t nslots;
    struct llm_tool_call *calls; /* filled by oai_stream_result */
    size_t ncalls;
    char finish_reason[32];
    json_t *usage;
    bool done;         /* saw data: [DONE] */
    char *error;       /* message of an error object inside the stream, or of a protocol error */
    int status;        /* first error: LLM_ERR_STREAM or LLM_ERR_PROTOCOL (LLM_ERR_TRUNCATED once
                        * oai_stream_finish found the stream incomplete); 0 otherwise */
    size_t text_bytes; /* content + reasoning + tool-call text kept so far (capped) */
};

void oai_stream_init(struct oai_stream *s, const struct llm_callbacks *cb, void *data,
                     size_t max_line_bytes);
/* Feeds raw response bytes. Returns 0, or <0 (s->status/s->error set) on the first error; after
 * an error further input is ignored. */
int oai_stream_feed(struct oai_stream *s, const char *p, size_t len);
/* Called at end of input. Returns 0 if the stream is complete ([DONE] seen, or EOF after a
 * finish_reason), LLM_ERR_TRUNCATED otherwise, or the earlier error. Fills *res (pointers into s,
 * valid until oai_stream_release). */
int oai_stream_finish(struct oai_stream *s, struct llm_result *res);
void oai_stream_release(struct oai_stream *s);

#endif
