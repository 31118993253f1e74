/* SPDX-License-Identifier: MIT */
/* sse.c -- SSE framing of agent events (WHATWG "event stream" format). */
#include "sse.h"

static int frame(struct buf *b, int64_t id, const char *sep, size_t seplen, const char *json,
                 size_t len)
{
    int rc = buf_append_lit(b, "id: ");
    if (rc == 0)
        rc = buf_append_i64(b, (long long)id);
    if (rc == 0)
        rc = buf_append(b, sep, seplen);
    if (rc == 0)
        rc = buf_append(b, json, len);
    if (rc == 0)
        rc = buf_append_lit(b, "\n\n");
    return rc;
}

int sse_frame(struct buf *b, int64_t id, const char *json, size_t len)
{
    return frame(b, id, "\n\ndata: ", 8, json, len);
}

int sse_frame_joined(struct buf *b, int64_t id, const char *json, size_t len)
{
    return frame(b, id, "\ndata: ", 7, json, len);
}
