/* SPDX-License-Identifier: MIT */
/* test_ws.c -- the WebSocket glue without a network: SHA-1 against the FIPS 180 vectors, the
 * RFC 6455 accept key, masked client frames fed whole and split at every byte, fragments with
 * a ping in between, the close handshake, and the errors that end a connection (unmasked
 * frames, reserved bits, oversize messages), plus the length forms of the frames we send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/xalloc.h"
#include "sio/ws.h"

/* ---- a fake owner: what the ws writes, and the messages it delivers ---- */

struct owner {
    struct buf out;  /* bytes written to the "peer" */
    struct buf msgs; /* "t:<text>;" / "b:<len>;" per message */
};

static void o_write(void *data, const char *p, size_t len)
{
    struct owner *o = data;
    buf_append(&o->out, p, len);
}

static void o_message(void *data, bool binary, const char *p, size_t len)
{
    struct owner *o = data;
    if (binary) {
        buf_appendf(&o->msgs, "b:%zu;", len);
        return;
    }
    buf_append_lit(&o->msgs, "t:");
    buf_append(&o->msgs, p, len);
    buf_appendc(&o->msgs, ';');
}

static const struct ws_ops ops = {o_write, o_message};

static void owner_init(struct owner *o)
{
    buf_init(&o->out, 1 << 22);
    buf_init(&o->msgs, 1 << 22);
}

static void owner_release(struct owner *o)
{
    buf_release(&o->out);
    buf_release(&o->msgs);
}

/* ---- frames ---- */

/* A client frame into b; mask=false makes the forbidden unmasked kind. */
static void frame(struct buf *b, int opcode, bool fin, bool mask, const void *p, size_t len)
{
    const unsigned char *s = p;
    buf_appendc(b, (char)((fin ? 0x80 : 0) | opcode));
    unsigned char m = mask ? 0x80 : 0;
    if (len < 126) {
        buf_appendc(b, (char)(m | len));
    } else if (len < 65536) {
        buf_appendc(b, (char)(m | 126));
        buf_appendc(b, (char)(len >> 8));
        buf_appendc(b, (char)len);
    } else {
        buf_appendc(b, (char)(m | 127));
        for (int i = 7; i >= 0; i--)
            buf_appendc(b, (char)((uint64_t)len >> (8 * i)));
    }
    static const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
    if (mask)
        buf_append(b, key, 4);
    for (size_t i = 0; i < len; i++)
        buf_appendc(b, (char)(mask ? s[i] ^ key[i & 3] : s[i]));
}

/* A server frame parsed from out at *pos: returns opcode, sets payload/len; -1 if incomplete. */
static int next_frame(const struct buf *out, size_t *pos, const unsigned char **payload,
                      size_t *len)
{
    const unsigned char *p = (const unsigned char *)out->data + *pos;
    size_t avail = out->len - *pos;
    if (avail < 2)
        return -1;
    assert_int_equal(p[1] & 0x80, 0); /* servers never mask */
    size_t n = p[1] & 127, off = 2;
    if (n == 126) {
        n = (size_t)p[2] << 8 | p[3];
        off = 4;
    } else if (n == 127) {
        n = 0;
        for (int i = 0; i < 8; i++)
            n = n << 8 | p[2 + i];
        off = 10;
    }
    assert_true(avail >= off + n);
    assert_true(p[0] & 0x80); /* FIN: we never fragment */
    *payload = p + off;
    *len = n;
    *pos += off + n;
    return p[0] & 15;
}

