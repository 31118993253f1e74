/* SPDX-License-Identifier: MIT */
/* eio.c -- the Engine.IO v4 server: sessions (sid), the HTTP long-polling and WebSocket
 * transports, the upgrade from one to the other (probe, noop, upgrade), the server-driven
 * heartbeat, close semantics, and a bounded send queue per socket. Outgoing packets are shared
 * (refcounted); a WebSocket gets them framed straight into its connection's output while that
 * is below a watermark, the rest wait as references in the queue. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../core/log.h"
#include "../core/map.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "sio_int.h"
#include "ws.h"

#define WS_WATERMARK (64 * 1024) /* framed into the connection while it has less unwritten */
#define MAX_POLL_PACKETS 10000   /* packets in one POST body */

/* Error codes and messages of the reference server (a 400 JSON body). */
enum eio_err {
    ERR_UNKNOWN_TRANSPORT = 0,
    ERR_UNKNOWN_SID = 1,
    ERR_BAD_HANDSHAKE_METHOD = 2,
    ERR_BAD_REQUEST = 3,
    ERR_UNSUPPORTED_PROTOCOL = 5,
};

/* A WebSocket connection: the socket's transport, or a probe during an upgrade. */
struct eio_ws {
    struct eio_socket *sock; /* NULL once detached */
    struct http_conn *conn;  /* NULL once ended or gone */
    struct ws *ws;
    int busy;      /* inside its read callback: freeing waits */
    bool dead;     /* detached and released while busy */
    bool probe_ok; /* a probe that answered "2probe" */
};

struct eio_socket {
    char sid[22];
    char peer[64]; /* the client address that opened it ("" if unknown) */
    const struct eio_handler *h;
    void *data;
    struct list_node link; /* in eio.sockets */
    bool closed;
    bool ws_transport;     /* upgraded or opened over WebSocket */
    bool upgrading;        /* a probe succeeded: polls get noop until "5" */
    struct eio_ws *ws;     /* the WebSocket transport */
    struct eio_ws *probe;  /* a WebSocket being upgraded to */
    struct http_req *poll; /* the pending long-polling GET */
    struct eio_msg **q;    /* ring of queued packets (references) */
    size_t q_head, q_len, q_cap;
    size_t q_bytes;
    uv_timer_t timer;    /* the earliest of the deadlines below */
    uint64_t ping_at;    /* send the next ping (mono ms; 0 = none) */
    uint64_t pong_by;    /* close unless a pong came */
    uint64_t upgrade_by; /* drop the probe unless it sent "5" */
    uint64_t user_at;    /* the handler's deadline */
};

static struct {
    uv_loop_t *loop;
    struct eio_opts o;
    struct map sids;
    struct map per_addr; /* client address -> sessions open from it (a count, not a pointer) */
    struct list_node sockets;
    size_t count;
    struct eio_msg *ping, *noop, *close, *pong_probe;
} eio;

static void ws_detach(struct eio_ws *w, bool graceful);
static void arm_timer(struct eio_socket *s);
static void flush_poll(struct eio_socket *s);
static void flush_ws(struct eio_socket *s);

/* ---- setup ---- */

void eio_init(uv_loop_t *loop, const struct eio_opts *opts)
{
    eio.loop = loop;
    eio.o = *opts;
    map_init(&eio.sids);
    map_init(&eio.per_addr);
    list_init(&eio.sockets);
}

/* ---- session caps (issue 11: 20,000 polling sessions in 0.7 s, each kept 45 s) ---- */

static size_t addr_count(const char *peer)
{
    return (size_t)(uintptr_t)map_get(&eio.per_addr, peer);
}

static void addr_add(const char *peer, int delta)
{
    if (!*peer)
        return;
    size_t n = addr_count(peer) + (size_t)delta;
    if (n == 0)
        map_del(&eio.per_addr, peer);
    else
        map_set(&eio.per_addr, peer, (void *)(uintptr_t)n);
}

/* Answers a handshake over a cap and returns true; false when it may go on. */
static bool over_cap(struct http_req *req, const char *peer)
{
    if (eio.o.max_sessions && eio.count >= eio.o.max_sessions) {
        log_info("eio: %zu sessions open (socketio.maxSessions), refusing one", eio.count);
        http_respond_error(req, 503, "Too many Socket.IO sessions");
        return true;
    }
    if (eio.o.max_sessions_per_addr && *peer && addr_count(peer) >= eio.o.max_sessions_per_addr) {
        log_info("eio: %zu sessions open from %s (socketio.maxSessionsPerAddress), refusing one",
                 addr_count(peer), peer);
        http_respond_error(req, 429, "Too many Socket.IO sessions from this address");
        return true;
    }
    return false;
}

