/* SPDX-License-Identifier: MIT */
/* fuzz_structured.c -- the structured-outputs parser and JSON repair (src/llm/structured.c):
 * model text in input-chosen pieces, then the result (finishing twice gives the same); the
 * repair of the whole text must give a NUL-terminated string or NULL. */
#include "fuzz.h"
#include "fuzz_llm_stream.h"
#include "llm/structured.h"

#include <stdio.h>

static void fixed_id(char out[PE_ID_MAX], size_t seq, void *data)
{
    snprintf(out, PE_ID_MAX, "call_%zu", seq);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    size_t step = fuzz_step(&data, &size);
    struct so_parser p;
    so_parser_init(&p, &fuzz_cbs, NULL);
    p.make_id = fixed_id;
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        so_parser_feed(&p, (const char *)data + off, n);
    }
    struct llm_result res, again;
    memset(&res, 0, sizeof(res));
    memset(&again, 0, sizeof(again));
    so_parser_finish(&p, &res);
    check_result(&res, false);
    so_parser_finish(&p, &again);
    check_result(&again, false);
    if (again.n_tool_calls != res.n_tool_calls || again.content != res.content)
        abort();
    so_parser_release(&p);
    struct so_repair info;
    char *fixed = so_json_repair((const char *)data, size, &info);
    /* The repair escapes control characters in strings (6 bytes each) and adds at most
     * ":null" and a closer per open level. */
    if (fixed != NULL && strlen(fixed) > 6 * size + 6 * SO_MAX_DEPTH + 16)
        abort();
    xfree(fixed);
    return 0;
}
