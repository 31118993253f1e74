/* SPDX-License-Identifier: MIT */
/* fuzz_llm_stream.h -- no-op llm_callbacks for the stream decoder drivers. */
#ifndef FUZZ_LLM_STREAM_H
#define FUZZ_LLM_STREAM_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm.h"

static void on_text(void *data, const char *s, size_t len)
{
    if (len && !s)
        abort();
}

static void on_tool(void *data, size_t index, const char *id, const char *name, const char *args,
                    size_t args_len)
{
    if (!id || !name || (args_len && !args))
        abort();
}

static const struct llm_callbacks fuzz_cbs = {
    .on_content = on_text,
    .on_reasoning = on_text,
    .on_tool_call_delta = on_tool,
};

static size_t slen(const char *s)
{
    return s ? strlen(s) : 0;
}

/* Touches every field of a result so that ASan sees a bad pointer. The decoders set every
 * string (strict); pe_parser_finish sets content, raw_content and the calls. */
static void check_result(const struct llm_result *res, bool strict)
{
    if (strict && (!res->content || !res->reasoning || !res->finish_reason))
        abort();
    size_t n = slen(res->content) + slen(res->reasoning) + slen(res->finish_reason) +
               slen(res->raw_content) + slen(res->reasoning_signature);
    for (size_t i = 0; i < res->n_tool_calls; i++) {
        const struct llm_tool_call *c = &res->tool_calls[i];
        n += strlen(c->id) + strlen(c->name) + strlen(c->arguments);
    }
    if (n == (size_t)-1)
        abort();
}

#endif
