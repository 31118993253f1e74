/* SPDX-License-Identifier: MIT */
/* mcp_stdio.c -- the stdio transport of the MCP client (agent-tools-llm.md §3.1): each server is
 * a child process in its own process group, spoken to in newline-delimited JSON-RPC over its
 * stdin and stdout; its stderr goes to the debug log. A server that dies is reported to mcp.c
 * (mcp__srv_fail), which restarts it through open on next use. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "core/xalloc.h"
#include "jsonrpc.h"
#include "mcp_int.h"
#include "tools.h"
#include "tools_int.h"

#define KILL_GRACE_MS 2000
#define EOF_GRACE_MS 1000
#define MAX_WRITE_QUEUE (64u * 1024 * 1024) /* bytes queued to a child that does not read */
#define STDERR_LINE_MAX 2048
#define STDERR_TAIL 2048

/* ================================================================ the child */

struct child {
    struct mcp_server *srv; /* NULL once dropped */
    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_timer_t kill_timer; /* attached: grace after stdout EOF; dropped: SIGKILL when SIGTERM
                            * was not enough */
    int open;              /* handles not closed yet */
    bool exited;
    int pid;
    char *name;
    struct jsonrpc_reader rd;
    struct buf errline;     /* the current stderr line */
    char tail[STDERR_TAIL]; /* the last stderr bytes, for the log when it dies */
    size_t tail_len;
};

struct wreq {
    uv_write_t req;
    char *line;
};

static char read_buf[64 * 1024]; /* one loop thread: alloc and read never interleave */
static uv_loop_t *stdio_loop;    /* the loop of mcp_init (stdio_setup) */

static void on_child_handle_closed(uv_handle_t *h)
{
    struct child *c = h->data;
    if (--c->open > 0)
        return;
    jsonrpc_reader_release(&c->rd);
    buf_release(&c->errline);
    xfree(c->name);
    xfree(c);
}

static void child_close(struct child *c, uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_child_handle_closed);
}

/* The whole process group: the server and whatever it started (commands, chromium). */
static void child_kill(struct child *c, int sig)
{
    if (c->exited || c->pid <= 0)
        return;
    if (kill(-c->pid, sig) < 0)
        uv_process_kill(&c->proc, sig);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    *b = uv_buf_init(read_buf, sizeof(read_buf));
}

static void tail_add(struct child *c, const char *p, size_t n)
{
    if (n >= sizeof(c->tail)) {
        memcpy(c->tail, p + n - sizeof(c->tail), sizeof(c->tail));
        c->tail_len = sizeof(c->tail);
        return;
    }
    if (c->tail_len + n > sizeof(c->tail)) {
        size_t drop = c->tail_len + n - sizeof(c->tail);
        memmove(c->tail, c->tail + drop, c->tail_len - drop);
        c->tail_len -= drop;
    }
    memcpy(c->tail + c->tail_len, p, n);
    c->tail_len += n;
}

/* stderr is the server's log: each line goes to our debug log, the tail is kept for the
 * message when the server dies. */
static void on_err_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct child *c = st->data;
    if (n < 0) {
        uv_read_stop(st);
        return;
    }
    tail_add(c, b->base, (size_t)n);
    for (ssize_t i = 0; i < n; i++) {
        char ch = b->base[i];
        if (ch != '\n' && buf_appendc(&c->errline, ch) == 0)
            continue;
        if (c->errline.len > 0)
            log_debug("mcp server '%s' stderr: %s", c->name, buf_str(&c->errline));
        buf_reset(&c->errline);
        if (ch != '\n')
            buf_appendc(&c->errline, ch);
    }
}

static int child_on_message(void *data, const struct jsonrpc_msg *m)
{
    struct child *c = data;
    if (c->srv)
        mcp__srv_on_message(c->srv, m);
    return 0;
}