/* The shared control packets, made on first use: a server that never serves Socket.IO (or
 * fails to start) allocates nothing here. */
static void make_control_msgs(void)
{
    if (eio.ping)
        return;
    eio.ping = eio_msg_text(EIO_PING, NULL, 0);
    eio.noop = eio_msg_text(EIO_NOOP, NULL, 0);
    eio.close = eio_msg_text(EIO_CLOSE, NULL, 0);
    eio.pong_probe = eio_msg_text(EIO_PONG, "probe", 5);
}

void eio_shutdown(void)
{
    while (!list_empty(&eio.sockets)) {
        struct eio_socket *s = LIST_ENTRY(eio.sockets.next, struct eio_socket, link);
        eio_close(s, "server shutting down");
    }
    map_release(&eio.sids);
    map_release(&eio.per_addr);
    eio_msg_unref(eio.ping);
    eio_msg_unref(eio.noop);
    eio_msg_unref(eio.close);
    eio_msg_unref(eio.pong_probe);
    eio.ping = eio.noop = eio.close = eio.pong_probe = NULL;
}

void *eio_data(const struct eio_socket *s)
{
    return s->data;
}

void eio_set_data(struct eio_socket *s, void *data)
{
    s->data = data;
}

const char *eio_sid(const struct eio_socket *s)
{
    return s->sid;
}

bool eio_closed(const struct eio_socket *s)
{
    return s->closed;
}

size_t eio_socket_count(void)
{
    return eio.count;
}

/* ---- the send queue ---- */

static void q_push(struct eio_socket *s, struct eio_msg *m)
{
    if (s->q_len == s->q_cap) {
        size_t cap = s->q_cap ? s->q_cap * 2 : 8;
        struct eio_msg **q = xmalloc(cap * sizeof(*q));
        for (size_t i = 0; i < s->q_len; i++)
            q[i] = s->q[(s->q_head + i) % s->q_cap];
        xfree(s->q);
        s->q = q;
        s->q_cap = cap;
        s->q_head = 0;
    }
    eio_msg_ref(m);
    s->q[(s->q_head + s->q_len) % s->q_cap] = m;
    s->q_len++;
    s->q_bytes += m->len;
}

/* The oldest queued packet; the caller owns the reference. */
static struct eio_msg *q_pop(struct eio_socket *s)
{
    struct eio_msg *m = s->q[s->q_head];
    s->q_head = (s->q_head + 1) % s->q_cap;
    s->q_len--;
    s->q_bytes -= m->len;
    return m;
}

static void q_clear(struct eio_socket *s)
{
    while (s->q_len)
        eio_msg_unref(q_pop(s));
    xfree(s->q);
    s->q = NULL;
    s->q_cap = s->q_head = 0;
}

static size_t unwritten(const struct eio_socket *s)
{
    return s->ws && s->ws->conn ? http_raw_pending(s->ws->conn) : 0;
}

int eio_send(struct eio_socket *s, struct eio_msg *m)
{
    if (s->closed)
        return -1;
    if (s->ws_transport && s->ws && s->q_len == 0 && unwritten(s) < WS_WATERMARK) {
        ws_send(s->ws->ws, m->binary, m->data, m->len);
        return 0;
    }
    q_push(s, m);
    if (s->q_bytes + unwritten(s) > eio.o.max_queue_bytes) {
        log_info("eio %s: send queue over %zu bytes, closing", s->sid, eio.o.max_queue_bytes);
        eio_close(s, "send queue overflow");
        return -1;
    }
    if (!s->ws_transport)
        flush_poll(s);
    return 0;
}

/* ---- closing ---- */

static void on_timer_closed(uv_handle_t *h)
{
    struct eio_socket *s = h->data;
    if (s->h->on_free)
        s->h->on_free(s->data);
    xfree(s);
}

static void answer_poll(struct eio_socket *s, const struct eio_msg *m)
{
    struct http_req *req = s->poll;
    s->poll = NULL;
    http_req_on_close(req, NULL, NULL);
    http_respond(req, 200, "text/plain; charset=UTF-8", m->data, m->len);
}

/* A close the client asked for ends a pending poll with noop; one the server decides on
 * (timeout, error) with a close packet, as the reference server does. */
