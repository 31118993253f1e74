/* SPDX-License-Identifier: MIT */
/* mcp_http.c -- the Streamable HTTP transport of the MCP client (agent-tools-llm.md §3.2): each
 * message is its own POST, made with libcurl on the loop through one curl_uv shared by every HTTP
 * server; the answer is a JSON body or an SSE stream, and the Mcp-Session-Id the server gives is
 * sent back on every POST. Messages go to mcp.c (mcp__srv_on_message). */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/list.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "jsonrpc.h"
#include "llm/curl_uv.h"
#include "llm/sse_reader.h"
#include "mcp_int.h"
#include "obs/obs.h"

#define CONNECT_TIMEOUT_MS 10000
#define MAX_HTTP_BODY (16u * 1024 * 1024)

static struct curl_uv *cu; /* set up when some server speaks HTTP (http_setup), else NULL */

/* ================================================================ one POST */

/* One POST. Its answer comes back as one JSON body or as an SSE stream that may carry server
 * requests and notifications before the response (§3.2). */
struct http_xfer {
    struct list_node node; /* srv->xfers */
    struct mcp_server *srv;
    struct curl_uv_xfer *x;
    json_int_t id; /* the request it carries; 0 for notifications and responses */
    long status;
    bool sse;      /* Content-Type: text/event-stream */
    bool answered; /* the response to id arrived */
    bool in_cb;    /* our callback is on the stack: free later */
    bool dead;     /* dropped while in_cb */
    struct sse_reader rd;
    struct buf body;
};

static void xfer_free(struct http_xfer *xf)
{
    sse_reader_release(&xf->rd);
    buf_release(&xf->body);
    xfree(xf);
}

static void xfer_kill(struct http_xfer *xf)
{
    list_remove(&xf->node);
    curl_uv_cancel(xf->x);
    if (xf->in_cb)
        xf->dead = true;
    else
        xfer_free(xf);
}

static void xfer_deliver(struct http_xfer *xf, const struct jsonrpc_msg *m)
{
    if (m->kind == JSONRPC_RESPONSE && json_is_integer(m->id) &&
        json_integer_value(m->id) == xf->id)
        xf->answered = true;
    if (!xf->dead)
        mcp__srv_on_message(xf->srv, m);
}

static void xfer_deliver_json(struct http_xfer *xf, json_t *j)
{
    struct jsonrpc_msg m;
    if (jsonrpc_classify(j, &m) < 0) {
        log_debug("mcp server '%s' sent a body that is not JSON-RPC", xf->srv->name);
        return;
    }
    xfer_deliver(xf, &m);
    jsonrpc_msg_release(&m);
}

static int on_sse_event(void *data, const char *event, const char *payload, size_t len)
{
    struct http_xfer *xf = data;
    if (*event && strcmp(event, "message") != 0)
        return 0;
    struct jsonrpc_msg m;
    enum jsonrpc_skip why;
    if (jsonrpc_decode(payload, len, &m, &why) < 0)
        return 0;
    xfer_deliver(xf, &m);
    jsonrpc_msg_release(&m);
    return xf->dead ? -1 : 0;
}

static bool header_is(const char *line, size_t len, const char *name, const char **value,
                      size_t *vlen)
{
    size_t n = strlen(name);
    if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
        return false;
    const char *v = line + n + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    *value = v;
    *vlen = (size_t)(end - v);
    return true;
}

static int on_http_header(void *data, const char *line, size_t len)
{
    struct http_xfer *xf = data;
    const char *v;
    size_t vlen;
    if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
        const char *sp = memchr(line, ' ', len);
        xf->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        xf->sse = false;
    } else if (header_is(line, len, "content-type", &v, &vlen)) {
        xf->sse = vlen >= 17 && strncasecmp(v, "text/event-stream", 17) == 0;
    } else if (header_is(line, len, "mcp-session-id", &v, &vlen) && vlen > 0 && vlen < 1024) {
        xfree(xf->srv->session);
        xf->srv->session = xstrndup(v, vlen);
    }
    return 0;
}

static int on_http_body(void *data, const char *p, size_t len)
{
    struct http_xfer *xf = data;
    if (!(xf->status >= 200 && xf->status < 300 && xf->sse))
        return buf_append(&xf->body, p, len) < 0 ? -1 : 0;
    xf->in_cb = true;
    int rc = sse_reader_feed(&xf->rd, p, len, on_sse_event, xf);
    xf->in_cb = false;
    if (xf->dead) {
        xfer_free(xf);
        return -1;
    }
    return rc < 0 ? -1 : 0;
}

static char *http_failure(struct http_xfer *xf, CURLcode rc, const char *errmsg)
{
    if (rc != CURLE_OK)
        return xasprintf("Streamable HTTP error: %s", *errmsg ? errmsg : curl_easy_strerror(rc));
    if (xf->status < 200 || xf->status >= 300)
        return xasprintf("Streamable HTTP error: Error POSTing to endpoint (HTTP %ld): %.*s",
                         xf->status, (int)(xf->body.len > 500 ? 500 : xf->body.len),
                         buf_str(&xf->body));
    return xstrdup("Streamable HTTP error: no response in the answer");
}

