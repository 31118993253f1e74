/* SPDX-License-Identifier: MIT */
/* sio.c -- the Socket.IO v5 layer over Engine.IO: namespaces (CONNECT / CONNECT_ERROR),
 * events and acks, binary packets reassembled from their attachments, DISCONNECT, the
 * connect timeout, and the endpoints (the main one, and the test-mode echo). A malformed
 * packet closes its own Engine.IO connection and nothing else. */
#include <string.h>

#include "../auth/auth.h"
#include "../core/log.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "../obs/obs.h"
#include "sio.h"
#include "sio_int.h"

bool sio__test_mode;

/* One Engine.IO connection on /socket.io/. */
struct sio_client {
    struct eio_socket *eio;
    struct list_node sockets; /* struct sio_socket, one per connected namespace */
    bool connected_once;      /* the connect timeout no longer applies */
    /* a binary packet waiting for its attachments */
    bool reassembling;
    struct sio_pkt bin;
    struct eio_msg **atts;
    unsigned natts;
    bool authed;   /* the handshake carried valid credentials (or none are required) */
    char peer[64]; /* the client's address, for the failed-attempt limit */
};

static struct {
    bool ready;
    unsigned connect_timeout_ms;
    struct auth *auth;
    /* what api__access_auth found for the request being handled, for on_open (which runs
     * after a WebSocket handshake has already finished the request) */
    bool req_authed;
    char req_peer[64];
} sio;

/* ---- sending ---- */

const char *sio_socket_sid(const struct sio_socket *s)
{
    return s->id;
}

const char *sio_socket_eio_sid(const struct sio_socket *s)
{
    return eio_sid(s->client->eio);
}

int sio_send_msg(struct sio_socket *s, struct eio_msg *m)
{
    if (s->gone)
        return -1;
    return eio_send(s->client->eio, m);
}

/* Serializes "4" + header + JSON into one message and sends it. */
static int send_packet(struct sio_socket *s, enum sio_type type, unsigned natts, int64_t ack_id,
                       const json_t *data)
{
    if (s->gone)
        return -1;
    struct buf b;
    buf_init(&b, (size_t)-1);
    buf_appendc(&b, EIO_MESSAGE);
    sio_encode_head(&b, type, natts, s->nsp->name, ack_id);
    if (data) {
        char *j = json_dump_compact(data, NULL);
        buf_appends(&b, j);
        xfree(j);
    }
    struct eio_msg *m = eio_msg_new(false, b.data, b.len);
    buf_release(&b);
    int rc = eio_send(s->client->eio, m);
    eio_msg_unref(m);
    return rc;
}

int sio_emit(struct sio_socket *s, const char *event, const json_t *arg)
{
    json_t *a = json_pack("[s]", event);
    if (arg)
        json_array_append(a, (json_t *)arg);
    int rc = send_packet(s, SIO_EVENT, 0, -1, a);
    json_decref(a);
    return rc;
}

int sio_ack(struct sio_socket *s, int64_t ack_id, const json_t *args)
{
    json_t *empty = args ? NULL : json_array();
    int rc = send_packet(s, SIO_ACK, 0, ack_id, args ? args : empty);
    json_decref(empty);
    return rc;
}

int sio_send_binary(struct sio_socket *s, enum sio_type type, int64_t ack_id, const json_t *data,
                    struct eio_msg **atts, unsigned natts)
{
    int rc = send_packet(s, type, natts, ack_id, data);
    for (unsigned i = 0; i < natts && rc == 0; i++)
        rc = eio_send(s->client->eio, atts[i]);
    return rc;
}

/* ---- test-mode namespaces (what the official test suite expects) ---- */

/* The suite wants an "auth" event echoing the CONNECT payload right after the handshake, as a
 * message of its own: its WebSocket client emits every frame of one TCP read synchronously, so
 * a frame that arrives together with the CONNECT answer is lost to the test. The echo therefore
 * goes out AUTH_ECHO_DELAY_MS later (from the socket's deadline, free once connected). */
