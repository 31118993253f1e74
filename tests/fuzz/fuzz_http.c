/* SPDX-License-Identifier: MIT */
/* fuzz_http.c -- HTTP/1.1 request parsing as the server drives it (src/http/parse.c over
 * llhttp): bytes arrive in input-chosen pieces, the unparsed rest is offered again, each
 * complete request is taken and read through the accessors of http.h, and a request that ends
 * the connection (Connection: close, HTTP/1.0, Upgrade) stops the feed, as conn.c does.
 * Properties: the verdict (requests, their paths and bodies, the error status) does not
 * depend on how the bytes were split, and the head and body caps hold. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http/http_int.h"

#define MAX_HDR 2048
#define MAX_BODY 4096
#define MAX_REQS 16

struct outcome {
    int err;
    int n;
    unsigned long sig[MAX_REQS]; /* a hash of each request's method, path, query and body */
};

static unsigned long hash(unsigned long h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = h * 31 + (unsigned char)s[i];
    return h;
}

static unsigned long read_req(struct http_req *r)
{
    const char *m = http_req_method(r), *path = http_req_path(r), *q = http_req_query(r);
    size_t blen = 0;
    const char *body = http_req_body(r, &blen);
    if (blen > MAX_BODY || body[blen] != '\0' || path[0] == '\0')
        abort();
    unsigned long h = hash(hash(hash(hash(7, m, strlen(m)), path, strlen(path)), q, strlen(q)),
                           body, blen);
    for (size_t i = 0; i < r->nhdrs; i++) {
        const char *name = r->head.data + r->hdrs[i].name_off;
        if (!*name || http_req_header(r, name) == NULL)
            abort(); /* every stored field is found by its own name */
    }
    char *v = http_req_query_param(r, "a");
    xfree(v);
    return h;
}

static void run(const char *data, size_t len, size_t step, struct outcome *o)
{
    struct http__parser p;
    http__parser_init(&p, MAX_HDR, MAX_BODY);
    memset(o, 0, sizeof(*o));
    size_t avail = 0, pos = 0;
    bool stop = false;
    while (avail < len && !o->err && !stop) {
        avail += len - avail < step ? len - avail : step;
        while (pos < avail && !stop) {
            size_t used = 0;
            int rc = http__parser_feed(&p, data + pos, avail - pos, &used);
            if (used > avail - pos)
                abort();
            pos += used;
            if (rc == HTTP__REQ_DONE) {
                struct http_req *r = http__parser_take(&p);
                if (o->n < MAX_REQS)
                    o->sig[o->n] = read_req(r);
                o->n++;
                stop = !r->keep_alive; /* conn.c reads nothing after it */
                http__req_free(r);
            } else if (rc < 0) {
                o->err = -rc;
                break;
            } else if (pos != avail) {
                abort(); /* NEED_MORE must consume everything */
            }
        }
    }
    http__parser_release(&p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    size_t step = fuzz_step(&data, &size);
    struct outcome a, b;
    run((const char *)data, size, step, &a);
    run((const char *)data, size, size ? size : 1, &b);
    if (a.err != b.err || a.n != b.n)
        abort();
    for (int i = 0; i < a.n && i < MAX_REQS; i++)
        if (a.sig[i] != b.sig[i])
            abort();
    return 0;
}
