/* SPDX-License-Identifier: MIT */
/* auth.c -- the access policy of auth.h. Host names are compared lowercased, without a
 * trailing dot; every secret comparison goes through CRYPTO_memcmp on fixed-size digests, so
 * neither the length nor the content of a guess leaks through timing. */
#include "auth.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/log.h"
#include "../core/util.h"
#include "../core/xalloc.h"

#define MAX_NAME 256
#define LIMIT_SLOTS 256

struct limit_slot {
    char addr[48];
    uint64_t window_start;
    unsigned fails;
};

struct auth {
    char **hosts; /* allowedHosts entries, lowercased */
    size_t nhosts;
    char **origins; /* allowedOrigins entries, lowercased, no trailing '/' */
    size_t norigins;
    bool any_host, any_origin;
    char bind_name[MAX_NAME]; /* the bound host when it is a name, else "" */
    bool required;
    bool generated;
    bool csrf_required;
    unsigned char token_digest[32]; /* SHA-256 of the token, when required */
    char *token;                    /* owned; NULL when not required */
    char *secret;                   /* owned; NULL until configured or set */
    struct limit_slot limits[LIMIT_SLOTS];
};

/* ---- small helpers ---- */

static void sha256(const void *p, size_t len, unsigned char out[32])
{
    unsigned int n = 32;
    EVP_Digest(p, len, out, &n, EVP_sha256(), NULL);
}

static void hmac_hex(const struct auth *a, const char *label, const char *msg, char out[65])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char mac[32];
    unsigned int n = sizeof(mac);
    const char *key = a->secret ? a->secret : "";
    size_t ll = strlen(label), ml = strlen(msg);
    char *m = xmalloc(ll + 1 + ml);
    memcpy(m, label, ll);
    m[ll] = '\n';
    memcpy(m + ll + 1, msg, ml);
    HMAC(EVP_sha256(), key, (int)strlen(key), (const unsigned char *)m, ll + 1 + ml, mac, &n);
    xfree(m);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[mac[i] >> 4];
        out[2 * i + 1] = hex[mac[i] & 15];
    }
    out[64] = '\0';
}

/* Equal-length hex strings compared in constant time; other lengths are simply unequal. */
static bool hex_equal(const char *a, const char *b)
{
    size_t n = strlen(a);
    return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

char *auth_random_secret(void)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[32];
    if (RAND_bytes(r, sizeof(r)) != 1)
        rand_bytes(r, sizeof(r)); /* getrandom; OpenSSL's pool failing is not expected */
    char *s = xmalloc(65);
    for (int i = 0; i < 32; i++) {
        s[2 * i] = hex[r[i] >> 4];
        s[2 * i + 1] = hex[r[i] & 15];
    }
    s[64] = '\0';
    return s;
}

static void lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

/* Splits "name", "name:port", "[v6]" or "[v6]:port" (len bytes) into a lowercased name without
 * brackets or trailing dot, and the port (-1 when absent). False when malformed. */
static bool split_hostport(const char *s, size_t len, char name[MAX_NAME], int *port, bool *v6)
{
    const char *end = s + len;
    const char *colon;
    *v6 = false;
    *port = -1;
    if (len == 0)
        return false;
    if (s[0] == '[') {
        const char *rb = memchr(s, ']', len);
        if (rb == NULL || rb - s - 1 <= 0 || rb - s - 1 >= MAX_NAME)
            return false;
        memcpy(name, s + 1, (size_t)(rb - s - 1));
        name[rb - s - 1] = '\0';
        *v6 = true;
        colon = rb + 1 < end ? rb + 1 : NULL;
        if (colon && *colon != ':')
            return false;
    } else {
        colon = memchr(s, ':', len);
        if (colon && memchr(colon + 1, ':', (size_t)(end - colon - 1)))
            return false; /* a bare IPv6 address is not a Host */
        size_t n = colon ? (size_t)(colon - s) : len;
        if (n == 0 || n >= MAX_NAME)
            return false;
        memcpy(name, s, n);
        name[n] = '\0';
    }
    if (colon) {
        const char *p = colon + 1;
        if (p == end || end - p > 5)
            return false;
        int v = 0;
        for (; p < end; p++) {
            if (!isdigit((unsigned char)*p))
                return false;
            v = v * 10 + (*p - '0');
        }
        if (v > 65535)
            return false;
        *port = v;
    }
    for (const char *p = name; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == '/' || *p == '@' || *p == '\\' || *p == '?' ||
            *p == '#' || (unsigned char)*p >= 0x7f)
            return false;
    lower(name);
    size_t n = strlen(name);
    if (!*v6 && n > 1 && name[n - 1] == '.')
        name[n - 1] = '\0';
    return true;
}

