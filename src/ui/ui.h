/* SPDX-License-Identifier: MIT */
/* ui.h -- the built-in web UI: static assets compiled into the binary (assets.c) and served for
 * browser GETs outside /api/, plus the optional server.basePath prefix under which the whole
 * server (API and UI) answers when it sits behind a reverse proxy. */
#ifndef UI_UI_H
#define UI_UI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "../http/http.h"

#define UI_MAX_BASE_BYTES 256

/* One embedded file. Fields are read-only. */
struct ui_asset {
    const char *path; /* "/app.js" */
    const char *type; /* Content-Type */
    const char *data; /* borrowed from the binary's read-only data */
    size_t len;
};

/* Reads server.basePath from the config tree (borrowed) and prepares the served index page.
 * May be called again (tests); without a call the UI is served at the root. */
void ui_init(const json_t *config);
/* The normalized base path: "" (root) or "/a/b" without a trailing slash. */
const char *ui_base_path(void);

/* Normalizes a configured base path into out: "" for NULL, "" or "/", else a leading '/' and no
 * trailing '/'. Returns 0, or -1 (out "") if it is too long, holds a byte other than
 * A-Z a-z 0-9 - . _ ~ /, an empty segment ("//") or a "." / ".." segment: it is written into
 * the page's <base href> unescaped and compared with decoded request paths. */
int ui_normalize_base(const char *in, char out[UI_MAX_BASE_BYTES]);

/* Applies the base path to a request before routing: strips it from the path in place (so
 * every later http_req_path() sees the path below it) and returns true; or answers 404 and
 * returns false when the path lies outside it. A no-op returning true when no base is set. */
bool ui_route_base(struct http_req *req);

/* Serves the UI for a GET or HEAD that the API did not take: an embedded asset by path, or the
 * index page for "/" and for other extension-less paths a browser navigates to (Accept includes
 * text/html), so that API clients keep getting JSON 404s. Returns true if it answered. */
bool ui_serve(struct http_req *req);

/* ---- internals shared with assets.c and the unit test ---- */
/* The embedded files and their count. */
const struct ui_asset *ui__assets(size_t *n);
/* The asset at path, or NULL. */
const struct ui_asset *ui__find(const char *path);
/* A quoted strong ETag of the bytes (ui.c). */
void ui__etag(const char *p, size_t len, char out[24]);

/* static.c: webui.staticPath, another UI served from a folder read at start. */
void ui__static_init(const json_t *config);
void ui__static_release(void);
bool ui__static_on(void);
/* Length of the webui.base prefix of path (0 when no base is set), or -1 outside it. */
long ui__static_base_match(const char *path);
/* Serves path (below server.basePath) from the folder; false if it is not there. */
bool ui__static_serve(struct http_req *req, const char *path);

#endif
