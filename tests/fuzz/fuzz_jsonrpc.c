/* SPDX-License-Identifier: MIT */
/* fuzz_jsonrpc.c -- MCP's stdio framing and message classification (src/tools/jsonrpc.c): a
 * byte stream in input-chosen pieces; every message delivered must be well formed, and encoding
 * a response back must give one line without a raw newline. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "tools/jsonrpc.h"

static int on_message(void *data, const struct jsonrpc_msg *m)
{
    size_t len = 0;
    char *line = NULL;
    switch (m->kind) {
    case JSONRPC_REQUEST:
        if (!m->method || !m->id)
            abort();
        line = jsonrpc_encode_result(m->id, m->params ? m->params : json_null(), &len);
        break;
    case JSONRPC_NOTIFICATION:
        if (!m->method)
            abort();
        line = jsonrpc_encode_notification(m->method, m->params, &len);
        break;
    case JSONRPC_RESPONSE:
        if (m->error) {
            char *t = jsonrpc_error_text(m->error);
            xfree(t);
        }
        line = jsonrpc_encode_error(m->id, -32000, "x", &len);
        break;
    }
    if (line && (len == 0 || line[len - 1] != '\n' || memchr(line, '\n', len - 1)))
        abort();
    xfree(line);
    return 0;
}

static void on_skip(void *data, enum jsonrpc_skip why, const char *line, size_t len, size_t total)
{
    if (len > 256 && why == JSONRPC_SKIP_TOO_LONG)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    size_t step = fuzz_step(&data, &size);
    static const struct jsonrpc_cbs cbs = {on_message, on_skip};
    struct jsonrpc_reader r;
    jsonrpc_reader_init(&r, 1024);
    for (size_t off = 0; off < size; off += step) {
        size_t n = size - off < step ? size - off : step;
        jsonrpc_reader_feed(&r, (const char *)data + off, n, &cbs, NULL);
    }
    jsonrpc_reader_release(&r);
    /* The whole input as one message (an HTTP body or an SSE payload). */
    struct jsonrpc_msg m;
    enum jsonrpc_skip why;
    if (jsonrpc_decode((const char *)data, size, &m, &why) == 0) {
        on_message(NULL, &m);
        jsonrpc_msg_release(&m);
    }
    return 0;
}
