/* SPDX-License-Identifier: MIT */
/* curl_uv.c -- libcurl's multi_socket interface on a libuv loop: one uv_poll_t per socket curl
 * asks us to watch, one uv_timer_t for curl's timeout, curl_multi_info_read after every
 * action. Adds and removals requested while libcurl is on the stack are queued and applied when
 * it returns, so no caller ever re-enters libcurl from one of its callbacks. */
#include "curl_uv.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <sys/socket.h>

#include "../core/log.h"
#include "../core/util.h"
#include "../core/xalloc.h"

/* A socket curl wants watched. Indexed by fd in cu->socks so the socket callback never needs
 * curl_multi_assign (which would be a call into curl from its own callback). */
struct sock {
    uv_poll_t poll;
    struct curl_uv *cu;
    curl_socket_t fd;
};

struct curl_uv_xfer {
    struct curl_uv *cu;
    CURL *easy;                 /* owned; cleaned up when the xfer is freed */
    struct curl_slist *headers; /* owned; curl reads it until the easy handle is cleaned up */
    const struct curl_uv_cbs *cbs;
    void *data;
    struct curl_uv_xfer *prev, *next; /* cu->xfers */
    bool added;                       /* curl_multi_add_handle done */
    bool dead;                        /* cancelled: no callbacks, remove as soon as curl returns */
    bool pending;                     /* waits for sync_pending: not added yet, or dead */
    char errbuf[CURL_ERROR_SIZE];
};

struct curl_uv {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    struct sock **socks; /* indexed by fd, nsocks slots */
    size_t nsocks;
    struct curl_uv_xfer *xfers; /* every xfer not yet freed: queued, running or dead */
    int in_curl;                /* libcurl frames on the stack */
    int depth;                  /* curl_uv entry points (uv callbacks) on the stack */
    int open_handles;           /* uv handles not closed yet; cu is freed at 0 after close */
    size_t npending;            /* xfers with pending set */
    bool closing, torn_down;
    curl_uv_close_cb close_cb;
    void *close_data;
};

static void teardown(struct curl_uv *cu);

/* ---- lifetime of uv handles ------------------------------------------------------------- */

static void maybe_free(struct curl_uv *cu)
{
    if (!cu->torn_down || cu->open_handles > 0)
        return;
    curl_uv_close_cb cb = cu->close_cb;
    void *data = cu->close_data;
    xfree(cu);
    if (cb)
        cb(data);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct curl_uv *cu = h->data;
    cu->open_handles--;
    maybe_free(cu);
}

static void on_sock_closed(uv_handle_t *h)
{
    struct sock *sk = h->data;
    struct curl_uv *cu = sk->cu;
    xfree(sk);
    cu->open_handles--;
    maybe_free(cu);
}

static void sock_close(struct curl_uv *cu, struct sock *sk)
{
    cu->socks[sk->fd] = NULL;
    uv_poll_stop(&sk->poll);
    uv_close((uv_handle_t *)&sk->poll, on_sock_closed);
}

/* Entry points bracket themselves so a curl_uv_close from deep inside a callback only marks
 * the context; the real teardown waits until the outermost frame returns. */
static void enter(struct curl_uv *cu)
{
    cu->depth++;
}

static void leave(struct curl_uv *cu)
{
    if (--cu->depth == 0 && cu->closing && !cu->torn_down)
        teardown(cu);
}

/* ---- transfers -------------------------------------------------------------------------- */

static void set_pending(struct curl_uv_xfer *x, bool on)
{
    if (x->pending && !on)
        x->cu->npending--;
    else if (!x->pending && on)
        x->cu->npending++;
    x->pending = on;
}