/* The POST ended without the response to its request: the call (or the handshake) fails. A 404
 * on a session means it expired: the server is re-initialized on next use (§3.2). */
static void xfer_unanswered(struct http_xfer *xf, const char *why)
{
    struct mcp_server *s = xf->srv;
    if (mcp__srv_unanswered(s, xf->id, why))
        return;
    if (xf->status == 404 && s->session)
        mcp__srv_fail(s, "session expired (HTTP 404)");
}

static void on_http_done(void *data, CURLcode rc, const char *errmsg)
{
    struct http_xfer *xf = data;
    xf->in_cb = true;
    if (rc == CURLE_OK && !xf->sse && xf->status >= 200 && xf->status < 300 && xf->body.len > 0) {
        json_t *j = json_loadb(xf->body.data, xf->body.len, 0, NULL);
        if (json_is_array(j)) {
            for (size_t i = 0; i < json_array_size(j) && !xf->dead; i++)
                xfer_deliver_json(xf, json_array_get(j, i));
        } else if (j) {
            xfer_deliver_json(xf, j);
        }
        json_decref(j);
    }
    if (!xf->dead && xf->id != 0 && !xf->answered) {
        char *why = http_failure(xf, rc, errmsg);
        xfer_unanswered(xf, why);
        xfree(why);
    } else if (!xf->dead && (rc != CURLE_OK || xf->status >= 300)) {
        log_debug("mcp server '%s': POST without answer failed (HTTP %ld, curl %d)", xf->srv->name,
                  xf->status, (int)rc);
    }
    if (!xf->dead)
        list_remove(&xf->node);
    xfer_free(xf);
}

static const struct curl_uv_cbs http_cbs = {on_http_header, on_http_body, on_http_done};

/* ================================================================ transport ops */

static int http_open(struct mcp_server *s, char **err)
{
    xfree(s->session);
    s->session = NULL;
    return 0;
}

static struct curl_slist *http_headers(struct mcp_server *s)
{
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, "Accept: application/json, text/event-stream");
    for (size_t i = 0; i < s->nheaders; i++)
        h = curl_slist_append(h, s->headers[i]);
    if (s->session) {
        char *v = xasprintf("Mcp-Session-Id: %s", s->session);
        h = curl_slist_append(h, v);
        xfree(v);
    }
    if (s->proto) {
        char *v = xasprintf("MCP-Protocol-Version: %s", s->proto);
        h = curl_slist_append(h, v);
        xfree(v);
    }
    char tp[80]; /* W3C trace context of the tool call being sent, if traced (obs.h) */
    obs_traceparent_header(obs_current_span(), tp);
    if (tp[0])
        h = curl_slist_append(h, tp);
    return h;
}

static int http_send(struct mcp_server *s, char *line, size_t len, json_int_t id)
{
    CURL *e = curl_easy_init();
    if (e == NULL || cu == NULL) {
        if (e)
            curl_easy_cleanup(e);
        xfree(line);
        return -ENOMEM;
    }
    curl_easy_setopt(e, CURLOPT_URL, s->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(len - 1)); /* without \n */
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, line);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    xfree(line);
    struct curl_slist *headers = http_headers(s);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    struct http_xfer *xf = xcalloc(1, sizeof(*xf));
    xf->srv = s;
    xf->id = id;
    sse_reader_init(&xf->rd, MCP_MAX_LINE);
    buf_init(&xf->body, MAX_HTTP_BODY);
    xf->x = curl_uv_add(cu, e, headers, &http_cbs, xf);
    if (xf->x == NULL) {
        xfer_free(xf);
        return -EIO;
    }
    list_insert_tail(&s->xfers, &xf->node);
    return 0;
}

static void http_forget(struct mcp_server *s, json_int_t id)
{
    for (struct list_node *n = s->xfers.next; n != &s->xfers; n = n->next) {
        struct http_xfer *xf = LIST_ENTRY(n, struct http_xfer, node);
        if (xf->id == id) {
            xfer_kill(xf);
            return;
        }
    }
}

static void http_drop(struct mcp_server *s, bool graceful)
{
    while (!list_empty(&s->xfers))
        xfer_kill(LIST_ENTRY(s->xfers.next, struct http_xfer, node));
    xfree(s->session);
    s->session = NULL;
}

/* Each POST has its own fate (it fails on its own, a 404 ends the session): nothing to ping. */
static bool http_pingable(const struct mcp_server *s)
{
    return false;
}

static int http_setup(uv_loop_t *loop, char **err)
{
    int rc = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? curl_uv_new(loop, &cu) : -ENOMEM;
    if (rc < 0)
        *err = xasprintf("cannot set up the HTTP client for MCP: %s", uv_strerror(rc));
    return rc;
}

static void on_cu_closed(void *data)
{
    curl_global_cleanup();
}

static void http_teardown(void)
{
    if (cu)
        curl_uv_close(cu, on_cu_closed, NULL);
    cu = NULL;
}

const struct mcp_transport_ops mcp__http_ops = {
    .setup = http_setup,
    .teardown = http_teardown,
    .open = http_open,
    .send = http_send,
    .forget = http_forget,
    .drop = http_drop,
    .pingable = http_pingable,
};
