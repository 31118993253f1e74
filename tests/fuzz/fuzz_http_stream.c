/* SPDX-License-Identifier: MIT */
/* fuzz_http_stream.c -- streamed request bodies at the parser (src/http/parse.c): POSTs to /up
 * are picked by want_stream, so their heads come first (HTTP__HEAD_DONE), their bodies go to the
 * sink without the body cap and end with HTTP__BODY_END; other requests are buffered as usual.
 * Properties: the transcript (heads, streamed bodies, whole requests, the error status) does not
 * depend on how the bytes were split; a streamed body never reaches http_req_body. */
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "fuzz.h"
#include "http/http_int.h"

static bool want(void *data, const struct http_req *r)
{
    (void)data;
    return strcmp(http_req_method(r), "POST") == 0 && strcmp(http_req_path(r), "/up") == 0;
}

static void sink(void *data, const char *p, size_t len)
{
    if (len == 0)
        abort();
    buf_append(data, p, len);
}

static unsigned long hash(unsigned long h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = h * 31 + (unsigned char)s[i];
    return h;
}

static unsigned long run(const char *in, size_t len, size_t step)
{
    struct http__parser p;
    http__parser_init(&p, 2048, 64);
    p.want_stream = want;
    struct buf body;
    buf_init(&body, 1 << 20);
    unsigned long h = 7;
    size_t avail = 0, pos = 0;
    bool stop = false;
    while (avail < len && !stop) {
        avail += len - avail < step ? len - avail : step;
        while ((pos < avail || p.head_end) && !stop) {
            size_t used = 0;
            int rc = http__parser_feed(&p, in + pos, avail - pos, &used);
            pos += used;
            if (rc < 0) {
                h = hash(h, "E", 1) * 31 + (unsigned long)-rc;
                stop = true;
            } else if (rc == HTTP__HEAD_DONE) {
                struct http_req *r = http__parser_take_head(&p, sink, &body);
                size_t bl = 1;
                http_req_body(r, &bl);
                if (bl != 0 || !http_req_body_streamed(r))
                    abort();
                h = hash(h, "H", 1);
                http__req_free(r); /* its body still follows */
            } else if (rc == HTTP__BODY_END) {
                h = hash(hash(h, "B", 1), body.data ? body.data : "", body.len);
                buf_reset(&body);
            } else if (rc == HTTP__REQ_DONE) {
                struct http_req *r = http__parser_take(&p);
                size_t bl;
                const char *b = http_req_body(r, &bl);
                h = hash(hash(h, http_req_path(r), strlen(http_req_path(r))), b, bl);
                stop = !r->keep_alive;
                http__req_free(r);
            } else if (pos == avail) {
                break;
            }
        }
    }
    buf_release(&body);
    http__parser_release(&p);
    return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    size_t step = fuzz_step(&data, &size);
    unsigned long a = run((const char *)data, size, size ? size : 1);
    unsigned long b = run((const char *)data, size, step);
    if (a != b)
        abort();
    return 0;
}
