/* SPDX-License-Identifier: MIT */
/* structured.h -- the structured_outputs tool-call engine (agent-tools-llm.md §2.2), the third
 * of the original's engines, for models that can answer in a JSON schema but cannot call
 * functions. The request carries response_format "agent_response_schema" {content?: string,
 * toolCall?: {name, args}} and the tools in the system prompt; the answer is one JSON object.
 * The response side is a pure streaming parser: the top-level "content" string streams out as
 * content while it arrives, and at the end the whole text is repaired (unclosed strings and
 * braces, trailing commas, a markdown fence) and parsed. Tool results go back as user messages,
 * as with prompt engineering (pe_prompt.c). No I/O. */
#ifndef LLM_STRUCTURED_H
#define LLM_STRUCTURED_H

#include "../core/buf.h"
#include "llm.h"
#include "pe_parser.h"

#define SO_MAX_DEPTH 64

/* What so_json_repair had to do. */
struct so_repair {
    int open_at_end;     /* containers still open where the text ended (0 = complete) */
    int string_depth;    /* the text ended inside a string at this depth (0 = not in one) */
    bool commas_dropped; /* trailing commas were removed */
};

/* Repairs slightly broken JSON text: drops a markdown fence around it and trailing commas,
 * completes a cut-off string, literal, key or value, and closes open objects and arrays. A
 * closer that does not match is dropped. Returns a new string (xfree), or NULL when the text
 * does not start with '{' or '[' or nests deeper than SO_MAX_DEPTH. The result may still be
 * invalid JSON (e.g. a missing comma); the caller parses it. */
char *so_json_repair(const char *s, size_t len, struct so_repair *info);

/* Fields are read-only outside structured.c. */
struct so_parser {
    const struct llm_callbacks *cb; /* on_content is used */
    void *data;
    void (*make_id)(char out[PE_ID_MAX], size_t seq, void *data); /* tests: fixed ids */
    struct buf raw;      /* everything fed, exactly */
    int mode;            /* enum in structured.c: undecided, fence, json, done, text */
    bool fenced;         /* a ``` line was skipped */
    size_t scan_pos;     /* raw bytes scanned */
    size_t fence_start;  /* raw offset of the fence's first backtick */
    size_t text_emitted; /* text mode: raw bytes reported */
    /* The incremental scan for the top-level "content" string (json mode). */
    int depth;
    int expect;          /* what the top-level object expects next */
    bool in_str, esc, key_pos, key_is_content, in_content, content_done;
    struct buf key;      /* the top-level key being read (capped) */
    struct buf content;  /* the decoded content so far */
    size_t emitted;      /* content bytes reported */
    /* The result, built by so_parser_finish. */
    char *final_content;
    struct llm_tool_call call;
    char call_id[PE_ID_MAX];
    bool have_call;
};

void so_parser_init(struct so_parser *p, const struct llm_callbacks *cb, void *data);
/* Feeds content text. Reports the decoded top-level "content" string as it grows (json mode),
 * or the text itself when the answer is not a JSON object (text mode). */
void so_parser_feed(struct so_parser *p, const char *s, size_t len);
/* Ends the text and rewrites *res: content = the "content" member of the repaired object (the
 * text itself when it is not JSON; what streamed, else the text, when it cannot be repaired),
 * raw_content = everything, tool_calls = the toolCall when it was complete in the text (a call
 * that only the repair closed is never run), finish_reason = "tool_calls" then. No callbacks.
 * The strings point into p until so_parser_release. */
void so_parser_finish(struct so_parser *p, struct llm_result *res);
void so_parser_release(struct so_parser *p);

/* Request side. The tool instruction appended to the system prompt ("" without tools; xfree). */
char *so_tool_instruction(const json_t *tools);
/* The history for the engine: instruction in the system message, assistant turns as the JSON
 * the model wrote (or that JSON rebuilt from tool_calls), tool results as user messages. New. */
json_t *so_prepare_messages(const json_t *messages, const json_t *tools);
/* {"type": "json_schema", "json_schema": {name: "agent_response_schema", strict, schema}}. */
json_t *so_response_format(void);

#endif