static void xfer_unlink(struct curl_uv_xfer *x)
{
    struct curl_uv *cu = x->cu;
    if (x->prev)
        x->prev->next = x->next;
    else
        cu->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

/* Removes the easy handle from the multi and frees everything. Only with no curl frame on the
 * stack. */
static void xfer_destroy(struct curl_uv_xfer *x)
{
    struct curl_uv *cu = x->cu;
    set_pending(x, false);
    xfer_unlink(x);
    if (x->added) {
        cu->in_curl++;
        curl_multi_remove_handle(cu->multi, x->easy);
        cu->in_curl--;
    }
    curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    xfree(x);
}

static int xfer_add_now(struct curl_uv_xfer *x)
{
    struct curl_uv *cu = x->cu;
    cu->in_curl++;
    CURLMcode mc = curl_multi_add_handle(cu->multi, x->easy);
    cu->in_curl--;
    if (mc != CURLM_OK) {
        log_error("curl_multi_add_handle: %s", curl_multi_strerror(mc));
        return -1;
    }
    x->added = true;
    set_pending(x, false);
    return 0;
}

/* Frees an xfer that never ran and tells its owner (outside libcurl). */
static void xfer_fail(struct curl_uv_xfer *x)
{
    set_pending(x, false);
    xfer_unlink(x);
    curl_easy_cleanup(x->easy);
    curl_slist_free_all(x->headers);
    x->dead = true;
    x->cbs->on_done(x->data, CURLE_FAILED_INIT, "cannot add transfer");
    xfree(x);
}

/* Applies queued adds and removals. Called only with in_curl == 0 and outside any xfer
 * callback; a failed add calls on_done, which may change the list, so the scan restarts. */
static void sync_pending(struct curl_uv *cu)
{
    struct curl_uv_xfer *next;
    for (struct curl_uv_xfer *x = cu->xfers; x && cu->npending > 0; x = next) {
        next = x->next;
        if (x->dead) {
            xfer_destroy(x);
        } else if (!x->added && xfer_add_now(x) < 0) {
            xfer_fail(x);
            next = cu->xfers;
        }
    }
}

/* Hands finished transfers to their owners. The easy handle is removed before on_done runs so
 * the callback may start, cancel or close anything (all of which happen outside libcurl). */
static void check_done(struct curl_uv *cu)
{
    CURLMsg *m;
    int left;
    while (!cu->closing && (m = curl_multi_info_read(cu->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        CURL *easy = m->easy_handle;
        CURLcode rc = m->data.result;
        char *priv = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
        struct curl_uv_xfer *x = (struct curl_uv_xfer *)(void *)priv;
        if (x == NULL || x->dead)
            continue;
        xfer_unlink(x);
        cu->in_curl++;
        curl_multi_remove_handle(cu->multi, easy);
        cu->in_curl--;
        curl_easy_cleanup(easy);
        curl_slist_free_all(x->headers);
        x->dead = true; /* a curl_uv_cancel(x) from on_done is then a no-op */
        x->cbs->on_done(x->data, rc, x->errbuf);
        xfree(x);
    }
}

static void action(struct curl_uv *cu, curl_socket_t fd, int flags)
{
    if (cu->closing)
        return;
    enter(cu);
    int running;
    cu->in_curl++;
    CURLMcode mc = curl_multi_socket_action(cu->multi, fd, flags, &running);
    cu->in_curl--;
    if (mc != CURLM_OK)
        log_error("curl_multi_socket_action: %s", curl_multi_strerror(mc));
    sync_pending(cu);
    check_done(cu);
    leave(cu);
}

/* ---- curl -> uv ------------------------------------------------------------------------- */

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct sock *sk = h->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    /* sk may be closed during the action (CURL_POLL_REMOVE); only its fd is used. */
    action(sk->cu, sk->fd, flags);
}

static void on_timer(uv_timer_t *t)
{
    action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static struct sock *sock_open(struct curl_uv *cu, curl_socket_t fd)
{
    if ((size_t)fd >= cu->nsocks) {
        size_t n = cu->nsocks ? cu->nsocks : 64;
        while (n <= (size_t)fd)
            n *= 2;
        cu->socks = xrealloc(cu->socks, n * sizeof(*cu->socks));
        memset(cu->socks + cu->nsocks, 0, (n - cu->nsocks) * sizeof(*cu->socks));
        cu->nsocks = n;
    }
    struct sock *sk = xcalloc(1, sizeof(*sk));
    int rc = uv_poll_init_socket(cu->loop, &sk->poll, fd);
    if (rc < 0) {
        log_error("cannot watch curl socket %d: %s", (int)fd, uv_strerror(rc));
        xfree(sk);
        return NULL;
    }
    sk->cu = cu;
    sk->fd = fd;
    sk->poll.data = sk;
    cu->open_handles++;
    cu->socks[fd] = sk;
    return sk;
}

/* CURLMOPT_SOCKETFUNCTION. Runs inside libcurl: touches only uv handles. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct curl_uv *cu = userp;
    if (fd < 0)
        return 0;
    struct sock *sk = (size_t)fd < cu->nsocks ? cu->socks[fd] : NULL;
    if (what == CURL_POLL_REMOVE) {
        if (sk)
            sock_close(cu, sk);
        return 0;
    }
    if (sk == NULL && (cu->torn_down || (sk = sock_open(cu, fd)) == NULL))
        return -1;
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    int rc = uv_poll_start(&sk->poll, events, on_poll);
    if (rc < 0) {
        log_error("cannot poll curl socket %d: %s", (int)fd, uv_strerror(rc));
        return -1;
    }
    return 0;
}

/* CURLMOPT_TIMERFUNCTION. A 0 ms timeout still goes through the loop: curl must not be called
 * from here. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct curl_uv *cu = userp;
    if (timeout_ms < 0 || cu->closing) {
        uv_timer_stop(&cu->timer);
        return 0;
    }
    return uv_timer_start(&cu->timer, on_timer, (uint64_t)timeout_ms, 0) < 0 ? -1 : 0;
}

/* ---- easy-handle callbacks (trampolines that honour cancellation) ----------------------- */

static size_t on_write(char *p, size_t size, size_t n, void *userp)
{
    struct curl_uv_xfer *x = userp;
    size_t len = size * n;
    if (x->dead || x->cbs->on_body(x->data, p, len) < 0 || x->dead)
        return 0; /* != len: curl aborts the transfer */
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *userp)
{
    struct curl_uv_xfer *x = userp;
    size_t len = size * n;
    if (x->dead)
        return 0;
    if (x->cbs->on_header && (x->cbs->on_header(x->data, p, len) < 0 || x->dead))
        return 0;
    return len;
}

/* ---- public API ------------------------------------------------------------------------- */

/* Every socket curl opens is close-on-exec, so no command or MCP server we spawn inherits our
 * connection to the model (issue 10). */
static curl_socket_t on_open_socket(void *data, curlsocktype purpose, struct curl_sockaddr *a)
{
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

static long pool_max_idle = 16, pool_max_per_host = 0;

void curl_uv_set_pool(long max_idle, long max_per_host)
{
    pool_max_idle = max_idle > 0 ? max_idle : 1;
    pool_max_per_host = max_per_host > 0 ? max_per_host : 0;
}

int curl_uv_new(uv_loop_t *loop, struct curl_uv **out)
{
    struct curl_uv *cu = xcalloc(1, sizeof(*cu));
    cu->loop = loop;
    cu->multi = curl_multi_init();
    if (cu->multi == NULL) {
        xfree(cu);
        return -ENOMEM;
    }
    /* The multi handle's wake-up pair (curl_multi_wakeup) is made without O_CLOEXEC. */
    fd_cloexec_all();
    int rc = uv_timer_init(loop, &cu->timer);
    if (rc < 0) {
        curl_multi_cleanup(cu->multi);
        xfree(cu);
        return rc;
    }
    cu->timer.data = cu;
    cu->open_handles = 1;
    curl_multi_setopt(cu->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(cu->multi, CURLMOPT_SOCKETDATA, cu);
    curl_multi_setopt(cu->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(cu->multi, CURLMOPT_TIMERDATA, cu);
    curl_multi_setopt(cu->multi, CURLMOPT_MAXCONNECTS, pool_max_idle);
    curl_multi_setopt(cu->multi, CURLMOPT_MAX_HOST_CONNECTIONS, pool_max_per_host);
    *out = cu;
    return 0;
}

struct curl_uv_xfer *curl_uv_add(struct curl_uv *cu, CURL *easy, struct curl_slist *headers,
                                 const struct curl_uv_cbs *cbs, void *data)
{
    if (cu->closing) {
        curl_easy_cleanup(easy);
        curl_slist_free_all(headers);
        return NULL;
    }
    struct curl_uv_xfer *x = xcalloc(1, sizeof(*x));
    x->cu = cu;
    x->easy = easy;
    x->headers = headers;
    x->cbs = cbs;
    x->data = data;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, (char *)x);
    curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(easy, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(easy, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(easy, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    x->next = cu->xfers;
    if (cu->xfers)
        cu->xfers->prev = x;
    cu->xfers = x;
    /* From inside a curl callback the add waits for sync_pending after curl returns. */
    if (cu->in_curl > 0) {
        set_pending(x, true);
    } else if (xfer_add_now(x) < 0) {
        x->dead = true;
        xfer_destroy(x);
        return NULL;
    }
    return x;
}

void curl_uv_cancel(struct curl_uv_xfer *x)
{
    if (x == NULL || x->dead)
        return;
    x->dead = true;
    if (x->cu->in_curl == 0)
        xfer_destroy(x);
    else
        set_pending(x, true);
}

static void teardown(struct curl_uv *cu)
{
    cu->torn_down = true;
    while (cu->xfers) {
        cu->xfers->dead = true;
        xfer_destroy(cu->xfers);
    }
    /* Closing pooled connections may still call on_curl_socket with CURL_POLL_REMOVE. */
    cu->in_curl++;
    curl_multi_cleanup(cu->multi);
    cu->in_curl--;
    cu->multi = NULL;
    for (size_t i = 0; i < cu->nsocks; i++)
        if (cu->socks[i])
            sock_close(cu, cu->socks[i]);
    xfree(cu->socks);
    cu->socks = NULL;
    cu->nsocks = 0;
    uv_timer_stop(&cu->timer);
    uv_close((uv_handle_t *)&cu->timer, on_timer_closed);
}

void curl_uv_close(struct curl_uv *cu, curl_uv_close_cb cb, void *data)
{
    if (cu == NULL || cu->closing)
        return;
    cu->closing = true;
    cu->close_cb = cb;
    cu->close_data = data;
    /* Mark now so nothing fires; the removals themselves happen in teardown. */
    for (struct curl_uv_xfer *x = cu->xfers; x; x = x->next)
        x->dead = true;
    if (cu->depth == 0 && cu->in_curl == 0)
        teardown(cu);
}