static bool is_ip_literal(const char *name, bool v6)
{
    unsigned char buf[16];
    return inet_pton(v6 ? AF_INET6 : AF_INET, name, buf) == 1;
}

bool auth_is_loopback(const char *h)
{
    if (h == NULL)
        return true;
    if (strcmp(h, "localhost") == 0 || strcmp(h, "::1") == 0 || strcmp(h, "[::1]") == 0)
        return true;
    struct in_addr a4;
    if (inet_pton(AF_INET, h, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return false;
}

/* ---- configuration ---- */

/* Appends the entries of j (array of strings, or a comma-separated string) and of env. */
static void read_list(const json_t *j, const char *env, char ***out, size_t *n, bool *any,
                      bool origins)
{
    char *joined = NULL;
    if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v)
        {
            if (!json_is_string(v))
                continue;
            char *t = joined ? xasprintf("%s,%s", joined, json_string_value(v))
                             : xstrdup(json_string_value(v));
            xfree(joined);
            joined = t;
        }
    } else if (json_is_string(j)) {
        joined = xstrdup(json_string_value(j));
    }
    const char *e = getenv(env);
    if (e && *e) {
        char *t = joined ? xasprintf("%s,%s", joined, e) : xstrdup(e);
        xfree(joined);
        joined = t;
    }
    if (joined == NULL)
        return;
    char *save = NULL;
    for (char *tok = strtok_r(joined, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        size_t l = strlen(tok);
        while (l && (isspace((unsigned char)tok[l - 1]) || (origins && tok[l - 1] == '/')))
            tok[--l] = '\0';
        if (l == 0)
            continue;
        if (strcmp(tok, "*") == 0) {
            *any = true;
            continue;
        }
        lower(tok);
        *out = xrealloc(*out, (*n + 1) * sizeof(**out));
        (*out)[(*n)++] = xstrdup(tok);
    }
    xfree(joined);
}

static const json_t *get2(const json_t *root, const char *a, const char *b)
{
    const json_t *j = json_object_get(root, a);
    return b ? json_object_get(j, b) : j;
}

static char *str_or_env(const json_t *j, const char *env)
{
    if (json_is_string(j) && *json_string_value(j))
        return xstrdup(json_string_value(j));
    const char *e = getenv(env);
    return e && *e ? xstrdup(e) : NULL;
}

int auth_new(const json_t *root, const char *bind_host, struct auth **out, char **err)
{
    struct auth *a = xcalloc(1, sizeof(*a));
    const json_t *server = json_object_get(root, "server");
    read_list(json_object_get(server, "allowedHosts"), "TARKO_ALLOWED_HOSTS", &a->hosts,
              &a->nhosts, &a->any_host, false);
    read_list(json_object_get(server, "allowedOrigins"), "TARKO_ALLOWED_ORIGINS", &a->origins,
              &a->norigins, &a->any_origin, true);
    if (bind_host && *bind_host) {
        int port;
        bool v6;
        char name[MAX_NAME];
        if (split_hostport(bind_host, strlen(bind_host), name, &port, &v6) &&
            !is_ip_literal(name, v6))
            snprintf(a->bind_name, sizeof(a->bind_name), "%s", name);
    }
    const json_t *mode_j = get2(server, "auth", "mode");
    const char *mode = json_is_string(mode_j) ? json_string_value(mode_j) : "auto";
    a->token = str_or_env(get2(server, "auth", "token"), "TARKO_AUTH_TOKEN");
    const char *csrf = json_string_value(json_object_get(server, "csrf"));
    a->csrf_required = csrf && strcmp(csrf, "required") == 0;
    a->secret = str_or_env(json_object_get(server, "secret"), "TARKO_SERVER_SECRET");
    if (a->token && strlen(a->token) < AUTH_MIN_TOKEN) {
        *err = xasprintf("server.auth.token is too short: it must be at least %d characters",
                         AUTH_MIN_TOKEN);
        goto fail;
    }
    if (csrf && strcmp(csrf, "required") != 0 && strcmp(csrf, "optional") != 0) {
        *err = xasprintf("unknown server.csrf '%s' (use optional or required)", csrf);
        goto fail;
    }
    if (strcmp(mode, "never") == 0) {
        a->required = false;
        xfree(a->token);
        a->token = NULL;
    } else if (strcmp(mode, "always") == 0) {
        a->required = true;
    } else if (strcmp(mode, "auto") == 0) {
        a->required = a->token != NULL || !auth_is_loopback(bind_host);
    } else {
        *err = xasprintf("unknown server.auth.mode '%s' (use auto, always or never)", mode);
        goto fail;
    }
    if (a->required && a->token == NULL) {
        a->token = auth_random_secret();
        a->generated = true;
    }
    if (a->token) {
        sha256(a->token, strlen(a->token), a->token_digest);
        log_add_secret(a->token);
    }
    if (a->secret)
        log_add_secret(a->secret);
    *out = a;
    return 0;
fail:
    auth_free(a);
    return -1;
}

void auth_free(struct auth *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->nhosts; i++)
        xfree(a->hosts[i]);
    for (size_t i = 0; i < a->norigins; i++)
        xfree(a->origins[i]);
    xfree(a->hosts);
    xfree(a->origins);
    xfree(a->token);
    xfree(a->secret);
    xfree(a);
}