/* ---- tests ---- */

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void test_sha1(void **state)
{
    static const char *vec[][2] = {
        {"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
        {"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
        {"The quick brown fox jumps over the lazy dog", "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12"},
    };
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        uint8_t d[20];
        char h[41];
        ws_sha1(vec[i][0], strlen(vec[i][0]), d);
        hex(d, 20, h);
        assert_string_equal(h, vec[i][1]);
    }
    /* a million 'a': many blocks */
    size_t n = 1000000;
    char *a = xmalloc(n);
    memset(a, 'a', n);
    uint8_t d[20];
    char h[41];
    ws_sha1(a, n, d);
    hex(d, 20, h);
    assert_string_equal(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    /* every length around the padding boundary differs from its neighbours */
    char prev[41] = "";
    for (size_t len = 50; len < 70; len++) {
        ws_sha1(a, len, d);
        hex(d, 20, h);
        assert_string_not_equal(h, prev);
        memcpy(prev, h, sizeof(prev));
    }
    xfree(a);
}

static void test_accept_key(void **state)
{
    char out[29];
    const char *key = "dGhlIHNhbXBsZSBub25jZQ==";
    ws_accept_key(key, strlen(key), out); /* RFC 6455 §1.3 */
    assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* Feeds in whole, then split at every position (every 97th past the first 4 KiB), then byte
 * by byte; the messages and the return code must be the same every way. */
static void feed_all_ways(const struct buf *in, const char *want_msgs, int want_rc)
{
    for (size_t split = 0; split <= in->len + 1; split += split < 4096 ? 1 : 97) {
        if (split > in->len)
            split = in->len + 1; /* always end with the byte-by-byte pass */
        struct owner o;
        owner_init(&o);
        struct ws *w = ws_new(&ops, &o, 1 << 20);
        int rc = 0;
        if (split <= in->len) {
            rc = ws_feed(w, in->data, split);
            if (rc == 0)
                rc = ws_feed(w, in->data + split, in->len - split);
        } else {
            for (size_t i = 0; i < in->len && rc == 0; i++)
                rc = ws_feed(w, in->data + i, 1);
        }
        assert_int_equal(rc, want_rc);
        assert_string_equal(buf_str(&o.msgs), want_msgs);
        ws_free(w);
        owner_release(&o);
    }
}

static void test_messages(void **state)
{
    struct buf in;
    buf_init(&in, 1 << 20);
    frame(&in, 1, true, true, "4hello", 6);
    frame(&in, 2, true, true, "\x01\x02\x03", 3);
    frame(&in, 1, true, true, "", 0);
    /* a fragmented text message with a ping in the middle */
    frame(&in, 1, false, true, "42[\"pi", 6);
    frame(&in, 9, true, true, "hb", 2);
    frame(&in, 0, true, true, "ng\"]", 4);
    /* 200 and 70000 bytes: the 16- and 64-bit length forms */
    char big[70000];
    memset(big, 'x', sizeof(big));
    big[0] = '4';
    frame(&in, 1, true, true, big, 200);
    frame(&in, 2, true, true, big, sizeof(big));
    feed_all_ways(&in,
                  "t:4hello;b:3;t:;t:42[\"ping\"];t:4xxxxxxxxxxxxxxxx"
                  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                  "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx;b:70000;",
                  0);
    /* the ping was answered with a pong carrying its payload */
    struct owner o;
    owner_init(&o);
    struct ws *w = ws_new(&ops, &o, 1 << 20);
    assert_int_equal(ws_feed(w, in.data, in.len), 0);
    size_t pos = 0;
    const unsigned char *pl;
    size_t len;
    assert_int_equal(next_frame(&o.out, &pos, &pl, &len), 10);
    assert_int_equal(len, 2);
    assert_memory_equal(pl, "hb", 2);
    assert_int_equal(pos, o.out.len);
    ws_free(w);
    owner_release(&o);
    buf_release(&in);
}

/* Feeds in and returns the close code the ws answered with (0 if none); rc must be 1. */
static int closes_with(const struct buf *in, size_t max_msg)
{
    struct owner o;
    owner_init(&o);
    struct ws *w = ws_new(&ops, &o, max_msg);
    int rc = ws_feed(w, in->data, in->len);
    assert_int_equal(rc, 1);
    assert_true(ws_done(w));
    assert_int_equal(ws_send(w, false, "4x", 2), -1); /* nothing after the close */
    int code = 0;
    size_t pos = 0;
    const unsigned char *pl;
    size_t len;
    int op;
    while ((op = pos < o.out.len ? next_frame(&o.out, &pos, &pl, &len) : -1) >= 0)
        if (op == 8)
            code = len >= 2 ? pl[0] << 8 | pl[1] : 0;
    ws_free(w);
    owner_release(&o);
    return code;
}

static void test_close_handshake(void **state)
{
    struct buf in;
    buf_init(&in, 1024);
    frame(&in, 1, true, true, "4a", 2);
    frame(&in, 8, true, true, "\x03\xe8", 2);
    frame(&in, 1, true, true, "4after", 6); /* ignored: the peer closed */
    assert_int_equal(closes_with(&in, 1000), 1000);
    buf_release(&in);
}

static void test_errors(void **state)
{
    struct buf in;
    buf_init(&in, 1 << 20);
    frame(&in, 1, true, false, "4hello", 6); /* unmasked */
    assert_int_equal(closes_with(&in, 1000), WS_CLOSE_PROTOCOL);
    buf_reset(&in);
    buf_append(&in, "\xf1\x80\0\0\0\0", 6); /* reserved bits set */
    assert_int_equal(closes_with(&in, 1000), WS_CLOSE_PROTOCOL);
    buf_reset(&in);
    frame(&in, 0, true, true, "x", 1); /* a continuation with nothing to continue */
    assert_int_equal(closes_with(&in, 1000), WS_CLOSE_PROTOCOL);
    buf_reset(&in);
    frame(&in, 9, false, true, "x", 1); /* a fragmented control frame */
    assert_int_equal(closes_with(&in, 1000), WS_CLOSE_PROTOCOL);
    buf_reset(&in);
    char big[2000];
    memset(big, 'y', sizeof(big));
    frame(&in, 1, true, true, big, 1001); /* over the message cap */
    assert_int_equal(closes_with(&in, 1000), WS_CLOSE_TOO_BIG);
    buf_reset(&in);
    frame(&in, 1, false, true, big, 600); /* the cap holds across fragments */
    frame(&in, 0, true, true, big, 600);
    assert_int_equal(closes_with(&in, 1000), WS_CLOSE_TOO_BIG);
    buf_release(&in);
}

static void test_send_forms(void **state)
{
    static const size_t lens[] = {0, 1, 125, 126, 65535, 65536, 100000};
    char *p = xmalloc(100000);
    for (size_t i = 0; i < 100000; i++)
        p[i] = (char)i;
    for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
        struct owner o;
        owner_init(&o);
        struct ws *w = ws_new(&ops, &o, 1000);
        assert_int_equal(ws_send(w, i % 2 == 1, p, lens[i]), 0);
        size_t pos = 0;
        const unsigned char *pl;
        size_t len;
        assert_int_equal(next_frame(&o.out, &pos, &pl, &len), i % 2 == 1 ? 2 : 1);
        assert_int_equal(len, lens[i]);
        assert_memory_equal(pl, p, len);
        assert_int_equal(pos, o.out.len);
        size_t hdr = lens[i] < 126 ? 2 : lens[i] < 65536 ? 4 : 10;
        assert_int_equal(o.out.len, hdr + lens[i]);
        /* a close from us: one close frame, and nothing sent after it */
        ws_close(w, WS_CLOSE_GOING_AWAY);
        ws_close(w, WS_CLOSE_GOING_AWAY);
        assert_int_equal(next_frame(&o.out, &pos, &pl, &len), 8);
        assert_int_equal(pl[0] << 8 | pl[1], WS_CLOSE_GOING_AWAY);
        assert_int_equal(pos, o.out.len);
        assert_int_equal(ws_send(w, false, "x", 1), -1);
        assert_false(ws_done(w)); /* waiting for the peer's close */
        struct buf in;
        buf_init(&in, 64);
        frame(&in, 8, true, true, "\x03\xe9", 2);
        assert_int_equal(ws_feed(w, in.data, in.len), 1);
        assert_int_equal(pos, o.out.len); /* no second close frame */
        buf_release(&in);
        ws_free(w);
        owner_release(&o);
    }
    xfree(p);
}

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha1),     cmocka_unit_test(test_accept_key),
        cmocka_unit_test(test_messages), cmocka_unit_test(test_close_handshake),
        cmocka_unit_test(test_errors),   cmocka_unit_test(test_send_forms),
    };
    return cmocka_run_group_tests_name("ws", tests, NULL, NULL);
}