#define AUTH_ECHO_DELAY_MS 20

static void test_on_connect(struct sio_socket *s, const json_t *auth)
{
    s->test_auth = auth ? json_incref((json_t *)auth) : json_object();
    eio_set_deadline(s->client->eio, AUTH_ECHO_DELAY_MS);
}

static void send_test_auth(struct sio_client *c)
{
    for (struct list_node *n = c->sockets.next; n != &c->sockets; n = n->next) {
        struct sio_socket *s = LIST_ENTRY(n, struct sio_socket, link);
        if (s->test_auth) {
            json_t *a = s->test_auth;
            s->test_auth = NULL;
            sio_emit(s, "auth", a);
            json_decref(a);
        }
    }
}

/* "message" is echoed as "message-back", "message-with-ack" is acknowledged with its
 * arguments; binary attachments go back as they came. Returns false for other events. */
static bool test_on_event(struct sio_socket *s, const char *name, const json_t *args,
                          int64_t ack_id, struct eio_msg **atts, unsigned natts)
{
    if (strcmp(name, "message") == 0) {
        json_t *a = json_deep_copy(args);
        json_array_set_new(a, 0, json_string("message-back"));
        if (natts)
            sio_send_binary(s, SIO_BINARY_EVENT, -1, a, atts, natts);
        else
            send_packet(s, SIO_EVENT, 0, -1, a);
        json_decref(a);
        return true;
    }
    if (strcmp(name, "message-with-ack") == 0 && ack_id >= 0) {
        json_t *a = json_deep_copy(args);
        json_array_remove(a, 0);
        if (natts)
            sio_send_binary(s, SIO_BINARY_ACK, ack_id, a, atts, natts);
        else
            sio_ack(s, ack_id, a);
        json_decref(a);
        return true;
    }
    return false;
}

static void test_on_event_only(struct sio_socket *s, const char *name, const json_t *args,
                               int64_t ack_id, struct eio_msg **atts, unsigned natts)
{
    test_on_event(s, name, args, ack_id, atts, natts);
}

/* The main namespace in test mode: the bridge's events plus the suite's. */
static void main_test_on_connect(struct sio_socket *s, const json_t *auth)
{
    bridge__main_nsp.on_connect(s, auth);
    test_on_connect(s, auth);
}

static void main_test_on_event(struct sio_socket *s, const char *name, const json_t *args,
                               int64_t ack_id, struct eio_msg **atts, unsigned natts)
{
    if (!test_on_event(s, name, args, ack_id, atts, natts))
        bridge__main_nsp.on_event(s, name, args, ack_id, atts, natts);
}

static void nop_disconnect(struct sio_socket *s)
{
}

static const struct sio_nsp test_main_nsp = {"/", true, main_test_on_connect, main_test_on_event,
                                             NULL};
static const struct sio_nsp test_custom_nsp = {"/custom", true, test_on_connect, test_on_event_only,
                                               nop_disconnect};

static const struct sio_nsp *find_nsp(const char *name)
{
    if (strcmp(name, "/") == 0)
        return sio__test_mode ? &test_main_nsp : &bridge__main_nsp;
    if (sio__test_mode && strcmp(name, test_custom_nsp.name) == 0)
        return &test_custom_nsp;
    return NULL;
}

/* ---- namespace connections ---- */

static struct sio_socket *find_socket(struct sio_client *c, const char *nsp)
{
    for (struct list_node *n = c->sockets.next; n != &c->sockets; n = n->next) {
        struct sio_socket *s = LIST_ENTRY(n, struct sio_socket, link);
        if (strcmp(s->nsp->name, nsp) == 0)
            return s;
    }
    return NULL;
}

static void socket_release(struct sio_socket *s)
{
    if (--s->refs == 0)
        xfree(s);
}

/* The namespace connection ends; its memory goes once no handler call holds it (a send inside a
 * handler can put the socket over its cap, which disconnects it there and then). */
