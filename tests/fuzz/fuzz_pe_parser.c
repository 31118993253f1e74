/* SPDX-License-Identifier: MIT */
/* fuzz_pe_parser.c -- the prompt-engineering tool-call parser (src/llm/pe_parser.c): model text
 * with <tool_call> blocks in input-chosen pieces, then the result; finishing twice must give the
 * same calls (the agent may ask again). */
#include "fuzz.h"
#include "fuzz_llm_stream.h"
#include "llm/pe_parser.h"

#include <stdio.h>

static void fixed_id(char out[PE_ID_MAX], size_t seq, void *data)
{
    snprintf(out, PE_ID_MAX, "call_%zu", seq);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    size_t step = fuzz_step(&data, &size);
    struct pe_parser p;
    pe_parser_init(&p, &fuzz_cbs, NULL);
    p.make_id = fixed_id;
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        pe_parser_feed(&p, (const char *)data + off, n);
    }
    struct llm_result res, again;
    memset(&res, 0, sizeof(res));
    memset(&again, 0, sizeof(again));
    pe_parser_finish(&p, &res);
    check_result(&res, false);
    size_t n1 = res.n_tool_calls;
    pe_parser_finish(&p, &again);
    check_result(&again, false);
    if (again.n_tool_calls != n1)
        abort();
    pe_parser_release(&p);
    return 0;
}
