/* SPDX-License-Identifier: MIT */
/* ui.c -- serves the embedded web UI and applies server.basePath. The index page gets the base
 * path written into its <base href>, from which the page derives every asset and API URL; all
 * responses revalidate by ETag (no-cache), so an upgraded binary is picked up at once. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../core/log.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "ui.h"

#define BASE_TAG "<base href=\"/\">"
/* Defence in depth: even a rendering bug could not run injected script or load remote data. */
/* (nosniff, X-Frame-Options and Referrer-Policy come with every response of the http module.) */
#define UI_HEADERS                                                                                 \
    "Cache-Control: no-cache\r\n"                                                                  \
    "Content-Security-Policy: default-src 'self'; script-src 'self'; style-src 'self'; "           \
    "img-src 'self' data:; connect-src 'self'; base-uri 'self'; form-action 'none'; "              \
    "frame-ancestors 'none'; object-src 'none'\r\n"

static char base_path[UI_MAX_BASE_BYTES];
static char *index_html; /* the index page with the base written in (owned, process lifetime) */
static size_t index_len;
static char index_etag[24];
#define MAX_ASSETS 32
static char asset_etags[MAX_ASSETS][24]; /* computed on first use */

static bool path_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '/';
}

int ui_normalize_base(const char *in, char out[UI_MAX_BASE_BYTES])
{
    out[0] = '\0';
    if (in == NULL)
        return 0;
    while (*in == '/')
        in++;
    size_t n = strlen(in);
    while (n > 0 && in[n - 1] == '/')
        n--;
    if (n == 0)
        return 0;
    if (n + 2 > UI_MAX_BASE_BYTES)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!path_char(in[i]) || (in[i] == '/' && in[i + 1] == '/'))
            return -1;
    }
    /* "." and ".." segments would be resolved away by browsers and proxies. */
    for (const char *seg = in; seg < in + n;) {
        const char *end = memchr(seg, '/', (size_t)(in + n - seg));
        size_t len = end ? (size_t)(end - seg) : (size_t)(in + n - seg);
        if ((len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return -1;
        seg += len + 1;
    }
    out[0] = '/';
    memcpy(out + 1, in, n);
    out[n + 1] = '\0';
    return 0;
}

/* FNV-1a 64 as a quoted strong ETag: cheap, and only needs to change when the bytes do. */
void ui__etag(const char *p, size_t len, char out[24])
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 1099511628211ULL;
    }
    snprintf(out, 24, "\"%016llx\"", (unsigned long long)h);
}

/* Writes the base path into the index page's <base href>. */
static void build_index(void)
{
    const struct ui_asset *a = ui__find("/index.html");
    xfree(index_html);
    const char *tag = memmem(a->data, a->len, BASE_TAG, strlen(BASE_TAG));
    if (tag == NULL) {
        index_html = xstrndup(a->data, a->len);
        index_len = a->len;
    } else {
        size_t head = (size_t)(tag - a->data), taglen = strlen(BASE_TAG);
        index_html = xasprintf("%.*s<base href=\"%s/\">%.*s", (int)head, a->data, base_path,
                               (int)(a->len - head - taglen), tag + taglen);
        index_len = strlen(index_html);
    }
    ui__etag(index_html, index_len, index_etag);
}

void ui_init(const json_t *config)
{
    const json_t *server = json_object_get(config, "server");
    const char *want = json_get_str(server, "basePath");
    if (ui_normalize_base(want, base_path) < 0) {
        log_error("ignoring server.basePath '%s': use letters, digits, '-', '.', '_', '~' and '/'",
                  want);
        base_path[0] = '\0';
    }
    build_index();
    if (base_path[0])
        log_info("serving under base path %s", base_path);
    ui__static_init(config);
}

const char *ui_base_path(void)
{
    return base_path;
}

static void respond_not_found(struct http_req *req, const char *path)
{
    char *msg = xasprintf("Cannot %s %s", http_req_method(req), path);
    http_respond_error(req, 404, msg);
    xfree(msg);
}

/* API and Socket.IO requests of a UI served under webui.base go to the routes below it. */
static void strip_webui_base(struct http_req *req)
{
    const char *path = http_req_path(req);
    long k = ui__static_base_match(path);
    if (k <= 0)
        return;
    const char *rest = path + k;
    if (strncmp(rest, "/api/", 5) == 0 || strncmp(rest, "/socket.io/", 11) == 0 ||
        strncmp(rest, "/engine.io/", 11) == 0)
        memmove((char *)path, rest, strlen(rest) + 1); /* the request's own copy, as below */
}

bool ui_route_base(struct http_req *req)
{
    size_t n = strlen(base_path);
    if (n == 0) {
        strip_webui_base(req);
        return true;
    }
    const char *path = http_req_path(req);
    if (strncmp(path, base_path, n) != 0 || (path[n] != '\0' && path[n] != '/')) {
        respond_not_found(req, path);
        return false;
    }
    /* The path is the request's own heap copy (http_req_path() only returns a literal "/",
     * which cannot start with a base of two or more bytes), so it can be cut in place; the
     * query string lives after its NUL and is not moved. */
    char *p = (char *)path;
    if (p[n] == '\0') {
        p[0] = '/';
        p[1] = '\0';
    } else {
        memmove(p, p + n, strlen(p + n) + 1);
    }
    strip_webui_base(req);
    return true;
}

const struct ui_asset *ui__find(const char *path)
{
    size_t n;
    const struct ui_asset *a = ui__assets(&n);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(a[i].path, path) == 0)
            return &a[i];
    }
    return NULL;
}

/* Answers 304 when the client's copy is current, else the bytes with their validator. */
static void respond_cached(struct http_req *req, const char *type, const char *body, size_t len,
                           const char *etag)
{
    const char *inm = http_req_header(req, "if-none-match");
    char *extra = xasprintf(UI_HEADERS "ETag: %s\r\n", etag);
    if (inm && strstr(inm, etag))
        http_respond_headers(req, 304, NULL, extra, NULL, 0);
    else
        http_respond_headers(req, 200, type, extra, body, len);
    xfree(extra);
}

static const char *asset_etag(const struct ui_asset *a)
{
    size_t n;
    size_t i = (size_t)(a - ui__assets(&n));
    if (i >= MAX_ASSETS)
        return "\"0\""; /* never: the table is far smaller; revalidation then always misses */
    if (asset_etags[i][0] == '\0')
        ui__etag(a->data, a->len, asset_etags[i]);
    return asset_etags[i];
}

static bool wants_html(struct http_req *req)
{
    const char *accept = http_req_header(req, "accept");
    return accept && strstr(accept, "text/html");
}

bool ui_serve(struct http_req *req)
{
    const char *method = http_req_method(req);
    const char *path = http_req_path(req);
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
        return false;
    if (strncmp(path, "/api/", 5) == 0 || strcmp(path, "/api") == 0)
        return false;
    if (ui__static_on())
        return ui__static_serve(req, path);
    if (index_html == NULL)
        build_index(); /* ui_init was not called: served at the root */
    const struct ui_asset *a = strcmp(path, "/index.html") == 0 ? NULL : ui__find(path);
    if (a) {
        respond_cached(req, a->type, a->data, a->len, asset_etag(a));
        return true;
    }
    const char *last = strrchr(path, '/');
    bool page = strcmp(path, "/") == 0 || strcmp(path, "/index.html") == 0 ||
                (wants_html(req) && strchr(last ? last : path, '.') == NULL);
    if (!page)
        return false;
    respond_cached(req, "text/html; charset=utf-8", index_html, index_len, index_etag);
    return true;
}
