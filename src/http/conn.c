/* SPDX-License-Identifier: MIT */
/* conn.c -- the connection state machine: reading and pipelining (one request in the
 * handler's hands at a time, later ones buffered under a cap), timeouts, one write in flight,
 * lingering close, and teardown. A connection is freed only from its handles' uv_close
 * callbacks, never inside one of its own callbacks. */
#include <string.h>

#include "../core/log.h"
#include "../core/xalloc.h"
#include "http_int.h"

/* Bounds of a lingering close: it lasts at most LINGER_MS and discards at most
 * LINGER_MAX_BYTES, enough for a client to finish sending a rejected body of a normal size;
 * beyond that the peer is not reading our answer anyway, and is cut off with a reset. */
#define LINGER_MS 2000
#define LINGER_MAX_BYTES (256 * 1024)
#define KEEP_BUF_BYTES (256 * 1024) /* buffers above this are freed when they empty */

#define BODY_SLICE_BYTES (64 * 1024) /* most a streamed body's reader gets in one call */

static void conn_flushed(struct http_conn *c);
static void conn_update_reading(struct http_conn *c);
static void conn_stream_body(struct http_conn *c);
static bool conn_want_stream(void *data, const struct http_req *req);

static unsigned long long cid(const struct http_conn *c)
{
    return (unsigned long long)c->id;
}

/* ---- lifetime ---- */

struct http_conn *http__conn_new(struct http_server *s)
{
    struct http_conn *c = xcalloc(1, sizeof(*c));
    c->srv = s;
    c->id = ++s->next_id;
    c->state = HTTP__CONN_READ;
    uv_tcp_init(s->loop, &c->tcp);
    uv_timer_init(s->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->open_handles = 2;
    http__parser_init(&c->parser, s->opts.max_header_bytes, s->opts.max_body_bytes);
    if (s->opts.stream_body) {
        c->parser.want_stream = conn_want_stream;
        c->parser.want_stream_data = c;
    }
    /* Pipelined input is buffered up to a request's worth; one more read may land on top. */
    buf_init(&c->in, s->opts.max_header_bytes + s->opts.max_body_bytes + sizeof(s->rbuf));
    buf_init(&c->out, SIZE_MAX / 2); /* stream writes are capped by max_pending_write_bytes */
    buf_init(&c->wbuf, SIZE_MAX / 2);
    list_init(&c->flush_link);
    list_insert_tail(&s->conns, &c->link);
    s->nrejects++; /* until accepted as a real connection */
    return c;
}

/* The request in the handler's hands learns that its peer is gone, then is freed. */
static void fire_close_cb(struct http_conn *c)
{
    struct http_req *req = c->req;
    req->gone = true;
    if (req->close_cb)
        req->close_cb(req, req->close_data);
    c->req = NULL;
    http__req_free(req);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct http_conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    if (c->req)
        fire_close_cb(c);
    struct http_server *s = c->srv;
    list_remove(&c->link);
    if (c->counted)
        s->nconns--;
    else
        s->nrejects--;
    http__parser_release(&c->parser);
    buf_release(&c->in);
    buf_release(&c->out);
    buf_release(&c->wbuf);
    xfree(c);
    http__server_maybe_free(s);
}

void http__conn_close(struct http_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->flush_queued) {
        list_remove(&c->flush_link);
        c->flush_queued = false;
    }
    /* Best effort, never blocking: a response finished just before the close (a handler that
     * answers and then shuts the server down) still reaches the socket. */
    if (!c->writing && c->out.len && c->state != HTTP__CONN_LINGER) {
        uv_buf_t b = uv_buf_init(c->out.data, (unsigned)c->out.len);
        (void)uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    if (c->raw_ops) {
        /* An upgraded connection's owner lets go now, for the same reason as below. */
        const struct http_raw_ops *ops = c->raw_ops;
        c->raw_ops = NULL;
        ops->on_close(c, c->raw_data);
    }
    /* Fire now, so that whoever closes (a timeout, the peer, http_server_close) has the
     * request's owner let go before it returns; but not under the handler, which still
     * holds the request: then it fires from on_handle_closed. */
    if (c->req && !c->in_handler)
        fire_close_cb(c);
}

/* ---- timers ---- */

static void on_timeout(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    static const char *const what[] = {"", "header", "body", "idle", "linger"};
    if (c->state == HTTP__CONN_FLUSH)
        log_info("conn %llu: write timeout, closing", cid(c));
    else if (c->timer_kind == HTTP__T_HEAD || c->timer_kind == HTTP__T_BODY)
        log_info("conn %llu: %s timeout, closing", cid(c), what[c->timer_kind]);
    else
        log_debug("conn %llu: %s timeout, closing", cid(c), what[c->timer_kind]);
    http__conn_close(c);
}

static void conn_restart_timer(struct http_conn *c, enum http__timer_kind kind)
{
    const struct http_server_opts *o = &c->srv->opts;
    c->timer_kind = kind;
    uint64_t ms = kind == HTTP__T_HEAD             ? o->header_timeout_ms
                  : kind == HTTP__T_BODY           ? o->body_timeout_ms
                  : kind == HTTP__T_IDLE           ? o->idle_timeout_ms
                  : o->idle_timeout_ms < LINGER_MS ? o->idle_timeout_ms
                                                   : LINGER_MS;
    if (kind == HTTP__T_NONE)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timeout, ms, 0);
}

