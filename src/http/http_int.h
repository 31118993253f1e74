/* SPDX-License-Identifier: MIT */
/* http_int.h -- internals shared by the files of the HTTP module: the pure request parser
 * (parse.c, fed bytes, no I/O, unit-tested directly), the request object, and the connection
 * and server objects that conn.c and response.c share. Nothing outside src/http includes it
 * except tests/unit/test_http.c. */
#ifndef HTTP_HTTP_INT_H
#define HTTP_HTTP_INT_H

#include <llhttp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../core/buf.h"
#include "../core/list.h"
#include "../obs/obs.h"
#include "http.h"

/* ---- request ---- */

/* A streamed body (opts.stream_body): handed to the handler after the head, read on demand. */
enum http__body_state {
    HTTP__BODY_NONE,    /* buffered as usual (not streamed) */
    HTTP__BODY_WAIT,    /* streamed; the handler has not called http_req_read_body yet */
    HTTP__BODY_READING, /* streamed; bytes go to body_cb */
    HTTP__BODY_DONE,    /* streamed; the end reached body_cb */
};

struct http__hdr {
    size_t name_off; /* offsets into req->head; both NUL-terminated there */
    size_t value_off;
};

struct http_req {
    struct http_conn *conn; /* NULL while owned by a bare parser (tests) */
    uint64_t conn_id;
    const char *method; /* static string from llhttp_method_name */
    unsigned char http_major, http_minor;
    bool keep_alive;  /* the connection may carry another request after this one */
    bool is_head;     /* HEAD: the response carries no body */
    bool streaming;   /* http_stream_start was called */
    bool chunked_out; /* streaming with Transfer-Encoding: chunked (HTTP/1.1) */
    bool gone;        /* its close callback is running; finishing it is a no-op */
    const char *cors_origin; /* allowed Origin to echo (points into head), or NULL */
    struct buf head;  /* url NUL (name NUL value NUL)*; capped by max_header_bytes */
    size_t url_len;
    struct http__hdr *hdrs; /* owned; nhdrs used */
    size_t nhdrs, hdrs_cap;
    char *path;        /* owned: decoded path NUL raw query NUL */
    const char *query; /* points into path's allocation */
    struct buf body;   /* capped by max_body_bytes; empty when the body is streamed */
    enum http__body_state body_state; /* streamed bodies only (http_req_read_body) */
    bool body_paused;   /* the reader paused a streamed body */
    bool want_continue; /* a streamed body waits for our "100 Continue" */
    http_body_cb body_cb;
    void *body_data;
    http_close_cb close_cb;
    void *close_data;
    http_drain_cb drain_cb;
    void *drain_data;
    struct obs_req obs; /* request id, route, status and timing for metrics and logs (obs.h) */
};

void http__req_free(struct http_req *req);

/* ---- pure request parser (parse.c) ---- */

enum http__phase {
    HTTP__IDLE, /* between requests: nothing of the next one seen yet */
    HTTP__HEAD, /* request line and headers arriving */
    HTTP__BODY, /* headers complete, body arriving */
};

/* What http__parser_feed returns besides -status on error. */
#define HTTP__NEED_MORE 0
#define HTTP__REQ_DONE 1
#define HTTP__HEAD_DONE 2 /* the head of a streamed request (want_stream said yes) */
#define HTTP__BODY_END 3  /* the end of a streamed body */

/* Body bytes of a streamed request, as the parser consumes them. */
typedef void (*http__sink_cb)(void *data, const char *p, size_t len);

struct http__parser {
    llhttp_t hp; /* strict mode, no lenient flags */
    size_t max_header_bytes;
    size_t max_body_bytes;
    size_t head_bytes; /* bytes of the current head consumed so far */
    enum http__phase phase;
    int last_cb;           /* which data callback ran last (url, field, value) */
    int err;               /* 0, or the HTTP status of a client error (400/413/431/501/505) */
    const char *why;       /* static text saying why err was set, for the log */
    bool want_continue;    /* Expect: 100-continue seen on the current request */
    bool head_end;         /* llhttp paused at the end of a head: run it once more */
    bool chunked;          /* the current request's body is chunked */
    unsigned char prev, prev2; /* the last two bytes consumed (line-end checks) */
    struct http_req *cur;  /* request being built; owned */
    struct http_req *done; /* complete request waiting for http__parser_take; owned */
    /* Asked once per head (method, path and headers known): true streams the body. NULL: never. */
    bool (*want_stream)(void *data, const struct http_req *req);
    void *want_stream_data;
    bool streaming;  /* the current request's body goes to sink, not to a buffer */
    bool head_ready; /* a streamed head waits for http__parser_take_head */
    bool body_end;   /* the streamed body just ended (reported once) */
    http__sink_cb sink;
    void *sink_data;
};

void http__parser_init(struct http__parser *p, size_t max_header_bytes, size_t max_body_bytes);
void http__parser_release(struct http__parser *p);
/* Feeds bytes. Sets *used to the bytes consumed and returns HTTP__REQ_DONE when a request is
 * complete (the rest of data was not consumed: feed it again after http__parser_take),
 * HTTP__NEED_MORE when all of data was consumed, or -status (-400, -413, -431, -501, -505) on a
 * client error, after which the parser is dead. */
