/* SPDX-License-Identifier: MIT */
/* xalloc.h -- allocation that aborts on out-of-memory. We are a server, not a library: running
 * out of memory is fatal, going over a cap is an error handled by the caller. */
#ifndef CORE_XALLOC_H
#define CORE_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* printf into a fresh heap string; caller owns the result. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void xfree(void *p);

#endif