static void child_on_skip(void *data, enum jsonrpc_skip why, const char *line, size_t len,
                          size_t total)
{
    struct child *c = data;
    if (why != JSONRPC_SKIP_TOO_LONG) {
        log_debug("mcp server '%s' stdout (not JSON-RPC, skipped): %.*s", c->name,
                  (int)(len > 300 ? 300 : len), line);
        return;
    }
    /* An answer we cannot read would leave its call hanging until the timeout. */
    if (c->srv) {
        char *why_s = xasprintf("sent a line of %zu bytes (over the %u byte cap)", total,
                                (unsigned)MCP_MAX_LINE);
        mcp__srv_fail(c->srv, why_s);
        xfree(why_s);
    }
}

static const struct jsonrpc_cbs child_rpc = {child_on_message, child_on_skip};

/* stdout closed but the process is still there: it is given a moment to exit, so that the log
 * says how it ended; one that lingers is killed. */
static void on_eof_grace(uv_timer_t *t)
{
    struct child *c = t->data;
    if (c->srv)
        mcp__srv_fail(c->srv, "closed its stdout");
}

static void on_out_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct child *c = st->data;
    if (n > 0) {
        jsonrpc_reader_feed(&c->rd, b->base, (size_t)n, &child_rpc, c);
        return;
    }
    if (n == 0)
        return;
    uv_read_stop(st);
    if (c->srv == NULL)
        return;
    if (n != UV_EOF)
        mcp__srv_fail(c->srv, uv_strerror((int)n));
    else if (!c->exited)
        uv_timer_start(&c->kill_timer, on_eof_grace, EOF_GRACE_MS, 0);
}

static void log_tail(struct child *c, int level)
{
    if (c->tail_len == 0 || log_level < level)
        return;
    log_write(level, "mcp server '%s' stderr tail:\n%.*s", c->name, (int)c->tail_len, c->tail);
}

static void on_child_exit(uv_process_t *p, int64_t status, int sig)
{
    struct child *c = p->data;
    c->exited = true;
    if (c->pid > 0)
        kill(-c->pid, SIGKILL); /* what it left behind in its group */
    uv_timer_stop(&c->kill_timer);
    if (c->srv) {
        char *why = sig ? xasprintf("exited on signal %d", sig)
                        : xasprintf("exited with code %lld", (long long)status);
        log_tail(c, LOG_WARN);
        mcp__srv_fail(c->srv, why);
        xfree(why);
    } else {
        log_debug("mcp server '%s' (pid %d) ended (code %lld, signal %d)", c->name, c->pid,
                  (long long)status, sig);
    }
    child_close(c, (uv_handle_t *)&c->kill_timer);
    child_close(c, (uv_handle_t *)&c->proc);
}

static void on_kill_timer(uv_timer_t *t)
{
    struct child *c = t->data;
    log_warn("mcp server '%s' (pid %d) ignored SIGTERM, killing it", c->name, c->pid);
    child_kill(c, SIGKILL);
}

static struct child *child_new(struct mcp_server *s)
{
    struct child *c = xcalloc(1, sizeof(*c));
    c->srv = s;
    c->name = xstrdup(s->name);
    jsonrpc_reader_init(&c->rd, MCP_MAX_LINE);
    buf_init(&c->errline, STDERR_LINE_MAX);
    uv_pipe_init(stdio_loop, &c->in, 0);
    uv_pipe_init(stdio_loop, &c->out, 0);
    uv_pipe_init(stdio_loop, &c->err, 0);
    uv_timer_init(stdio_loop, &c->kill_timer);
    c->in.data = c->out.data = c->err.data = c->kill_timer.data = c->proc.data = c;
    c->open = 4;
    return c;
}

/* The argv that starts s: its own, or (sandbox) bwrap's with the workspace bound read-write,
 * the network on, and the workspace (or its configured cwd) as the working directory. */
static char **stdio_argv(struct mcp_server *s)
{
    size_t n = 0;
    while (s->argv[n] != NULL)
        n++;
    if (!s->sandbox) {
        char **v = xcalloc(n + 1, sizeof(char *));
        for (size_t i = 0; i < n; i++)
            v[i] = xstrdup(s->argv[i]);
        return v;
    }
    const char *ws = tool__sandbox_workspace();
    workspace_mkdirs(ws);
    return tool__sandbox_argv(ws, s->cwd ? s->cwd : ws, s->argv, true);
}

/* ================================================================ transport ops */

