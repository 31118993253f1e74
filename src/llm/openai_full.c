/* SPDX-License-Identifier: MIT */
/* openai_full.c -- the unstreamed chat.completion answer (see openai_full.h). */
#include "openai_full.h"

#include <string.h>

#include "../core/util.h"
#include "../core/xalloc.h"

#define ERR_SNIPPET 200

static void set_error(struct oai_full *d, int status, const char *msg)
{
    if (d->status != 0)
        return;
    d->status = status;
    d->error = xstrdup(msg);
}

void oai_full_init(struct oai_full *d, const struct llm_callbacks *cb, void *data,
                   size_t max_bytes)
{
    memset(d, 0, sizeof(*d));
    d->cb = cb;
    d->data = data;
    buf_init(&d->body, max_bytes);
}

int oai_full_feed(struct oai_full *d, const char *p, size_t len)
{
    if (d->status != 0)
        return d->status;
    if (buf_append(&d->body, p, len) < 0) {
        set_error(d, LLM_ERR_PROTOCOL, "LLM answer over the size cap");
        return d->status;
    }
    return 0;
}

static const char *str_or(const json_t *o, const char *key, const char *def)
{
    const char *s = json_get_str(o, key);
    return s ? s : def;
}

static void collect_calls(struct oai_full *d, const json_t *msg)
{
    const json_t *tcs = json_object_get(msg, "tool_calls");
    size_t n = json_array_size(tcs);
    if (n == 0)
        return;
    d->calls = xcalloc(n, sizeof(*d->calls));
    size_t i;
    const json_t *tc;
    json_array_foreach(tcs, i, tc)
    {
        const json_t *fn = json_object_get(tc, "function");
        const char *name = json_get_str(fn, "name");
        if (name == NULL)
            continue;
        struct llm_tool_call *c = &d->calls[d->ncalls++];
        c->id = xstrdup(str_or(tc, "id", ""));
        c->name = xstrdup(name);
        const json_t *args = json_object_get(fn, "arguments");
        /* Some servers send the arguments as an object rather than its JSON text. */
        c->arguments = json_is_string(args) ? xstrdup(json_string_value(args))
                       : args               ? json_dump_compact(args, NULL)
                                            : xstrdup("");
    }
}

static const json_t *first_message(const json_t *answer)
{
    return json_object_get(json_array_get(json_object_get(answer, "choices"), 0), "message");
}

static void report(struct oai_full *d, const json_t *msg)
{
    const char *reasoning = json_get_str(msg, "reasoning_content");
    if (reasoning == NULL)
        reasoning = json_get_str(msg, "reasoning");
    if (reasoning && *reasoning && d->cb->on_reasoning)
        d->cb->on_reasoning(d->data, reasoning, strlen(reasoning));
    const char *content = json_get_str(msg, "content");
    if (content && *content && d->cb->on_content)
        d->cb->on_content(d->data, content, strlen(content));
    for (size_t i = 0; i < d->ncalls && d->cb->on_tool_call_delta; i++) {
        const struct llm_tool_call *c = &d->calls[i];
        d->cb->on_tool_call_delta(d->data, i, c->id, c->name, c->arguments, strlen(c->arguments));
    }
}

int oai_full_emit(struct oai_full *d)
{
    if (d->emitted || d->status != 0)
        return d->status;
    d->emitted = true;
    json_error_t je;
    d->answer = json_loadb(buf_str(&d->body), d->body.len, 0, &je);
    if (d->answer == NULL) {
        set_error(d, LLM_ERR_TRUNCATED, "LLM answer is not complete JSON");
        return d->status;
    }
    const json_t *err = json_object_get(d->answer, "error");
    if (err != NULL) {
        const char *m = json_is_string(err) ? json_string_value(err) : json_get_str(err, "message");
        set_error(d, LLM_ERR_STREAM, m ? m : "LLM answered with an error");
        return d->status;
    }
    const json_t *msg = first_message(d->answer);
    if (!json_is_object(msg)) {
        char *m = xasprintf("LLM answer has no choices[0].message: %.*s",
                            (int)(d->body.len < ERR_SNIPPET ? d->body.len : ERR_SNIPPET),
                            buf_str(&d->body));
        set_error(d, LLM_ERR_PROTOCOL, m);
        xfree(m);
        return d->status;
    }
    collect_calls(d, msg);
    d->done = true;
    report(d, msg);
    return 0;
}

int oai_full_finish(struct oai_full *d, struct llm_result *res)
{
    if (!d->emitted && d->status == 0)
        set_error(d, LLM_ERR_TRUNCATED, "LLM answer ended early");
    memset(res, 0, sizeof(*res));
    const json_t *msg = d->done ? first_message(d->answer) : NULL;
    const json_t *choice = json_array_get(json_object_get(d->answer, "choices"), 0);
    res->content = str_or(msg, "content", "");
    res->reasoning = str_or(msg, "reasoning_content", str_or(msg, "reasoning", ""));
    res->tool_calls = d->calls;
    res->n_tool_calls = d->ncalls;
    res->finish_reason = d->done ? str_or(choice, "finish_reason", "") : "";
    res->usage = d->done ? json_object_get(d->answer, "usage") : NULL;
    if (res->usage != NULL && !json_is_object(res->usage))
        res->usage = NULL;
    return d->status;
}

void oai_full_release(struct oai_full *d)
{
    for (size_t i = 0; i < d->ncalls; i++) {
        xfree(d->calls[i].id);
        xfree(d->calls[i].name);
        xfree(d->calls[i].arguments);
    }
    xfree(d->calls);
    json_decref(d->answer);
    buf_release(&d->body);
    xfree(d->error);
    memset(d, 0, sizeof(*d));
}
