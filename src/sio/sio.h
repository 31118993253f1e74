/* SPDX-License-Identifier: MIT */
/* sio.h -- Socket.IO (protocol v5 over Engine.IO v4) on the HTTP server's port at /socket.io/,
 * bridged to the agent: clients join sessions and receive every agent event. With
 * --sio-test-mode it also serves what the official protocol test suites expect (an echo
 * Engine.IO endpoint at /engine.io/, their namespace and events, 300/200 ms heartbeat). See
 * docs/internals/SIO.md. */
#ifndef SIO_SIO_H
#define SIO_SIO_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "../http/http.h"

/* Reads "sioTestMode" and the optional "socketio" object {pingInterval, pingTimeout,
 * maxPayload, maxQueueBytes, connectTimeout, upgradeTimeout} of the config tree (borrowed).
 * Returns 0, or -1 with a heap message in *err. */
int sio_init(uv_loop_t *loop, const json_t *config_root, char **err);
/* Closes every socket (their memory goes once the loop runs); call before agent_shutdown. */
void sio_shutdown(void);
struct auth;
/* The access rules (borrowed for the process lifetime) that CONNECT packets of clients without
 * HTTP credentials are checked against; NULL = no token required. */
void sio_set_auth(struct auth *a);
/* Serves req if it belongs to Socket.IO (or to the test-mode /engine.io/ endpoint) and returns
 * true; false leaves it to the caller. authed: the request passed the access gate with valid
 * credentials (or none are required); otherwise a new client must send auth: {token} with
 * CONNECT, or gets CONNECT_ERROR "Authentication required". */
bool sio_handle(struct http_req *req, bool authed);

#endif