static void socket_disconnect(struct sio_socket *s)
{
    if (s->gone)
        return;
    s->gone = true;
    json_decref(s->test_auth);
    s->test_auth = NULL;
    list_remove(&s->link);
    /* The test main namespace shares the bridge's cleanup. */
    if (s->nsp == &test_main_nsp || s->nsp == &bridge__main_nsp)
        bridge__main_nsp.on_disconnect(s);
    else if (s->nsp->on_disconnect)
        s->nsp->on_disconnect(s);
    socket_release(s);
}

static void connect_error(struct sio_client *c, const char *nsp, const char *message)
{
    struct buf b;
    buf_init(&b, (size_t)-1);
    buf_appendc(&b, EIO_MESSAGE);
    sio_encode_head(&b, SIO_CONNECT_ERROR, 0, nsp[0] ? nsp : "/", -1);
    json_t *j = json_pack("{s:s}", "message", message);
    char *t = json_dump_compact(j, NULL);
    buf_appends(&b, t);
    xfree(t);
    json_decref(j);
    struct eio_msg *m = eio_msg_new(false, b.data, b.len);
    buf_release(&b);
    eio_send(c->eio, m);
    eio_msg_unref(m);
}

/* A client whose handshake carried no credentials authenticates with CONNECT's
 * auth: {token} (what socket.io-client's `auth` option sends). */
static bool connect_authed(struct sio_client *c, const struct sio_pkt *p)
{
    if (c->authed || sio.auth == NULL)
        return true;
    uint64_t now = mono_ms();
    if (auth_limit_wait(sio.auth, c->peer, now) > 0) {
        connect_error(c, p->nsp, "Too many failed authentication attempts");
        return false;
    }
    const char *token = json_get_str(p->data, "token");
    if (token && auth_token_ok(sio.auth, token)) {
        c->authed = true;
        return true;
    }
    if (token) {
        auth_limit_fail(sio.auth, c->peer, now);
        log_warn("sio %s: failed authentication from %s", eio_sid(c->eio), c->peer);
    }
    connect_error(c, p->nsp, "Authentication required");
    return false;
}

static void on_connect_pkt(struct sio_client *c, const struct sio_pkt *p)
{
    if (!connect_authed(c, p))
        return;
    const struct sio_nsp *nsp = find_nsp(p->nsp);
    if (!nsp) {
        log_info("sio %s: connect to unknown namespace '%s'", eio_sid(c->eio), p->nsp);
        connect_error(c, p->nsp, "Invalid namespace");
        return;
    }
    struct sio_socket *old = find_socket(c, nsp->name);
    if (old)
        socket_disconnect(old); /* a second CONNECT replaces the first, as a fresh socket */
    struct sio_socket *s = xcalloc(1, sizeof(*s));
    s->refs = 1; /* the connection's own reference, dropped by socket_disconnect */
    s->client = c;
    s->nsp = nsp;
    nanoid(s->id);
    list_init(&s->joins);
    list_init(&s->runs);
    list_insert_tail(&c->sockets, &s->link);
    if (!c->connected_once) {
        c->connected_once = true;
        eio_set_deadline(c->eio, 0);
    }
    json_t *hs = json_pack("{s:s}", "sid", s->id);
    s->refs++;
    send_packet(s, SIO_CONNECT, 0, -1, hs);
    json_decref(hs);
    if (!s->gone)
        nsp->on_connect(s, p->data);
    socket_release(s);
}

static void dispatch(struct sio_client *c, const struct sio_pkt *p, struct eio_msg **atts,
                     unsigned natts)
{
    struct sio_socket *s;
    switch (p->type) {
    case SIO_CONNECT:
        on_connect_pkt(c, p);
        break;
    case SIO_DISCONNECT:
        s = find_socket(c, p->nsp);
        if (s)
            socket_disconnect(s);
        break;
    case SIO_EVENT:
    case SIO_BINARY_EVENT:
        s = find_socket(c, p->nsp);
        if (!s)
            break; /* not connected to that namespace: ignored, as the reference does */
        const json_t *first = json_array_get(p->data, 0);
        if (!json_is_string(first))
            break;
        s->refs++;
        s->nsp->on_event(s, json_string_value(first), p->data, p->ack_id, atts, natts);
        socket_release(s);
        break;
    default:
        break; /* we never ask clients for acks; CONNECT_ERROR is server-to-client */
    }
}

