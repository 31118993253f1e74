/* SPDX-License-Identifier: MIT */
/* fuzz_multipart.c -- the multipart/form-data parser (src/api/multipart.c) fed in input-chosen
 * pieces. Properties: the verdict and the parts (heads and contents, hashed) do not depend on
 * how the bytes were split; every callback gets sane arguments; the part cap holds. */
#include <stdlib.h>
#include <string.h>

#include "api/multipart.h"
#include "fuzz.h"

#define MAX_PARTS 8

struct outcome {
    int rc;
    size_t parts, ends;
    unsigned long h;
};

static unsigned long hash(unsigned long h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = h * 31 + (unsigned char)s[i];
    return h;
}

static int on_part(void *data, const struct multipart_part *p)
{
    struct outcome *o = data;
    if (!p->name || !p->content_type || strlen(p->name) > MULTIPART_MAX_NAME)
        abort();
    o->parts++;
    if (o->parts > MAX_PARTS)
        abort();
    o->h = hash(o->h, p->name, strlen(p->name) + 1);
    if (p->filename)
        o->h = hash(o->h, p->filename, strlen(p->filename) + 1);
    o->h = hash(o->h, p->content_type, strlen(p->content_type) + 1);
    return 0;
}

static int on_data(void *data, const char *p, size_t len)
{
    struct outcome *o = data;
    if (len == 0 || o->parts == o->ends)
        abort(); /* content only inside a part */
    o->h = hash(o->h, p, len);
    return 0;
}

static int on_end(void *data)
{
    struct outcome *o = data;
    o->ends++;
    o->h = hash(o->h, "|", 1);
    return 0;
}

static const struct multipart_cbs cbs = {on_part, on_data, on_end};

static void run(const char *data, size_t len, size_t step, struct outcome *o)
{
    static struct multipart m;
    multipart_init(&m, "b0undary", MAX_PARTS);
    memset(o, 0, sizeof(*o));
    int rc = MULTIPART_OK;
    for (size_t off = 0; off < len && rc == MULTIPART_OK; off += step) {
        size_t n = len - off < step ? len - off : step;
        rc = multipart_feed(&m, data + off, n, &cbs, o);
    }
    o->rc = rc == MULTIPART_OK ? multipart_finish(&m) : rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    size_t step = fuzz_step(&data, &size);
    struct outcome a, b;
    run((const char *)data, size, size ? size : 1, &a);
    run((const char *)data, size, step, &b);
    if (a.rc != b.rc || a.parts != b.parts || a.ends != b.ends || a.h != b.h)
        abort();
    return 0;
}
