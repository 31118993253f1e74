/* SPDX-License-Identifier: MIT */
/* parse.c -- the pure request parser: http-parser glue that turns bytes into struct http_req
 * objects, with the header and body caps applied, plus the request accessors of http.h. No
 * I/O and no loop, so tests/unit/test_http.c drives it directly. */
#include <limits.h>
#include <string.h>
#include <strings.h>

#include "../core/xalloc.h"
#include "http_int.h"

enum { CB_NONE, CB_URL, CB_FIELD, CB_VALUE };

/* ---- request objects ---- */

static struct http_req *req_new(const struct http__parser *p)
{
    struct http_req *r = xcalloc(1, sizeof(*r));
    /* Stored head bytes never exceed the raw head: each token loses at least one separator
     * byte (space, colon, CRLF) and gains one NUL. */
    buf_init(&r->head, p->max_header_bytes + 1);
    buf_init(&r->body, p->max_body_bytes);
    r->method = "";
    r->query = "";
    return r;
}

void http__req_free(struct http_req *req)
{
    if (!req)
        return;
    buf_release(&req->head);
    buf_release(&req->body);
    xfree(req->hdrs);
    xfree(req->path);
    xfree(req);
}

/* ---- http-parser callbacks ---- */

static int fail(struct http__parser *p, int status)
{
    if (!p->err)
        p->err = status;
    return -1;
}

static int head_append(struct http__parser *p, const char *at, size_t len)
{
    if (buf_append(&p->cur->head, at, len) < 0)
        return fail(p, 431);
    return 0;
}

/* Terminates the token the previous data callback was building. Header values lose their
 * trailing blanks (RFC 9110 §5.5: they are not part of the value). */
static int end_token(struct http__parser *p)
{
    struct http_req *r = p->cur;
    if (p->last_cb == CB_URL)
        r->url_len = r->head.len;
    if (p->last_cb == CB_VALUE) {
        size_t start = r->hdrs[r->nhdrs - 1].value_off;
        for (size_t i = r->head.len;
             i > start && (r->head.data[i - 1] == ' ' || r->head.data[i - 1] == '\t'); i--)
            r->head.data[i - 1] = '\0';
    }
    if (p->last_cb == CB_NONE)
        return 0;
    return buf_appendc(&r->head, '\0') < 0 ? fail(p, 431) : 0;
}

static int on_message_begin(http_parser *hp)
{
    struct http__parser *p = hp->data;
    p->phase = HTTP__HEAD;
    p->cur = req_new(p);
    p->last_cb = CB_NONE;
    p->want_continue = false;
    return 0;
}

static int on_url(http_parser *hp, const char *at, size_t len)
{
    struct http__parser *p = hp->data;
    p->last_cb = CB_URL;
    return head_append(p, at, len);
}

static int on_header_field(http_parser *hp, const char *at, size_t len)
{
    struct http__parser *p = hp->data;
    struct http_req *r = p->cur;
    if (p->last_cb != CB_FIELD) {
        if (end_token(p) < 0)
            return -1;
        if (r->nhdrs == r->hdrs_cap) {
            r->hdrs_cap = r->hdrs_cap ? r->hdrs_cap * 2 : 16;
            r->hdrs = xrealloc(r->hdrs, r->hdrs_cap * sizeof(*r->hdrs));
        }
        r->hdrs[r->nhdrs].name_off = r->head.len;
        r->hdrs[r->nhdrs].value_off = SIZE_MAX;
        r->nhdrs++;
        p->last_cb = CB_FIELD;
    }
    return head_append(p, at, len);
}

static int on_header_value(http_parser *hp, const char *at, size_t len)
{
    struct http__parser *p = hp->data;
    struct http_req *r = p->cur;
    if (p->last_cb != CB_VALUE) {
        if (end_token(p) < 0)
            return -1;
        r->hdrs[r->nhdrs - 1].value_off = r->head.len;
        p->last_cb = CB_VALUE;
    }
    return head_append(p, at, len);
}

