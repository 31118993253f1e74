/* SPDX-License-Identifier: MIT */
/* server.c -- the listener, accepting (and refusing over max_conns), the once-per-iteration
 * write flush, and server shutdown. The connections themselves live in conn.c. */
#include <string.h>

#include "../core/log.h"
#include "../core/xalloc.h"
#include "http_int.h"

#define MAX_REJECTS 64 /* 503 answers in flight; past this, refused connections just close */

void http_server_opts_defaults(struct http_server_opts *o)
{
    if (!o->host)
        o->host = "127.0.0.1";
    if (!o->max_header_bytes)
        o->max_header_bytes = 16 * 1024;
    if (!o->max_body_bytes)
        o->max_body_bytes = 1024 * 1024;
    if (!o->header_timeout_ms)
        o->header_timeout_ms = 10 * 1000;
    if (!o->body_timeout_ms)
        o->body_timeout_ms = 30 * 1000;
    if (!o->idle_timeout_ms)
        o->idle_timeout_ms = 60 * 1000;
    if (!o->max_conns)
        o->max_conns = 1024;
    if (!o->max_pending_write_bytes)
        o->max_pending_write_bytes = 8 * 1024 * 1024;
}

/* ---- write coalescing ---- */

/* Writes queued during a loop iteration go out together, so a burst of events for one
 * connection costs one syscall. Flushing runs in two places: the prepare phase (right before
 * the poll blocks) catches writes queued from timers, write completions and the previous
 * iteration's check and close callbacks; the check phase (right after the poll) catches
 * those queued from I/O callbacks. Whatever is queued between our prepare callback and the
 * poll (by our own flushing, or another prepare callback) starts the idle handle, which
 * keeps the poll from blocking so that the check phase comes at once. */
static void flush_queued(struct http_server *s)
{
    /* Move the queue aside: connections queued again by callbacks below (a drain callback
     * that writes more) wait for the next phase instead of looping here. */
    struct list_node q;
    list_init(&q);
    if (!list_empty(&s->flush_q)) {
        q.next = s->flush_q.next;
        q.prev = s->flush_q.prev;
        q.next->prev = &q;
        q.prev->next = &q;
        list_init(&s->flush_q);
    }
    while (!list_empty(&q)) {
        struct http_conn *c = LIST_ENTRY(q.next, struct http_conn, flush_link);
        list_remove(&c->flush_link);
        c->flush_queued = false;
        http__conn_flush_now(c);
    }
}

static void on_idle(uv_idle_t *h)
{
    /* Only here to make the poll return at once; on_check does the work. */
}

static void on_prepare(uv_prepare_t *h)
{
    struct http_server *s = h->data;
    flush_queued(s);
    if (!list_empty(&s->flush_q) && !s->closing)
        uv_idle_start(&s->idle, on_idle);
    s->before_poll = true;
}

static void on_check(uv_check_t *h)
{
    struct http_server *s = h->data;
    s->before_poll = false;
    flush_queued(s);
    if (s->closing)
        return;
    uv_idle_stop(&s->idle); /* what is left goes out from the next prepare, before the poll */
    if (list_empty(&s->flush_q)) {
        uv_prepare_stop(&s->prepare);
        uv_check_stop(&s->check);
    }
}

void http__conn_queue_flush(struct http_conn *c)
{
    struct http_server *s = c->srv;
    if (c->flush_queued || c->writing || c->closing || s->closing)
        return; /* a write in flight picks the new bytes up when it completes */
    c->flush_queued = true;
    if (list_empty(&s->flush_q)) {
        uv_prepare_start(&s->prepare, on_prepare);
        uv_check_start(&s->check, on_check);
    }
    if (s->before_poll)
        uv_idle_start(&s->idle, on_idle);
    list_insert_tail(&s->flush_q, &c->flush_link);
}

/* ---- accepting ---- */

