/* SPDX-License-Identifier: MIT */
/* fuzz_sse.c -- the SSE reader (src/llm/sse_reader.c) fed in input-chosen pieces. Property:
 * every event payload is within the line cap, and the verdict does not depend on the split. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "llm/sse_reader.h"

#define MAX_LINE 4096

static int on_event(void *data, const char *event, const char *payload, size_t len)
{
    size_t *n = data;
    if (len > MAX_LINE || strlen(event) > MAX_LINE)
        abort();
    (*n)++;
    return (*n % 97) == 96 ? -7 : 0; /* sometimes stop, as a consumer may */
}

static int run(const uint8_t *data, size_t size, size_t step, size_t *events)
{
    struct sse_reader r;
    sse_reader_init(&r, MAX_LINE);
    int rc = 0;
    for (size_t off = 0; off < size && rc == 0; off += step) {
        size_t n = size - off < step ? size - off : step;
        rc = sse_reader_feed(&r, (const char *)data + off, n, on_event, events);
    }
    sse_reader_release(&r);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    size_t step = fuzz_step(&data, &size);
    size_t a = 0, b = 0;
    int ra = run(data, size, step, &a);
    int rb = run(data, size, size ? size : 1, &b);
    if (ra != rb || a != b)
        abort(); /* the split changed the outcome */
    return 0;
}
