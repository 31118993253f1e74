/* SPDX-License-Identifier: MIT */
/* router.h -- pure method + path matcher with ":param" segments (Express style). No I/O. */
#ifndef API_ROUTER_H
#define API_ROUTER_H

#include <stddef.h>

#define ROUTER_MAX_PARAMS 4
#define ROUTER_MAX_PARAM_BYTES 256

struct route {
    const char *method;  /* "GET", "POST", ... */
    const char *pattern; /* "/api/sessions/:sessionId/query" */
    int id;              /* caller's handler id */
};

struct route_match {
    int id;
    const char *pattern; /* the matched route's pattern (borrowed from the table) */
    size_t nparams;
    const char *names[ROUTER_MAX_PARAMS]; /* borrowed from the pattern (without ':'), length in name_lens */
    size_t name_lens[ROUTER_MAX_PARAMS];
    char values[ROUTER_MAX_PARAMS][ROUTER_MAX_PARAM_BYTES];
};

/* Finds the first route matching method and path (trailing '/' ignored, as Express). Returns 1 on a
 * match, 0 if the path matches no route with this method. A param segment must be non-empty and
 * shorter than ROUTER_MAX_PARAM_BYTES. */
int router_match(const struct route *routes, size_t n, const char *method, const char *path,
                 struct route_match *m);
/* Value of a named parameter of a match, or NULL. */
const char *route_param(const struct route_match *m, const char *name);

#endif
