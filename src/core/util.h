/* SPDX-License-Identifier: MIT */
/* util.h -- clocks, random ids and small JSON helpers shared by every module. */
#ifndef CORE_UTIL_H
#define CORE_UTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Wall clock in epoch milliseconds (event timestamps). */
int64_t now_ms(void);
/* Monotonic clock in milliseconds (elapsed times). */
uint64_t mono_ms(void);
/* Fills buf with n random bytes from the OS (getrandom), falling back to a seeded PRNG. */
void rand_bytes(void *buf, size_t n);
/* Writes a UUID v4 "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" plus NUL into out[37]. */
void uuid_v4(char out[37]);
/* Writes a 21-char nanoid (alphabet A-Za-z0-9_-) plus NUL into out[22]. */
void nanoid(char out[22]);
/* Writes n random base36 chars plus NUL into out[n+1]. */
void rand_base36(char *out, size_t n);

/* Marks every open descriptor above 2 close-on-exec (from /proc/self/fd), libraries' sockets
 * and pipes included, so that a child spawned next inherits none of them (issue 10). */
void fd_cloexec_all(void);

/* A JSON string from bytes that may not be valid UTF-8: invalid sequences become U+FFFD, so
 * file contents and process output can always be put into events. Returns a new reference. */
json_t *json_string_lossy(const char *s, size_t len);
/* Serializes compactly on one line; caller owns the result (free with xfree; main and the tests route jansson through xmalloc/xfree with json_set_alloc_funcs). */
char *json_dump_compact(const json_t *j, size_t *len);
/* obj[key] as a C string, or NULL if absent or not a string. */
const char *json_get_str(const json_t *obj, const char *key);

#endif