static int stdio_open(struct mcp_server *s, char **err)
{
    char **argv = stdio_argv(s);
    fd_cloexec_all(); /* the child inherits its three pipes and nothing else */
    struct child *c = child_new(s);
    uv_stdio_container_t io[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&c->in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&c->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&c->err},
    };
    uv_process_options_t o = {
        .exit_cb = on_child_exit,
        .file = argv[0],
        .args = argv,
        .env = s->envp,
        .cwd = s->sandbox ? NULL : s->cwd, /* in the sandbox: bwrap --chdir */
        .flags = UV_PROCESS_DETACHED,      /* setsid: its own process group, killed as a whole */
        .stdio_count = 3,
        .stdio = io,
    };
    int rc = uv_spawn(stdio_loop, &c->proc, &o);
    tool__strv_free(argv);
    c->open++; /* the process handle is initialized even when the spawn failed */
    if (rc < 0) {
        *err = xasprintf("cannot spawn '%s': %s", s->argv[0], uv_strerror(rc));
        c->srv = NULL;
        c->exited = true;
        child_close(c, (uv_handle_t *)&c->in);
        child_close(c, (uv_handle_t *)&c->out);
        child_close(c, (uv_handle_t *)&c->err);
        child_close(c, (uv_handle_t *)&c->kill_timer);
        child_close(c, (uv_handle_t *)&c->proc);
        return rc;
    }
    c->pid = c->proc.pid;
    uv_read_start((uv_stream_t *)&c->out, on_alloc, on_out_read);
    uv_read_start((uv_stream_t *)&c->err, on_alloc, on_err_read);
    s->child = c;
    log_info("mcp server '%s' started: %s (pid %d%s)", s->name, s->argv[0], c->pid,
             s->sandbox ? ", sandboxed" : "");
    return 0;
}

static void on_written(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    if (status < 0 && status != UV_ECANCELED)
        log_debug("mcp write failed: %s", uv_strerror(status));
    xfree(w->line);
    xfree(w);
}

static int stdio_send(struct mcp_server *s, char *line, size_t len, json_int_t id)
{
    struct child *c = s->child;
    if (c == NULL || c->exited ||
        uv_stream_get_write_queue_size((uv_stream_t *)&c->in) > MAX_WRITE_QUEUE) {
        xfree(line);
        return -EPIPE;
    }
    struct wreq *w = xmalloc(sizeof(*w));
    w->line = line;
    uv_buf_t b = uv_buf_init(line, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->in, &b, 1, on_written);
    if (rc < 0) {
        xfree(line);
        xfree(w);
    }
    return rc;
}

static void stdio_forget(struct mcp_server *s, json_int_t id)
{
    /* The answer may still come; srv_on_response drops answers nobody waits for. */
}

/* Closing stdin is the polite shutdown of the stdio transport (§3.1); SIGTERM follows at once
 * and SIGKILL after a grace period, because some servers (the browser one) ignore EOF. */
static void stdio_drop(struct mcp_server *s, bool graceful)
{
    struct child *c = s->child;
    if (c == NULL)
        return;
    s->child = NULL;
    c->srv = NULL;
    child_close(c, (uv_handle_t *)&c->in);
    child_close(c, (uv_handle_t *)&c->out);
    child_close(c, (uv_handle_t *)&c->err);
    if (c->exited)
        return;
    if (graceful) {
        child_kill(c, SIGTERM);
        uv_timer_start(&c->kill_timer, on_kill_timer, KILL_GRACE_MS, 0);
    } else {
        child_kill(c, SIGKILL);
    }
}

/* A child can hang while its pipes stay open: after a call timed out it gets a ping, and is
 * killed without an answer. */
static bool stdio_pingable(const struct mcp_server *s)
{
    return s->child != NULL;
}

static int stdio_setup(uv_loop_t *loop, char **err)
{
    stdio_loop = loop;
    return 0;
}

const struct mcp_transport_ops mcp__stdio_ops = {
    .setup = stdio_setup,
    .open = stdio_open,
    .send = stdio_send,
    .forget = stdio_forget,
    .drop = stdio_drop,
    .pingable = stdio_pingable,
};
