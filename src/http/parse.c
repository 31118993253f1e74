/* SPDX-License-Identifier: MIT */
/* parse.c -- the pure request parser: llhttp glue that turns bytes into struct http_req
 * objects, with the header and body caps applied, plus the request accessors of http.h. No
 * I/O and no loop, so tests/unit/test_http.c and tests/fuzz/fuzz_http.c drive it directly.
 *
 * Strictness (RFC 9112; a proxy in front must not read a request differently from us, or a
 * second request can be smuggled inside the first): llhttp is built in its strict mode with
 * every lenient flag off, which rejects unknown protocol names, whitespace before a colon,
 * bad chunk framing, repeated or conflicting Content-Length and Content-Length together with
 * Transfer-Encoding. On top of that this file rejects what llhttp 8.1 still lets through:
 * HTTP/0.9 and versions other than 1.x, bare LF line ends (the blank line that ends the head
 * or the trailers), obsolete line folding, empty field names, Transfer-Encoding on HTTP/1.0
 * and transfer codings other than plain chunked. */
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
    obs_req_end(&req->obs, req->method, req->path); /* every request ends here */
    buf_release(&req->head);
    buf_release(&req->body);
    xfree(req->hdrs);
    xfree(req->path);
    xfree(req);
}

/* ---- llhttp callbacks ---- */

static int fail(struct http__parser *p, int status, const char *why)
{
    if (!p->err) {
        p->err = status;
        p->why = why;
    }
    return -1;
}

static int head_append(struct http__parser *p, const char *at, size_t len)
{
    if (buf_append(&p->cur->head, at, len) < 0)
        return fail(p, 431, "head over max_header_bytes");
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
    return buf_appendc(&r->head, '\0') < 0 ? fail(p, 431, "head over max_header_bytes") : 0;
}

static int on_message_begin(llhttp_t *hp)
{
    struct http__parser *p = hp->data;
    p->phase = HTTP__HEAD;
    p->cur = req_new(p);
    p->last_cb = CB_NONE;
    p->want_continue = false;
    return 0;
}

static int on_url(llhttp_t *hp, const char *at, size_t len)
{
    struct http__parser *p = hp->data;
    p->last_cb = CB_URL;
    return head_append(p, at, len);
}

static int on_header_field(llhttp_t *hp, const char *at, size_t len)
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

/* RFC 9110 §5.1: a field name is a token, so never empty (llhttp 8.1 lets ": v" through). */
static int on_header_field_complete(llhttp_t *hp)
{
    struct http__parser *p = hp->data;
    struct http_req *r = p->cur;
    if (p->last_cb != CB_FIELD || r->head.len == r->hdrs[r->nhdrs - 1].name_off)
        return fail(p, 400, "empty field name");
    return 0;
}

static int on_header_value(llhttp_t *hp, const char *at, size_t len)
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
 * norm; absolute form (RFC 9112 §3.2.2, "http://host[:port]/path") is accepted, authority
 * form (CONNECT) is not. */
