/* SPDX-License-Identifier: MIT */
/* fuzz.h -- shared bits of the libFuzzer drivers in tests/fuzz/ (see README.md there): the
 * allocator setup every driver needs, and a way to cut one input into pieces so that each parser
 * is also fed split at input-chosen points, as a socket would deliver it. */
#ifndef FUZZ_FUZZ_H
#define FUZZ_FUZZ_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* jansson allocates through xalloc, as in main.c. Call at the top of every input (cheap). */
static inline void fuzz_init(void)
{
    static int done;
    if (!done) {
        json_set_alloc_funcs(xmalloc, xfree);
        done = 1;
    }
}

/* The first byte of the input chooses the piece size (1..256, 0 = whole): the rest is the data.
 * Drivers feed data[0..len) in pieces of fuzz_step bytes. */
static inline size_t fuzz_step(const uint8_t **data, size_t *size)
{
    if (*size == 0)
        return 1;
    size_t step = (*data)[0];
    (*data)++;
    (*size)--;
    return step == 0 ? (*size ? *size : 1) : step;
}

#endif
