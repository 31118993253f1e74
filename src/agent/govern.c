/* SPDX-License-Identifier: MIT */
/* govern.c -- the rules that govern runs, apart from the loop that applies them (run.c): the
 * approval policy of tool calls, token usage (normalized from the providers' shapes, estimated
 * when a provider sends none, summed per run and session, priced), and the budgets and time
 * limits read from the config. Pure: no I/O, no loop. */
#include <fnmatch.h>
#include <string.h>

#include "../core/xalloc.h"
#include "agent_int.h"

/* ---- config ---- */

static int read_ms(const json_t *obj, const char *key, const char *full, uint64_t def,
                   uint64_t *out, char **err)
{
    const json_t *j = json_object_get(obj, key);
    if (j == NULL || json_is_null(j)) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(j) || json_integer_value(j) < 0) {
        *err = xasprintf("'%s' must be a whole number >= 0 (0 = no limit)", full);
        return -1;
    }
    *out = (uint64_t)json_integer_value(j);
    return 0;
}

int agent_govern_config(struct agent_options *o, const json_t *root, char **err)
{
    const json_t *tools = json_object_get(root, "tools");
    const json_t *ap = json_object_get(tools, "approval");
    if (ap && !json_is_object(ap)) {
        *err = xstrdup("'tools.approval' must be an object of tool name -> auto|ask|deny");
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)ap, k, v)
    {
        const char *p = json_string_value(v);
        if (!p || (strcmp(p, "auto") && strcmp(p, "ask") && strcmp(p, "deny"))) {
            *err = xasprintf("'tools.approval.%s' must be auto, ask or deny", k);
            return -1;
        }
    }
    o->approval = ap;
    const json_t *budget = json_object_get(root, "budget");
    const json_t *run = json_object_get(root, "run");
    if (read_ms(tools, "approvalTimeoutMs", "tools.approvalTimeoutMs", 600000,
                &o->approval_timeout_ms, err) < 0 ||
        read_ms(run, "maxMs", "run.maxMs", 1800000, &o->run_max_ms, err) < 0 ||
        read_ms(budget, "maxTokensPerRun", "budget.maxTokensPerRun", 0,
                &o->budget.tokens_per_run, err) < 0 ||
        read_ms(budget, "maxTokensPerSession", "budget.maxTokensPerSession", 0,
                &o->budget.tokens_per_session, err) < 0 ||
        read_ms(budget, "maxRunMs", "budget.maxRunMs", 0, &o->budget.run_ms, err) < 0 ||
        read_ms(budget, "maxToolCallsPerRun", "budget.maxToolCallsPerRun", 0,
                &o->budget.tool_calls_per_run, err) < 0)
        return -1;
    if (o->approval_timeout_ms == 0)
        o->approval_timeout_ms = 600000;
    uint64_t window;
    const json_t *context = json_object_get(root, "context");
    if (read_ms(json_object_get(root, "model"), "contextWindow", "model.contextWindow", 128000,
                &window, err) < 0 ||
        read_ms(context, "maxPromptTokens", "context.maxPromptTokens", window * 3 / 4,
                &o->max_prompt_tokens, err) < 0)
        return -1;
    const json_t *pricing = json_object_get(json_object_get(root, "model"), "pricing");
    o->pricing = json_is_object(pricing) ? pricing : NULL;
    return 0;
}

/* ---- approval ---- */

const char *agent__approval_policy(const char *tool)
{
    const json_t *ap = agent__opts.approval;
    const char *exact = json_string_value(json_object_get(ap, tool));
    if (exact)
        return exact;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)ap, k, v) if (strcmp(k, "*") != 0 && fnmatch(k, tool, 0) == 0)
        return json_string_value(v);
    const char *rest = json_string_value(json_object_get(ap, "*"));
    return rest ? rest : "auto";
}

/* ---- usage ---- */

static json_int_t num(const json_t *o, const char *key)
{
    const json_t *j = json_object_get(o, key);
    return json_is_integer(j) && json_integer_value(j) > 0 ? json_integer_value(j) : 0;
}

/* About four characters a token: the usual estimate for English text and code. */
static json_int_t estimate(size_t chars)
{
    return (json_int_t)((chars + 3) / 4);
}

json_t *agent__usage_new(const json_t *u, size_t prompt_chars, size_t completion_chars)
{
    json_t *out;
    if (json_is_object(u) && (num(u, "prompt_tokens") || num(u, "completion_tokens"))) {
        json_int_t in = num(u, "prompt_tokens"), outk = num(u, "completion_tokens");
        json_int_t total = num(u, "total_tokens") ? num(u, "total_tokens") : in + outk;
        out = json_pack("{s:I, s:I, s:I}", "promptTokens", in, "completionTokens", outk,
                        "totalTokens", total);
        json_int_t cached = num(json_object_get(u, "prompt_tokens_details"), "cached_tokens");
        if (cached == 0)
            cached = num(u, "cache_read_input_tokens");
        if (cached)
            json_object_set_new(out, "cachedPromptTokens", json_integer(cached));
        json_int_t reasoning =
            num(json_object_get(u, "completion_tokens_details"), "reasoning_tokens");
        if (reasoning)
            json_object_set_new(out, "reasoningTokens", json_integer(reasoning));
    } else {
        json_int_t in = estimate(prompt_chars), outk = estimate(completion_chars);
        out = json_pack("{s:I, s:I, s:I, s:b}", "promptTokens", in, "completionTokens", outk,
                        "totalTokens", in + outk, "estimated", 1);
    }
    agent__usage_price(out);
    return out;
}

void agent__usage_price(json_t *u)
{
    const json_t *p = agent__opts.pricing;
    if (p == NULL)
        return;
    double in = json_number_value(json_object_get(p, "inputPerMTokens"));
    double out = json_number_value(json_object_get(p, "outputPerMTokens"));
    double cost = (double)num(u, "promptTokens") * in / 1e6 +
                  (double)num(u, "completionTokens") * out / 1e6;
    json_object_set_new(u, "costUSD", json_real(cost));
}

void agent__usage_add(json_t *sum, const json_t *u)
{
    static const char *keys[] = {"promptTokens", "completionTokens", "totalTokens",
                                 "cachedPromptTokens", "reasoningTokens"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        json_int_t v = num(u, keys[i]);
        if (v || json_object_get(sum, keys[i]) || i < 3)
            json_object_set_new(sum, keys[i], json_integer(num(sum, keys[i]) + v));
    }
    if (json_is_true(json_object_get(u, "estimated")))
        json_object_set_new(sum, "estimated", json_true());
    const json_t *c = json_object_get(u, "costUSD");
    if (json_is_number(c))
        json_object_set_new(sum, "costUSD",
                            json_real(json_number_value(json_object_get(sum, "costUSD")) +
                                      json_number_value(c)));
}

uint64_t agent__usage_total(const json_t *u)
{
    return (uint64_t)num(u, "totalTokens");
}