static int split_url(struct http_req *r)
{
    const char *s = r->head.data;
    size_t n = r->url_len;
    if (n > 0 && s[0] != '/' && !(n == 1 && s[0] == '*')) {
        size_t skip;
        if (n > 7 && strncasecmp(s, "http://", 7) == 0)
            skip = 7;
        else if (n > 8 && strncasecmp(s, "https://", 8) == 0)
            skip = 8;
        else
            return -1;
        size_t host = skip;
        while (skip < n && s[skip] != '/' && s[skip] != '?' && s[skip] != '#')
            skip++;
        if (skip == host || memchr(s + host, '@', skip - host))
            return -1; /* no host, or userinfo (RFC 9110 §4.2.4 forbids it in http URIs) */
        s += skip;
        n -= skip;
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

/* RFC 9112 §2.3, §6.1, §6.3: the version and the framing headers we accept. Returns 0, or the
 * status to answer with *why set. */
static int check_framing(struct http__parser *p, const llhttp_t *hp, const char **why)
{
    if (hp->http_major != 1) {
        /* HTTP/0.9 has no headers and no framing at all */
        *why = hp->http_major == 0 ? "HTTP/0.9 request" : "unsupported HTTP version";
        return hp->http_major == 0 ? 400 : 505;
    }
    if (!(hp->flags & F_TRANSFER_ENCODING))
        return 0;
    /* "A server that receives a request message with a transfer coding it does not understand
     * SHOULD respond with 501"; one received in an HTTP/1.0 message has faulty framing. */
    if (hp->http_minor == 0) {
        *why = "Transfer-Encoding in HTTP/1.0";
        return 400;
    }
    const char *te = http_req_header(p->cur, "transfer-encoding");
    *why = "unsupported transfer coding";
    return te && strcasecmp(te, "chunked") == 0 ? 0 : 501;
}

static int on_headers_complete(llhttp_t *hp)
{
    struct http__parser *p = hp->data;
    struct http_req *r = p->cur;
    if (end_token(p) < 0)
        return -1;
    const char *why = NULL;
    int bad = check_framing(p, hp, &why);
    if (bad)
        return fail(p, bad, why);
    r->method = llhttp_method_name((llhttp_method_t)hp->method);
    r->http_major = (unsigned char)hp->http_major;
    r->http_minor = (unsigned char)hp->http_minor;
    /* After an Upgrade the rest of the stream is another protocol, which we do not speak. */
    r->keep_alive = llhttp_should_keep_alive(hp) && !hp->upgrade;
    r->is_head = hp->method == HTTP_HEAD;
    if (p->streaming) {
        /* chunked trailers of a streamed request: parsed (under the head cap), then dropped */
        p->phase = HTTP__BODY;
        return 0;
    }
    if (split_url(r) < 0)
        return fail(p, 400, "bad request target");
    p->streaming = p->want_stream && p->want_stream(p->want_stream_data, r);
    /* Refuse a declared oversize body before reading any of it (a streamed body has no cap
     * here: its reader keeps what it wants). */
    if (!p->streaming && (hp->flags & F_CONTENT_LENGTH) && hp->content_length > p->max_body_bytes)
        return fail(p, 413, "body over max_body_bytes");
    p->head_ready = p->streaming;
    p->chunked = (hp->flags & F_CHUNKED) != 0;
    const char *expect = http_req_header(r, "expect");
    p->want_continue = expect && strcasecmp(expect, "100-continue") == 0 && hp->http_minor >= 1;
    p->phase = HTTP__BODY;
    p->head_end = true;
    /* Pause: http__parser_feed checks the head's line ends before reading on. */
    return HPE_PAUSED;
}

static int on_body(llhttp_t *hp, const char *at, size_t len)
{
    struct http__parser *p = hp->data;
    if (p->streaming) {
        p->sink(p->sink_data, at, len);
        return 0;
    }
    if (buf_append(&p->cur->body, at, len) < 0)
        return fail(p, 413, "body over max_body_bytes");
    return 0;
}

/* Pauses the parser so that llhttp_execute returns right after this request: the bytes of a
 * pipelined next request stay with the caller until this one is answered. */
static int on_message_complete(llhttp_t *hp)
{
    struct http__parser *p = hp->data;
    if (p->streaming) {
        http__req_free(p->cur); /* the stub that took the trailers */
        p->streaming = false;
        p->body_end = true;
    } else {
        p->done = p->cur;
    }
    p->cur = NULL;
    p->phase = HTTP__IDLE;
    p->head_bytes = 0;
    return HPE_PAUSED;
}

static const llhttp_settings_t settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- parser ---- */

void http__parser_init(struct http__parser *p, size_t max_header_bytes, size_t max_body_bytes)
{
    memset(p, 0, sizeof(*p));
    llhttp_init(&p->hp, HTTP_REQUEST, &settings);
    p->hp.data = p;
    /* Every lenient flag stays off (they are off after llhttp_init; say so explicitly). */
    llhttp_set_lenient_headers(&p->hp, 0);
    llhttp_set_lenient_chunked_length(&p->hp, 0);
    llhttp_set_lenient_keep_alive(&p->hp, 0);
    llhttp_set_lenient_transfer_encoding(&p->hp, 0);
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

/* Line ends of the head (RFC 9112 §2.2): every LF must follow a CR, and a line may not start
 * with a blank (obs-fold, §5.2, or whitespace before the first field). llhttp rejects most
 * bare LFs itself but accepts one in the blank line that ends the head. */
static int scan_head(struct http__parser *p, const char *s, size_t n)
{
    unsigned char prev = p->prev;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c == '\n' && prev != '\r') || (prev == '\n' && (c == ' ' || c == '\t')))
            return -1;
        prev = c;
    }
    return 0;
}

