/* SPDX-License-Identifier: MIT */
/* providers.c -- what differs between the original's provider names (anchor-api.md §7.2): the
 * table of default base URLs, key variables and wires, and the request side built from it: the
 * URL (Chat Completions, Azure's deployment scheme, the Anthropic Messages API) and the body of
 * each wire, with the tool-call engine's rewrite (native, prompt engineering, structured
 * outputs), the reasoning replay switch and the model's extra parameters. Pure. */
#include <string.h>

#include "../core/util.h"
#include "../core/xalloc.h"
#include "anthropic_stream.h"
#include "llm.h"
#include "pe_parser.h"
#include "structured.h"

#define AZURE_DEFAULT_API_VERSION "2024-10-21"

/* Defaults as the original's model-provider constants and @tarko/llm-client handlers. The
 * Gemini, Mistral and Perplexity entries use their OpenAI-compatible endpoints. */
static const struct llm_provider providers[] = {
    {"openai", "https://api.openai.com/v1", "OPENAI_API_KEY", LLM_WIRE_OPENAI, false, false, true},
    {"openai-compatible", NULL, "OPENAI_API_KEY", LLM_WIRE_OPENAI, false, false, true},
    {"openai-non-streaming", "https://api.openai.com/v1", "OPENAI_API_KEY", LLM_WIRE_OPENAI, true,
     false, true},
    {"azure-openai", NULL, "AZURE_OPENAI_API_KEY", LLM_WIRE_AZURE, false, false, true},
    {"anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY", LLM_WIRE_ANTHROPIC, false,
     false, true},
    {"gemini", "https://generativelanguage.googleapis.com/v1beta/openai", "GEMINI_API_KEY",
     LLM_WIRE_OPENAI, false, false, true},
    {"mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY", LLM_WIRE_OPENAI, false, false,
     true},
    {"perplexity", "https://api.perplexity.ai", "PERPLEXITY_API_KEY", LLM_WIRE_OPENAI, false, false,
     true},
    {"groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", LLM_WIRE_OPENAI, false, false, true},
    {"openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", LLM_WIRE_OPENAI, false,
     false, true},
    /* DeepSeek's reasoner answers 400 when reasoning_content comes back in the history. */
    {"deepseek", "https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", LLM_WIRE_OPENAI, false, false,
     false},
    {"volcengine", "https://ark.cn-beijing.volces.com/api/v3", "ARK_API_KEY", LLM_WIRE_OPENAI,
     false, false, true},
    {"ollama", "http://127.0.0.1:11434/v1", NULL, LLM_WIRE_OPENAI, false, true, true},
    {"lm-studio", "http://127.0.0.1:1234/v1", NULL, LLM_WIRE_OPENAI, false, true, true},
};

#define NPROVIDERS (sizeof(providers) / sizeof(providers[0]))

const struct llm_provider *llm_provider_get(const char *name)
{
    for (size_t i = 0; name != NULL && i < NPROVIDERS; i++)
        if (strcmp(providers[i].name, name) == 0)
            return &providers[i];
    return &providers[1]; /* unknown names are openai-compatible, as the original */
}

bool llm_provider_known(const char *name)
{
    return name != NULL && strcmp(llm_provider_get(name)->name, name) == 0;
}

bool llm_is_anthropic(const struct llm_config *cfg)
{
    return cfg->provider != NULL && llm_provider_get(cfg->provider)->wire == LLM_WIRE_ANTHROPIC;
}

bool llm_replays_reasoning(const struct llm_config *cfg)
{
    if (cfg->reasoning_replay != 0)
        return cfg->reasoning_replay > 0;
    return llm_provider_get(cfg->provider)->replay_reasoning;
}

/* ---- URL -------------------------------------------------------------------------------- */

/* Percent-encodes everything but RFC 3986's unreserved characters. Caller owns the result. */
static char *url_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = xmalloc(strlen(s) * 3 + 1);
    char *o = out;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

static bool ends_with(const char *s, size_t len, const char *tail)
{
    size_t n = strlen(tail);
    return len >= n && memcmp(s + len - n, tail, n) == 0;
}

/* Chat Completions: {base}/chat/completions. Azure: {base}/openai/deployments/{id}/chat/
 * completions?api-version=V (a base that already ends in /openai is not doubled). Anthropic's
 * documented base has no version ("https://api.anthropic.com", path "/v1/messages"), while
 * OpenAI-style configurations usually end in "/v1"; both work. */
char *llm_request_url(const struct llm_config *cfg)
{
    const char *base = cfg->base_url ? cfg->base_url : "";
    size_t len = strlen(base);
    while (len > 0 && base[len - 1] == '/')
        len--;
    enum llm_wire wire = llm_provider_get(cfg->provider)->wire;
    if (wire == LLM_WIRE_AZURE) {
        const char *v = cfg->api_version && *cfg->api_version ? cfg->api_version
                                                              : AZURE_DEFAULT_API_VERSION;
        char *id = url_encode(cfg->model ? cfg->model : "");
        char *ver = url_encode(v);
        char *url = xasprintf("%.*s%s/deployments/%s/chat/completions?api-version=%s", (int)len,
                              base, ends_with(base, len, "/openai") ? "" : "/openai", id, ver);
        xfree(id);
        xfree(ver);
        return url;
    }
    const char *path = "/chat/completions";
    if (wire == LLM_WIRE_ANTHROPIC)
        path = ends_with(base, len, "/v1") ? "/messages" : "/v1/messages";
    return xasprintf("%.*s%s", (int)len, base, path);
}

