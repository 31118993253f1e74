/* SPDX-License-Identifier: MIT */
/* sse_reader.h -- pure Server-Sent Events parser (WHATWG HTML "event stream interpretation"):
 * lines end in \n, \r\n or \r; "data:" lines are joined with \n; ":" lines are comments; an
 * empty line dispatches the event. One line is capped at max_line bytes. */
#ifndef LLM_SSE_READER_H
#define LLM_SSE_READER_H

#include <stdbool.h>
#include <stddef.h>

#include "../core/buf.h"

/* Called per dispatched event; event is "" when there was no "event:" field ("message" in the
 * WHATWG spec). payload is NUL-terminated. Return 0 to go on, <0 to stop the feed with that
 * value. */
typedef int (*sse_event_cb)(void *data, const char *event, const char *payload, size_t len);

struct sse_reader {
    struct buf line;  /* the current partial line */
    struct buf data;  /* the data of the current event */
    struct buf event; /* the event name of the current event */
    bool has_data;
    bool last_cr;    /* previous chunk ended in \r: a leading \n is part of that line end */
    bool seen_line;  /* a line was processed: a UTF-8 BOM is only skipped before the first */
    int err;         /* first error returned by sse_reader_feed; later feeds return it again */
    size_t max_line; /* cap on one line, and on the joined data of one event */
};

#define SSE_ERR_LINE_TOO_LONG (-2)

/* max_line_bytes 0 means 4 MiB. */
void sse_reader_init(struct sse_reader *r, size_t max_line_bytes);
/* Returns 0, SSE_ERR_LINE_TOO_LONG (a line, or one event's joined data, over the cap), or the
 * callback's negative value. Errors are sticky: later feeds return the same value unread. */
int sse_reader_feed(struct sse_reader *r, const char *p, size_t len, sse_event_cb cb, void *data);
void sse_reader_release(struct sse_reader *r);

#endif
