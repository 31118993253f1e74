/* SPDX-License-Identifier: MIT */
/* llm.h -- streaming chat completions from OpenAI-compatible providers and from the Anthropic
 * Messages API, driven by libcurl's multi interface on the libuv loop. One struct llm_ctx per
 * loop; any number of concurrent requests. Everything runs on the loop thread.
 *
 * Callers always speak OpenAI chat shapes (messages, tools, deltas); the provider
 * ("anthropic" or anything else = OpenAI-compatible) and the tool-call engine (native or
 * prompt engineering) are translated inside. Wire formats: agent-tools-llm.md §1.1-§1.5, §2.2;
 * mapping details in docs/internals/LLM_PROVIDERS.md. */
#ifndef LLM_LLM_H
#define LLM_LLM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* Status codes given to on_done (0 = success). */
enum llm_status {
    LLM_OK = 0,
    LLM_ERR_HTTP = -1001,      /* non-2xx answer that is not (or no longer) retried */
    LLM_ERR_STREAM = -1002,    /* an {"error": ...} object inside a 200 stream */
    LLM_ERR_TRUNCATED = -1003, /* the stream ended before [DONE] or a finish_reason */
    LLM_ERR_TIMEOUT = -1004,   /* no bytes for idle_timeout_ms (stalled stream) */
    LLM_ERR_CONNECT = -1005,   /* connection refused/reset, DNS, TLS ... after retries */
    LLM_ERR_PROTOCOL = -1006,  /* a line over the cap, a chunk that is not JSON */
    LLM_ERR_CONFIG = -1007,    /* no model configured */
};

/* struct llm_config.tool_call_engine */
enum llm_tool_call_engine {
    LLM_ENGINE_NATIVE = 0,             /* "tools" in the request, tool calls as deltas */
    LLM_ENGINE_PROMPT_ENGINEERING = 1, /* tools described in the system prompt, <tool_call> text */
};

struct llm_config {
    const char *provider;      /* "anthropic" speaks the Messages API; anything else ("openai",
                                * "openai-compatible", "deepseek", ...) Chat Completions */
    const char *model;         /* model id sent as "model" */
    const char *base_url;      /* e.g. "http://127.0.0.1:9999/v1"; "/chat/completions" is
                                * appended. anthropic: "/messages" when it ends in "/v1", else
                                * "/v1/messages" */
    const char *api_key;       /* may be NULL: then no Authorization header is sent */
    int max_tokens;            /* sent as "max_tokens" when > 0 (anthropic: always, 8192 if 0) */
    double temperature;        /* sent when >= 0 (anthropic: not with thinking, which needs 1) */
    int thinking;              /* -1 unset, 0 sends {"type":"disabled"}, 1 {"type":"enabled"};
                                * anthropic: only 1 is sent, with budget_tokens */
    int thinking_budget_tokens; /* anthropic budget_tokens; 0 = max(1024, max_tokens / 2) */
    int tool_call_engine;      /* enum llm_tool_call_engine */
    unsigned max_retries;      /* retries for 408/409/429/5xx/connection errors (0 = none) */
    unsigned idle_timeout_ms;  /* abort the transfer when no byte arrives for this long */
    unsigned connect_timeout_ms;
    unsigned retry_base_ms;    /* first backoff step (default 500), doubled, capped at 8000 */
    size_t max_line_bytes;     /* cap on one SSE line of the response (default 4 MiB) */
};

struct llm_tool_call {
    char *id;        /* "call_..." */
    char *name;
    char *arguments; /* the raw JSON text as streamed (may have a leading space), "" if none */
};

/* What one completed call produced. Owned by the request; valid only during on_done. All
 * strings are non-NULL. */
struct llm_result {
    const char *content;        /* all content deltas joined, "" if none; prompt engineering:
                                 * the text outside <tool_call> blocks */
    const char *reasoning;      /* all reasoning_content / reasoning deltas joined, "" if none */
    struct llm_tool_call *tool_calls; /* in index order, gaps removed */
    size_t n_tool_calls;
    const char *finish_reason;  /* "stop", "tool_calls", "length", ... or "" if none came */
    json_t *usage;              /* the usage object, or NULL (borrowed) */
    const char *raw_content;    /* the model's text exactly as streamed, <tool_call> blocks
                                 * included; equals content with the native engine */
    const char *reasoning_signature; /* anthropic: signature of the thinking block, "" if none */
};

struct llm_callbacks {
    /* A content delta (UTF-8, not NUL-terminated). */
    void (*on_content)(void *data, const char *s, size_t len);
    /* A reasoning delta (delta.reasoning_content, or delta.reasoning). */
    void (*on_reasoning)(void *data, const char *s, size_t len);
    /* A tool-call fragment for slot `index`. id and name are the slot's values so far (never
     * NULL, may be ""); args is this fragment's argument text (may be empty). */
    void (*on_tool_call_delta)(void *data, size_t index, const char *id, const char *name,
                               const char *args, size_t args_len);
    /* Fires exactly once unless the request was cancelled. status is LLM_OK or an
     * enum llm_status; on error, errmsg is a human readable message such as
     * "401 Incorrect API key provided" (provider's error.message when there is one) and res
     * holds whatever had streamed so far. The request is freed right after on_done returns. */
    void (*on_done)(void *data, int status, const struct llm_result *res, const char *errmsg);
};

struct llm_ctx;
struct llm_request;

/* One per loop. Returns 0 or a negative errno. */
int llm_ctx_new(uv_loop_t *loop, struct llm_ctx **out);
/* Cancels every request (without callbacks) and frees the context once its uv handles have
 * closed; the loop must run afterwards for that. NULL ok. */
void llm_ctx_close(struct llm_ctx *ctx);

/* Starts a streamed chat completion. `messages` (array) and `tools` (array or NULL) are
 * borrowed: the body is serialized before this returns. They are OpenAI chat shapes: system,
 * user (string or text / image_url parts), assistant {content, tool_calls}, tool {tool_call_id,
 * content}. For Anthropic thinking with tools, an assistant message may also carry
 * "reasoning_content" and "reasoning_signature" (from an Anthropic llm_result) to be replayed
 * as its thinking block; OpenAI-compatible bodies pass messages through unchanged. Returns 0 and sets *out, after which
 * on_done fires exactly once (never from inside this call) unless llm_request_cancel is called;
 * returns <0 if nothing was started (then no callback fires). */
int llm_request_start(struct llm_ctx *ctx, const struct llm_config *cfg, const json_t *messages,
                      const json_t *tools, const struct llm_callbacks *cb, void *data,
                      struct llm_request **out);
/* Drops the transfer at once (closing the connection) and frees the request. No callback fires
 * afterwards. Safe from any loop callback, including this request's own delta callbacks (the
 * teardown then completes when the callback returns); a no-op inside its own on_done. */
void llm_request_cancel(struct llm_request *req);

/* Build the request body for the OpenAI / Anthropic wire (pure; exposed for tests). Both apply
 * the prompt-engineering conversion when cfg->tool_call_engine asks for it. Return a new
 * reference. */
json_t *llm_openai_body(const struct llm_config *cfg, const json_t *messages, const json_t *tools);
json_t *llm_anthropic_body(const struct llm_config *cfg, const json_t *messages,
                           const json_t *tools);
/* The URL a request for cfg is POSTed to. Caller owns the result (xfree). */
char *llm_request_url(const struct llm_config *cfg);
/* True when cfg->provider selects the Anthropic Messages API. */
bool llm_is_anthropic(const struct llm_config *cfg);

#endif
