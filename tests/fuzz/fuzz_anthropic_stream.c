/* SPDX-License-Identifier: MIT */
/* fuzz_anthropic_stream.c -- the anthropic streaming decoder (src/llm/anthropic_stream.c): SSE bytes in
 * input-chosen pieces, then the end-of-stream result, whose every string must be readable. */
#include "fuzz.h"
#include "fuzz_llm_stream.h"
#include "llm/anthropic_stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    size_t step = fuzz_step(&data, &size);
    struct anth_stream s;
    anth_stream_init(&s, &fuzz_cbs, NULL, 8192);
    int rc = 0;
    for (size_t off = 0; off < size && rc == 0; off += step) {
        size_t n = size - off < step ? size - off : step;
        rc = anth_stream_feed(&s, (const char *)data + off, n);
    }
    struct llm_result res;
    memset(&res, 0, sizeof(res));
    anth_stream_finish(&s, &res);
    check_result(&res, true);
    anth_stream_release(&s);
    return 0;
}
