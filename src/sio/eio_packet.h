/* SPDX-License-Identifier: MIT */
/* eio_packet.h -- Engine.IO protocol v4 packets and polling payloads (pure: no I/O). A text
 * packet is its type digit followed by its data; over HTTP long-polling several packets travel
 * in one body separated by 0x1e, binary ones as "b" + base64. Over WebSocket each packet is one
 * frame, and a binary frame is a message packet with no type prefix. */
#ifndef SIO_EIO_PACKET_H
#define SIO_EIO_PACKET_H

#include <stdbool.h>
#include <stddef.h>

#include "../core/buf.h"

/* Packet types (the first character of a text packet). */
#define EIO_OPEN '0'
#define EIO_CLOSE '1'
#define EIO_PING '2'
#define EIO_PONG '3'
#define EIO_MESSAGE '4'
#define EIO_UPGRADE '5'
#define EIO_NOOP '6'

#define EIO_SEPARATOR '\x1e'

/* One outgoing packet, serialized once and shared (refcounted) by every socket it is sent to.
 * A text packet holds its type character then its data; a binary one holds the raw bytes. */
struct eio_msg {
    unsigned refs;
    bool binary;
    size_t len;
    char data[]; /* NUL-terminated */
};

/* A new message with refs = 1. eio_msg_text prefixes the type character. */
struct eio_msg *eio_msg_new(bool binary, const char *p, size_t len);
struct eio_msg *eio_msg_text(char type, const char *p, size_t len);
void eio_msg_ref(struct eio_msg *m);
void eio_msg_unref(struct eio_msg *m); /* NULL ok */

/* One received packet; data points into the input (or into owned for a decoded binary). */
struct eio_pkt {
    char type; /* EIO_MESSAGE for binary packets */
    bool binary;
    const char *data;
    size_t len;
    char *owned; /* base64-decoded bytes of a polling binary packet, or NULL */
};

/* Decodes one text packet (a WebSocket text frame, or one part of a polling payload without its
 * "b" form). Returns 0, or -1 if empty or of an unknown type. */
int eio_decode_text(const char *p, size_t len, struct eio_pkt *out);

/* A decoded polling payload. */
struct eio_payload {
    struct eio_pkt *pkts;
    size_t n, cap;
};

/* Decodes a whole polling payload (all or nothing). Returns 0, or -1 if any packet is malformed
 * (nothing is kept) or there are more than max_packets. */
int eio_payload_decode(const char *p, size_t len, size_t max_packets, struct eio_payload *out);
void eio_payload_release(struct eio_payload *pl);
/* Appends m to a polling payload being built (the separator first unless b is empty). */
void eio_payload_append(struct buf *b, const struct eio_msg *m);

/* The open packet: 0{"sid","upgrades","pingInterval","pingTimeout","maxPayload"}. */
void eio_open_packet(struct buf *b, const char *sid, bool can_upgrade, unsigned ping_interval_ms,
                     unsigned ping_timeout_ms, size_t max_payload);

/* RFC 4648 base64 with padding. encode writes 4*ceil(len/3) chars plus a NUL. decode returns
 * the decoded length, or -1 on invalid input; out needs room for len/4*3 bytes. */
size_t eio_base64_encode(const void *p, size_t len, char *out);
long eio_base64_decode(const char *p, size_t len, unsigned char *out);

#endif
