/* SPDX-License-Identifier: MIT */
/* anthropic_stream.h -- the Anthropic Messages API in pure form: a decoder for its named-event
 * SSE stream (agent-tools-llm.md §1.5) that reports through the same llm_callbacks as the
 * OpenAI decoder, and the conversion of an OpenAI-shaped request into a Messages API body.
 * No I/O; unit tests feed it directly, split anywhere. */
#ifndef LLM_ANTHROPIC_STREAM_H
#define LLM_ANTHROPIC_STREAM_H

#include "../core/buf.h"
#include "llm.h"
#include "sse_reader.h"

enum anth_block_kind {
    ANTH_BLOCK_NONE = 0, /* no content_block_start seen for this index */
    ANTH_BLOCK_TEXT,
    ANTH_BLOCK_THINKING,
    ANTH_BLOCK_TOOL_USE,
    ANTH_BLOCK_OTHER, /* redacted_thinking, server tools, ...: ignored */
};

struct anth_block {
    enum anth_block_kind kind;
    size_t tool; /* ANTH_BLOCK_TOOL_USE: the tool slot (position among tool_use blocks) */
};

struct anth_tool {
    struct buf id, name, args;
    json_t *input;  /* a non-empty "input" given in content_block_start, else NULL */
    bool got_delta; /* some input_json_delta text arrived */
};

/* Callers embed it; fields are read-only outside anthropic_stream.c. */
struct anth_stream {
    struct sse_reader sse;
    const struct llm_callbacks *cb; /* on_done is not called by the decoder */
    void *data;
    struct buf content, reasoning, signature;
    struct anth_block *blocks; /* indexed by content block index */
    size_t nblocks;
    struct anth_tool *tools; /* in tool_use order */
    size_t ntools;
    struct llm_tool_call *calls; /* filled by anth_stream_finish */
    char finish_reason[32];      /* mapped to OpenAI words: stop, tool_calls, length, ... */
    json_t *usage;               /* message_start usage with message_delta updates merged */
    bool done;                   /* saw message_stop */
    char *error;                 /* message of an error event, or of a protocol error */
    int status; /* first error: LLM_ERR_STREAM / LLM_ERR_PROTOCOL / LLM_ERR_TRUNCATED, or 0 */
    size_t text_bytes; /* content + reasoning + signature + tool input kept so far (capped) */
};

void anth_stream_init(struct anth_stream *s, const struct llm_callbacks *cb, void *data,
                      size_t max_line_bytes);
/* Feeds raw response bytes. Returns 0, or <0 (s->status/s->error set) on the first error; after
 * an error further input is ignored. */
int anth_stream_feed(struct anth_stream *s, const char *p, size_t len);
/* Called at end of input. Returns 0 if the stream is complete (message_stop seen, or EOF after a
 * stop_reason), LLM_ERR_TRUNCATED otherwise, or the earlier error. Fills *res (pointers into s,
 * valid until anth_stream_release); res->raw_content equals res->content. */
int anth_stream_finish(struct anth_stream *s, struct llm_result *res);
void anth_stream_release(struct anth_stream *s);

/* The Messages API body for OpenAI-shaped messages and tools (see LLM_PROVIDERS.md): system
 * messages become "system", tool calls tool_use blocks, tool messages tool_result blocks in a
 * user message, image_url parts image blocks; consecutive messages of one role are merged.
 * Returns a new reference. */
json_t *anth_request_body(const struct llm_config *cfg, const json_t *messages,
                          const json_t *tools);

#endif