static void close_socket(struct eio_socket *s, const char *reason, bool by_client)
{
    if (s->closed)
        return;
    s->closed = true;
    log_debug("eio %s: closed (%s)", s->sid, reason);
    map_del(&eio.sids, s->sid);
    list_remove(&s->link);
    eio.count--;
    addr_add(s->peer, -1);
    if (s->poll)
        answer_poll(s, by_client ? eio.noop : eio.close);
    bool overflow = strcmp(reason, "send queue overflow") == 0;
    if (s->ws)
        ws_detach(s->ws, !overflow); /* a reader that far behind gets nothing more */
    if (s->probe)
        ws_detach(s->probe, true);
    q_clear(s);
    uv_timer_stop(&s->timer);
    s->h->on_close(s, reason);
    uv_close((uv_handle_t *)&s->timer, on_timer_closed);
}

void eio_close(struct eio_socket *s, const char *reason)
{
    close_socket(s, reason, false);
}

/* ---- heartbeat and deadlines ---- */

static void on_timer(uv_timer_t *t)
{
    struct eio_socket *s = t->data;
    uint64_t now = mono_ms();
    if (s->pong_by && now >= s->pong_by) {
        log_debug("eio %s: ping timeout", s->sid);
        eio_close(s, "ping timeout");
        return;
    }
    if (s->upgrade_by && now >= s->upgrade_by) {
        s->upgrade_by = 0;
        s->upgrading = false;
        if (s->probe)
            ws_detach(s->probe, true);
        flush_poll(s);
    }
    if (s->ping_at && now >= s->ping_at) {
        s->ping_at = 0;
        s->pong_by = now + eio.o.ping_timeout_ms;
        if (eio_send(s, eio.ping) < 0)
            return;
    }
    if (s->user_at && now >= s->user_at) {
        s->user_at = 0;
        s->h->on_timeout(s);
        if (s->closed)
            return;
    }
    arm_timer(s);
}

static void arm_timer(struct eio_socket *s)
{
    uint64_t d[] = {s->ping_at, s->pong_by, s->upgrade_by, s->user_at};
    uint64_t next = 0;
    for (size_t i = 0; i < sizeof(d) / sizeof(d[0]); i++)
        if (d[i] && (next == 0 || d[i] < next))
            next = d[i];
    if (next == 0) {
        uv_timer_stop(&s->timer);
        return;
    }
    uint64_t now = mono_ms();
    uv_timer_start(&s->timer, on_timer, next > now ? next - now : 0, 0);
}

void eio_set_deadline(struct eio_socket *s, unsigned ms)
{
    if (s->closed)
        return;
    s->user_at = ms ? mono_ms() + ms : 0;
    arm_timer(s);
}

/* A timer that is due may not have run yet when a request arrives in the same loop turn; the
 * deadline decides, so a client never sees a session outlive its ping timeout. */
static bool expired(struct eio_socket *s)
{
    if (s->pong_by && mono_ms() >= s->pong_by) {
        eio_close(s, "ping timeout");
        return true;
    }
    return false;
}

/* ---- packets from the client ---- */

static void on_packet(struct eio_socket *s, const struct eio_pkt *p)
{
    switch (p->type) {
    case EIO_PONG:
        s->pong_by = 0;
        if (!s->ping_at)
            s->ping_at = mono_ms() + eio.o.ping_interval_ms;
        arm_timer(s);
        break;
    case EIO_MESSAGE:
        s->h->on_message(s, p->binary, p->data, p->len);
        break;
    case EIO_CLOSE:
        close_socket(s, "transport close", true);
        break;
    case EIO_PING:
        /* v4: only the server pings. */
        log_info("eio %s: ping from the client, closing", s->sid);
        eio_close(s, "invalid heartbeat direction");
        break;
    default:
        break; /* open, upgrade and noop mean nothing here */
    }
}

/* ---- WebSocket transport ---- */

static void ws_free_now(struct eio_ws *w)
{
    ws_free(w->ws);
    xfree(w);
}

/* Unhooks w from its socket and ends its connection (after a close frame when graceful). */
static void ws_detach(struct eio_ws *w, bool graceful)
{
    struct eio_socket *s = w->sock;
    if (s) {
        if (s->ws == w)
            s->ws = NULL;
        if (s->probe == w)
            s->probe = NULL;
        w->sock = NULL;
    }
    if (w->conn) {
        struct http_conn *c = w->conn;
        w->conn = NULL;
        if (graceful) {
            ws_close(w->ws, WS_CLOSE_NORMAL);
            http_raw_end(c);
        } else {
            http_raw_close(c);
        }
    }
    if (w->busy)
        w->dead = true;
    else
        ws_free_now(w);
}

