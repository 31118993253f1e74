/* SPDX-License-Identifier: MIT */
/* buf.c -- bounded growable buffer. */
#include "buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "xalloc.h"

void buf_init(struct buf *b, size_t max_bytes)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max_bytes;
}

static int grow(struct buf *b, size_t extra)
{
    if (extra > b->max || b->len > b->max - extra)
        return BUF_ERR_TOOBIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int buf_append(struct buf *b, const void *p, size_t len)
{
    int rc = grow(b, len);
    if (rc < 0)
        return rc;
    if (len)
        memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int buf_appendc(struct buf *b, char c)
{
    return buf_append(b, &c, 1);
}

int buf_appends(struct buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

int buf_appendf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    int rc = grow(b, (size_t)n);
    if (rc < 0)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int buf_append_i64(struct buf *b, long long v)
{
    char tmp[24];
    size_t i = sizeof(tmp);
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do
        tmp[--i] = (char)('0' + u % 10);
    while ((u /= 10) != 0);
    if (v < 0)
        tmp[--i] = '-';
    return buf_append(b, tmp + i, sizeof(tmp) - i);
}

void buf_consume(struct buf *b, size_t n)
{
    if (n >= b->len) {
        buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void buf_reset(struct buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void buf_release(struct buf *b)
{
    xfree(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

char *buf_detach(struct buf *b, size_t *len)
{
    char *p = b->data ? b->data : xstrdup("");
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}