bool auth_has_secret(const struct auth *a)
{
    return a->secret != NULL;
}

void auth_set_secret(struct auth *a, const char *secret)
{
    xfree(a->secret);
    a->secret = xstrdup(secret);
    log_add_secret(a->secret);
}

bool auth_token_required(const struct auth *a)
{
    return a->required;
}

const char *auth_generated_token(const struct auth *a)
{
    return a->generated ? a->token : NULL;
}

bool auth_csrf_required(const struct auth *a)
{
    return a->csrf_required;
}

/* ---- Host and Origin ---- */

bool auth_host_ok(const struct auth *a, const char *host)
{
    char name[MAX_NAME];
    int port;
    bool v6;
    if (host == NULL || !split_hostport(host, strlen(host), name, &port, &v6))
        return false;
    if (is_ip_literal(name, v6))
        return true;
    if (v6)
        return false;
    size_t n = strlen(name);
    if (strcmp(name, "localhost") == 0 || (n > 10 && strcmp(name + n - 10, ".localhost") == 0))
        return true;
    if (a->any_host || (a->bind_name[0] && strcmp(name, a->bind_name) == 0))
        return true;
    for (size_t i = 0; i < a->nhosts; i++) {
        const char *e = a->hosts[i];
        if (e[0] == '.') { /* the domain and its subdomains */
            size_t el = strlen(e);
            if (strcmp(name, e + 1) == 0 || (n > el && strcmp(name + n - el, e) == 0))
                return true;
            continue;
        }
        char en[MAX_NAME];
        int eport;
        bool ev6;
        if (split_hostport(e, strlen(e), en, &eport, &ev6) && strcmp(en, name) == 0 &&
            (eport < 0 || eport == port))
            return true;
    }
    return false;
}

/* "http://host[:port]" or "https://..." -> name and port (the scheme's default when absent). */
static bool split_origin(const char *origin, bool *https, char name[MAX_NAME], int *port,
                         bool *v6)
{
    const char *p;
    if (strncasecmp(origin, "http://", 7) == 0) {
        *https = false;
        p = origin + 7;
    } else if (strncasecmp(origin, "https://", 8) == 0) {
        *https = true;
        p = origin + 8;
    } else {
        return false;
    }
    if (!split_hostport(p, strlen(p), name, port, v6))
        return false;
    if (*port < 0)
        *port = *https ? 443 : 80;
    return true;
}

/* No formatting on this path: it runs for every browser request. */
bool auth_origin_ok(const struct auth *a, const char *origin, const char *host)
{
    if (origin == NULL || a->any_origin)
        return true;
    for (size_t i = 0; i < a->norigins; i++)
        if (strcasecmp(a->origins[i], origin) == 0)
            return true;
    bool https, v6, host_v6;
    char name[MAX_NAME], host_name[MAX_NAME];
    int port, host_port;
    if (host == NULL || !split_origin(origin, &https, name, &port, &v6) ||
        !split_hostport(host, strlen(host), host_name, &host_port, &host_v6))
        return false;
    if (host_port < 0)
        host_port = https ? 443 : 80;
    return v6 == host_v6 && port == host_port && strcmp(name, host_name) == 0;
}