/* ---- Engine.IO handler ---- */

static void release_binary(struct sio_client *c)
{
    for (unsigned i = 0; i < c->natts; i++)
        eio_msg_unref(c->atts[i]);
    xfree(c->atts);
    c->atts = NULL;
    c->natts = 0;
    sio_pkt_release(&c->bin);
    c->reassembling = false;
}

static void protocol_error(struct sio_client *c, const char *why)
{
    log_info("sio %s: %s, closing", eio_sid(c->eio), why);
    eio_close(c->eio, "parse error");
}

static void on_binary(struct sio_client *c, const char *p, size_t len)
{
    if (!c->reassembling) {
        protocol_error(c, "binary data outside a binary packet");
        return;
    }
    c->atts[c->natts++] = eio_msg_new(true, p, len);
    if (c->natts < c->bin.attachments)
        return;
    struct sio_pkt pkt = c->bin;
    struct eio_msg **atts = c->atts;
    unsigned n = c->natts;
    c->bin.data = NULL; /* handed over */
    c->atts = NULL;
    c->natts = 0;
    c->reassembling = false;
    dispatch(c, &pkt, atts, n);
    for (unsigned i = 0; i < n; i++)
        eio_msg_unref(atts[i]);
    xfree(atts);
    sio_pkt_release(&pkt);
}

static void on_message(struct eio_socket *e, bool binary, const char *p, size_t len)
{
    struct sio_client *c = eio_data(e);
    if (binary) {
        on_binary(c, p, len);
        return;
    }
    if (c->reassembling) {
        protocol_error(c, "text packet while reassembling a binary packet");
        return;
    }
    struct sio_pkt pkt;
    if (sio_decode(p, len, &pkt) < 0) {
        protocol_error(c, "malformed packet");
        return;
    }
    if ((pkt.type == SIO_BINARY_EVENT || pkt.type == SIO_BINARY_ACK) && pkt.attachments > 0) {
        c->bin = pkt;
        c->reassembling = true;
        c->atts = xcalloc(pkt.attachments, sizeof(*c->atts));
        return;
    }
    dispatch(c, &pkt, NULL, 0);
    sio_pkt_release(&pkt);
}

static void on_open(struct eio_socket *e)
{
    struct sio_client *c = xcalloc(1, sizeof(*c));
    c->eio = e;
    c->authed = sio.req_authed;
    memcpy(c->peer, sio.req_peer, sizeof(c->peer));
    list_init(&c->sockets);
    eio_set_data(e, c);
    eio_set_deadline(e, sio.connect_timeout_ms);
    obs_sio_client(1);
}

static void on_timeout(struct eio_socket *e)
{
    struct sio_client *c = eio_data(e);
    if (!c->connected_once) {
        log_info("sio %s: no namespace connect within %u ms, closing", eio_sid(e),
                 sio.connect_timeout_ms);
        eio_close(e, "connect timeout");
        return;
    }
    send_test_auth(c);
}

static void on_close(struct eio_socket *e, const char *reason)
{
    struct sio_client *c = eio_data(e);
    if (!c)
        return;
    while (!list_empty(&c->sockets))
        socket_disconnect(LIST_ENTRY(c->sockets.next, struct sio_socket, link));
    release_binary(c);
}

static void on_free(void *data)
{
    obs_sio_client(-1);
    xfree(data);
}

static const struct eio_handler sio_handler = {on_open, on_message, on_timeout, on_close, on_free};

/* The test suite's plain Engine.IO endpoint echoes every message. */
static void echo_on_open(struct eio_socket *e)
{
}

