/* SPDX-License-Identifier: MIT */
/* metrics.c -- GET /metrics: the Prometheus text exposition of obs (src/obs). It passes the
 * same gate as the API (Host, Origin, CSRF, then the access token), and server.metrics.token
 * (env TARKO_METRICS_TOKEN) is a second Bearer token that opens /metrics and nothing else, for
 * scrapers that should not hold the API token. With a metrics token and no API token required,
 * /metrics needs the metrics token. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../auth/auth.h"
#include "../core/log.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "../obs/obs.h"
#include "api_int.h"

/* The Makefile passes the commit as it does for v1.c; the version is v1.c's SERVER_VERSION. */
#ifndef TARS_GIT_HASH
#define TARS_GIT_HASH "unknown"
#endif
#define TARS_VERSION "0.3.0"

static const char *metrics_token(void)
{
    static bool read;
    static const char *token;
    if (!read) {
        read = true;
        const json_t *m = json_object_get(json_object_get(api__opts->config, "server"), "metrics");
        token = json_get_str(m, "token");
        if (token == NULL || *token == '\0')
            token = getenv("TARKO_METRICS_TOKEN");
        if (token && *token == '\0')
            token = NULL;
        if (token)
            log_add_secret(token);
    }
    return token;
}

/* Constant time in the length of the presented value. */
static bool same_token(const char *given, const char *want)
{
    size_t gl = strlen(given), wl = strlen(want);
    unsigned char d = gl != wl;
    for (size_t i = 0; i < gl; i++)
        d |= (unsigned char)given[i] ^ (unsigned char)want[i % (wl ? wl : 1)];
    return d == 0;
}

bool api__metrics(struct http_req *req)
{
    const char *method = http_req_method(req);
    if (strcmp(http_req_path(req), "/metrics") != 0 ||
        (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0))
        return false;
    http_req_set_route(req, "/metrics");
    const char *want = metrics_token();
    const char *h = http_req_header(req, "authorization");
    bool scraper = want && h && strncasecmp(h, "Bearer ", 7) == 0 && same_token(h + 7, want);
    if (!scraper) {
        if (want && !auth_token_required(api__opts->auth)) {
            api__error2(req, 401, "Authentication required",
                        "GET /metrics needs 'Authorization: Bearer <server.metrics.token>'.");
            return true;
        }
        bool authed;
        if (!api__access_auth(req, &authed))
            return true;
    }
    static bool build_info;
    if (!build_info) {
        build_info = true;
        obs_set_build_info(TARS_VERSION, TARS_GIT_HASH);
    }
    struct buf out;
    buf_init(&out, 64u << 20);
    obs_metrics_render(&out);
    http_respond_headers(req, 200, OBS_METRICS_CONTENT_TYPE, "Cache-Control: no-store\r\n",
                         buf_str(&out), out.len);
    buf_release(&out);
    return true;
}