static void ws_write(void *data, const char *p, size_t len)
{
    struct eio_ws *w = data;
    if (w->conn)
        http_raw_write(w->conn, p, len);
}

static void complete_upgrade(struct eio_socket *s)
{
    log_debug("eio %s: upgraded to websocket", s->sid);
    s->ws = s->probe;
    s->probe = NULL;
    s->ws_transport = true;
    s->upgrading = false;
    s->upgrade_by = 0;
    if (s->poll)
        answer_poll(s, eio.noop);
    arm_timer(s);
    flush_ws(s);
}

/* The probe exchange (Engine.IO v4 "upgrade"): 2probe -> 3probe, then 5. Anything else drops
 * the probe, and the session goes on over polling. */
static void on_probe_packet(struct eio_ws *w, const struct eio_pkt *p)
{
    struct eio_socket *s = w->sock;
    if (p->type == EIO_PING && p->len == 5 && memcmp(p->data, "probe", 5) == 0 && !w->probe_ok) {
        w->probe_ok = true;
        ws_send(w->ws, false, eio.pong_probe->data, eio.pong_probe->len);
        s->upgrading = true;
        s->upgrade_by = mono_ms() + eio.o.upgrade_timeout_ms;
        arm_timer(s);
        if (s->poll)
            answer_poll(s, eio.noop); /* lets the client's pending poll end */
        return;
    }
    if (p->type == EIO_UPGRADE && w->probe_ok) {
        complete_upgrade(s);
        return;
    }
    log_info("eio %s: unexpected packet during upgrade, dropping the probe", s->sid);
    s->upgrading = false;
    s->upgrade_by = 0;
    ws_detach(w, true);
    flush_poll(s);
}

static void ws_on_message(void *data, bool binary, const char *p, size_t len)
{
    struct eio_ws *w = data;
    struct eio_socket *s = w->sock;
    if (!s || s->closed)
        return;
    struct eio_pkt pkt = {EIO_MESSAGE, true, p, len, NULL};
    if (!binary && eio_decode_text(p, len, &pkt) < 0) {
        log_info("eio %s: malformed packet, closing", s->sid);
        if (s->probe == w)
            ws_detach(w, true);
        else
            eio_close(s, "parse error");
        return;
    }
    if (s->probe == w)
        on_probe_packet(w, &pkt);
    else
        on_packet(s, &pkt);
}

static const struct ws_ops ws_ops = {ws_write, ws_on_message};

/* The connection ended under the transport (peer gone, protocol error answered). */
static void ws_transport_lost(struct eio_ws *w)
{
    struct eio_socket *s = w->sock;
    if (!s)
        return;
    if (s->probe == w) {
        s->upgrading = false;
        s->upgrade_by = 0;
        ws_detach(w, true);
        flush_poll(s);
    } else {
        eio_close(s, "transport close");
    }
}

static void raw_on_read(struct http_conn *c, void *data, const char *p, size_t len)
{
    struct eio_ws *w = data;
    w->busy++;
    int done = ws_feed(w->ws, p, len);
    if (done && !w->dead)
        ws_transport_lost(w); /* ws_detach ends the connection after the close frame */
    w->busy--;
    if (w->dead && !w->busy)
        ws_free_now(w);
}

static void raw_on_drain(struct http_conn *c, void *data)
{
    struct eio_ws *w = data;
    if (w->sock && w->sock->ws == w)
        flush_ws(w->sock);
}

static void raw_on_close(struct http_conn *c, void *data)
{
    struct eio_ws *w = data;
    w->conn = NULL;
    if (w->sock)
        ws_transport_lost(w);
    else if (!w->busy)
        ws_free_now(w);
    else
        w->dead = true;
}

static const struct http_raw_ops raw_ops = {raw_on_read, raw_on_drain, raw_on_close};

static void flush_ws(struct eio_socket *s)
{
    while (!s->closed && s->ws && s->q_len && unwritten(s) < WS_WATERMARK) {
        struct eio_msg *m = q_pop(s);
        ws_send(s->ws->ws, m->binary, m->data, m->len);
        eio_msg_unref(m);
    }
    if (!s->q_len && s->q) {
        xfree(s->q); /* an idle socket keeps no queue memory */
        s->q = NULL;
        s->q_cap = s->q_head = 0;
    }
}

/* ---- long-polling transport ---- */