static void on_connection(uv_stream_t *ls, int status)
{
    struct http_server *s = ls->data;
    if (status < 0) {
        log_warn("http: accept failed: %s", uv_strerror(status));
        return;
    }
    struct http_conn *c = http__conn_new(s);
    int rc = uv_accept(ls, (uv_stream_t *)&c->tcp);
    if (rc < 0) {
        log_warn("http: accept failed: %s", uv_strerror(rc));
        http__conn_close(c);
        return;
    }
    if (s->nconns >= s->opts.max_conns) {
        log_info("conn %llu: too many connections, refusing", (unsigned long long)c->id);
        if (s->nrejects > MAX_REJECTS)
            http__conn_close(c); /* under a flood even the 503 is not worth a write */
        else
            http__conn_send_error(c, 503);
        return;
    }
    s->nrejects--;
    s->nconns++;
    c->counted = true;
    http__conn_start(c);
}

/* ---- start and stop ---- */

/* Host literals only (IPv4, IPv6 with or without brackets), plus "localhost". */
static int parse_addr(const char *host, int port, struct sockaddr_storage *ss)
{
    char tmp[64];
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(tmp)) {
        memcpy(tmp, host + 1, n - 2);
        tmp[n - 2] = '\0';
        host = tmp;
    }
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
        return 0;
    return uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss);
}

void http__server_maybe_free(struct http_server *s)
{
    if (s->closing && s->open_handles == 0 && list_empty(&s->conns))
        xfree(s);
}

static void on_server_handle_closed(uv_handle_t *h)
{
    struct http_server *s = h->data;
    s->open_handles--;
    http__server_maybe_free(s);
}

static int bound_port(struct http_server *s)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    int rc = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &len);
    if (rc < 0)
        return rc;
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void close_handles(struct http_server *s)
{
    s->closing = true;
    uv_close((uv_handle_t *)&s->listener, on_server_handle_closed);
    uv_close((uv_handle_t *)&s->check, on_server_handle_closed);
    uv_close((uv_handle_t *)&s->prepare, on_server_handle_closed);
    uv_close((uv_handle_t *)&s->idle, on_server_handle_closed);
}

int http_server_start(uv_loop_t *loop, const struct http_server_opts *opts, http_handler_cb cb,
                      void *data, struct http_server **out)
{
    *out = NULL;
    struct http_server_opts o = *opts;
    http_server_opts_defaults(&o);
    struct sockaddr_storage ss;
    int rc = parse_addr(o.host, o.port, &ss);
    if (rc < 0)
        return rc;
    struct http_server *s = xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->opts = o;
    s->opts.host = NULL; /* borrowed; not needed after bind */
    s->cb = cb;
    s->data = data;
    list_init(&s->conns);
    list_init(&s->flush_q);
    uv_tcp_init(loop, &s->listener);
    uv_check_init(loop, &s->check);
    uv_prepare_init(loop, &s->prepare);
    uv_idle_init(loop, &s->idle);
    s->listener.data = s->check.data = s->prepare.data = s->idle.data = s;
    s->open_handles = 4;
    rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, 511, on_connection);
    int port = rc == 0 ? bound_port(s) : rc;
    if (port < 0) {
        /* The handles exist, so s is freed from their close callbacks on the next loop run. */
        close_handles(s);
        return port;
    }
    s->port = port;
    *out = s;
    return 0;
}

int http_server_port(const struct http_server *s)
{
    return s->port;
}

unsigned http_server_conn_count(const struct http_server *s)
{
    return s->nconns;
}

void http_server_close(struct http_server *s)
{
    if (!s || s->closing)
        return;
    close_handles(s);
    /* Closing unlinks nothing synchronously (that happens in on_handle_closed), so the list
     * is stable even if a close callback closes other requests. */
    for (struct list_node *n = s->conns.next; n != &s->conns; n = n->next)
        http__conn_close(LIST_ENTRY(n, struct http_conn, link));
}
