/* SPDX-License-Identifier: MIT */
/* sio_packet.c -- Socket.IO v5 packet codec (see sio_packet.h). */
#include <string.h>

#include "sio_packet.h"

#define MAX_ACK_DIGITS 15 /* ids stay exact as JavaScript numbers */

/* Event names a client may not emit: the server side reserves them. */
static bool reserved_event(const char *name)
{
    static const char *names[] = {"connect",       "connect_error", "disconnect",
                                  "disconnecting", "newListener",   "removeListener"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

static bool payload_valid(enum sio_type type, const json_t *d)
{
    switch (type) {
    case SIO_CONNECT:
        return json_is_object(d);
    case SIO_DISCONNECT:
        return false; /* a payload at all is invalid */
    case SIO_CONNECT_ERROR:
        return json_is_string(d) || json_is_object(d);
    case SIO_EVENT:
    case SIO_BINARY_EVENT: {
        const json_t *first = json_array_get(d, 0);
        return json_is_array(d) &&
               (json_is_number(first) ||
                (json_is_string(first) && !reserved_event(json_string_value(first))));
    }
    case SIO_ACK:
    case SIO_BINARY_ACK:
        return json_is_array(d);
    }
    return false;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* "<digits>-" after a binary type. */
static int parse_attachments(const char *p, size_t len, size_t *i, unsigned *out)
{
    size_t start = *i;
    unsigned n = 0;
    while (*i < len && is_digit(p[*i]) && *i - start < 3)
        n = n * 10 + (unsigned)(p[(*i)++] - '0');
    if (*i == start || *i >= len || p[*i] != '-' || n > SIO_MAX_ATTACHMENTS)
        return -1;
    (*i)++;
    *out = n;
    return 0;
}

/* "/name" up to a comma (consumed) or the end. */
static int parse_nsp(const char *p, size_t len, size_t *i, char *nsp)
{
    size_t start = *i;
    while (*i < len && p[*i] != ',')
        (*i)++;
    size_t n = *i - start;
    if (n > SIO_MAX_NSP)
        return -1;
    memcpy(nsp, p + start, n);
    nsp[n] = '\0';
    if (memchr(nsp, '\0', n))
        return -1;
    if (*i < len)
        (*i)++; /* the comma */
    return 0;
}

void sio_pkt_release(struct sio_pkt *pkt)
{
    json_decref(pkt->data);
    pkt->data = NULL;
}

int sio_decode(const char *p, size_t len, struct sio_pkt *out)
{
    memset(out, 0, sizeof(*out));
    out->ack_id = -1;
    out->nsp[0] = '/';
    out->nsp[1] = '\0';
    if (len == 0 || !is_digit(p[0]) || p[0] > '6')
        return -1;
    out->type = (enum sio_type)(p[0] - '0');
    size_t i = 1;
    if ((out->type == SIO_BINARY_EVENT || out->type == SIO_BINARY_ACK) &&
        parse_attachments(p, len, &i, &out->attachments) < 0)
        return -1;
    if (i < len && p[i] == '/' && parse_nsp(p, len, &i, out->nsp) < 0)
        return -1;
    if (i < len && is_digit(p[i])) {
        int64_t id = 0;
        size_t start = i;
        while (i < len && is_digit(p[i])) {
            if (i - start == MAX_ACK_DIGITS)
                return -1;
            id = id * 10 + (p[i++] - '0');
        }
        out->ack_id = id;
    }
    if (i == len)
        return 0;
    json_error_t je;
    out->data = json_loadb(p + i, len - i, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!out->data || !payload_valid(out->type, out->data)) {
        sio_pkt_release(out);
        return -1;
    }
    return 0;
}

void sio_encode_head(struct buf *b, enum sio_type type, unsigned attachments, const char *nsp,
                     int64_t ack_id)
{
    buf_appendc(b, (char)('0' + type));
    if (type == SIO_BINARY_EVENT || type == SIO_BINARY_ACK) {
        buf_append_i64(b, attachments);
        buf_appendc(b, '-');
    }
    if (nsp && strcmp(nsp, "/") != 0) {
        buf_appends(b, nsp);
        buf_appendc(b, ',');
    }
    if (ack_id >= 0)
        buf_append_i64(b, ack_id);
}