/* ---- token, cookie, CSRF ---- */

bool auth_token_ok(const struct auth *a, const char *token)
{
    if (a->token == NULL || token == NULL)
        return false;
    unsigned char d[32];
    sha256(token, strlen(token), d);
    return CRYPTO_memcmp(d, a->token_digest, sizeof(d)) == 0;
}

char *auth_cookie_value(const struct auth *a)
{
    char mac[65];
    hmac_hex(a, "auth-cookie", a->token ? a->token : "", mac);
    return xstrdup(mac);
}

bool auth_cookie_ok(const struct auth *a, const char *value)
{
    if (a->token == NULL || value == NULL)
        return false;
    char mac[65];
    hmac_hex(a, "auth-cookie", a->token, mac);
    return hex_equal(mac, value);
}

bool auth_cookie_get(const char *h, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    while (h && *h) {
        while (*h == ' ' || *h == '\t' || *h == ';')
            h++;
        const char *end = strchr(h, ';');
        size_t len = end ? (size_t)(end - h) : strlen(h);
        if (len > nl && strncmp(h, name, nl) == 0 && h[nl] == '=') {
            size_t vl = len - nl - 1;
            if (vl >= cap)
                return false;
            memcpy(out, h + nl + 1, vl);
            out[vl] = '\0';
            return true;
        }
        h = end;
    }
    return false;
}

char *auth_csrf_new(const struct auth *a, int64_t now_ms)
{
    char exp[24], mac[65];
    snprintf(exp, sizeof(exp), "%lld", (long long)(now_ms + AUTH_CSRF_TTL_MS));
    hmac_hex(a, "csrf", exp, mac);
    return xasprintf("%s.%s", exp, mac);
}

bool auth_csrf_ok(const struct auth *a, const char *token, int64_t now_ms)
{
    if (token == NULL)
        return false;
    const char *dot = strchr(token, '.');
    if (dot == NULL || dot == token || dot - token > 19)
        return false;
    char exp[24];
    long long v = 0;
    for (const char *p = token; p < dot; p++) {
        if (!isdigit((unsigned char)*p))
            return false;
        v = v * 10 + (*p - '0');
    }
    memcpy(exp, token, (size_t)(dot - token));
    exp[dot - token] = '\0';
    if (v <= now_ms || v > now_ms + AUTH_CSRF_TTL_MS + 60000)
        return false;
    char mac[65];
    hmac_hex(a, "csrf", exp, mac);
    return hex_equal(mac, dot + 1);
}

/* ---- failed sign-ins ---- */

static struct limit_slot *limit_find(struct auth *a, const char *addr, bool create,
                                     uint64_t now)
{
    struct limit_slot *victim = NULL; /* an empty slot, else the oldest window */
    for (size_t i = 0; i < LIMIT_SLOTS; i++) {
        struct limit_slot *s = &a->limits[i];
        if (s->addr[0] == '\0') {
            if (victim == NULL || victim->addr[0])
                victim = s;
        } else if (strcmp(s->addr, addr) == 0) {
            return s;
        } else if (victim == NULL || (victim->addr[0] && s->window_start < victim->window_start)) {
            victim = s;
        }
    }
    if (!create)
        return NULL;
    snprintf(victim->addr, sizeof(victim->addr), "%s", addr);
    victim->window_start = now;
    victim->fails = 0;
    return victim;
}

unsigned auth_limit_wait(struct auth *a, const char *addr, uint64_t now_ms)
{
    struct limit_slot *s = limit_find(a, addr ? addr : "", false, now_ms);
    if (s == NULL || s->fails < AUTH_LIMIT_FAILS)
        return 0;
    uint64_t end = s->window_start + AUTH_LIMIT_WINDOW_MS;
    if (now_ms >= end) {
        s->fails = 0;
        s->window_start = now_ms;
        return 0;
    }
    return (unsigned)((end - now_ms + 999) / 1000);
}

void auth_limit_fail(struct auth *a, const char *addr, uint64_t now_ms)
{
    struct limit_slot *s = limit_find(a, addr ? addr : "", true, now_ms);
    if (now_ms >= s->window_start + AUTH_LIMIT_WINDOW_MS) {
        s->window_start = now_ms;
        s->fails = 0;
    }
    s->fails++;
}
