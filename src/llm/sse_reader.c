/* SPDX-License-Identifier: MIT */
/* sse_reader.c -- pure Server-Sent Events parser following the WHATWG HTML "event stream
 * interpretation" steps. Bytes may arrive split anywhere, including inside a \r\n pair; a line
 * is only interpreted once its end has been seen, so multi-byte UTF-8 is never cut. */
#include "sse_reader.h"

#include <string.h>

#define SSE_DEFAULT_MAX_LINE (4u * 1024 * 1024)

void sse_reader_init(struct sse_reader *r, size_t max_line_bytes)
{
    size_t max = max_line_bytes ? max_line_bytes : SSE_DEFAULT_MAX_LINE;
    buf_init(&r->line, max);
    buf_init(&r->data, max);
    /* The event name comes from one line, so the line cap bounds it too. */
    buf_init(&r->event, max);
    r->has_data = false;
    r->last_cr = false;
    r->seen_line = false;
    r->err = 0;
    r->max_line = max;
}

void sse_reader_release(struct sse_reader *r)
{
    buf_release(&r->line);
    buf_release(&r->data);
    buf_release(&r->event);
    r->has_data = false;
}

/* WHATWG "dispatch the event": nothing happens when no data line came; the data buffer's
 * trailing LF is never added here because lines are joined with \n as they arrive. */
static int dispatch(struct sse_reader *r, sse_event_cb cb, void *data)
{
    int rc = 0;
    if (r->has_data && cb)
        rc = cb(data, buf_str(&r->event), buf_str(&r->data), r->data.len);
    buf_reset(&r->data);
    buf_reset(&r->event);
    r->has_data = false;
    return rc < 0 ? rc : 0;
}

static int on_field(struct sse_reader *r, const char *name, size_t name_len, const char *value,
                    size_t value_len)
{
    if (name_len == 4 && memcmp(name, "data", 4) == 0) {
        if (r->has_data && buf_appendc(&r->data, '\n') < 0)
            return SSE_ERR_LINE_TOO_LONG;
        if (buf_append(&r->data, value, value_len) < 0)
            return SSE_ERR_LINE_TOO_LONG;
        r->has_data = true;
    } else if (name_len == 5 && memcmp(name, "event", 5) == 0) {
        buf_reset(&r->event);
        if (buf_append(&r->event, value, value_len) < 0)
            return SSE_ERR_LINE_TOO_LONG;
    }
    /* "id" and "retry" only matter to a reconnecting EventSource; other fields are ignored as
     * the spec says. */
    return 0;
}

/* Interprets one complete line (without its terminator). */
static int on_line(struct sse_reader *r, const char *s, size_t len, sse_event_cb cb, void *data)
{
    if (!r->seen_line) {
        r->seen_line = true;
        if (len >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
            s += 3;
            len -= 3;
        }
    }
    if (len == 0)
        return dispatch(r, cb, data);
    if (s[0] == ':')
        return 0; /* a comment, typically a keep-alive */
    const char *colon = memchr(s, ':', len);
    if (colon == NULL)
        return on_field(r, s, len, "", 0);
    size_t name_len = (size_t)(colon - s);
    const char *value = colon + 1;
    size_t value_len = len - name_len - 1;
    if (value_len > 0 && value[0] == ' ') {
        value++;
        value_len--;
    }
    return on_field(r, s, name_len, value, value_len);
}

static size_t find_eol(const char *p, size_t from, size_t len)
{
    for (size_t i = from; i < len; i++) {
        if (p[i] == '\n' || p[i] == '\r')
            return i;
    }
    return len;
}

/* Completes the line that ends at p[i..eol) and interprets it. A line wholly inside this chunk
 * is interpreted in place; one begun by an earlier chunk is finished in r->line first. */
static int finish_line(struct sse_reader *r, const char *p, size_t i, size_t eol, sse_event_cb cb,
                       void *data)
{
    if (r->line.len == 0) {
        if (eol - i > r->max_line)
            return SSE_ERR_LINE_TOO_LONG;
        return on_line(r, p + i, eol - i, cb, data);
    }
    if (buf_append(&r->line, p + i, eol - i) < 0)
        return SSE_ERR_LINE_TOO_LONG;
    int rc = on_line(r, r->line.data, r->line.len, cb, data);
    buf_reset(&r->line);
    return rc;
}

static int feed(struct sse_reader *r, const char *p, size_t len, sse_event_cb cb, void *data)
{
    size_t i = 0;
    if (r->last_cr && len > 0) {
        r->last_cr = false;
        if (p[0] == '\n')
            i = 1; /* the second half of a \r\n split across feeds */
    }
    while (i < len) {
        size_t eol = find_eol(p, i, len);
        if (eol == len) {
            if (buf_append(&r->line, p + i, len - i) < 0)
                return SSE_ERR_LINE_TOO_LONG;
            break;
        }
        int rc = finish_line(r, p, i, eol, cb, data);
        if (rc < 0)
            return rc;
        if (p[eol] == '\r') {
            if (eol + 1 == len)
                r->last_cr = true;
            else if (p[eol + 1] == '\n')
                eol++;
        }
        i = eol + 1;
    }
    return 0;
}

int sse_reader_feed(struct sse_reader *r, const char *p, size_t len, sse_event_cb cb, void *data)
{
    if (r->err < 0)
        return r->err;
    int rc = feed(r, p, len, cb, data);
    if (rc < 0)
        r->err = rc;
    return rc;
}
