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
    LLM_ENGINE_STRUCTURED_OUTPUTS = 2, /* response_format JSON {content?, toolCall?} (structured.c) */
};

struct llm_config {
    const char *provider;      /* a name of the provider table (providers.c): "anthropic" speaks
                                * the Messages API, "azure-openai" Chat Completions on Azure's URL
                                * scheme, "openai-non-streaming" one unstreamed request; anything
                                * else ("openai", "deepseek", unknown names, ...) Chat Completions */
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
    size_t max_line_bytes;     /* cap on one SSE line of the response (default 4 MiB); also
                                * the cap of a whole unstreamed answer */
    const char *api_version;   /* azure-openai: the api-version query parameter (NULL: default) */
    const char *const *headers; /* extra request header lines "Name: value", NULL-terminated (or
                                 * NULL); copied by llm_request_start */
    const json_t *params;      /* members merged into the request body (model.params), or NULL */
    int reasoning_replay;      /* assistant "reasoning_content" in the OpenAI wire's history:
                                * 0 the provider's default (deepseek: dropped, others: sent),
                                * 1 sent, -1 dropped */
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
 * as its thinking block; OpenAI-compatible bodies drop reasoning_signature, and drop
 * reasoning_content unless llm_replays_reasoning(cfg). Returns 0 and sets *out, after which
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

/* ---- the provider table (providers.c) -------------------------------------------------- */

enum llm_wire { LLM_WIRE_OPENAI, LLM_WIRE_ANTHROPIC, LLM_WIRE_AZURE };

struct llm_provider {
    const char *name;
    const char *base_url;  /* default base URL, or NULL (openai-compatible, azure-openai) */
    const char *key_env;   /* environment variable a key falls back to, or NULL */
    enum llm_wire wire;
    bool non_streaming;    /* one request with "stream": false; the answer is one delta */
    bool keyless;          /* local servers: the default base URL works without a key */
    bool replay_reasoning; /* default of llm_config.reasoning_replay */
};

/* The entry for a provider name; unknown names (and NULL) get the openai-compatible entry. */
const struct llm_provider *llm_provider_get(const char *name);
/* True when the name is in the table (aliases included). */
bool llm_provider_known(const char *name);
/* Whether an OpenAI-wire request for cfg keeps assistant reasoning_content. */
bool llm_replays_reasoning(const struct llm_config *cfg);

/* ---- the model catalogue (catalog.c) --------------------------------------------------- */

/* The models a session may pick (anchor-api.md F24/F25): the default model first, then
 * server.models, then the CLI's model.providers [{name, models, baseURL?, apiKey?}], the first
 * occurrence of an id winning, as the original. Each entry is a complete llm_config. */
struct llm_model {
    const struct llm_config *cfg; /* entry 0: the default (borrowed); others owned */
    const char *display_name;     /* or NULL */
    const char *error;            /* why it cannot answer (no base URL / no key), or NULL */
};

struct llm_catalog {
    struct llm_model *models; /* models[0] is the default model */
    size_t n;
    void *owned;              /* storage of entries 1..n-1 (catalog.c) */
};

/* Reads a value that may name an environment variable (^[A-Z][A-Z0-9_]*$): returns the value
 * to use (the variable's, or s itself), borrowed. `secret` says the value is a key (the callee
 * records the variable so that it can be hidden from children). */
typedef const char *(*llm_env_cb)(void *data, const char *s, bool secret);

/* Builds the catalogue from the merged config tree `root` after the default model `def`
 * (borrowed for the catalogue's lifetime; its display name `def_display` may be NULL). Entries
 * inherit every setting of `def` but provider, id, base URL, key, headers, params and
 * api version; an entry without a base URL of its own takes the default's base URL and key when
 * it has the default's provider, else its provider's default base URL and key variable (the
 * default's key never goes to another endpoint). Returns 0, or -1 with a heap message in *err
 * (a malformed entry). */
int llm_catalog_build(struct llm_catalog *cat, const struct llm_config *def,
                      const char *def_display, const json_t *root, llm_env_cb env, void *env_data,
                      char **err);
/* The default model's own options from the config's "model" object (headers, params,
 * apiVersion, replayReasoning), set on *def and kept by the catalogue. Returns 0 or -1. */
int llm_catalog_default_options(struct llm_catalog *cat, struct llm_config *def,
                                const json_t *model, char **err);
/* When no default model was configured: the first other entry becomes the default (copied
 * into *def, which models[0] points at) and leaves its own place, as the original picks
 * server.models[0]. */
void llm_catalog_promote_first(struct llm_catalog *cat, struct llm_config *def);
void llm_catalog_release(struct llm_catalog *cat);
/* The entry with this provider and id, or NULL. */
const struct llm_model *llm_catalog_find(const struct llm_catalog *cat, const char *provider,
                                         const char *id);
/* The public list [{id, provider, displayName?}] (no URL, key, header or parameter). New ref. */
json_t *llm_catalog_public(const struct llm_catalog *cat);
/* {id, provider, displayName?} of one entry. New reference. */
json_t *llm_model_public(const struct llm_model *m);
/* The catalogue of this process: set once by config_load before the loop runs, read by the
 * agent and the API. NULL until then. */
void llm_catalog_install(const struct llm_catalog *cat);
const struct llm_catalog *llm_catalog_installed(void);

#endif
