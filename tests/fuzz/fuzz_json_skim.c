/* SPDX-License-Identifier: MIT */
/* fuzz_json_skim.c -- the allocation-free chunk scanner (src/llm/json_skim.c) against its
 * oracle: every verdict but UNSURE must agree with json_loadb(p, len, 0, NULL), and for PLAIN
 * the picked strings must decode to what jansson reads for the same members. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "llm/json_skim.h"

/* Compares a picked string with the member jansson found (NULL when absent or null). */
static void same_string(const struct json_skim_str *v, const json_t *j)
{
    if (!v->raw) {
        if (j && !json_is_null(j))
            abort();
        return;
    }
    if (!json_is_string(j))
        abort();
    char *dec = xmalloc(v->len + 1);
    size_t n = json_skim_decode(v, dec);
    if (n != v->len || n != json_string_length(j) || memcmp(dec, json_string_value(j), n) != 0)
        abort();
    xfree(dec);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    struct json_skim_chunk out;
    memset(&out, 0, sizeof(out));
    enum json_skim_verdict v = json_skim_chunk((const char *)data, size, &out);
    if (v == JSON_SKIM_UNSURE)
        return 0;
    json_t *j = json_loadb((const char *)data, size, 0, NULL);
    if ((v == JSON_SKIM_INVALID) != (j == NULL))
        abort(); /* disagrees with jansson */
    if (v == JSON_SKIM_PLAIN) {
        const json_t *choices = json_object_get(j, "choices");
        const json_t *c0 = json_is_array(choices) ? json_array_get(choices, 0) : NULL;
        const json_t *delta = c0 ? json_object_get(c0, "delta") : NULL;
        same_string(&out.content, delta ? json_object_get(delta, "content") : NULL);
        same_string(&out.reasoning_content,
                    delta ? json_object_get(delta, "reasoning_content") : NULL);
        same_string(&out.reasoning, delta ? json_object_get(delta, "reasoning") : NULL);
        same_string(&out.finish_reason, c0 ? json_object_get(c0, "finish_reason") : NULL);
    }
    json_decref(j);
    return 0;
}