int http__parser_feed(struct http__parser *p, const char *data, size_t len, size_t *used);
/* The completed request; the caller owns it (free with http__req_free). */
struct http_req *http__parser_take(struct http__parser *p);
/* After HTTP__HEAD_DONE: the streamed request (the caller owns it, its body stays empty). The
 * body bytes fed from now on go to sink, and the feed that consumes the body's end returns
 * HTTP__BODY_END; chunked trailers are parsed under the header cap and dropped. */
struct http_req *http__parser_take_head(struct http__parser *p, http__sink_cb sink, void *data);

/* Percent-decodes s[0..len) into out (room for len + 1 bytes); '+' becomes a space when
 * plus_is_space. Invalid escapes are kept literally. Returns the decoded length. */
size_t http__pct_decode(const char *s, size_t len, char *out, bool plus_is_space);

/* ---- connections and server (conn.c, response.c) ---- */

enum http__conn_state {
    HTTP__CONN_READ,    /* parsing; no request in the handler's hands */
    HTTP__CONN_HANDLER, /* c->req is in the handler's hands */
    HTTP__CONN_FLUSH,   /* response finished, waiting until its bytes are written */
    HTTP__CONN_LINGER,  /* last response written and FIN sent; input discarded until EOF */
    HTTP__CONN_RAW,     /* taken over by http_upgrade: bytes go to raw_ops */
};

/* What the connection's one timer is guarding. */
enum http__timer_kind { HTTP__T_NONE, HTTP__T_HEAD, HTTP__T_BODY, HTTP__T_IDLE, HTTP__T_LINGER };

struct http_conn {
    uv_tcp_t tcp;     /* data = this */
    uv_timer_t timer; /* the one timeout this connection owns */
    uv_write_t wreq;
    uv_shutdown_t sreq;
    struct http_server *srv;
    struct list_node link;       /* in srv->conns */
    struct list_node flush_link; /* in srv->flush_q while flush_queued */
    uint64_t id;
    enum http__conn_state state;
    enum http__timer_kind timer_kind;
    struct http__parser parser;
    struct buf in;        /* received bytes not yet parsed (pipelining); capped */
    size_t in_off;        /* parsed prefix of in */
    struct http_req *req; /* request in the handler's hands, or NULL */
    struct buf out;       /* queued bytes, not yet handed to uv_write */
    struct buf wbuf;      /* bytes of the write in flight */
    size_t wbuf_sent;     /* prefix of wbuf already taken by uv_try_write */
    unsigned nreqs;       /* requests dispatched so far */
    size_t discarded;     /* input bytes thrown away after the last response (linger) */
    int open_handles;     /* tcp + timer; freed when both have closed */
    bool writing;         /* wreq is in flight */
    bool reading;
    bool eof;         /* the peer half-closed */
    bool close_after; /* close once the current response is written */
    bool closing;
    bool flush_queued; /* out will be written from the server's check handle */
    bool counted;      /* counted in srv->nconns (not a 503 reject) */
    bool in_handler;   /* inside the handler callback for c->req */
    bool in_body_feed; /* feeding a streamed body to the parser (its reader runs) */
    const struct http_raw_ops *raw_ops; /* owner of an upgraded connection, or NULL */
    void *raw_data;
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_prepare_t prepare; /* prepare, check and idle write out what connections */
    uv_check_t check;     /* queued, once per loop phase (server.c) */
    uv_idle_t idle;
    struct list_node flush_q;
    int open_handles; /* listener, prepare, check, idle: freed when all closed, no conns */
    struct http_server_opts opts;
    http_handler_cb cb;
    void *data;
    struct list_node conns;
    unsigned nconns;   /* accepted connections, not counting 503 rejects */
    unsigned nrejects; /* 503 rejects still open */
    uint64_t next_id;
    int port;
    bool closing;
    bool before_poll;     /* between our prepare callback and our check callback */
    char rbuf[64 * 1024]; /* shared read buffer: reads are consumed synchronously */
};

/* conn.c */
struct http_conn *http__conn_new(struct http_server *s);
/* Starts the first timeout and reading on an accepted connection. */
void http__conn_start(struct http_conn *c);
void http__conn_close(struct http_conn *c);
/* Called by response.c once the response of c->req is complete (c->req already cleared). */
void http__conn_finished(struct http_conn *c, bool keep_alive);
/* Writes out c->out now (from the loop only: it may move the connection on). */
void http__conn_flush_now(struct http_conn *c);

/* server.c */
/* Has c->out written at the end of this loop iteration, coalescing everything queued until
 * then into one write. */
void http__conn_queue_flush(struct http_conn *c);
void http__server_maybe_free(struct http_server *s);

/* response.c */
/* Appends a whole response (head and body) to c->out, for the server's own answers. */
void http__append_response(struct http_conn *c, const struct http_req *req, int status,
                           const char *content_type, const char *extra_headers, const char *body,
                           size_t len, bool keep_alive);
/* Writes the server's own JSON error response and closes after it. */
void http__conn_send_error(struct http_conn *c, int status);

#endif