/* ---- bodies ----------------------------------------------------------------------------- */

static json_t *stop_sequences(void)
{
    return json_pack("[s, s]", pe_stop_sequences[0], pe_stop_sequences[1]);
}

/* The history for the OpenAI wire: the Anthropic signature never goes there, and the reasoning
 * only when the provider takes it back. Messages are shared; a changed one is copied. */
static bool strips(const json_t *m, bool keep_reasoning)
{
    return json_object_get(m, "reasoning_signature") != NULL ||
           (!keep_reasoning && json_object_get(m, "reasoning_content") != NULL);
}

static json_t *openai_history(const struct llm_config *cfg, json_t *messages)
{
    bool keep_reasoning = llm_replays_reasoning(cfg);
    size_t i;
    const json_t *m;
    bool change = false;
    json_array_foreach(messages, i, m) change = change || strips(m, keep_reasoning);
    if (!change)
        return json_incref(messages); /* the usual case: shared, not copied */
    json_t *out = json_array();
    json_array_foreach(messages, i, m)
    {
        bool sig = json_object_get(m, "reasoning_signature") != NULL;
        bool rc = !keep_reasoning && json_object_get(m, "reasoning_content") != NULL;
        if (!sig && !rc) {
            json_array_append(out, (json_t *)m);
            continue;
        }
        json_t *copy = json_copy((json_t *)m);
        json_object_del(copy, "reasoning_signature");
        if (rc)
            json_object_del(copy, "reasoning_content");
        json_array_append_new(out, copy);
    }
    return out;
}

/* model.params: extra members of the body (top_p, seed, ...); they cannot replace the history
 * or the streaming mode. */
static void merge_params(json_t *body, const json_t *params)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)params, k, v)
    {
        if (strcmp(k, "messages") != 0 && strcmp(k, "stream") != 0 &&
            strcmp(k, "stream_options") != 0)
            json_object_set(body, k, v);
    }
}

/* The engine's view of the history: prompt engineering and structured outputs describe the
 * tools in the system prompt and turn the history into text (*tools becomes NULL). */
static json_t *engine_messages(const struct llm_config *cfg, const json_t *messages,
                               const json_t **tools)
{
    json_t *out = NULL;
    if (cfg->tool_call_engine == LLM_ENGINE_PROMPT_ENGINEERING)
        out = pe_prepare_messages(messages, *tools);
    else if (cfg->tool_call_engine == LLM_ENGINE_STRUCTURED_OUTPUTS)
        out = so_prepare_messages(messages, *tools);
    else
        return json_incref((json_t *)messages);
    *tools = NULL;
    return out;
}

json_t *llm_openai_body(const struct llm_config *cfg, const json_t *messages, const json_t *tools)
{
    bool have_tools = json_is_array(tools) && json_array_size(tools) > 0;
    json_t *empty = messages ? NULL : json_array();
    json_t *engine = engine_messages(cfg, messages ? messages : empty, &tools);
    json_t *history = openai_history(cfg, engine);
    json_decref(engine);
    json_decref(empty);
    bool stream = !llm_provider_get(cfg->provider)->non_streaming;
    json_t *body = json_object();
    json_object_set_new(body, "model", json_string(cfg->model ? cfg->model : ""));
    json_object_set_new(body, "messages", history);
    if (json_is_array(tools) && json_array_size(tools) > 0)
        json_object_set(body, "tools", (json_t *)tools);
    json_object_set_new(body, "stream", json_boolean(stream));
    if (stream)
        json_object_set_new(body, "stream_options", json_pack("{s:b}", "include_usage", 1));
    if (cfg->max_tokens > 0)
        json_object_set_new(body, "max_tokens", json_integer(cfg->max_tokens));
    if (cfg->temperature >= 0)
        json_object_set_new(body, "temperature", json_real(cfg->temperature));
    if (cfg->thinking >= 0) {
        json_t *th = json_object();
        json_object_set_new(th, "type", json_string(cfg->thinking ? "enabled" : "disabled"));
        json_object_set_new(body, "thinking", th);
    }
    if (cfg->tool_call_engine == LLM_ENGINE_PROMPT_ENGINEERING)
        json_object_set_new(body, "stop", stop_sequences());
    /* As the original: the schema is asked for only when there are tools to call. */
    if (cfg->tool_call_engine == LLM_ENGINE_STRUCTURED_OUTPUTS && have_tools)
        json_object_set_new(body, "response_format", so_response_format());
    if (json_is_object(cfg->params))
        merge_params(body, cfg->params);
    return body;
}

json_t *llm_anthropic_body(const struct llm_config *cfg, const json_t *messages,
                           const json_t *tools)
{
    json_t *engine = engine_messages(cfg, messages, &tools);
    json_t *body = anth_request_body(cfg, engine, tools);
    json_decref(engine);
    if (cfg->tool_call_engine == LLM_ENGINE_PROMPT_ENGINEERING)
        json_object_set_new(body, "stop_sequences", stop_sequences());
    if (json_is_object(cfg->params))
        merge_params(body, cfg->params);
    return body;
}