static void echo_on_message(struct eio_socket *e, bool binary, const char *p, size_t len)
{
    struct eio_msg *m = binary ? eio_msg_new(true, p, len) : eio_msg_text(EIO_MESSAGE, p, len);
    eio_send(e, m);
    eio_msg_unref(m);
}

static void echo_on_timeout(struct eio_socket *e)
{
}

static void echo_on_close(struct eio_socket *e, const char *reason)
{
}

static const struct eio_handler echo_handler = {echo_on_open, echo_on_message, echo_on_timeout,
                                                echo_on_close, NULL};

/* ---- public ---- */

static int read_uint(const json_t *obj, const char *key, unsigned long long def,
                     unsigned long long max, unsigned long long *out, char **err)
{
    const json_t *j = json_object_get(obj, key);
    if (!j) {
        *out = def;
        return 0;
    }
    if (!json_is_integer(j) || json_integer_value(j) <= 0 ||
        (unsigned long long)json_integer_value(j) > max) {
        *err = xasprintf("'socketio.%s' must be an integer between 1 and %llu", key, max);
        return -1;
    }
    *out = (unsigned long long)json_integer_value(j);
    return 0;
}

int sio_init(uv_loop_t *loop, const json_t *root, char **err)
{
    sio__test_mode = json_is_true(json_object_get(root, "sioTestMode"));
    const json_t *so = json_object_get(root, "socketio");
    if (so && !json_is_object(so)) {
        *err = xstrdup("'socketio' must be an object");
        return -1;
    }
    bool t = sio__test_mode;
    unsigned long long pi, pt, mp, mq, ct, ut, ms, ma;
    if (read_uint(so, "pingInterval", t ? 300 : 25000, 3600000, &pi, err) < 0 ||
        read_uint(so, "pingTimeout", t ? 200 : 20000, 3600000, &pt, err) < 0 ||
        read_uint(so, "maxPayload", 1000000, 64 << 20, &mp, err) < 0 ||
        read_uint(so, "maxQueueBytes", 4 << 20, 1ULL << 32, &mq, err) < 0 ||
        read_uint(so, "connectTimeout", t ? 1000 : 45000, 3600000, &ct, err) < 0 ||
        read_uint(so, "upgradeTimeout", 10000, 3600000, &ut, err) < 0 ||
        read_uint(so, "maxSessions", 10000, 1u << 24, &ms, err) < 0 ||
        read_uint(so, "maxSessionsPerAddress", 2000, 1u << 24, &ma, err) < 0)
        return -1;
    struct eio_opts o = {
        .ping_interval_ms = (unsigned)pi,
        .ping_timeout_ms = (unsigned)pt,
        .upgrade_timeout_ms = (unsigned)ut,
        .max_payload = (size_t)mp,
        .max_queue_bytes = (size_t)mq,
        .max_sessions = (size_t)ms,
        .max_sessions_per_addr = (size_t)ma,
    };
    sio.connect_timeout_ms = (unsigned)ct;
    bridge__exclusive = json_is_true(json_object_get(json_object_get(root, "server"), "exclusive"));
    eio_init(loop, &o);
    sio.ready = true;
    if (t)
        log_warn("socket.io test mode: /engine.io/ echo endpoint and test namespaces enabled");
    return 0;
}

void sio_shutdown(void)
{
    if (!sio.ready)
        return;
    sio.ready = false;
    eio_shutdown();
    bridge__shutdown();
}

void sio_set_auth(struct auth *a)
{
    sio.auth = a;
}

bool sio_handle(struct http_req *req, bool authed)
{
    if (!sio.ready)
        return false;
    const char *path = http_req_path(req);
    if (strncmp(path, "/socket.io/", 11) != 0 && strncmp(path, "/engine.io/", 11) != 0)
        return false; /* the common case: not ours, and no address lookup */
    sio.req_authed = authed;
    http_req_peer(req, sio.req_peer);
    if (eio_handle(req, "/socket.io/", &sio_handler))
        return true;
    return sio__test_mode && eio_handle(req, "/engine.io/", &echo_handler);
}
