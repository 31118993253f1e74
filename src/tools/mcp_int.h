/* SPDX-License-Identifier: MIT */
/* mcp_int.h -- internals of the MCP client shared by its files: the server object, the transport
 * ops table that mcp.c drives (mcp_stdio.c, mcp_http.c), the config reader (mcp_config.c), and
 * the JSON.stringify(v, null, 2) emulation behind the tool-result text the original sends to the
 * model (tool_content.c), which the unit tests reach. Not for use outside src/tools and tests. */
#ifndef TOOLS_MCP_INT_H
#define TOOLS_MCP_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../core/buf.h"
#include "../core/list.h"
#include "jsonrpc.h"

/* Appends v as JavaScript's JSON.stringify(v, null, indent) writes it: keys in insertion order,
 * ", " never used, "key": value, empty containers as [] and {}, numbers in the shortest
 * round-trip form of Number.prototype.toString, strings with only ", \, and control characters
 * escaped (\b \f \n \r \t, else \u00xx in lower-case hex). indent 0 gives the compact form.
 * Returns 0 or BUF_ERR_TOOBIG. */
int mcp__js_stringify(struct buf *b, const json_t *v, int indent);

/* ================================================================ servers and transports */

#define MCP_MAX_LINE JSONRPC_DEFAULT_MAX_LINE /* screenshots are hundreds of KB on one line */

enum srv_state {
    S_DOWN,     /* no connection: not started yet, failed, or died; restarted on next use */
    S_STARTING, /* initialize / tools/list in flight */
    S_READY,
    S_CLOSED, /* mcp_shutdown */
};

struct mcp_server;

/* A transport (STYLE §2.2 ops table): a child process (mcp__stdio_ops) or Streamable HTTP
 * (mcp__http_ops). mcp.c calls these and never asks which transport a server has. */
struct mcp_transport_ops {
    /* Once per mcp_init, before the first open, when some server uses this transport (NULL: no
     * setup). Returns 0 or <0 with a heap message in *err. */
    int (*setup)(uv_loop_t *loop, char **err);
    /* Once per mcp_shutdown after every server was dropped, when setup was called (NULL: none). */
    void (*teardown)(void);
    /* Opens the connection before initialize. Returns 0 or <0 with a heap message in *err. */
    int (*open)(struct mcp_server *s, char **err);
    /* Sends one encoded message (line ends in \n; taken over). id is the request id the answer
     * will carry, 0 for notifications and responses. Returns 0 or <0 (nothing was sent). */
    int (*send)(struct mcp_server *s, char *line, size_t len, json_int_t id);
    /* No answer to request id is wanted any more. */
    void (*forget)(struct mcp_server *s, json_int_t id);
    /* Closes the connection: hard kills at once, graceful lets the child exit first. */
    void (*drop)(struct mcp_server *s, bool graceful);
    /* True when a server that lets a call time out may be hung rather than slow: it then gets a
     * ping, and is dropped when that goes unanswered. */
    bool (*pingable)(const struct mcp_server *s);
};

extern const struct mcp_transport_ops mcp__stdio_ops;
extern const struct mcp_transport_ops mcp__http_ops;

struct child;

struct mcp_server {
    char *name;
    const struct mcp_transport_ops *ops;
    enum srv_state state;
    bool settled; /* the first start finished, ready or not (mcp_ready) */
    uint64_t call_timeout_ms;
    json_int_t next_id;
    json_int_t hs_id;   /* the initialize or tools/list request in flight */
    json_int_t ping_id; /* the liveness ping in flight */
    json_t *listing;    /* tools gathered by the tools/list pages so far */
    int pages;
    json_t *tools;            /* the last complete tool list (MCP tool objects) */
    char *proto;              /* negotiated protocol version */
    struct list_node calls;   /* sent, waiting for their answer */
    struct list_node waiting; /* waiting for the server to become ready */
    uv_timer_t timer;         /* S_STARTING: handshake deadline; S_DOWN: restart after backoff;
                               * S_READY: ping deadline */
    unsigned failures;        /* failed starts in a row */
    uint64_t retry_at;        /* mono_ms before which no restart happens */
    /* stdio */
    char **argv, **envp, *cwd;
    bool sandbox; /* mcpServers.<name>.sandbox: run under bubblewrap like the commands */
    struct child *child;
    /* Streamable HTTP */
    char *url;
    char **headers; /* "Name: value" */
    size_t nheaders;
    char *session; /* Mcp-Session-Id */
    struct list_node xfers;
};

/* What the transports report to the state machine (mcp.c). */

/* Connection lost or handshake failed: every call waiting on s ends with an error result and s
 * is restarted on next use. No-op for a server that is down or closed. */
void mcp__srv_fail(struct mcp_server *s, const char *reason);
/* One message from s (borrowed). */
void mcp__srv_on_message(struct mcp_server *s, const struct jsonrpc_msg *m);
/* Request id ended without its response, for reason why: the handshake then fails s (returns
 * true), else the call waiting for it fails (returns false). */
bool mcp__srv_unanswered(struct mcp_server *s, json_int_t id, const char *why);

/* ================================================================ configuration */

struct mcp_settings {
    uint64_t call_timeout_ms; /* mcp.callTimeoutMs: servers without their own timeout */
    uint64_t init_timeout_ms; /* mcp.initTimeoutMs: the handshake deadline */
    uint64_t ping_timeout_ms; /* mcp.pingTimeoutMs: the ping after a call timed out */
    uint64_t backoff_ms;      /* mcp.restartBackoffMs: the first restart delay, then doubled */
};

/* Reads "mcp" into *set, then "mcpServers" (config order) less those "mcpServer" filters out,
 * each with its transport's ops. *servers (NULL on entry) gets a heap array of the *nservers
 * (0 on entry) servers read, even on failure: each for mcp__srv_free; their lists and timer are
 * not initialized. Returns 0 or <0 with a heap message in *err. */
int mcp__config_read(const json_t *root, struct mcp_settings *set, struct mcp_server ***servers,
                     size_t *nservers, char **err);
void mcp__srv_free(struct mcp_server *s);

#endif