/* Remembers the last two bytes the parser consumed, across calls. */
static void note_tail(struct http__parser *p, const char *s, size_t n)
{
    if (n >= 2) {
        p->prev2 = (unsigned char)s[n - 2];
        p->prev = (unsigned char)s[n - 1];
    } else if (n == 1) {
        p->prev2 = p->prev;
        p->prev = (unsigned char)s[0];
    }
}

/* Runs llhttp over data[0..n) and sets *got to the bytes it consumed. A bad line end in the
 * head wins over any error found after it, so that the verdict does not depend on how the
 * bytes were split (tests/fuzz/fuzz_http.c checks that). */
static int execute(struct http__parser *p, const char *data, size_t n, size_t *got)
{
    bool in_head = p->phase != HTTP__BODY;
    llhttp_errno_t e = llhttp_execute(&p->hp, data, n);
    *got = n;
    if (e != HPE_OK) {
        const char *pos = llhttp_get_error_pos(&p->hp);
        if (pos >= data && pos <= data + n)
            *got = (size_t)(pos - data);
    }
    if (in_head && scan_head(p, data, *got) < 0) {
        p->err = 0;
        return fail(p, 400, "bare LF or folded line in the head");
    }
    if (e != HPE_OK && e != HPE_PAUSED) {
        /* llhttp's verdict (malformed), unless one of our callbacks failed first */
        const char *why = llhttp_get_error_reason(&p->hp);
        return fail(p, 400, why ? why : llhttp_errno_name(e));
    }
    note_tail(p, data, *got);
    /* The blank line after chunked trailers must be CRLF too (llhttp takes a bare LF). */
    bool complete = p->done || p->body_end;
    if (complete && p->chunked && p->prev2 != '\r')
        return fail(p, 400, "bare LF after the trailers");
    if (complete)
        p->prev = p->prev2 = 0; /* the next request's line ends are its own */
    if (e == HPE_PAUSED)
        llhttp_resume(&p->hp);
    return 0;
}

static int after_execute(struct http__parser *p, size_t got)
{
    if (p->err)
        return -p->err;
    if (p->done)
        return HTTP__REQ_DONE;
    if (p->body_end)
        return HTTP__BODY_END;
    if (p->head_ready)
        return HTTP__HEAD_DONE;
    if (p->phase != HTTP__BODY) {
        /* Still in the head, so every byte of this run belonged to it. Reaching the cap
         * without finishing the head means the head is over it. */
        p->head_bytes += got;
        if (p->head_bytes >= p->max_header_bytes)
            fail(p, 431, "head over max_header_bytes");
    }
    return p->err ? -p->err : HTTP__NEED_MORE;
}

int http__parser_feed(struct http__parser *p, const char *data, size_t len, size_t *used)
{
    size_t off = 0;
    p->body_end = false; /* reported by the previous call */
    int rc = HTTP__NEED_MORE;
    if (p->err)
        rc = -p->err;
    else if (p->done)
        rc = HTTP__REQ_DONE;
    else if (p->head_ready)
        rc = HTTP__HEAD_DONE;
    /* After the pause at the end of a head, run once more even with no bytes left: a request
     * without a body completes there. */
    while (rc == HTTP__NEED_MORE && (off < len || p->head_end)) {
        p->head_end = false;
        size_t n = len - off;
        /* While in the head, hand the parser no more than the head may still grow by, so
         * the cap is exact whatever the size of the buffers we are fed. */
        if (p->phase != HTTP__BODY && n > p->max_header_bytes - p->head_bytes)
            n = p->max_header_bytes - p->head_bytes;
        size_t got = 0;
        execute(p, data + off, n, &got);
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

struct http_req *http__parser_take_head(struct http__parser *p, http__sink_cb sink, void *data)
{
    if (!p->head_ready)
        return NULL;
    struct http_req *r = p->cur;
    r->body_state = HTTP__BODY_WAIT;
    p->head_ready = false;
    p->sink = sink;
    p->sink_data = data;
    p->cur = req_new(p); /* a stub for chunked trailers, freed at the end of the body */
    p->last_cb = CB_NONE;
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

bool http_req_body_streamed(const struct http_req *req)
{
    return req->body_state != HTTP__BODY_NONE;
}

void http_req_on_close(struct http_req *req, http_close_cb cb, void *data)
{
    req->close_cb = cb;
    req->close_data = data;
}