/* Splits the request target into the decoded path and the raw query. Origin form is the
 * norm; absolute form (RFC 9112 §3.2.2) is accepted, authority form (CONNECT) is not. */
static int split_url(struct http_req *r)
{
    const char *s = r->head.data;
    size_t n = r->url_len;
    if (n > 0 && s[0] != '/' && !(n == 1 && s[0] == '*')) {
        struct http_parser_url u;
        http_parser_url_init(&u);
        if (http_parser_parse_url(s, n, 0, &u) != 0 || !(u.field_set & (1 << UF_HOST)))
            return -1;
        size_t off = (u.field_set & (1 << UF_PATH)) ? u.field_data[UF_PATH].off : n;
        s += off;
        n -= off;
    }
    size_t plen = 0;
    while (plen < n && s[plen] != '?' && s[plen] != '#')
        plen++;
    size_t qoff = plen < n && s[plen] == '?' ? plen + 1 : n;
    size_t qlen = 0;
    while (qoff + qlen < n && s[qoff + qlen] != '#')
        qlen++;
    r->path = xmalloc(plen + qlen + 3);
    size_t dlen = plen ? http__pct_decode(s, plen, r->path, false) : 0;
    if (!plen)
        r->path[dlen++] = '/';
    /* A decoded NUL would silently truncate the path every later check sees. */
    if (memchr(r->path, '\0', dlen))
        return -1;
    r->path[dlen] = '\0';
    memcpy(r->path + dlen + 1, s + qoff, qlen);
    r->path[dlen + 1 + qlen] = '\0';
    r->query = r->path + dlen + 1;
    return 0;
}

static int on_headers_complete(http_parser *hp)
{
    struct http__parser *p = hp->data;
    struct http_req *r = p->cur;
    if (end_token(p) < 0)
        return -1;
    r->method = http_method_str((enum http_method)hp->method);
    r->http_major = (unsigned char)hp->http_major;
    r->http_minor = (unsigned char)hp->http_minor;
    /* After an Upgrade the rest of the stream is another protocol, which we do not speak. */
    r->keep_alive = http_should_keep_alive(hp) && !hp->upgrade;
    r->is_head = hp->method == HTTP_HEAD;
    if (split_url(r) < 0)
        return fail(p, 400);
    /* Refuse a declared oversize body before reading any of it. */
    if (!(hp->flags & F_CHUNKED) && hp->content_length != ULLONG_MAX &&
        hp->content_length > p->max_body_bytes)
        return fail(p, 413);
    const char *expect = http_req_header(r, "expect");
    p->want_continue = expect && strcasecmp(expect, "100-continue") == 0 &&
                       (hp->http_major > 1 || hp->http_minor >= 1);
    p->phase = HTTP__BODY;
    return 0;
}

static int on_body(http_parser *hp, const char *at, size_t len)
{
    struct http__parser *p = hp->data;
    if (buf_append(&p->cur->body, at, len) < 0)
        return fail(p, 413);
    return 0;
}

/* Pauses the parser so that http_parser_execute returns right after this request: the bytes
 * of a pipelined next request stay with the caller until this one is answered. */