/* While parsing, the timer follows the parser's phase. A phase keeps the deadline it got on
 * entry however many bytes arrive, which is what stops a slowloris peer. A new connection
 * gets the header deadline right away: a silent peer is dropped as fast as a slow one. */
static void conn_update_timer(struct http_conn *c)
{
    enum http__timer_kind kind = c->parser.phase == HTTP__BODY   ? HTTP__T_BODY
                                 : c->parser.phase == HTTP__HEAD ? HTTP__T_HEAD
                                 : c->nreqs == 0                 ? HTTP__T_HEAD
                                                                 : HTTP__T_IDLE;
    if (kind != c->timer_kind)
        conn_restart_timer(c, kind);
}

/* ---- writing ---- */

/* Called once everything queued has reached the socket. */
static void conn_drained(struct http_conn *c)
{
    if (c->state == HTTP__CONN_FLUSH) {
        conn_flushed(c);
        return;
    }
    struct http_req *req = c->req;
    if (c->state == HTTP__CONN_HANDLER && req && req->streaming && req->drain_cb)
        req->drain_cb(req, req->drain_data);
    else if (c->state == HTTP__CONN_RAW && c->raw_ops && c->raw_ops->on_drain)
        c->raw_ops->on_drain(c, c->raw_data);
}

static void on_write(uv_write_t *w, int status)
{
    struct http_conn *c = w->data;
    c->writing = false;
    c->wbuf_sent = 0;
    if (c->wbuf.cap > KEEP_BUF_BYTES)
        buf_release(&c->wbuf);
    else
        buf_reset(&c->wbuf);
    if (c->closing)
        return;
    if (status < 0) {
        log_info("conn %llu: write failed: %s", cid(c), uv_strerror(status));
        http__conn_close(c);
        return;
    }
    if (c->state == HTTP__CONN_FLUSH)
        conn_restart_timer(c, HTTP__T_IDLE); /* progress: the reader is alive */
    /* What was queued while this write was in flight goes out as one write now. */
    http__conn_flush_now(c);
}

static void (*before_write_cb)(void *);
static void *before_write_data;

void http_set_before_write_hook(void (*cb)(void *data), void *data)
{
    before_write_cb = cb;
    before_write_data = data;
}

/* Writes out everything queued. uv_try_write first: when the socket takes it all (the
 * common case) no write request has to complete, which spares libuv an epoll_ctl per event.
 * The rest goes through one uv_write; the two buffers are swapped, never allocated. */
