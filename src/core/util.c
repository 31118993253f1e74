/* SPDX-License-Identifier: MIT */
/* util.c -- clocks, ids, JSON helpers. */
#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "buf.h"
#include "xalloc.h"

int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A small pool so that ids do not cost a syscall each. */
static unsigned char pool[256];
static size_t pool_pos = sizeof(pool);

void rand_bytes(void *buf, size_t n)
{
    unsigned char *out = buf;
    while (n > 0) {
        if (pool_pos == sizeof(pool)) {
            ssize_t got = getrandom(pool, sizeof(pool), 0);
            if (got != (ssize_t)sizeof(pool)) {
                /* Not expected on Linux; keep going with a time-seeded xorshift. */
                uint64_t x = (uint64_t)now_ms() ^ mono_ms() << 20 ^ (uintptr_t)buf;
                for (size_t i = 0; i < sizeof(pool); i++) {
                    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                    pool[i] = (unsigned char)x;
                }
            }
            pool_pos = 0;
        }
        size_t take = sizeof(pool) - pool_pos;
        if (take > n)
            take = n;
        memcpy(out, pool + pool_pos, take);
        pool_pos += take;
        out += take;
        n -= take;
    }
}

void uuid_v4(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    rand_bytes(b, sizeof(b));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

void nanoid(char out[22])
{
    static const char alpha[] =
        "useandom-26T198340PX75pxJACKVERYMINDBUSHWOLF_GQZbfghjklqvwyzrict";
    unsigned char b[21];
    rand_bytes(b, sizeof(b));
    for (int i = 0; i < 21; i++)
        out[i] = alpha[b[i] & 63];
    out[21] = '\0';
}

void rand_base36(char *out, size_t n)
{
    static const char alpha[] = "0123456789abcdefghijklmnopqrstuvwxyz";
    for (size_t i = 0; i < n; i++) {
        unsigned char c;
        do
            rand_bytes(&c, 1);
        while (c >= 252); /* 252 = 7 * 36: no modulo bias */
        out[i] = alpha[c % 36];
    }
    out[n] = '\0';
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 if invalid (RFC 3629 table). */
static size_t utf8_seq(const unsigned char *p, size_t len)
{
    unsigned c = p[0];
    size_t n;
    unsigned min;
    if (c < 0x80)
        return 1;
    else if (c >= 0xc2 && c <= 0xdf)
        n = 2, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        n = 3, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        n = 4, min = 0x10000;
    else
        return 0;
    if (len < n)
        return 0;
    unsigned cp = c & (0x7f >> n);
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

json_t *json_string_lossy(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len && p[i] != 0) {
        size_t n = utf8_seq(p + i, len - i);
        if (n == 0)
            break;
        i += n;
    }
    if (i == len)
        return json_stringn(s, len);
    struct buf b;
    buf_init(&b, (size_t)-1);
    for (i = 0; i < len;) {
        size_t n = p[i] ? utf8_seq(p + i, len - i) : 0;
        if (n == 0) {
            /* NUL bytes are legal in JSON strings but not in C strings; replace them too. */
            buf_append(&b, "\xef\xbf\xbd", 3);
            i++;
        } else {
            buf_append(&b, s + i, n);
            i += n;
        }
    }
    json_t *j = json_stringn(buf_str(&b), b.len);
    buf_release(&b);
    return j;
}

char *json_dump_compact(const json_t *j, size_t *len)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s == NULL)
        s = xstrdup("null");
    if (len)
        *len = strlen(s);
    return s;
}

const char *json_get_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key));
}

void fd_cloexec_all(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return;
    int self = dirfd(d);
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char *end;
        long fd = strtol(de->d_name, &end, 10);
        if (*end != '\0' || end == de->d_name || fd < 3 || fd == self)
            continue;
        int flags = fcntl((int)fd, F_GETFD);
        if (flags >= 0 && !(flags & FD_CLOEXEC))
            fcntl((int)fd, F_SETFD, flags | FD_CLOEXEC);
    }
    closedir(d);
}