static int on_message_complete(http_parser *hp)
{
    struct http__parser *p = hp->data;
    p->done = p->cur;
    p->cur = NULL;
    p->phase = HTTP__IDLE;
    p->head_bytes = 0;
    http_parser_pause(hp, 1);
    return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- parser ---- */

void http__parser_init(struct http__parser *p, size_t max_header_bytes, size_t max_body_bytes)
{
    memset(p, 0, sizeof(*p));
    http_parser_init(&p->hp, HTTP_REQUEST);
    p->hp.data = p;
    p->max_header_bytes = max_header_bytes;
    p->max_body_bytes = max_body_bytes;
    p->phase = HTTP__IDLE;
}

void http__parser_release(struct http__parser *p)
{
    http__req_free(p->cur);
    http__req_free(p->done);
    p->cur = p->done = NULL;
}

static int after_execute(struct http__parser *p, size_t got)
{
    if (p->done) {
        http_parser_pause(&p->hp, 0);
        return HTTP__REQ_DONE;
    }
    enum http_errno e = HTTP_PARSER_ERRNO(&p->hp);
    if (!p->err && e != HPE_OK)
        p->err = e == HPE_HEADER_OVERFLOW ? 431 : 400;
    if (!p->err && p->phase != HTTP__BODY) {
        /* Still in the head, so every byte of this run belonged to it. Reaching the cap
         * without finishing the head means the head is over it. */
        p->head_bytes += got;
        if (p->head_bytes >= p->max_header_bytes)
            p->err = 431;
    }
    return p->err ? -p->err : HTTP__NEED_MORE;
}

int http__parser_feed(struct http__parser *p, const char *data, size_t len, size_t *used)
{
    size_t off = 0;
    int rc = p->err ? -p->err : p->done ? HTTP__REQ_DONE : HTTP__NEED_MORE;
    while (rc == HTTP__NEED_MORE && off < len) {
        size_t n = len - off;
        /* While in the head, hand the parser no more than the head may still grow by, so
         * the cap is exact whatever the size of the buffers we are fed. */
        if (p->phase != HTTP__BODY && n > p->max_header_bytes - p->head_bytes)
            n = p->max_header_bytes - p->head_bytes;
        size_t got = http_parser_execute(&p->hp, &settings, data + off, n);
        off += got;
        rc = after_execute(p, got);
    }
    *used = off;
    return rc;
}

struct http_req *http__parser_take(struct http__parser *p)
{
    struct http_req *r = p->done;
    p->done = NULL;
    return r;
}

/* ---- decoding ---- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t http__pct_decode(const char *s, size_t len, char *out, bool plus_is_space)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < len) {
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi >= 0 && lo >= 0) {
                out[o++] = (char)(hi << 4 | lo);
                i += 2;
                continue;
            }
        }
        out[o++] = plus_is_space && c == '+' ? ' ' : c;
    }
    out[o] = '\0';
    return o;
}

/* ---- request accessors (http.h) ---- */

const char *http_req_method(const struct http_req *req)
{
    return req->method;
}

const char *http_req_path(const struct http_req *req)
{
    return req->path ? req->path : "/";
}

const char *http_req_query(const struct http_req *req)
{
    return req->query;
}

/* Decodes a key into tmp (or the heap when long) and compares it with name. */
static bool key_matches(const char *key, size_t klen, const char *name, size_t name_len)
{
    char tmp[128];
    char *k = klen < sizeof(tmp) ? tmp : xmalloc(klen + 1);
    size_t dlen = http__pct_decode(key, klen, k, true);
    bool match = dlen == name_len && memcmp(k, name, dlen) == 0;
    if (k != tmp)
        xfree(k);
    return match;
}

char *http_req_query_param(const struct http_req *req, const char *name)
{
    size_t name_len = strlen(name);
    const char *q = req->query;
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t seg = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', seg);
        size_t klen = eq ? (size_t)(eq - q) : seg;
        if (key_matches(q, klen, name, name_len)) {
            size_t vlen = eq ? seg - klen - 1 : 0;
            char *v = xmalloc(vlen + 1);
            http__pct_decode(eq ? eq + 1 : q, vlen, v, true);
            return v;
        }
        if (!amp)
            break;
        q = amp + 1;
    }
    return NULL;
}

const char *http_req_header(const struct http_req *req, const char *name)
{
    for (size_t i = 0; i < req->nhdrs; i++) {
        const struct http__hdr *h = &req->hdrs[i];
        if (strcasecmp(req->head.data + h->name_off, name) == 0)
            return h->value_off == SIZE_MAX ? "" : req->head.data + h->value_off;
    }
    return NULL;
}

const char *http_req_body(const struct http_req *req, size_t *len)
{
    if (len)
        *len = req->body.len;
    return buf_str(&req->body);
}

uint64_t http_req_conn_id(const struct http_req *req)
{
    return req->conn_id;
}

void http_req_on_close(struct http_req *req, http_close_cb cb, void *data)
{
    req->close_cb = cb;
    req->close_data = data;
}
