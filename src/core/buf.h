/* SPDX-License-Identifier: MIT */
/* buf.h -- a growable byte buffer with a hard cap (curl's dynbuf). The contents are always
 * NUL-terminated so they can be used as a C string. Fields are read-only outside buf.c. */
#ifndef CORE_BUF_H
#define CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
    char *data;  /* NULL until the first append; always NUL-terminated after it */
    size_t len;  /* bytes used, not counting the NUL */
    size_t cap;  /* bytes allocated */
    size_t max;  /* hard cap on len; appends that would exceed it fail */
};

#define BUF_ERR_TOOBIG (-2)

void buf_init(struct buf *b, size_t max_bytes);
/* Appends; returns 0, or BUF_ERR_TOOBIG (buffer unchanged) if len would exceed max. */
int buf_append(struct buf *b, const void *p, size_t len);
int buf_appendc(struct buf *b, char c);
int buf_appends(struct buf *b, const char *s);
int buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends a string literal without strlen. */
#define buf_append_lit(b, lit) buf_append((b), "" lit, sizeof(lit) - 1)
/* Appends the decimal form of v (no printf: this is on the per-event path). */
int buf_append_i64(struct buf *b, long long v);
/* Drops the first n bytes. */
void buf_consume(struct buf *b, size_t n);
/* Empties the buffer, keeping its memory. */
void buf_reset(struct buf *b);
/* Frees the memory; the buffer can be reused after buf_init. */
void buf_release(struct buf *b);
/* Hands the contents to the caller (NUL-terminated, never NULL) and empties the buffer. */
char *buf_detach(struct buf *b, size_t *len);
static inline const char *buf_str(const struct buf *b)
{
    return b->data ? b->data : "";
}

#endif
