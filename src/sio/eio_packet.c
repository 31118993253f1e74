/* SPDX-License-Identifier: MIT */
/* eio_packet.c -- Engine.IO v4 packet and payload codec, and base64 (see eio_packet.h). */
#include <string.h>

#include "../core/xalloc.h"
#include "eio_packet.h"

/* ---- messages ---- */

struct eio_msg *eio_msg_new(bool binary, const char *p, size_t len)
{
    struct eio_msg *m = xmalloc(sizeof(*m) + len + 1);
    m->refs = 1;
    m->binary = binary;
    m->len = len;
    if (len)
        memcpy(m->data, p, len);
    m->data[len] = '\0';
    return m;
}

struct eio_msg *eio_msg_text(char type, const char *p, size_t len)
{
    struct eio_msg *m = xmalloc(sizeof(*m) + len + 2);
    m->refs = 1;
    m->binary = false;
    m->len = len + 1;
    m->data[0] = type;
    if (len)
        memcpy(m->data + 1, p, len);
    m->data[len + 1] = '\0';
    return m;
}

void eio_msg_ref(struct eio_msg *m)
{
    m->refs++;
}

void eio_msg_unref(struct eio_msg *m)
{
    if (m && --m->refs == 0)
        xfree(m);
}

/* ---- decoding ---- */

int eio_decode_text(const char *p, size_t len, struct eio_pkt *out)
{
    memset(out, 0, sizeof(*out));
    if (len == 0 || p[0] < EIO_OPEN || p[0] > EIO_NOOP)
        return -1;
    out->type = p[0];
    out->data = p + 1;
    out->len = len - 1;
    return 0;
}

static int decode_part(const char *p, size_t len, struct eio_pkt *out)
{
    if (len == 0 || p[0] != 'b')
        return eio_decode_text(p, len, out);
    memset(out, 0, sizeof(*out));
    out->owned = xmalloc(len / 4 * 3 + 1);
    long n = eio_base64_decode(p + 1, len - 1, (unsigned char *)out->owned);
    if (n < 0) {
        xfree(out->owned);
        out->owned = NULL;
        return -1;
    }
    out->type = EIO_MESSAGE;
    out->binary = true;
    out->data = out->owned;
    out->len = (size_t)n;
    return 0;
}

void eio_payload_release(struct eio_payload *pl)
{
    for (size_t i = 0; i < pl->n; i++)
        xfree(pl->pkts[i].owned);
    xfree(pl->pkts);
    memset(pl, 0, sizeof(*pl));
}

int eio_payload_decode(const char *p, size_t len, size_t max_packets, struct eio_payload *out)
{
    memset(out, 0, sizeof(*out));
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && p[i] != EIO_SEPARATOR)
            continue;
        if (out->n == max_packets)
            goto fail;
        if (out->n == out->cap) {
            out->cap = out->cap ? out->cap * 2 : 4;
            out->pkts = xrealloc(out->pkts, out->cap * sizeof(*out->pkts));
        }
        if (decode_part(p + start, i - start, &out->pkts[out->n]) < 0)
            goto fail;
        out->n++;
        start = i + 1;
    }
    return 0;
fail:
    eio_payload_release(out);
    return -1;
}

/* ---- encoding ---- */

void eio_payload_append(struct buf *b, const struct eio_msg *m)
{
    if (b->len)
        buf_appendc(b, EIO_SEPARATOR);
    if (!m->binary) {
        buf_append(b, m->data, m->len);
        return;
    }
    char *tmp = xmalloc((m->len + 2) / 3 * 4 + 2);
    tmp[0] = 'b';
    size_t n = eio_base64_encode(m->data, m->len, tmp + 1);
    buf_append(b, tmp, n + 1);
    xfree(tmp);
}

void eio_open_packet(struct buf *b, const char *sid, bool can_upgrade, unsigned ping_interval_ms,
                     unsigned ping_timeout_ms, size_t max_payload)
{
    buf_append_lit(b, "0{\"sid\":\"");
    buf_appends(b, sid); /* our own id alphabet: nothing to escape */
    buf_appends(b, can_upgrade ? "\",\"upgrades\":[\"websocket\"],\"pingInterval\":"
                               : "\",\"upgrades\":[],\"pingInterval\":");
    buf_append_i64(b, ping_interval_ms);
    buf_append_lit(b, ",\"pingTimeout\":");
    buf_append_i64(b, ping_timeout_ms);
    buf_append_lit(b, ",\"maxPayload\":");
    buf_append_i64(b, (long long)max_payload);
    buf_appendc(b, '}');
}

/* ---- base64 (RFC 4648 §4) ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t eio_base64_encode(const void *p, size_t len, char *out)
{
    const unsigned char *s = p;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = b64[(v >> 6) & 63];
        out[o++] = b64[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)s[i] << 16 | (i + 1 < len ? (unsigned)s[i + 1] << 8 : 0);
        out[o++] = b64[v >> 18];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

static int b64val(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

long eio_base64_decode(const char *p, size_t len, unsigned char *out)
{
    if (len % 4 != 0)
        return -1;
    long o = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4];
        int pad = 0;
        for (int k = 0; k < 4; k++) {
            bool last_quad = i + 4 == len;
            if (p[i + k] == '=' && last_quad && k >= 2 && (k == 3 || p[i + 3] == '=')) {
                v[k] = 0;
                pad++;
                continue;
            }
            v[k] = b64val(p[i + k]);
            if (v[k] < 0 || pad)
                return -1;
        }
        unsigned x = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | v[3];
        out[o++] = (unsigned char)(x >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(x >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)x;
    }
    return o;
}
