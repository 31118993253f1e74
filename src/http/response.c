/* SPDX-License-Identifier: MIT */
/* response.c -- formats responses into a connection's outgoing buffer: one-shot responses with
 * Content-Length, chunked streams, CORS preflight answers and the server's own errors.
 * conn.c writes the buffer out and moves the connection on once a response is finished. */
#include <stdio.h>
#include <string.h>

#include "../core/log.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "http_int.h"

#define JSON_TYPE "application/json; charset=utf-8"

/* Reason phrases of the statuses this server sends (RFC 9110 §15); clients ignore them. */
static const char *reason(int status)
{
    static const struct {
        int status;
        const char *text;
    } table[] = {
        {100, "Continue"},
        {101, "Switching Protocols"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {206, "Partial Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {411, "Length Required"},
        {412, "Precondition Failed"},
        {413, "Payload Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {416, "Range Not Satisfiable"},
        {417, "Expectation Failed"},
        {421, "Misdirected Request"},
        {422, "Unprocessable Entity"},
        {426, "Upgrade Required"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
        {505, "HTTP Version Not Supported"},
        {507, "Insufficient Storage"},
    };
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
        if (table[i].status == status)
            return table[i].text;
    return "Unknown";
}

/* Every response carries the security headers; CORS headers only for the origin the handler
 * allowed with http_req_set_cors_origin (never "*"). Vary: Origin, because whether the CORS
 * headers are there depends on it. */
static void append_head(struct buf *b, const struct http_req *req, int status,
                        const char *content_type, bool keep_alive)
{
    char line[96];
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\n", status, reason(status));
    buf_append(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    if (content_type) {
        buf_append(b, "Content-Type: ", 14);
        buf_appends(b, content_type);
        buf_append(b, "\r\n", 2);
    }
    if (keep_alive)
        buf_appends(b, "Connection: keep-alive\r\n");
    else
        buf_appends(b, "Connection: close\r\n");
    buf_appends(b, "X-Content-Type-Options: nosniff\r\nX-Frame-Options: DENY\r\n"
                   "Referrer-Policy: no-referrer\r\nVary: Origin\r\n");
    if (req && req->cors_origin) {
        buf_appends(b, "Access-Control-Allow-Origin: ");
        buf_appends(b, req->cors_origin);
        buf_appends(b, "\r\n");
    }
}

/* The request id goes last in the head, after the handler's headers. */
static void append_request_id(struct buf *b, const struct http_req *req)
{
    if (req && req->obs.id[0]) /* ids are checked or generated: no CR, LF or quotes */
        buf_appendf(b, "X-Request-Id: %s\r\n%s%s%s", req->obs.id,
                    req->obs.tt_logid ? "x-tt-logid: " : "", req->obs.tt_logid ? req->obs.id : "",
                    req->obs.tt_logid ? "\r\n" : "");
}

void http__append_response(struct http_conn *c, const struct http_req *req, int status,
                           const char *content_type, const char *extra_headers, const char *body,
                           size_t len, bool keep_alive)
{
    struct buf *b = &c->out;
    if (status < 200 || status == 204 || status == 304)
        len = 0; /* RFC 9110 §6.4.1: these never carry content */
    append_head(b, req, status, content_type, keep_alive);
    if (extra_headers)
        buf_appends(b, extra_headers);
    append_request_id(b, req);
    char cl[48];
    int n = snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n\r\n", len);
    buf_append(b, cl, (size_t)n);
    if (len && !(req && req->is_head))
        buf_append(b, body, len);
}

/* An answer before the end of a streamed body: the rest of the body is never read, so the
 * connection cannot carry another request. */
static void settle_body(struct http_req *req)
{
    if (req->body_state == HTTP__BODY_WAIT || req->body_state == HTTP__BODY_READING)
        req->keep_alive = false;
}

/* Frees the finished request and lets its connection move on to the next one. */
static void finish(struct http_req *req, bool keep_alive)
{
    struct http_conn *c = req->conn;
    if (c && c->req == req)
        c->req = NULL;
    http__req_free(req);
    if (c)
        http__conn_finished(c, keep_alive);
}

/* ---- one-shot responses ---- */

void http_respond(struct http_req *req, int status, const char *content_type, const char *body,
                  size_t len)
{
    http_respond_headers(req, status, content_type, NULL, body, len);
}

void http_respond_headers(struct http_req *req, int status, const char *content_type,
                          const char *extra_headers, const char *body, size_t len)
{
    if (!req || req->gone)
        return;
    if (req->streaming) {
        log_error("conn %llu: http_respond on a streaming response",
                  (unsigned long long)req->conn_id);
        return;
    }
    settle_body(req);
    struct http_conn *c = req->conn;
    if (c && !c->closing)
        http__append_response(c, req, status, content_type, extra_headers, body, len,
                              req->keep_alive);
    obs_req_status(&req->obs, status, content_type);
    req->obs.bytes_out += len;
    finish(req, req->keep_alive);
}

void http_respond_json(struct http_req *req, int status, const json_t *j)
{
    size_t len = 0;
    char *s = json_dump_compact(j, &len);
    if (!s) {
        http_respond_error(req, 500, "Internal server error");
        return;
    }
    http_respond(req, status, JSON_TYPE, s, len);
    xfree(s);
}

void http_respond_error(struct http_req *req, int status, const char *msg)
{
    json_t *o = json_object();
    json_object_set_new(o, "error", json_string_lossy(msg, strlen(msg)));
    obs_http_error(status, msg);
    if (req && req->obs.id_given) /* the caller's correlation id (X-Request-Id, x-tt-logid) */
        json_object_set_new(o, "requestId", json_string(req->obs.id));
    size_t len = 0;
    char *s = json_dump_compact(o, &len);
    json_decref(o);
    http_respond(req, status, JSON_TYPE, s, len);
    xfree(s);
}

const char *http_req_id(const struct http_req *req, bool *given)
{
    if (given)
        *given = req->obs.id_given;
    return req->obs.id;
}

void http_req_set_route(struct http_req *req, const char *route)
{
    req->obs.route = route;
}

void http_req_set_cors_origin(struct http_req *req, const char *origin)
{
    /* Header values contain no CR or LF (the parser refuses them), so it can be echoed. */
    req->cors_origin = origin;
}

/* A CORS preflight answer: what may be sent, and the allowed origin when one was set. */
void http_respond_preflight(struct http_req *req)
{
    if (!req || req->gone || req->streaming)
        return;
    settle_body(req);
    const char *extra = req->cors_origin
                            ? "Access-Control-Allow-Methods: GET,POST,PUT,DELETE,OPTIONS\r\n"
                              "Access-Control-Allow-Headers: Content-Type,Authorization,"
                              "X-CSRF-Token,Last-Event-ID\r\n"
                              "Access-Control-Max-Age: 600\r\n"
                            : NULL;
    req->obs.status = 204;
    if (req->conn && !req->conn->closing)
        http__append_response(req->conn, req, 204, NULL, extra, NULL, 0, req->keep_alive);
    finish(req, req->keep_alive);
}

void http__conn_send_error(struct http_conn *c, int status)
{
    const char *msg = status == 413   ? "Request body too large"
                      : status == 431 ? "Request header fields too large"
                      : status == 503 ? "Too many connections"
                                      : "Bad request";
    char body[96];
    int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}", msg);
    obs_http_error(status, msg);
    http__append_response(c, NULL, status, JSON_TYPE, NULL, body, (size_t)n, false);
    http__conn_finished(c, false);
}

/* ---- streaming ---- */

int http_stream_start(struct http_req *req, int status, const char *content_type,
                      const char *extra_headers)
{
    if (!req || req->gone || req->streaming || !req->conn)
        return UV_EINVAL;
    struct http_conn *c = req->conn;
    if (c->closing)
        return UV_EPIPE;
    req->streaming = true;
    obs_req_status(&req->obs, status, content_type);
    settle_body(req);
    /* HTTP/1.0 has no chunked coding: the body then runs until we close. */
    req->chunked_out = req->http_major > 1 || req->http_minor >= 1;
    if (!req->chunked_out)
        req->keep_alive = false;
    append_head(&c->out, req, status, content_type, req->keep_alive);
    if (req->chunked_out)
        buf_appends(&c->out, "Transfer-Encoding: chunked\r\n");
    if (extra_headers)
        buf_appends(&c->out, extra_headers);
    append_request_id(&c->out, req);
    buf_append(&c->out, "\r\n", 2);
    http__conn_queue_flush(c);
    return 0;
}

size_t http_stream_pending(const struct http_req *req)
{
    const struct http_conn *c = req->conn;
    if (!c)
        return 0;
    return c->out.len + (c->writing ? c->wbuf.len - c->wbuf_sent : 0);
}

int http_stream_write(struct http_req *req, const char *p, size_t len)
{
    if (!req || req->gone || !req->streaming)
        return UV_EINVAL;
    struct http_conn *c = req->conn;
    if (c->closing)
        return UV_EPIPE;
    /* An empty chunk would be read as the end of the body. */
    if (len == 0 || req->is_head)
        return 0;
    /* A reader this far behind is not coming back; the cap bounds its memory at about
     * max_pending_write_bytes plus one chunk. */
    if (http_stream_pending(req) > c->srv->opts.max_pending_write_bytes)
        return UV_ENOBUFS;
    if (req->chunked_out) {
        /* The chunk-size line goes straight into the outgoing buffer: no allocation. */
        static const char hex[] = "0123456789abcdef";
        char line[2 * sizeof(size_t) + 2];
        size_t i = sizeof(line);
        line[--i] = '\n';
        line[--i] = '\r';
        for (size_t v = len; v; v >>= 4)
            line[--i] = hex[v & 15];
        buf_append(&c->out, line + i, sizeof(line) - i);
        buf_append(&c->out, p, len);
        buf_append(&c->out, "\r\n", 2);
    } else {
        buf_append(&c->out, p, len);
    }
    req->obs.bytes_out += len;
    http__conn_queue_flush(c);
    return 0;
}

void http_stream_on_drain(struct http_req *req, http_drain_cb cb, void *data)
{
    req->drain_cb = cb;
    req->drain_data = data;
}

void http_stream_end(struct http_req *req)
{
    if (!req || req->gone)
        return;
    if (!req->streaming) {
        log_error("conn %llu: http_stream_end without http_stream_start",
                  (unsigned long long)req->conn_id);
        return;
    }
    struct http_conn *c = req->conn;
    if (!c->closing && req->chunked_out && !req->is_head)
        buf_append(&c->out, "0\r\n\r\n", 5);
    finish(req, req->keep_alive);
}

void http_stream_abort(struct http_req *req)
{
    if (!req || req->gone)
        return;
    struct http_conn *c = req->conn;
    if (c && c->req == req)
        c->req = NULL;
    http__req_free(req);
    if (c)
        http__conn_close(c);
}
