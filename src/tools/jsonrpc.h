/* SPDX-License-Identifier: MIT */
/* jsonrpc.h -- pure JSON-RPC 2.0 codec for MCP: the newline-delimited framing of the stdio
 * transport (one message per line, agent-tools-llm.md §3.1) with a cap on one line, tolerant of
 * the non-JSON debug lines real servers print on stdout (§3.3), plus the encoders for requests,
 * notifications and responses. No I/O: the unit tests and fuzzers call it directly. */
#ifndef TOOLS_JSONRPC_H
#define TOOLS_JSONRPC_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "../core/buf.h"

#define JSONRPC_DEFAULT_MAX_LINE (16u * 1024 * 1024)

/* JSON-RPC 2.0 error codes (spec §5.1) and the ones MCP servers use. */
#define JSONRPC_PARSE_ERROR (-32700)
#define JSONRPC_INVALID_REQUEST (-32600)
#define JSONRPC_METHOD_NOT_FOUND (-32601)
#define JSONRPC_INVALID_PARAMS (-32602)
#define JSONRPC_INTERNAL_ERROR (-32603)

enum jsonrpc_kind {
    JSONRPC_REQUEST,      /* method and id */
    JSONRPC_NOTIFICATION, /* method, no id */
    JSONRPC_RESPONSE,     /* id and result or error */
};

/* One decoded message. Every pointer is borrowed from root. */
struct jsonrpc_msg {
    enum jsonrpc_kind kind;
    json_t *root;         /* the whole message object (owned by whoever decoded it) */
    const char *method;   /* requests and notifications */
    const json_t *id;     /* requests and responses: an integer or a string (may be null for a
                           * response to a message the peer could not read) */
    const json_t *params; /* requests and notifications; NULL when absent */
    const json_t *result; /* success responses */
    const json_t *error;  /* error responses: {code, message, data?} */
};

/* Why a line was not delivered as a message. */
enum jsonrpc_skip {
    JSONRPC_SKIP_NOT_JSON,    /* not a JSON document (a console.log line) */
    JSONRPC_SKIP_NOT_JSONRPC, /* JSON, but not an object shaped like a JSON-RPC message */
    JSONRPC_SKIP_TOO_LONG,    /* over max_line; line holds only its first bytes */
};

struct jsonrpc_cbs {
    /* A message. msg->root is freed after the call (json_incref to keep parts). Return 0 to go
     * on, <0 to stop the feed with that value. */
    int (*on_message)(void *data, const struct jsonrpc_msg *msg);
    /* A line that is no message (may be NULL). For JSONRPC_SKIP_TOO_LONG, line/len are the
     * first bytes kept (at most 256) and total the full length known so far. */
    void (*on_skip)(void *data, enum jsonrpc_skip why, const char *line, size_t len, size_t total);
};

/* Splits a byte stream into lines. Fields are read-only outside jsonrpc.c. */
struct jsonrpc_reader {
    struct buf line;   /* the current partial line */
    size_t max_line;   /* cap on one line, without its \n */
    size_t discarding; /* >0: inside an over-long line, this many bytes seen so far */
    char head[256];    /* the first bytes of the over-long line, for the log */
    size_t head_len;
    int err; /* sticky callback error */
};

/* max_line 0 means JSONRPC_DEFAULT_MAX_LINE. */
void jsonrpc_reader_init(struct jsonrpc_reader *r, size_t max_line);
/* Feeds bytes split anywhere. Lines end in \n (a \r before it is dropped); empty and blank
 * lines are ignored. An over-long line is skipped whole (reported once, when its end arrives,
 * so the stream stays in sync). Returns 0, or the first negative value a callback returned;
 * that error is sticky. */
int jsonrpc_reader_feed(struct jsonrpc_reader *r, const char *p, size_t len,
                        const struct jsonrpc_cbs *cbs, void *data);
void jsonrpc_reader_release(struct jsonrpc_reader *r);

/* Decodes one message from s[0..len) (a line, an SSE data payload or an HTTP body). Returns 0
 * and fills *msg (caller frees with jsonrpc_msg_release), or -1 with *why set. */
int jsonrpc_decode(const char *s, size_t len, struct jsonrpc_msg *msg, enum jsonrpc_skip *why);
/* Classifies an already parsed value (borrowed; msg->root becomes a new reference). */
int jsonrpc_classify(json_t *j, struct jsonrpc_msg *msg);
void jsonrpc_msg_release(struct jsonrpc_msg *msg);

/* Encoders. Each returns one compact JSON line ending in "\n" (caller owns it; *len counts the
 * \n) -- compact JSON never holds a raw newline, as the stdio framing requires. params, result
 * and id are borrowed; params may be NULL (then it is left out). */
char *jsonrpc_encode_request(json_int_t id, const char *method, const json_t *params, size_t *len);
char *jsonrpc_encode_notification(const char *method, const json_t *params, size_t *len);
char *jsonrpc_encode_result(const json_t *id, const json_t *result, size_t *len);
char *jsonrpc_encode_error(const json_t *id, int code, const char *message, size_t *len);

/* "MCP error <code>: <message>" from an error object, as the MCP SDK words a protocol error.
 * Caller owns the result. */
char *jsonrpc_error_text(const json_t *error);

#endif
