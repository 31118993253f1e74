/* SPDX-License-Identifier: MIT */
/* fuzz_ws.c -- WebSocket frames (src/sio/ws.c over wslay) from a hostile client, in
 * input-chosen pieces: no message above the cap is delivered, and once ws_feed reports the end
 * the connection stays finished. */
#include <stdlib.h>

#include "fuzz.h"
#include "sio/ws.h"

#define MAX_MSG 4096

struct sink {
    struct ws *w;
    size_t out_bytes, msgs;
};

static void on_write(void *data, const char *p, size_t len)
{
    struct sink *s = data;
    s->out_bytes += len;
}

static void on_message(void *data, bool binary, const char *p, size_t len)
{
    struct sink *s = data;
    if (len > MAX_MSG)
        abort();
    s->msgs++;
    if (s->msgs % 3 == 0)
        ws_send(s->w, binary, p, len); /* echo some, as the Engine.IO layer answers */
    if (s->msgs == 50)
        ws_close(s->w, WS_CLOSE_NORMAL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    size_t step = fuzz_step(&data, &size);
    static const struct ws_ops ops = {on_write, on_message};
    struct sink s = {0};
    s.w = ws_new(&ops, &s, MAX_MSG);
    int rc = 0;
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        int r = ws_feed(s.w, (const char *)data + off, n);
        if (rc == 1 && r != 1)
            abort(); /* finished connections stay finished */
        rc = r;
        if (rc == 1 && !ws_done(s.w))
            abort();
    }
    ws_free(s.w);
    return 0;
}
