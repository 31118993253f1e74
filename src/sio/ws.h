/* SPDX-License-Identifier: MIT */
/* ws.h -- the server side of a WebSocket (RFC 6455) over wslay, kept apart from the socket: the
 * owner feeds it the bytes it reads and gets the bytes to write through a callback, so it is
 * unit-tested without a network. wslay parses, unmasks, reassembles fragments, answers pings
 * and the close handshake; data messages are framed here directly into the owner's output. */
#ifndef SIO_WS_H
#define SIO_WS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ws;

struct ws_ops {
    /* Bytes for the peer; always taken whole (the owner queues them). */
    void (*write)(void *data, const char *p, size_t len);
    /* A complete text or binary message. May call ws_send/ws_close; must not free the ws. */
    void (*on_message)(void *data, bool binary, const char *p, size_t len);
};

/* RFC 6455 close codes we send. */
#define WS_CLOSE_NORMAL 1000
#define WS_CLOSE_GOING_AWAY 1001
#define WS_CLOSE_PROTOCOL 1002
#define WS_CLOSE_TOO_BIG 1009

/* Writes the Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 §4.2.2: base64 of
 * the SHA-1 of the key and the protocol GUID) plus a NUL into out. */
void ws_accept_key(const char *key, size_t len, char out[29]);
/* SHA-1 (FIPS 180-4) of p[0..len) into out. */
void ws_sha1(const void *p, size_t len, uint8_t out[20]);

/* A server-side WebSocket; messages above max_msg_bytes are refused with a 1009 close. */
struct ws *ws_new(const struct ws_ops *ops, void *data, size_t max_msg_bytes);
void ws_free(struct ws *w); /* NULL ok */
/* Feeds received bytes. Returns 0 while the connection goes on, or 1 once it is finished (the
 * close handshake is done, or a protocol error or an oversize message was answered with a close
 * frame): the owner then writes out what is queued and closes the connection. */
int ws_feed(struct ws *w, const char *p, size_t len);
/* Sends one unfragmented message. Returns 0, or -1 once a close frame was sent. */
int ws_send(struct ws *w, bool binary, const char *p, size_t len);
/* Sends a close frame (once); the owner then ends the connection after writing it out. */
void ws_close(struct ws *w, uint16_t code);
/* True once nothing more can be exchanged (see ws_feed's 1). */
bool ws_done(const struct ws *w);

#endif
