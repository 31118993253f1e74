/* SPDX-License-Identifier: MIT */
/* sio_packet.h -- Socket.IO protocol v5 packets (pure: no I/O). A packet is the data of an
 * Engine.IO message: <type digit>[<attachments>-][<namespace>,][<ack id>][<JSON payload>].
 * Binary packets carry {"_placeholder":true,"num":i} in their JSON and are followed by that
 * many binary Engine.IO messages. */
#ifndef SIO_SIO_PACKET_H
#define SIO_SIO_PACKET_H

#include <jansson.h>
#include <stdint.h>

#include "../core/buf.h"

enum sio_type {
    SIO_CONNECT = 0,
    SIO_DISCONNECT = 1,
    SIO_EVENT = 2,
    SIO_ACK = 3,
    SIO_CONNECT_ERROR = 4,
    SIO_BINARY_EVENT = 5,
    SIO_BINARY_ACK = 6,
};

#define SIO_MAX_NSP 128        /* namespace name length */
#define SIO_MAX_ATTACHMENTS 64 /* binary attachments of one packet */

struct sio_pkt {
    enum sio_type type;
    char nsp[SIO_MAX_NSP + 1]; /* "/" when absent */
    int64_t ack_id;            /* -1 when absent */
    unsigned attachments;      /* binary types only */
    json_t *data;              /* owned; NULL when there is no payload */
};

/* Decodes a packet and checks its payload the way the reference parser does: CONNECT takes an
 * object, DISCONNECT nothing, EVENT a non-empty array led by a non-reserved name (or a number),
 * ACK an array. Returns 0, or -1 if malformed (the caller closes the connection). */
int sio_decode(const char *p, size_t len, struct sio_pkt *out);
void sio_pkt_release(struct sio_pkt *pkt);
/* Appends the packet header (type, "N-", "nsp,", ack id) to b; the JSON payload goes after it.
 * ack_id < 0 for none. */
void sio_encode_head(struct buf *b, enum sio_type type, unsigned attachments, const char *nsp,
                     int64_t ack_id);

#endif
