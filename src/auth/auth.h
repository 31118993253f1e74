/* SPDX-License-Identifier: MIT */
/* auth.h -- who may talk to the server: the Host allow-list (DNS rebinding), the Origin check
 * (cross-site pages), the access token and its cookie, stateless CSRF tokens and the rate limit
 * on failed sign-ins. Policy only: no I/O and no loop, so the HTTP gate (api/access.c) and
 * Socket.IO share one set of rules and the unit tests call them directly. Depends on core and
 * OpenSSL's libcrypto (HMAC-SHA256, random bytes, constant-time comparison).
 *
 * Configuration (config tree, with environment fallbacks; see README "Security"):
 *   server.allowedHosts    array or "a,b"; env TARKO_ALLOWED_HOSTS; "host", "host:port",
 *                          ".example.com" (that domain and its subdomains), "*" (any)
 *   server.allowedOrigins  array or "a,b"; env TARKO_ALLOWED_ORIGINS; exact origins or "*"
 *   server.auth.mode       auto (default: a token once the bind is not loopback or one is
 *                          configured) | always | never
 *   server.auth.token      env TARKO_AUTH_TOKEN; at least AUTH_MIN_TOKEN chars
 *   server.secret          env TARKO_SERVER_SECRET; keys the cookie and CSRF MACs
 *   server.csrf            "optional" (default: checked when sent) | "required" */
#ifndef AUTH_AUTH_H
#define AUTH_AUTH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_MIN_TOKEN 16
#define AUTH_COOKIE "tarko_auth"
#define AUTH_CSRF_TTL_MS (24LL * 3600 * 1000)

struct auth;

/* Reads the keys above from root (borrowed) and the environment. bind_host is the address the
 * server listens on. When a token is required but none is configured, one is generated (see
 * auth_generated_token). Returns 0, or -1 with a heap message in *err (a short token, an
 * unknown mode). */
int auth_new(const json_t *root, const char *bind_host, struct auth **out, char **err);
void auth_free(struct auth *a); /* NULL ok */

/* Whether server.secret / TARKO_SERVER_SECRET was configured. */
bool auth_has_secret(const struct auth *a);
/* Sets the MAC key (e.g. the one kept in the store when none is configured). */
void auth_set_secret(struct auth *a, const char *secret);
/* A fresh random secret (64 hex chars); caller owns it. */
char *auth_random_secret(void);

bool auth_token_required(const struct auth *a);
/* The token generated at start because one was required and none configured, or NULL. */
const char *auth_generated_token(const struct auth *a);
/* True when the bind address only accepts local connections. */
bool auth_is_loopback(const char *bind_host);

/* Host header check: IP literals (any port), localhost and *.localhost, the bound host name,
 * server.allowedHosts. NULL (no Host) is refused. */
bool auth_host_ok(const struct auth *a, const char *host);
/* Origin header check: same origin as host (http or https, default ports folded), or listed
 * in server.allowedOrigins. */
bool auth_origin_ok(const struct auth *a, const char *origin, const char *host);

/* Constant-time comparison of a presented token with the configured one. */
bool auth_token_ok(const struct auth *a, const char *token);
/* The value of the sign-in cookie (a MAC of the token; no token in it); caller owns it. */
char *auth_cookie_value(const struct auth *a);
bool auth_cookie_ok(const struct auth *a, const char *value);
/* Finds name=value in a Cookie header; writes at most cap-1 bytes to out. */
bool auth_cookie_get(const char *cookie_header, const char *name, char *out, size_t cap);

/* "<expiry ms>.<hex HMAC>", valid for AUTH_CSRF_TTL_MS; caller owns it. */
char *auth_csrf_new(const struct auth *a, int64_t now_ms);
bool auth_csrf_ok(const struct auth *a, const char *token, int64_t now_ms);
bool auth_csrf_required(const struct auth *a);

/* Failed sign-ins per client address: AUTH_LIMIT_FAILS within AUTH_LIMIT_WINDOW_MS, then
 * refused until the window ends. auth_limit_wait returns the seconds to wait (0 = go on). */
#define AUTH_LIMIT_FAILS 10
#define AUTH_LIMIT_WINDOW_MS 60000
unsigned auth_limit_wait(struct auth *a, const char *addr, uint64_t now_ms);
void auth_limit_fail(struct auth *a, const char *addr, uint64_t now_ms);

#endif