static void flush_poll(struct eio_socket *s)
{
    if (!s->poll || s->upgrading || s->ws_transport || !s->q_len)
        return;
    struct buf b;
    buf_init(&b, (size_t)-1);
    while (s->q_len) {
        struct eio_msg *m = q_pop(s);
        eio_payload_append(&b, m);
        eio_msg_unref(m);
    }
    struct http_req *req = s->poll;
    s->poll = NULL;
    http_req_on_close(req, NULL, NULL);
    http_respond(req, 200, "text/plain; charset=UTF-8", b.data, b.len);
    buf_release(&b);
}

static void on_poll_gone(struct http_req *req, void *data)
{
    struct eio_socket *s = data;
    s->poll = NULL;
    log_debug("eio %s: poll request closed early", s->sid);
    eio_close(s, "transport close");
}

static void handle_get(struct eio_socket *s, struct http_req *req)
{
    if (s->poll) {
        /* Two polls at once: the reference server ends the session. */
        log_info("eio %s: overlapping poll requests, closing", s->sid);
        http_respond_error(req, 400, "overlapping poll requests");
        eio_close(s, "transport error");
        return;
    }
    if (s->upgrading) {
        http_respond(req, 200, "text/plain; charset=UTF-8", eio.noop->data, eio.noop->len);
        return;
    }
    s->poll = req;
    http_req_on_close(req, on_poll_gone, s);
    flush_poll(s);
}

static void handle_post(struct eio_socket *s, struct http_req *req)
{
    size_t len;
    const char *body = http_req_body(req, &len);
    if (len > eio.o.max_payload) {
        log_info("eio %s: payload of %zu bytes over maxPayload, closing", s->sid, len);
        http_respond_error(req, 413, "payload too large");
        eio_close(s, "transport error");
        return;
    }
    struct eio_payload pl;
    if (eio_payload_decode(body, len, MAX_POLL_PACKETS, &pl) < 0) {
        log_info("eio %s: malformed payload, closing", s->sid);
        http_respond_error(req, 400, "parse error");
        eio_close(s, "parse error");
        return;
    }
    for (size_t i = 0; i < pl.n && !s->closed; i++)
        on_packet(s, &pl.pkts[i]);
    eio_payload_release(&pl);
    http_respond(req, 200, "text/html", "ok", 2);
}

/* ---- requests ---- */

static void respond_err(struct http_req *req, enum eio_err code)
{
    static const char *msgs[] = {
        "Transport unknown", "Session ID unknown", "Bad handshake method",
        "Bad request",       "Forbidden",          "Unsupported protocol version"};
    char body[96];
    int n = snprintf(body, sizeof(body), "{\"code\":%d,\"message\":\"%s\"}", (int)code, msgs[code]);
    http_respond(req, 400, "application/json", body, (size_t)n);
}

/* Comma-separated header tokens, case-insensitive. */
static bool header_has_token(const char *v, const char *token)
{
    size_t tl = strlen(token);
    while (v && *v) {
        while (*v == ' ' || *v == '\t' || *v == ',')
            v++;
        size_t n = strcspn(v, ",");
        size_t e = n;
        while (e && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e == tl && strncasecmp(v, token, tl) == 0)
            return true;
        v += n;
    }
    return false;
}

static bool is_ws_upgrade(struct http_req *req)
{
    const char *key = http_req_header(req, "sec-websocket-key");
    const char *ver = http_req_header(req, "sec-websocket-version");
    return strcmp(http_req_method(req), "GET") == 0 &&
           header_has_token(http_req_header(req, "upgrade"), "websocket") &&
           header_has_token(http_req_header(req, "connection"), "upgrade") && key &&
           strlen(key) == 24 && ver && strcmp(ver, "13") == 0;
}

static struct eio_socket *socket_new(const struct eio_handler *h, const char *peer)
{
    struct eio_socket *s = xcalloc(1, sizeof(*s));
    do
        nanoid(s->sid);
    while (map_get(&eio.sids, s->sid));
    snprintf(s->peer, sizeof(s->peer), "%s", peer);
    addr_add(s->peer, 1);
    s->h = h;
    uv_timer_init(eio.loop, &s->timer);
    s->timer.data = s;
    map_set(&eio.sids, s->sid, s);
    list_insert_tail(&eio.sockets, &s->link);
    eio.count++;
    s->ping_at = mono_ms() + eio.o.ping_interval_ms;
    arm_timer(s);
    return s;
}

