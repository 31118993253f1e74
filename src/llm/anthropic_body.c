/* SPDX-License-Identifier: MIT */
/* anthropic_body.c -- turns an OpenAI-shaped chat request (the agent's history) into an
 * Anthropic Messages API body (agent-tools-llm.md §1.5): system text, content blocks, tool_use
 * and tool_result blocks, image sources and tool schemas. Pure; declared in anthropic_stream.h,
 * mapping table in docs/internals/LLM_PROVIDERS.md. */
#include <string.h>

#include "../core/buf.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "anthropic_stream.h"

#define ANTH_DEFAULT_MAX_TOKENS 8192
#define ANTH_MIN_THINKING_BUDGET 1024 /* the API's lower bound for budget_tokens */
#define ANTH_SYSTEM_MAX (64u * 1024 * 1024)

/* ---- content blocks --------------------------------------------------------------------- */

static void add_text(json_t *blocks, const char *s)
{
    /* The API rejects empty text blocks. */
    if (s != NULL && s[0] != '\0')
        json_array_append_new(blocks, json_pack("{s:s, s:s}", "type", "text", "text", s));
}

/* "data:image/png;base64,AAAA" -> a base64 source; http(s) URLs -> a url source; anything else
 * (a data URL that is not base64, a file path) has no Anthropic form and gives NULL. */
static json_t *image_block(const char *url)
{
    json_t *src = NULL;
    if (strncmp(url, "data:", 5) == 0) {
        const char *b64 = strstr(url, ";base64,");
        if (b64 == NULL)
            return NULL;
        const char *mt = url + 5;
        size_t mt_len = strcspn(mt, ";,");
        src = json_pack("{s:s, s:s%, s:s}", "type", "base64", "media_type", mt, mt_len, "data",
                        b64 + 8);
    } else if (strncmp(url, "https://", 8) == 0 || strncmp(url, "http://", 7) == 0) {
        src = json_pack("{s:s, s:s}", "type", "url", "url", url);
    }
    return src ? json_pack("{s:s, s:o}", "type", "image", "source", src) : NULL;
}

static void add_part(json_t *blocks, const json_t *part)
{
    const char *type = json_get_str(part, "type");
    if (type == NULL)
        return;
    if (strcmp(type, "text") == 0) {
        add_text(blocks, json_get_str(part, "text"));
    } else if (strcmp(type, "image_url") == 0) {
        const json_t *iu = json_object_get(part, "image_url");
        const char *url = json_is_string(iu) ? json_string_value(iu) : json_get_str(iu, "url");
        json_t *img = url ? image_block(url) : NULL;
        if (img)
            json_array_append_new(blocks, img);
    } else if (strcmp(type, "image") == 0) {
        json_array_append(blocks, (json_t *)part); /* already an Anthropic block */
    }
}

/* Appends the blocks for an OpenAI content value: a string, an array of parts, or null. */
static void add_content(json_t *blocks, const json_t *content)
{
    if (json_is_string(content)) {
        add_text(blocks, json_string_value(content));
        return;
    }
    size_t i;
    const json_t *part;
    json_array_foreach(content, i, part) add_part(blocks, part);
}

/* The text of a content value: a string, or its text parts joined with "\n". */
static void content_text(struct buf *b, const json_t *content)
{
    if (json_is_string(content)) {
        buf_appends(b, json_string_value(content));
        return;
    }
    size_t i;
    const json_t *part;
    bool first = true;
    json_array_foreach(content, i, part)
    {
        const char *type = json_get_str(part, "type");
        const char *t = json_get_str(part, "text");
        if (type == NULL || t == NULL || strcmp(type, "text") != 0)
            continue;
        if (!first)
            buf_appendc(b, '\n');
        buf_appends(b, t);
        first = false;
    }
}

/* ---- messages --------------------------------------------------------------------------- */

/* Tool arguments as the tool_use "input" object; "" (and anything that is not a JSON object,
 * which the agent already answered with an error result) becomes {}. */
static json_t *parse_input(const char *args)
{
    if (args == NULL)
        return json_object();
    json_t *j = json_loads(args, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return json_object();
    }
    return j;
}

static void add_tool_uses(json_t *blocks, const json_t *calls)
{
    size_t i;
    const json_t *tc;
    json_array_foreach(calls, i, tc)
    {
        const json_t *fn = json_object_get(tc, "function");
        const char *id = json_get_str(tc, "id");
        const char *name = json_get_str(fn, "name");
        json_array_append_new(blocks, json_pack("{s:s, s:s, s:s, s:o}", "type", "tool_use", "id",
                                                id ? id : "", "name", name ? name : "", "input",
                                                parse_input(json_get_str(fn, "arguments"))));
    }
}

/* Thinking with tools: the API wants the assistant turn that made the tool calls to start
 * with its signed thinking block. */
static void add_thinking(json_t *blocks, const struct llm_config *cfg, const json_t *msg)
{
    const char *sig = json_get_str(msg, "reasoning_signature");
    if (cfg->thinking != 1 || sig == NULL || sig[0] == '\0')
        return;
    const char *text = json_get_str(msg, "reasoning_content");
    json_array_append_new(blocks, json_pack("{s:s, s:s, s:s}", "type", "thinking", "thinking",
                                            text ? text : "", "signature", sig));
}

