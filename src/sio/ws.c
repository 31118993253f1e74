/* SPDX-License-Identifier: MIT */
/* ws.c -- WebSocket server side over wslay's event API (see ws.h), plus the SHA-1 that the
 * opening handshake needs. Received bytes are handed to wslay from the owner's buffer through
 * the recv callback; everything wslay sends (pongs, close frames) goes to the owner's write
 * callback in one piece, so wslay's queue is always empty between calls and the data frames
 * framed here can never interleave with its frames. */
#include <string.h>
#include <wslay/wslay.h>

#include "../core/xalloc.h"
#include "eio_packet.h"
#include "ws.h"

struct ws {
    wslay_event_context_ptr ctx;
    const struct ws_ops *ops;
    void *data;
    const char *in; /* bytes being fed, consumed by recv_cb */
    size_t in_len;
    bool failed; /* wslay returned a fatal error */
};

/* ---- SHA-1 (FIPS 180-4 §6.1) ---- */

static uint32_t rol(uint32_t x, int n)
{
    return x << n | x >> (32 - n);
}

static void sha1_block(uint32_t h[5], const uint8_t b[64])
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 |
               (uint32_t)b[4 * i + 2] << 8 | b[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (bb & c) | (~bb & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = bb ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (bb & c) | (bb & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = bb ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(bb, 30);
        bb = a;
        a = t;
    }
    h[0] += a;
    h[1] += bb;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void ws_sha1(const void *p, size_t len, uint8_t out[20])
{
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    const uint8_t *s = p;
    size_t full = len / 64 * 64;
    for (size_t i = 0; i < full; i += 64)
        sha1_block(h, s + i);
    /* Padding: 0x80, zeros, then the bit length big-endian in the last 8 bytes. */
    uint8_t tail[128] = {0};
    size_t rest = len - full;
    memcpy(tail, s + full, rest);
    tail[rest] = 0x80;
    size_t tlen = rest + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++)
        tail[tlen - 1 - i] = (uint8_t)(bits >> (8 * i));
    for (size_t i = 0; i < tlen; i += 64)
        sha1_block(h, tail + i);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(h[i] >> 8);
        out[4 * i + 3] = (uint8_t)h[i];
    }
}

void ws_accept_key(const char *key, size_t len, char out[29])
{
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char tmp[128 + sizeof(guid)];
    if (len > 128)
        len = 128; /* a real key is 24 characters; the caller checks it */
    memcpy(tmp, key, len);
    memcpy(tmp + len, guid, sizeof(guid) - 1);
    uint8_t digest[20];
    ws_sha1(tmp, len + sizeof(guid) - 1, digest);
    eio_base64_encode(digest, 20, out);
}

/* ---- wslay callbacks ---- */

static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
    struct ws *w = ud;
    if (w->in_len == 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    size_t n = len < w->in_len ? len : w->in_len;
    memcpy(buf, w->in, n);
    w->in += n;
    w->in_len -= n;
    return (ssize_t)n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud)
{
    struct ws *w = ud;
    w->ops->write(w->data, (const char *)data, len);
    return (ssize_t)len;
}

static void on_msg_recv(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                        void *ud)
{
    struct ws *w = ud;
    if (arg->opcode == WSLAY_TEXT_FRAME || arg->opcode == WSLAY_BINARY_FRAME)
        w->ops->on_message(w->data, arg->opcode == WSLAY_BINARY_FRAME, (const char *)arg->msg,
                           arg->msg_length);
    /* ping, pong and close are answered by wslay itself */
}

/* ---- public ---- */

struct ws *ws_new(const struct ws_ops *ops, void *data, size_t max_msg_bytes)
{
    static const struct wslay_event_callbacks cbs = {
        .recv_callback = recv_cb,
        .send_callback = send_cb,
        .on_msg_recv_callback = on_msg_recv,
    };
    struct ws *w = xcalloc(1, sizeof(*w));
    w->ops = ops;
    w->data = data;
    if (wslay_event_context_server_init(&w->ctx, &cbs, w) != 0) {
        xfree(w);
        return NULL;
    }
    wslay_event_config_set_max_recv_msg_length(w->ctx, max_msg_bytes);
    return w;
}

void ws_free(struct ws *w)
{
    if (!w)
        return;
    wslay_event_context_free(w->ctx);
    xfree(w);
}

bool ws_done(const struct ws *w)
{
    if (w->failed)
        return true;
    return !wslay_event_want_read(w->ctx) && !wslay_event_want_write(w->ctx);
}

static void flush_wslay(struct ws *w)
{
    if (!w->failed && wslay_event_want_write(w->ctx) && wslay_event_send(w->ctx) < 0)
        w->failed = true;
}

/* A close frame written by hand, for when wslay gave up without sending one. */
static void write_close(struct ws *w, uint16_t code)
{
    const char f[4] = {(char)0x88, 2, (char)(code >> 8), (char)code};
    w->ops->write(w->data, f, sizeof(f));
}

int ws_feed(struct ws *w, const char *p, size_t len)
{
    if (ws_done(w))
        return 1;
    w->in = p;
    w->in_len = len;
    /* On most protocol errors and on an oversize message wslay queues the close frame itself
     * (1002, 1009) and stops reading, which ws_done sees once that frame is out. Some errors
     * (a fragmented control frame) are fatal to it instead: then the 1002 is ours. */
    if (wslay_event_recv(w->ctx) < 0) {
        w->failed = true;
        if (!wslay_event_get_close_sent(w->ctx))
            write_close(w, WS_CLOSE_PROTOCOL);
    }
    w->in = NULL;
    w->in_len = 0;
    flush_wslay(w);
    return ws_done(w) ? 1 : 0;
}

int ws_send(struct ws *w, bool binary, const char *p, size_t len)
{
    if (w->failed || wslay_event_get_close_sent(w->ctx))
        return -1;
    /* RFC 6455 §5.2: FIN + opcode, then a 7-bit, 16-bit or 64-bit length; no mask from a
     * server. */
    uint8_t h[10];
    size_t n = 2;
    h[0] = (uint8_t)(0x80 | (binary ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME));
    if (len < 126) {
        h[1] = (uint8_t)len;
    } else if (len < 65536) {
        h[1] = 126;
        h[2] = (uint8_t)(len >> 8);
        h[3] = (uint8_t)len;
        n = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
        n = 10;
    }
    w->ops->write(w->data, (const char *)h, n);
    if (len)
        w->ops->write(w->data, p, len);
    return 0;
}

void ws_close(struct ws *w, uint16_t code)
{
    if (w->failed || wslay_event_get_close_sent(w->ctx))
        return;
    if (wslay_event_queue_close(w->ctx, code, NULL, 0) != 0)
        w->failed = true;
    flush_wslay(w);
}
