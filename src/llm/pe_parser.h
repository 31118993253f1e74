/* SPDX-License-Identifier: MIT */
/* pe_parser.h -- the prompt-engineering tool-call engine (agent-tools-llm.md §2.2) for models
 * without native function calling: the request side describes the tools in the system prompt
 * and rewrites the history (pe_prompt.c); the response side is a pure streaming parser that
 * splits the model's text into content and <tool_call>{"name", "parameters"}</tool_call>
 * blocks, reporting both through llm_callbacks as a native stream would. No I/O. */
#ifndef LLM_PE_PARSER_H
#define LLM_PE_PARSER_H

#include "../core/buf.h"
#include "llm.h"

#define PE_ID_MAX 48
#define PE_LEX_MAX_DEPTH 64

/* A JSON structure scanner over one call's text, enough to find the top-level "name" string
 * and the extent of the top-level "parameters" object while they stream. */
struct pe_lex {
    int depth;     /* nesting of { and [ (0 = outside the top-level object) */
    bool top_done; /* the top-level object closed: the rest is ignored */
    bool in_str, esc;
    size_t str_start; /* offset in the call text of the current string's first byte */
    int expect;       /* what the top-level object expects next (enum in pe_parser.c) */
    int key;          /* which top-level member the value being read belongs to */
    bool params_on, params_done;
};

struct pe_call {
    char id[PE_ID_MAX]; /* "call_<ms>_<9 base36 chars>" */
    size_t index;       /* position among named calls (the on_tool_call_delta index) */
    struct buf name;    /* the "name" value, decoded; "" until it is complete */
    struct buf body;    /* the text between <tool_call> and </tool_call> (or the end) */
    struct buf params;  /* the "parameters" object text seen so far */
    size_t emitted;     /* params bytes already reported */
    bool named, announced, closed;
    char *arguments; /* final: compact JSON of the parameters (owned), set by pe_call_end */
};

/* Fields are read-only outside pe_parser.c. */
struct pe_parser {
    const struct llm_callbacks *cb; /* on_content and on_tool_call_delta are used */
    void *data;
    /* Makes a call id; tests replace it for fixed ids. */
    void (*make_id)(char out[PE_ID_MAX], size_t seq, void *data);
    int state;       /* enum in pe_parser.c */
    size_t tag_len;  /* bytes of <tool_call> or </tool_call> matched so far */
    struct buf raw;  /* everything fed, exactly */
    struct buf text; /* the text outside tool calls */
    size_t text_emitted;
    struct pe_call *calls; /* every <tool_call> opened, in order */
    size_t ncalls;
    size_t nnamed;
    struct pe_lex lex;         /* of calls[ncalls - 1] while state is in a call */
    struct llm_tool_call *out; /* the result, built by pe_parser_finish */
    size_t nout;
    char *content; /* result content when the fallback scan rewrote it (owned) */
};

void pe_parser_init(struct pe_parser *p, const struct llm_callbacks *cb, void *data);
/* Feeds content text (whole UTF-8 characters, as decoders deliver deltas). Calls on_content
 * with text outside tool calls (a "<" is held back until it can no longer start <tool_call>)
 * and on_tool_call_delta with the parameters text of a named call, once per feed. */
void pe_parser_feed(struct pe_parser *p, const char *s, size_t len);
/* Ends the text and rewrites *res (filled by a provider decoder): content = text outside the
 * calls, raw_content = everything, tool_calls = the calls found (a call cut off by the stop
 * sequence is completed), finish_reason = "tool_calls" when there is one. No callbacks. The
 * strings point into p until pe_parser_release. */
void pe_parser_finish(struct pe_parser *p, struct llm_result *res);
void pe_parser_release(struct pe_parser *p);

/* Request side (pe_prompt.c). The <tool_instruction> block for OpenAI-shaped tools; "" when
 * there are none. Caller owns the result (xfree). */
char *pe_tool_instruction(const json_t *tools);
/* The history rewritten for the engine: the tool instruction appended to the (first) system
 * message, assistant tool calls replaced by their <tool_call> text, tool messages turned into
 * user messages "Tool: <name>\nResult:\n<text>". Returns a new array; messages is borrowed. */
json_t *pe_prepare_messages(const json_t *messages, const json_t *tools);
/* The rewrite itself, shared with the structured-outputs engine: `instruction` (borrowed; ""
 * for none) goes into the system message, assistant messages through `assistant` (NULL: their
 * <tool_call> text as above), tool results become user messages. Returns a new array. */
json_t *pe_rewrite_history(const json_t *messages, const char *instruction,
                           json_t *(*assistant)(const json_t *msg));

/* The stop sequences the engine sends (a cut-off closing tag is what the parser expects). */
extern const char *const pe_stop_sequences[2];

#endif