static json_t *tool_result(const json_t *msg)
{
    const char *id = json_get_str(msg, "tool_call_id");
    json_t *b = json_pack("{s:s, s:s}", "type", "tool_result", "tool_use_id", id ? id : "");
    const json_t *content = json_object_get(msg, "content");
    if (json_is_string(content)) {
        if (json_string_length(content) > 0)
            json_object_set(b, "content", (json_t *)content);
    } else if (json_is_array(content)) {
        json_t *blocks = json_array();
        add_content(blocks, content);
        if (json_array_size(blocks) > 0)
            json_object_set(b, "content", blocks);
        json_decref(blocks);
    }
    return b;
}

/* Appends blocks (stolen) as a message of `role`; consecutive messages of one role are merged,
 * which also puts consecutive tool results into one user message. Empty ones are dropped. */
static void push_blocks_new(json_t *out, const char *role, json_t *blocks)
{
    if (json_array_size(blocks) == 0) {
        json_decref(blocks);
        return;
    }
    json_t *last = json_array_get(out, json_array_size(out) - 1);
    if (last && strcmp(json_get_str(last, "role"), role) == 0) {
        json_array_extend(json_object_get(last, "content"), blocks);
        json_decref(blocks);
        return;
    }
    json_array_append_new(out, json_pack("{s:s, s:o}", "role", role, "content", blocks));
}

static bool is_system(const char *role)
{
    return strcmp(role, "system") == 0 || strcmp(role, "developer") == 0;
}

static void convert_message(json_t *out, struct buf *system, const struct llm_config *cfg,
                            const json_t *msg)
{
    const char *role = json_get_str(msg, "role");
    if (role == NULL)
        return;
    const json_t *content = json_object_get(msg, "content");
    json_t *blocks = json_array();
    if (is_system(role)) {
        if (system->len > 0)
            buf_append_lit(system, "\n\n");
        content_text(system, content);
    } else if (strcmp(role, "assistant") == 0) {
        add_thinking(blocks, cfg, msg);
        add_content(blocks, content);
        add_tool_uses(blocks, json_object_get(msg, "tool_calls"));
        push_blocks_new(out, "assistant", blocks);
        return;
    } else if (strcmp(role, "tool") == 0) {
        json_array_append_new(blocks, tool_result(msg));
        push_blocks_new(out, "user", blocks);
        return;
    } else if (strcmp(role, "user") == 0) {
        add_content(blocks, content);
        push_blocks_new(out, "user", blocks);
        return;
    }
    json_decref(blocks);
}

/* ---- tools and the body ----------------------------------------------------------------- */

static json_t *convert_tools(const json_t *tools)
{
    json_t *out = json_array();
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t)
    {
        const json_t *fn = json_object_get(t, "function");
        const char *name = json_get_str(fn, "name");
        if (name == NULL)
            continue;
        json_t *schema = json_object_get(fn, "parameters");
        json_t *a = json_pack("{s:s}", "name", name);
        const char *desc = json_get_str(fn, "description");
        if (desc != NULL)
            json_object_set_new(a, "description", json_string(desc));
        /* input_schema is required and must be an object schema. */
        json_object_set_new(a, "input_schema",
                            json_is_object(schema)
                                ? json_incref(schema)
                                : json_pack("{s:s, s:{}}", "type", "object", "properties"));
        json_array_append_new(out, a);
    }
    return out;
}

/* Returns max_tokens and sets *budget (0 without thinking). budget_tokens must be at least
 * 1024 and below max_tokens, so max_tokens grows when a budget needs it. */
static int token_limits(const struct llm_config *cfg, int *budget)
{
    int max_tokens = cfg->max_tokens > 0 ? cfg->max_tokens : ANTH_DEFAULT_MAX_TOKENS;
    *budget = 0;
    if (cfg->thinking != 1)
        return max_tokens;
    *budget = cfg->thinking_budget_tokens > 0 ? cfg->thinking_budget_tokens : max_tokens / 2;
    if (*budget < ANTH_MIN_THINKING_BUDGET)
        *budget = ANTH_MIN_THINKING_BUDGET;
    if (*budget >= max_tokens)
        max_tokens = *budget + ANTH_MIN_THINKING_BUDGET;
    return max_tokens;
}

json_t *anth_request_body(const struct llm_config *cfg, const json_t *messages, const json_t *tools)
{
    json_t *body = json_object();
    json_object_set_new(body, "model", json_string(cfg->model ? cfg->model : ""));
    int budget;
    json_object_set_new(body, "max_tokens", json_integer(token_limits(cfg, &budget)));
    struct buf system;
    buf_init(&system, ANTH_SYSTEM_MAX);
    json_t *out = json_array();
    size_t i;
    const json_t *msg;
    json_array_foreach(messages, i, msg) convert_message(out, &system, cfg, msg);
    if (system.len > 0)
        json_object_set_new(body, "system", json_string_lossy(system.data, system.len));
    buf_release(&system);
    json_object_set_new(body, "messages", out);
    if (json_array_size(tools) > 0) {
        json_t *t = convert_tools(tools);
        if (json_array_size(t) > 0)
            json_object_set(body, "tools", t);
        json_decref(t);
    }
    json_object_set_new(body, "stream", json_true());
    /* With thinking on, the API accepts no temperature but 1; leave it to the default. */
    if (cfg->temperature >= 0 && cfg->thinking != 1)
        json_object_set_new(body, "temperature", json_real(cfg->temperature));
    if (budget > 0)
        json_object_set_new(body, "thinking",
                            json_pack("{s:s, s:i}", "type", "enabled", "budget_tokens", budget));
    return body;
}
