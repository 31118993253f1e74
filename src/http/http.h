/* SPDX-License-Identifier: MIT */
/* http.h -- HTTP/1.1 server on libuv + http-parser. Keep-alive, pipelining (requests on one
 * connection are handed to the handler one at a time, and answered in order), Content-Length
 * and chunked request bodies, chunked streaming responses, security and CORS headers (the
 * handler decides which origin may read a response), and caps/timeouts against hostile peers. Everything runs on the loop thread.
 *
 * Lifetime of a request: the handler receives a struct http_req and must eventually finish it
 * with exactly one of http_respond*() or http_stream_start() ... http_stream_end(). The request
 * stays valid until then. If the peer goes away first, the close callback set with
 * http_req_on_close() fires once, and the request is freed right after it returns; do not touch
 * it afterwards (and do not finish it). */
#ifndef HTTP_HTTP_H
#define HTTP_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http_req;

struct http_server_opts {
    const char *host;               /* "127.0.0.1" */
    int port;                       /* 0 = ephemeral */
    size_t max_header_bytes;        /* request line + headers; 431 above (default 16 KiB) */
    size_t max_body_bytes;          /* 413 above (default 1 MiB) */
    unsigned header_timeout_ms;     /* whole request head must arrive within (default 10 s) */
    unsigned body_timeout_ms;       /* whole body must arrive within (default 30 s) */
    unsigned idle_timeout_ms;       /* keep-alive idle time between requests (default 60 s) */
    unsigned max_conns;             /* beyond this, new connections get 503 and are closed */
    size_t max_pending_write_bytes; /* http_stream_write fails beyond this (slow reader) */
    /* Asked after each request head (method, path and headers are known; nothing has been
     * answered): true makes the request a streamed one (see http_req_read_body). NULL: none. */
    bool (*stream_body)(const struct http_req *req, void *data);
};

struct http_server;

/* The body of a streamed request (see http_req_read_body): its bytes in order, then one call
 * with p == NULL at the end of the body. */
typedef void (*http_body_cb)(struct http_req *req, void *data, const char *p, size_t len);

typedef void (*http_handler_cb)(struct http_req *req, void *data);
typedef void (*http_close_cb)(struct http_req *req, void *data);
/* Fires when the pending (unsent) bytes of a stream drop to zero after a write. */
typedef void (*http_drain_cb)(struct http_req *req, void *data);

/* Fills unset (zero) fields of opts with the defaults above. */
void http_server_opts_defaults(struct http_server_opts *opts);
/* Binds and listens. Returns 0 or a negative libuv error. */
int http_server_start(uv_loop_t *loop, const struct http_server_opts *opts, http_handler_cb cb,
                      void *data, struct http_server **out);
/* The bound port (useful with port 0). */
int http_server_port(const struct http_server *s);
/* Number of open connections. */
unsigned http_server_conn_count(const struct http_server *s);
/* Stops listening and closes every connection (close callbacks of pending requests fire);
 * the server is freed once its handles closed. NULL ok. */
void http_server_close(struct http_server *s);

/* Registers a function called before any bytes are handed to a socket (process-wide). The
 * store uses it to commit the events those bytes carry first. */
void http_set_before_write_hook(void (*cb)(void *data), void *data);

/* ---- request ---- */
const char *http_req_method(const struct http_req *req);  /* "GET", "POST", ... */
const char *http_req_path(const struct http_req *req);    /* percent-decoded, no query */
const char *http_req_query(const struct http_req *req);   /* raw query without '?', or "" */
/* Percent-decoded value of a query parameter (+ is space); NULL if absent. Caller owns it. */
char *http_req_query_param(const struct http_req *req, const char *name);
/* Case-insensitive header lookup; NULL if absent. */
const char *http_req_header(const struct http_req *req, const char *name);
/* Body bytes (NUL-terminated for convenience; may contain NULs). */
const char *http_req_body(const struct http_req *req, size_t *len);
uint64_t http_req_conn_id(const struct http_req *req);
/* The peer's address as text ("127.0.0.1", "::1"); "" when unknown or gone. */
void http_req_peer(const struct http_req *req, char out[64]);
/* Echo origin (borrowed: a header value of req itself, e.g. its Origin) in
 * Access-Control-Allow-Origin on the response. Without it no CORS header is sent. */
void http_req_set_cors_origin(struct http_req *req, const char *origin);
void http_req_on_close(struct http_req *req, http_close_cb cb, void *data);
/* The request id: X-Request-Id (else x-tt-logid) as the client sent it, or a generated one.
 * Every response carries it in X-Request-Id. *given (may be NULL) says whether it was sent. */
const char *http_req_id(const struct http_req *req, bool *given);
/* Names the route template the request matched (static string), for metrics and traces. */
void http_req_set_route(struct http_req *req, const char *route);

