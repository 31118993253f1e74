/* SPDX-License-Identifier: MIT */
/* sse.h -- the SSE writer (pure): one agent event as the bytes of an "id: n" block followed by
 * its "data: <json>" frame. The original web UI takes every frame that begins with "data: " as
 * JSON and skips the rest, so the id may not share the data frame (anchor-api.md §3.4). */
#ifndef API_SSE_H
#define API_SSE_H

#include <stddef.h>
#include <stdint.h>

#include "../core/buf.h"

/* Appends the frame to b. json must be one line (no CR or LF). Returns 0 or BUF_ERR_TOOBIG. */
int sse_frame(struct buf *b, int64_t id, const char *json, size_t len);
/* The standard single frame "id: n\ndata: <json>\n\n" (the resumable GET stream). */
int sse_frame_joined(struct buf *b, int64_t id, const char *json, size_t len);

#endif
