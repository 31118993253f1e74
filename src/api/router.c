/* SPDX-License-Identifier: MIT */
/* router.c -- segment-by-segment matching of a request path against route patterns. */
#include "router.h"

#include <string.h>

/* Length of the segment starting at s (up to '/' or NUL). */
static size_t seglen(const char *s)
{
    size_t n = 0;
    while (s[n] && s[n] != '/')
        n++;
    return n;
}

static int match_one(const struct route *r, const char *path, struct route_match *m)
{
    const char *p = r->pattern, *q = path;
    m->nparams = 0;
    while (*p == '/' && *q == '/') {
        p++, q++;
        size_t pl = seglen(p), ql = seglen(q);
        if (*p == ':') {
            if (ql == 0 || ql >= ROUTER_MAX_PARAM_BYTES || m->nparams == ROUTER_MAX_PARAMS)
                return 0;
            size_t k = m->nparams++;
            m->names[k] = p + 1;
            m->name_lens[k] = pl - 1;
            memcpy(m->values[k], q, ql);
            m->values[k][ql] = '\0';
        } else if (pl != ql || memcmp(p, q, pl) != 0) {
            return 0;
        }
        p += pl, q += ql;
    }
    /* Express ignores one trailing slash ("strict routing" off). */
    if (q[0] == '/' && q[1] == '\0')
        q++;
    return *p == '\0' && *q == '\0';
}

int router_match(const struct route *routes, size_t n, const char *method, const char *path,
                 struct route_match *m)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(routes[i].method, method) != 0)
            continue;
        if (match_one(&routes[i], path, m)) {
            m->id = routes[i].id;
            m->pattern = routes[i].pattern;
            return 1;
        }
    }
    return 0;
}

const char *route_param(const struct route_match *m, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < m->nparams; i++)
        if (m->name_lens[i] == len && memcmp(m->names[i], name, len) == 0)
            return m->values[i];
    return NULL;
}
