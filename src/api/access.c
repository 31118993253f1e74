/* SPDX-License-Identifier: MIT */
/* access.c -- the one gate every request passes (API, SSE, Socket.IO polling and WebSocket
 * handshakes, the UI), applying the rules of auth/auth.h in a fixed order:
 *   1. Host allow-list (DNS rebinding)                      403 Invalid Host header
 *   2. Origin, when sent (cross-site pages, WebSockets)     403 Origin not allowed
 *   3. OPTIONS preflight: answered here, CORS only for an allowed origin
 *   4. X-CSRF-Token, when sent (or required by server.csrf)  403 CSRF token missing or invalid
 *   5. the access token, when one is required: Bearer header, ?token= or the sign-in cookie;
 *      public: GET /api/v1/health and the UI shell; failures rate-limited per address (429).
 * Steps 1-4 run before the base path is applied (api__access_front), step 5 after it
 * (api__access_auth), so route decisions see the path below the base. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../auth/auth.h"
#include "../core/log.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "../ui/ui.h"
#include "api_int.h"

static bool state_changing(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0 &&
           strcmp(method, "OPTIONS") != 0;
}

bool api__access_front(struct http_req *req)
{
    struct auth *a = api__opts->auth;
    const char *host = http_req_header(req, "host");
    if (!auth_host_ok(a, host)) {
        log_info("conn %llu: refused Host '%s'", (unsigned long long)http_req_conn_id(req),
                 host ? host : "(none)");
        api__error2(req, 403, "Invalid Host header",
                    "This server does not answer to that host name (DNS rebinding protection). "
                    "If you reach it under that name, add it to server.allowedHosts "
                    "(--server.allowedHosts NAME or TARKO_ALLOWED_HOSTS=NAME).");
        return false;
    }
    const char *origin = http_req_header(req, "origin");
    if (origin) {
        if (!auth_origin_ok(a, origin, host)) {
            log_info("conn %llu: refused Origin '%s'", (unsigned long long)http_req_conn_id(req),
                     origin);
            api__error2(req, 403, "Origin not allowed",
                        "Pages of other origins may not use this server; allow one with "
                        "server.allowedOrigins (--server.allowedOrigins or "
                        "TARKO_ALLOWED_ORIGINS).");
            return false;
        }
        http_req_set_cors_origin(req, origin);
    }
    const char *method = http_req_method(req);
    if (strcmp(method, "OPTIONS") == 0) {
        http_respond_preflight(req);
        return false;
    }
    const char *csrf = http_req_header(req, "x-csrf-token");
    if ((csrf && !auth_csrf_ok(a, csrf, now_ms())) ||
        (!csrf && origin && auth_csrf_required(a) && state_changing(method))) {
        api__error2(req, 403, "CSRF token missing or invalid",
                    "Fetch a token with GET /api/v1/csrf-token and send it in the X-CSRF-Token "
                    "header; tokens expire after 24 hours.");
        return false;
    }
    return true;
}

enum cred { CRED_NONE, CRED_OK, CRED_BAD };

static enum cred check_credentials(struct http_req *req, char **query_token)
{
    struct auth *a = api__opts->auth;
    enum cred r = CRED_NONE;
    const char *h = http_req_header(req, "authorization");
    if (h) {
        if (strncasecmp(h, "Bearer ", 7) == 0 && auth_token_ok(a, h + 7))
            return CRED_OK;
        r = CRED_BAD;
    }
    *query_token = http_req_query_param(req, "token");
    if (*query_token) {
        if (auth_token_ok(a, *query_token))
            return CRED_OK;
        r = CRED_BAD;
    }
    char cookie[80];
    if (auth_cookie_get(http_req_header(req, "cookie"), AUTH_COOKIE, cookie, sizeof(cookie))) {
        if (auth_cookie_ok(a, cookie))
            return CRED_OK;
        /* else a cookie of an earlier token or secret: no credential, and not an attack */
    }
    return r;
}

static bool is_sio_path(const char *path)
{
    return strncmp(path, "/socket.io/", 11) == 0 || strncmp(path, "/engine.io/", 11) == 0;
}

/* What anyone may fetch: health, and the UI shell and its assets (GET/HEAD outside /api/). */
static bool is_public(const char *method, const char *path)
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (!get)
        return false;
    if (strcmp(path, "/api/v1/health") == 0 || strcmp(path, "/api/health") == 0)
        return true;
    if (strcmp(path, "/metrics") == 0) /* GET /metrics (api/metrics.c) is not the UI */
        return false;
    return strncmp(path, "/api/", 5) != 0 && strcmp(path, "/api") != 0 && !is_sio_path(path);
}

/* GET /?token=T on a UI page: set the cookie and send the browser to the same page without
 * the token in its address. */
static void sign_in(struct http_req *req)
{
    char *cookie = auth_cookie_value(api__opts->auth);
    const char *base = ui_base_path();
    char *headers = xasprintf("Location: %s%s\r\nCache-Control: no-store\r\n"
                              "Set-Cookie: %s=%s; Path=%s; HttpOnly; SameSite=Strict; "
                              "Max-Age=2592000\r\n",
                              base, http_req_path(req), AUTH_COOKIE, cookie,
                              *base ? base : "/");
    http_respond_headers(req, 303, NULL, headers, NULL, 0);
    xfree(headers);
    xfree(cookie);
}

bool api__access_auth(struct http_req *req, bool *authed)
{
    struct auth *a = api__opts->auth;
    *authed = true;
    if (!auth_token_required(a))
        return true;
    const char *method = http_req_method(req);
    const char *path = http_req_path(req);
    bool pub = is_public(method, path);
    char addr[64];
    http_req_peer(req, addr);
    char *qt = NULL;
    enum cred c = check_credentials(req, &qt);
    bool sign_in_link = c == CRED_OK && pub && qt && strcmp(method, "GET") == 0;
    xfree(qt);
    /* An address over the limit gets 429 whatever it presents, right or wrong: otherwise the
     * answer would still tell a guesser when it is right. */
    unsigned wait = auth_limit_wait(a, addr, mono_ms());
    if (wait > 0 && (!pub || c != CRED_NONE)) {
        char hdr[48];
        snprintf(hdr, sizeof(hdr), "Retry-After: %u\r\n", wait);
        json_t *j = json_pack("{s:s, s:s}", "error", "Too many failed authentication attempts",
                              "message", "Wait before trying again.");
        api__respond_json_headers(req, 429, j, hdr);
        json_decref(j);
        return false;
    }
    if (c == CRED_OK) {
        if (sign_in_link) {
            sign_in(req);
            return false;
        }
        return true;
    }
    if (c == CRED_BAD) {
        auth_limit_fail(a, addr, mono_ms());
        log_warn("failed authentication from %s: %s %s", addr[0] ? addr : "?", method, path);
    } else if (pub) {
        return true;
    } else if (is_sio_path(path)) {
        *authed = false; /* may still authenticate with CONNECT's auth.token */
        return true;
    }
    api__error2(req, 401, "Authentication required",
                "This server requires an access token: send 'Authorization: Bearer <token>', "
                "add ?token=<token>, or open the sign-in link the server printed at start.");
    return false;
}

/* GET /api/v1/csrf-token */
void api__csrf_token(struct http_req *req)
{
    char *t = auth_csrf_new(api__opts->auth, now_ms());
    json_t *j = json_pack("{s:s}", "token", t);
    api__respond_json_headers(req, 200, j, "Cache-Control: no-store\r\n");
    json_decref(j);
    xfree(t);
}
