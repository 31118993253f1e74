/* SPDX-License-Identifier: MIT */
/* sio_int.h -- internals shared by the files of the Socket.IO module: the Engine.IO server
 * (eio.c: sessions, the polling and WebSocket transports, upgrade, heartbeat, bounded send
 * queues), the Socket.IO layer (sio.c: namespaces, packets, acks) and the agent bridge
 * (bridge.c). All on the loop thread. */
#ifndef SIO_SIO_INT_H
#define SIO_SIO_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "../core/list.h"
#include "../http/http.h"
#include "eio_packet.h"
#include "sio_packet.h"

/* ---- Engine.IO (eio.c) ---- */

struct eio_opts {
    unsigned ping_interval_ms;
    unsigned ping_timeout_ms;
    unsigned upgrade_timeout_ms; /* a probe must send "5" within this */
    size_t max_payload;          /* a message, and a polling POST body */
    size_t max_queue_bytes;      /* per socket: queued + unwritten bytes; past it, closed */
    size_t max_sessions;         /* sessions open at once; a new one over it gets 503 */
    size_t max_sessions_per_addr; /* the same from one client address; 429 over it */
};

struct eio_socket;

/* What an endpoint does with its sockets (Socket.IO, or the test-mode echo). */
struct eio_handler {
    void (*on_open)(struct eio_socket *s);
    void (*on_message)(struct eio_socket *s, bool binary, const char *p, size_t len);
    /* The deadline set with eio_set_deadline passed. */
    void (*on_timeout)(struct eio_socket *s);
    /* The socket closed; fires once, then only eio_data() may be used on it. */
    void (*on_close)(struct eio_socket *s, const char *reason);
    /* The socket's memory goes; the handler frees what eio_data() points to. */
    void (*on_free)(void *data);
};

void eio_init(uv_loop_t *loop, const struct eio_opts *opts);
/* Closes every socket; their memory goes once the loop runs. */
void eio_shutdown(void);
/* Serves req if its path starts with prefix ("/socket.io/"). Returns false if not. */
bool eio_handle(struct http_req *req, const char *prefix, const struct eio_handler *h);

void *eio_data(const struct eio_socket *s);
void eio_set_data(struct eio_socket *s, void *data);
const char *eio_sid(const struct eio_socket *s);
bool eio_closed(const struct eio_socket *s);
/* Queues m (takes a reference of its own). Returns 0, or -1 if the socket is closed or this
 * put it over max_queue_bytes (it is then closed). */
int eio_send(struct eio_socket *s, struct eio_msg *m);
/* Closes the socket (the handler's on_close fires before this returns). */
void eio_close(struct eio_socket *s, const char *reason);
/* Calls the handler's on_timeout after ms (0 cancels). */
void eio_set_deadline(struct eio_socket *s, unsigned ms);
size_t eio_socket_count(void);

/* ---- Socket.IO (sio.c) ---- */

struct sio_socket;

struct sio_nsp {
    const char *name;
    bool test_only; /* exists only with --sio-test-mode */
    void (*on_connect)(struct sio_socket *s, const json_t *auth);
    /* args is the whole payload array (name first); atts the binary attachments (natts). */
    void (*on_event)(struct sio_socket *s, const char *name, const json_t *args, int64_t ack_id,
                     struct eio_msg **atts, unsigned natts);
    void (*on_disconnect)(struct sio_socket *s);
};

/* A connection to one namespace. The bridge's per-socket state lives here too. */
struct sio_socket {
    struct sio_client *client;
    const struct sio_nsp *nsp;
    char id[22];
    struct list_node link;  /* in client->sockets */
    struct list_node joins; /* struct bridge_join (bridge.c) */
    struct list_node runs;  /* struct bridge_run (bridge.c) */
    unsigned refs;          /* held across handler calls: a send past the cap can disconnect */
    bool gone;              /* disconnected: sends are dropped */
    json_t *test_auth;      /* test mode: the auth echo still to send */
};

extern bool sio__test_mode;

/* EVENT [event, arg] (arg NULL for none) on the socket's namespace. Returns 0 or -1. */
int sio_emit(struct sio_socket *s, const char *event, const json_t *arg);
/* ACK with the given array (NULL for []). */
int sio_ack(struct sio_socket *s, int64_t ack_id, const json_t *args);
/* Sends a ready packet (already serialized for this namespace). */
int sio_send_msg(struct sio_socket *s, struct eio_msg *m);
/* BINARY_EVENT or BINARY_ACK: the JSON with placeholders, then the attachments. */
int sio_send_binary(struct sio_socket *s, enum sio_type type, int64_t ack_id, const json_t *data,
                    struct eio_msg **atts, unsigned natts);
const char *sio_socket_sid(const struct sio_socket *s);
/* Engine.IO session id and connection-level log context. */
const char *sio_socket_eio_sid(const struct sio_socket *s);

/* ---- bridge (bridge.c) ---- */

struct agent_event;

extern const struct sio_nsp bridge__main_nsp;
extern bool bridge__exclusive;
/* Serialized agent-event packet(s) for one agent event (the bridge mapping); up to 4. For tests. */
size_t bridge__map_event(const struct agent_event *ev, struct eio_msg *out[4]);
void bridge__shutdown(void);

#endif