void http__conn_flush_now(struct http_conn *c)
{
    if (c->writing || c->closing)
        return;
    if (c->out.len == 0) {
        conn_drained(c);
        return;
    }
    if (before_write_cb)
        before_write_cb(before_write_data); /* e.g. commit what the bytes are about */
    struct buf t = c->wbuf;
    c->wbuf = c->out;
    c->out = t;
    uv_buf_t b = uv_buf_init(c->wbuf.data, (unsigned)c->wbuf.len);
    obs_http_io(0, c->wbuf.len);
    int rc = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (rc == (int)c->wbuf.len) {
        buf_reset(&c->wbuf);
        conn_drained(c);
        return;
    }
    if (rc >= 0 || rc == UV_EAGAIN) {
        c->wbuf_sent = rc > 0 ? (size_t)rc : 0;
        b = uv_buf_init(c->wbuf.data + c->wbuf_sent, (unsigned)(c->wbuf.len - c->wbuf_sent));
        c->wreq.data = c;
        rc = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    }
    if (rc < 0) {
        log_info("conn %llu: write failed: %s", cid(c), uv_strerror(rc));
        buf_reset(&c->wbuf);
        http__conn_close(c);
        return;
    }
    c->writing = true;
}

/* ---- reading ---- */

static size_t in_cap(const struct http_conn *c)
{
    return c->srv->opts.max_header_bytes + c->srv->opts.max_body_bytes;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct http_conn *c = h->data;
    *b = uv_buf_init(c->srv->rbuf, sizeof(c->srv->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b);

/* Reads while the peer may still say something we want and the pipeline buffer has room;
 * above the cap the kernel's receive window closes (TCP backpressure). */
static void conn_update_reading(struct http_conn *c)
{
    if (c->closing)
        return;
    /* A last response (close_after) is written before the linger starts discarding input:
     * until then input waits in the kernel, so a fast writer cannot use up the linger's byte
     * budget before our answer is out. */
    bool want = !c->eof && !(c->close_after && c->state != HTTP__CONN_LINGER) &&
                (c->state == HTTP__CONN_RAW || c->in.len - c->in_off < in_cap(c));
    if (want && !c->reading) {
        int rc = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
        if (rc < 0) {
            log_info("conn %llu: cannot read: %s", cid(c), uv_strerror(rc));
            http__conn_close(c);
            return;
        }
    } else if (!want && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
    c->reading = want;
}

static void conn_dispatch(struct http_conn *c, struct http_req *req)
{
    req->conn = c;
    req->conn_id = c->id;
    if (c->eof)
        req->keep_alive = false; /* the peer half-closed: answer, then close */
    c->nreqs++;
    c->req = req;
    c->state = HTTP__CONN_HANDLER;
    conn_restart_timer(c, HTTP__T_NONE); /* a long stream must not time out */
    log_debug("conn %llu: %s %s", cid(c), req->method, req->path);
    obs_req_begin(&req->obs, req->method, req->path, http_req_header(req, "x-request-id"),
                  http_req_header(req, "x-tt-logid"), http_req_header(req, "traceparent"),
                  req->head.len + req->body.len);
    c->in_handler = true;
    c->srv->cb(req, c->srv->data);
    c->in_handler = false;
    obs_req_leave();
}

/* ---- streamed request bodies ---- */

static bool conn_want_stream(void *data, const struct http_req *req)
{
    struct http_conn *c = data;
    return c->srv->opts.stream_body(req, c->srv->data);
}

/* The parser's sink: body bytes of c->req, while its handler still reads them. */
static void conn_body_sink(void *data, const char *p, size_t len)
{
    struct http_conn *c = data;
    struct http_req *req = c->req;
    if (c->state != HTTP__CONN_HANDLER || !req || req->body_state != HTTP__BODY_READING)
        return; /* answered early: the rest of the body is dropped, the connection closes */
    req->body_cb(req, req->body_data, p, len);
}

/* The head of a streamed request goes to the handler now; its body waits until the handler
 * reads it (buffered input stays in c->in, under the pipelining cap). */
static void conn_dispatch_streamed(struct http_conn *c, bool want_continue)
{
    struct http_req *req = http__parser_take_head(&c->parser, conn_body_sink, c);
    req->want_continue = want_continue;
    conn_dispatch(c, req);
    if (c->req == req && req->body_state != HTTP__BODY_DONE && !req->body_paused)
        conn_restart_timer(c, HTTP__T_BODY);
}

/* Hands buffered input to the parser while the handler reads the body: at most
 * BODY_SLICE_BYTES per call of its reader, stopping when it pauses or answers. */
static void conn_stream_body(struct http_conn *c)
{
    for (;;) {
        struct http_req *req = c->req;
        if (c->closing || c->state != HTTP__CONN_HANDLER || !req ||
            req->body_state != HTTP__BODY_READING || req->body_paused)
            return;
        if (c->in_off == c->in.len && !c->parser.head_end) {
            if (c->eof) {
                log_info("conn %llu: peer closed mid-body", cid(c));
                http__conn_close(c);
            }
            return;
        }
        size_t n = c->in.len - c->in_off, used = 0;
        if (n > BODY_SLICE_BYTES)
            n = BODY_SLICE_BYTES;
        c->in_body_feed = true;
        int rc = http__parser_feed(&c->parser, c->in.data + c->in_off, n, &used);
        c->in_body_feed = false;
        c->in_off += used;
        if (rc < 0) {
            log_info("conn %llu: client error %d in a streamed body: %s", cid(c), -rc,
                     c->parser.why ? c->parser.why : "malformed");
            http__conn_close(c);
            return;
        }
        if (c->req != req || c->state != HTTP__CONN_HANDLER)
            return; /* answered from within the reader */
        if (rc == HTTP__BODY_END) {
            req->body_state = HTTP__BODY_DONE;
            conn_restart_timer(c, HTTP__T_NONE);
            req->body_cb(req, req->body_data, NULL, 0);
            return;
        }
        if (used > 0 && !req->body_paused)
            conn_restart_timer(c, HTTP__T_BODY); /* progress */
    }
}

void http_req_read_body(struct http_req *req, http_body_cb cb, void *data)
{
    if (!req || req->gone || req->body_state != HTTP__BODY_WAIT)
        return;
    req->body_cb = cb;
    req->body_data = data;
    req->body_state = HTTP__BODY_READING;
    struct http_conn *c = req->conn;
    if (!c)
        return;
    if (req->want_continue) {
        req->want_continue = false;
        buf_appends(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
        http__conn_queue_flush(c);
    }
    if (!c->in_handler && !c->in_body_feed) {
        conn_stream_body(c);
        conn_update_reading(c);
    }
}

void http_req_pause_body(struct http_req *req)
{
    if (!req || req->body_state != HTTP__BODY_READING || req->body_paused)
        return;
    req->body_paused = true;
    if (req->conn && req->conn->req == req)
        conn_restart_timer(req->conn, HTTP__T_NONE); /* waiting on us, not on the peer */
}

void http_req_resume_body(struct http_req *req)
{
    if (!req || !req->body_paused)
        return;
    req->body_paused = false;
    struct http_conn *c = req->conn;
    if (req->gone || !c || c->req != req || req->body_state != HTTP__BODY_READING)
        return;
    conn_restart_timer(c, HTTP__T_BODY);
    if (!c->in_handler && !c->in_body_feed) { /* else the running feed loop goes on */
        conn_stream_body(c);
        conn_update_reading(c);
    }
}

/* Feeds bytes to the parser in state READ; returns how many it took. Stops after one
 * complete request (dispatched) or an error (answered). */
static size_t conn_parse(struct http_conn *c, const char *data, size_t len)
{
    size_t used = 0;
    int rc = http__parser_feed(&c->parser, data, len, &used);
    bool want_continue = c->parser.want_continue;
    c->parser.want_continue = false;
    if (rc < 0) {
        const char *why = c->parser.why ? c->parser.why : "malformed request";
        log_info("conn %llu: client error %d: %s", cid(c), -rc, why);
        http__conn_send_error(c, -rc);
    } else if (rc == HTTP__REQ_DONE) {
        conn_dispatch(c, http__parser_take(&c->parser));
    } else if (rc == HTTP__HEAD_DONE) {
        conn_dispatch_streamed(c, want_continue);
    } else {
        /* RFC 9110 §10.1.1: the client waits for this before sending the body. */
        if (want_continue) {
            buf_appends(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
            http__conn_queue_flush(c);
        }
        conn_update_timer(c);
    }
    return used;
}

static void conn_buffer_input(struct http_conn *c, const char *data, size_t len)
{
    if (c->in_off > 0) {
        buf_consume(&c->in, c->in_off);
        c->in_off = 0;
    }
    if (buf_append(&c->in, data, len) < 0) {
        /* Not expected: reading stops at in_cap and in.max leaves room for one read. */
        log_warn("conn %llu: pipeline buffer overflow", cid(c));
        http__conn_close(c);
    }
}

/* Input that followed an upgrade request belongs to the new owner. */
static void conn_raw_deliver_buffered(struct http_conn *c)
{
    if (c->state != HTTP__CONN_RAW || c->closing || c->in_off >= c->in.len || !c->raw_ops)
        return;
    struct buf in = c->in; /* the owner may end the connection while reading */
    size_t off = c->in_off;
    buf_init(&c->in, in.max);
    c->in_off = 0;
    c->raw_ops->on_read(c, c->raw_data, in.data + off, in.len - off);
    buf_release(&in);
}

static void conn_parse_buffered(struct http_conn *c)
{
    conn_stream_body(c);
    while (c->state == HTTP__CONN_READ && !c->closing && c->in_off < c->in.len)
        c->in_off += conn_parse(c, c->in.data + c->in_off, c->in.len - c->in_off);
    conn_raw_deliver_buffered(c);
    if (c->in_off == c->in.len) {
        c->in_off = 0;
        if (c->in.cap > KEEP_BUF_BYTES)
            buf_release(&c->in);
        else
            buf_reset(&c->in);
    }
}

static void on_read_end(struct http_conn *c, ssize_t nread)
{
    if (nread != UV_EOF) {
        log_info("conn %llu: read error: %s", cid(c), uv_strerror((int)nread));
        http__conn_close(c);
        return;
    }
    c->eof = true;
    c->reading = false; /* libuv stops reading at EOF */
    struct http_req *req = c->req;
    if (c->state == HTTP__CONN_HANDLER && req &&
        (req->body_state == HTTP__BODY_WAIT || req->body_state == HTTP__BODY_READING)) {
        conn_stream_body(c); /* what is buffered still counts; closes if the body is cut */
        return;
    }
    if (c->state == HTTP__CONN_FLUSH)
        return; /* finish writing; whole requests already buffered are still answered */
    if (c->state == HTTP__CONN_READ && c->parser.phase != HTTP__IDLE)
        log_info("conn %llu: peer closed mid-request", cid(c));
    else if (c->state == HTTP__CONN_HANDLER)
        log_debug("conn %llu: peer closed during the response", cid(c));
    http__conn_close(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *b)
{
    struct http_conn *c = s->data;
    if (c->closing || nread == 0)
        return;
    obs_http_io(nread > 0 ? (size_t)nread : 0, 0);
    if (nread < 0) {
        on_read_end(c, nread);
        return;
    }
    if (c->state == HTTP__CONN_RAW) {
        if (c->raw_ops)
            c->raw_ops->on_read(c, c->raw_data, b->base, (size_t)nread);
        return;
    }
    if (c->state == HTTP__CONN_LINGER || c->close_after) {
        /* Nothing more will be answered: discard, up to a bound. */
        c->discarded += (size_t)nread;
        if (c->discarded > LINGER_MAX_BYTES) {
            log_info("conn %llu: over %d bytes after the last response, closing", cid(c),
                     LINGER_MAX_BYTES);
            http__conn_close(c);
        }
        return;
    }
    const char *data = b->base;
    size_t len = (size_t)nread;
    if (c->state == HTTP__CONN_READ && c->in_off == c->in.len) {
        size_t used = conn_parse(c, data, len); /* fast path: parse in place, no copy */
        data += used;
        len -= used;
        if (c->state == HTTP__CONN_RAW) {
            /* The handler took the connection over: the rest is the new protocol's. */
            if (len && c->raw_ops && !c->closing)
                c->raw_ops->on_read(c, c->raw_data, data, len);
            conn_update_reading(c);
            return;
        }
    }
    if (len && !c->closing && !c->close_after) {
        conn_buffer_input(c, data, len);
        conn_parse_buffered(c);
    }
    conn_update_reading(c);
}

/* ---- finishing responses ---- */

static void on_shutdown(uv_shutdown_t *r, int status)
{
    struct http_conn *c = r->data;
    if (!c->closing && status < 0)
        http__conn_close(c);
}

/* Closing right after the last write would make the kernel answer unread input with a RST,
 * which can destroy the response before the client reads it (a 413 sent while the body still
 * arrives). So send FIN, discard input until the peer's EOF, and close then or on a timer. */
static void conn_linger(struct http_conn *c)
{
    c->state = HTTP__CONN_LINGER;
    buf_release(&c->in);
    c->in_off = 0;
    if (c->eof) {
        http__conn_close(c);
        return;
    }
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown) < 0) {
        http__conn_close(c);
        return;
    }
    conn_restart_timer(c, HTTP__T_LINGER);
    conn_update_reading(c);
}

/* The finished response has been written out: close, or go on with the next request. */
static void conn_flushed(struct http_conn *c)
{
    if (c->close_after) {
        conn_linger(c);
        return;
    }
    c->state = HTTP__CONN_READ;
    conn_restart_timer(c, HTTP__T_IDLE);
    conn_parse_buffered(c);
    if (c->closing)
        return;
    if (c->state == HTTP__CONN_READ && c->eof) {
        http__conn_close(c); /* the peer half-closed and no whole request is left */
        return;
    }
    conn_update_reading(c);
}

/* The next request is parsed only once this response is out (responses stay in order, and a
 * client that pipelines without reading stalls itself). Until then the timer checks that the
 * peer keeps reading. */
void http__conn_finished(struct http_conn *c, bool keep_alive)
{
    if (c->closing)
        return;
    c->state = HTTP__CONN_FLUSH;
    c->close_after = !keep_alive;
    conn_restart_timer(c, HTTP__T_IDLE);
    http__conn_queue_flush(c);
}

void http__conn_start(struct http_conn *c)
{
    uv_tcp_nodelay(&c->tcp, 1); /* stream events are small and latency matters */
    conn_update_timer(c);
    conn_update_reading(c);
}

/* ---- upgraded connections ---- */

struct http_conn *http_upgrade(struct http_req *req, const char *extra_headers,
                               const struct http_raw_ops *ops, void *data)
{
    if (!req || req->gone || req->streaming || !req->conn)
        return NULL;
    struct http_conn *c = req->conn;
    c->req = NULL;
    req->obs.status = 101;
    http__req_free(req);
    if (c->closing)
        return NULL;
    buf_appends(&c->out, "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n");
    if (extra_headers)
        buf_appends(&c->out, extra_headers);
    buf_append(&c->out, "\r\n", 2);
    c->state = HTTP__CONN_RAW;
    c->raw_ops = ops;
    c->raw_data = data;
    conn_restart_timer(c, HTTP__T_NONE);
    http__conn_queue_flush(c);
    if (!c->in_handler) {
        conn_raw_deliver_buffered(c);
        conn_update_reading(c);
    }
    return c;
}

int http_raw_write(struct http_conn *c, const char *p, size_t len)
{
    if (c->closing || c->state != HTTP__CONN_RAW)
        return UV_EPIPE;
    buf_append(&c->out, p, len);
    http__conn_queue_flush(c);
    return 0;
}

size_t http_raw_pending(const struct http_conn *c)
{
    return c->out.len + (c->writing ? c->wbuf.len - c->wbuf_sent : 0);
}

void http_raw_end(struct http_conn *c)
{
    if (c->state != HTTP__CONN_RAW)
        return;
    c->raw_ops = NULL;
    http__conn_finished(c, false);
}

void http_raw_close(struct http_conn *c)
{
    c->raw_ops = NULL;
    http__conn_close(c);
}

uint64_t http_conn_id(const struct http_conn *c)
{
    return c->id;
}

void http_req_peer(const struct http_req *req, char out[64])
{
    out[0] = '\0';
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    if (!req || !req->conn || uv_tcp_getpeername(&req->conn->tcp, (struct sockaddr *)&ss, &len))
        return;
    if (ss.ss_family == AF_INET)
        uv_ip4_name((const struct sockaddr_in *)&ss, out, 64);
    else if (ss.ss_family == AF_INET6)
        uv_ip6_name((const struct sockaddr_in6 *)&ss, out, 64);
}