/* Answers the WebSocket handshake and wraps the connection. NULL if the peer is gone. */
static struct eio_ws *ws_accept(struct http_req *req)
{
    const char *key = http_req_header(req, "sec-websocket-key");
    char accept[29];
    ws_accept_key(key, strlen(key), accept);
    char hdrs[96];
    snprintf(hdrs, sizeof(hdrs), "Upgrade: websocket\r\nSec-WebSocket-Accept: %s\r\n", accept);
    struct eio_ws *w = xcalloc(1, sizeof(*w));
    w->ws = ws_new(&ws_ops, w, eio.o.max_payload);
    w->conn = http_upgrade(req, hdrs, &raw_ops, w);
    if (!w->ws || !w->conn) {
        if (w->conn)
            http_raw_close(w->conn);
        ws_free(w->ws);
        xfree(w);
        return NULL;
    }
    return w;
}

static void open_socket(struct http_req *req, bool websocket, const struct eio_handler *h)
{
    char peer[64];
    http_req_peer(req, peer);
    if (over_cap(req, peer))
        return;
    struct eio_ws *w = NULL;
    if (websocket) {
        w = ws_accept(req);
        if (!w)
            return;
    }
    struct eio_socket *s = socket_new(h, peer);
    struct buf b;
    buf_init(&b, 256);
    eio_open_packet(&b, s->sid, !websocket, eio.o.ping_interval_ms, eio.o.ping_timeout_ms,
                    eio.o.max_payload);
    struct eio_msg *open = eio_msg_new(false, b.data, b.len);
    buf_release(&b);
    if (websocket) {
        w->sock = s;
        s->ws = w;
        s->ws_transport = true;
    } else {
        s->poll = req;
        http_req_on_close(req, on_poll_gone, s);
    }
    log_debug("eio %s: open (%s)", s->sid, websocket ? "websocket" : "polling");
    eio_send(s, open);
    eio_msg_unref(open);
    if (!s->closed)
        s->h->on_open(s);
}

/* A WebSocket for an existing session: the upgrade probe, unless the session already has (or
 * is getting) one; then the newcomer is accepted and closed at once. */
static void probe_socket(struct eio_socket *s, struct http_req *req)
{
    struct eio_ws *w = ws_accept(req);
    if (!w)
        return;
    if (s->ws_transport || s->probe) {
        log_info("eio %s: second websocket for the session, closing it", s->sid);
        ws_detach(w, true);
        return;
    }
    w->sock = s;
    s->probe = w;
}

static bool query_is(struct http_req *req, const char *name, const char *want)
{
    char *v = http_req_query_param(req, name);
    bool ok = v && strcmp(v, want) == 0;
    xfree(v);
    return ok;
}

bool eio_handle(struct http_req *req, const char *prefix, const struct eio_handler *h)
{
    if (strncmp(http_req_path(req), prefix, strlen(prefix)) != 0)
        return false;
    make_control_msgs();
    char *transport = http_req_query_param(req, "transport");
    char *sid = http_req_query_param(req, "sid");
    bool polling = transport && strcmp(transport, "polling") == 0;
    bool websocket = transport && strcmp(transport, "websocket") == 0;
    bool upgrade = websocket && is_ws_upgrade(req);
    const char *method = http_req_method(req);
    struct eio_socket *s = sid ? map_get(&eio.sids, sid) : NULL;
    if (s && s->h != h)
        s = NULL; /* another endpoint's session */
    if (!polling && !websocket)
        respond_err(req, ERR_UNKNOWN_TRANSPORT);
    else if (!query_is(req, "EIO", "4"))
        respond_err(req, ERR_UNSUPPORTED_PROTOCOL);
    else if (sid && (!s || expired(s)))
        respond_err(req, ERR_UNKNOWN_SID);
    else if (!sid && strcmp(method, "GET") != 0)
        respond_err(req, ERR_BAD_HANDSHAKE_METHOD);
    else if (websocket && !upgrade)
        respond_err(req, ERR_BAD_REQUEST);
    else if (!sid)
        open_socket(req, websocket, h);
    else if (websocket)
        probe_socket(s, req);
    else if (s->ws_transport)
        respond_err(req, ERR_BAD_REQUEST); /* the session left polling behind */
    else if (strcmp(method, "GET") == 0)
        handle_get(s, req);
    else if (strcmp(method, "POST") == 0)
        handle_post(s, req);
    else
        respond_err(req, ERR_BAD_REQUEST);
    xfree(transport);
    xfree(sid);
    return true;
}
