/* SPDX-License-Identifier: MIT */
/* json_skim.h -- a strict, allocation-free JSON scanner that validates one OpenAI
 * chat.completion.chunk and picks out the few strings a plain content / reasoning / finish chunk
 * carries, so the stream decoder can skip jansson for it. Pure: no I/O, no allocation. */
#ifndef LLM_JSON_SKIM_H
#define LLM_JSON_SKIM_H

#include <stddef.h>

/* Deeper nesting than this is not judged (jansson's own limit is 2048). */
#define JSON_SKIM_MAX_DEPTH 64

enum json_skim_verdict {
    JSON_SKIM_PLAIN = 0,   /* valid, and a plain chunk: the picked strings are filled in */
    JSON_SKIM_OTHER = 1,   /* valid JSON, but not a plain chunk (tool calls, usage, error, ...) */
    JSON_SKIM_INVALID = 2, /* json_loadb(p, len, 0, NULL) rejects it */
    JSON_SKIM_UNSURE = 3,  /* beyond what the scanner decides (nesting over the cap, numbers
                            * with an exponent or over 308 digits, a NUL byte after a number or
                            * a literal, which jansson skips): only jansson can tell */
};

/* One string value, escapes not yet decoded. raw == NULL when the member was absent or null. */
struct json_skim_str {
    const char *raw; /* the bytes between the quotes */
    size_t raw_len;
    size_t len; /* length once decoded; equals raw_len exactly when there is no escape */
};

/* A plain chunk is a JSON object whose "error" is absent, null or false, whose "usage" is absent
 * or null, and whose "choices" is absent, null, [] or one object with "index" absent or 0, a
 * "delta" that is absent, null or an object, a "finish_reason" that is absent, null or a string,
 * and no "stop_reason". The delta's "content", "reasoning_content" and "reasoning" are absent,
 * null or strings, its "tool_calls" absent or null. Other members may hold anything valid. A
 * member named twice, or a name with an escape, where one of those names is looked for, makes
 * the chunk OTHER. */
struct json_skim_chunk {
    struct json_skim_str content, reasoning_content, reasoning, finish_reason;
};

/* Scans p[0..len) (NUL bytes are data, as for json_loadb). Every verdict but UNSURE agrees with
 * json_loadb(p, len, 0, NULL): PLAIN and OTHER only for what it accepts, INVALID only for what it
 * rejects. *out is meaningful only for PLAIN. */
enum json_skim_verdict json_skim_chunk(const char *p, size_t len, struct json_skim_chunk *out);

/* Writes the decoded bytes of a string from a PLAIN chunk to dst (room for v->len bytes; no NUL
 * is added). Returns v->len. */
size_t json_skim_decode(const struct json_skim_str *v, char *dst);

#endif