/* ---- streamed request bodies ----
 * A request that opts.stream_body picked reaches the handler right after its head, with an
 * empty http_req_body(); max_body_bytes does not apply, so the handler bounds what it keeps.
 * The handler starts the body with http_req_read_body (a client that sent "Expect:
 * 100-continue" gets its "100 Continue" then, not before): cb receives the bytes in order, at
 * most 64 KiB a run, then a call with p == NULL at the end. cb may pause and resume reading
 * (kernel buffers fill up and the client waits; the rest of a run already parsed still comes
 * after a pause) and may answer at any time; an answer before
 * the end of the body closes the connection after it. body_timeout_ms bounds each wait for
 * bytes, not the whole body, and does not run while paused. A body whose framing breaks, or a
 * peer that goes away, closes the connection: the close callback fires. */
void http_req_read_body(struct http_req *req, http_body_cb cb, void *data);
void http_req_pause_body(struct http_req *req);
void http_req_resume_body(struct http_req *req);
/* Whether req's body is streamed (and so not in http_req_body). */
bool http_req_body_streamed(const struct http_req *req);

/* ---- one-shot responses (finish the request) ---- */
void http_respond(struct http_req *req, int status, const char *content_type, const char *body,
                  size_t len);
/* As http_respond, with extra header lines ("Name: value\r\n..." or NULL). */
void http_respond_headers(struct http_req *req, int status, const char *content_type,
                          const char *extra_headers, const char *body, size_t len);
/* Serializes j compactly as application/json; j is borrowed. */
void http_respond_json(struct http_req *req, int status, const json_t *j);
/* {"error": msg} */
void http_respond_error(struct http_req *req, int status, const char *msg);
/* 204 to an OPTIONS preflight: the allowed methods and headers when a CORS origin was set,
 * nothing CORS otherwise (the browser then refuses the real request). */
void http_respond_preflight(struct http_req *req);

/* ---- streaming responses (chunked) ---- */
/* Sends the status line and headers. extra_headers is NULL or "Name: value\r\n..." lines. */
int http_stream_start(struct http_req *req, int status, const char *content_type,
                      const char *extra_headers);
/* Queues one chunk. Returns 0, or <0 if the peer is gone or more than max_pending_write_bytes
 * are already waiting (the caller should then give up on this stream: call http_stream_abort). */
int http_stream_write(struct http_req *req, const char *p, size_t len);
/* Bytes queued but not yet written to the socket. */
size_t http_stream_pending(const struct http_req *req);
void http_stream_on_drain(struct http_req *req, http_drain_cb cb, void *data);
/* Sends the terminating chunk; the request is finished (keep-alive goes on). */
void http_stream_end(struct http_req *req);
/* Closes the connection without finishing the body (slow or broken reader). The close callback
 * does not fire for this request. */
void http_stream_abort(struct http_req *req);

/* ---- connection takeover (WebSocket) ----
 * http_upgrade() answers a request with 101 and hands its connection to an owner that speaks
 * another protocol on it: raw reads in, the server's coalesced write path out (one write in
 * flight, flushed once per loop phase). There are no timeouts on a taken connection. */
struct http_conn;

struct http_raw_ops {
    /* Bytes from the peer, in order. May call any http_raw_* function. */
    void (*on_read)(struct http_conn *c, void *data, const char *p, size_t len);
    /* Everything written so far has reached the socket. May be NULL. */
    void (*on_drain)(struct http_conn *c, void *data);
    /* The peer went away, a read or write failed, or the server is closing. Fires at most
     * once, never after http_raw_end/http_raw_close; the connection is freed after it. */
    void (*on_close)(struct http_conn *c, void *data);
};

/* Finishes req with "101 Switching Protocols" (Connection: Upgrade plus extra_headers, which is
 * "Name: value\r\n..." lines) and hands the connection to ops/data. Bytes the client sent
 * after the request head reach on_read once the handler has returned (or before this returns,
 * when called outside the handler). Returns the connection, or NULL if the peer is already
 * gone (req is finished either way). */
struct http_conn *http_upgrade(struct http_req *req, const char *extra_headers,
                               const struct http_raw_ops *ops, void *data);
/* Queues bytes. Returns 0, or UV_EPIPE if the connection is closing. There is no cap here: the
 * owner bounds what it queues with http_raw_pending. */
int http_raw_write(struct http_conn *c, const char *p, size_t len);
/* Bytes queued but not yet written to the socket. */
size_t http_raw_pending(const struct http_conn *c);
/* Closes once everything queued is written (FIN, then input discarded until the peer's EOF or
 * a short linger timeout). No callback fires afterwards. */
void http_raw_end(struct http_conn *c);
/* Closes at once, dropping what is queued. No callback fires afterwards. */
void http_raw_close(struct http_conn *c);
uint64_t http_conn_id(const struct http_conn *c);

#endif
