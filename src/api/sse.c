/* SPDX-License-Identifier: MIT */
/* sse.c -- SSE framing of agent events (WHATWG "event stream" format). */
#include "sse.h"

int sse_frame(struct buf *b, int64_t id, const char *json, size_t len)
{
    int rc = buf_append_lit(b, "id: ");
    if (rc == 0)
        rc = buf_append_i64(b, (long long)id);
    if (rc == 0)
        rc = buf_append_lit(b, "\n\ndata: ");
    if (rc == 0)
        rc = buf_append(b, json, len);
    if (rc == 0)
        rc = buf_append_lit(b, "\n\n");
    return rc;
}
