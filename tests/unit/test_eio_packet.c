/* SPDX-License-Identifier: MIT */
/* test_eio_packet.c -- the Engine.IO v4 codec: single packets, polling payloads (text, binary as
 * base64, malformed parts, limits), payload building, the open packet, base64 against the RFC
 * 4648 vectors and random round trips, and message refcounts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/xalloc.h"
#include "sio/eio_packet.h"

static void test_decode_text(void **state)
{
    static const struct {
        const char *in;
        int rc;
        char type;
        const char *data;
    } cases[] = {
        {"4hello", 0, EIO_MESSAGE, "hello"},
        {"2", 0, EIO_PING, ""},
        {"2probe", 0, EIO_PING, "probe"},
        {"3", 0, EIO_PONG, ""},
        {"6", 0, EIO_NOOP, ""},
        {"0{}", 0, EIO_OPEN, "{}"},
        {"1", 0, EIO_CLOSE, ""},
        {"5", 0, EIO_UPGRADE, ""},
        {"", -1, 0, NULL},
        {"7", -1, 0, NULL},
        {"abc", -1, 0, NULL},
        {"/4", -1, 0, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct eio_pkt p;
        int rc = eio_decode_text(cases[i].in, strlen(cases[i].in), &p);
        assert_int_equal(rc, cases[i].rc);
        if (rc == 0) {
            assert_int_equal(p.type, cases[i].type);
            assert_false(p.binary);
            assert_int_equal(p.len, strlen(cases[i].data));
            assert_memory_equal(p.data, cases[i].data, p.len);
        }
    }
}

#define SEP "\x1e"

static void test_payload_decode(void **state)
{
    static const struct {
        const char *in;
        int rc;
        const char *want; /* packets as "<type>[b]:<data>;" (binary data in hex) */
    } cases[] = {
        {"4hello", 0, "4:hello;"},
        {"4test1" SEP "4test2" SEP "4test3", 0, "4:test1;4:test2;4:test3;"},
        {"4hello" SEP "bAQIDBA==", 0, "4:hello;4b:01020304;"},
        {"3" SEP "1", 0, "3:;1:;"},
        {"b", 0, "4b:;"}, /* an empty binary message */
        {"", -1, NULL},
        {"abc", -1, NULL},
        {"4a" SEP, -1, NULL},
        {SEP "4a", -1, NULL},
        {"4a" SEP SEP "4b", -1, NULL},
        {"bAQID!A==", -1, NULL},
        {"bAQI=", 0, "4b:0102;"},
        {"bAQI", -1, NULL}, /* unpadded base64 is refused */
        {"bAQ", -1, NULL},
        {"4ok" SEP "9", -1, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct eio_payload pl;
        int rc = eio_payload_decode(cases[i].in, strlen(cases[i].in), 100, &pl);
        assert_int_equal(rc, cases[i].rc);
        if (rc < 0) {
            assert_null(pl.pkts);
            continue;
        }
        struct buf b;
        buf_init(&b, 4096);
        for (size_t k = 0; k < pl.n; k++) {
            const struct eio_pkt *p = &pl.pkts[k];
            buf_appendf(&b, "%c%s:", p->type, p->binary ? "b" : "");
            for (size_t j = 0; j < p->len; j++) {
                if (p->binary)
                    buf_appendf(&b, "%02x", (unsigned char)p->data[j]);
                else
                    buf_appendc(&b, p->data[j]);
            }
            buf_appendc(&b, ';');
        }
        assert_string_equal(buf_str(&b), cases[i].want);
        buf_release(&b);
        eio_payload_release(&pl);
    }
}

static void test_payload_limit(void **state)
{
    struct eio_payload pl;
    const char *three = "4a" SEP "4b" SEP "4c";
    assert_int_equal(eio_payload_decode(three, strlen(three), 3, &pl), 0);
    assert_int_equal(pl.n, 3);
    eio_payload_release(&pl);
    assert_int_equal(eio_payload_decode(three, strlen(three), 2, &pl), -1);
}

static void test_payload_build(void **state)
{
    struct buf b;
    buf_init(&b, 1024);
    struct eio_msg *m1 = eio_msg_text(EIO_MESSAGE, "hello", 5);
    const unsigned char bin[] = {1, 2, 3, 4};
    struct eio_msg *m2 = eio_msg_new(true, (const char *)bin, sizeof(bin));
    struct eio_msg *m3 = eio_msg_text(EIO_PING, NULL, 0);
    eio_payload_append(&b, m1);
    assert_string_equal(buf_str(&b), "4hello");
    eio_payload_append(&b, m2);
    eio_payload_append(&b, m3);
    assert_string_equal(buf_str(&b), "4hello" SEP "bAQIDBA==" SEP "2");
    /* and back */
    struct eio_payload pl;
    assert_int_equal(eio_payload_decode(b.data, b.len, 10, &pl), 0);
    assert_int_equal(pl.n, 3);
    assert_true(pl.pkts[1].binary);
    assert_memory_equal(pl.pkts[1].data, bin, 4);
    eio_payload_release(&pl);
    eio_msg_unref(m1);
    eio_msg_unref(m2);
    eio_msg_unref(m3);
    buf_release(&b);
}

static void test_open_packet(void **state)
{
    struct buf b;
    buf_init(&b, 1024);
    eio_open_packet(&b, "abc123", true, 25000, 20000, 1000000);
    assert_string_equal(buf_str(&b), "0{\"sid\":\"abc123\",\"upgrades\":[\"websocket\"],"
                                     "\"pingInterval\":25000,\"pingTimeout\":20000,"
                                     "\"maxPayload\":1000000}");
    buf_reset(&b);
    eio_open_packet(&b, "x", false, 300, 200, 1000000);
    json_t *j = json_loads(b.data + 1, 0, NULL);
    assert_non_null(j);
    assert_int_equal(json_array_size(json_object_get(j, "upgrades")), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "pingInterval")), 300);
    json_decref(j);
    buf_release(&b);
}

static void test_base64_vectors(void **state)
{
    static const char *vec[][2] = {{"", ""},
                                   {"f", "Zg=="},
                                   {"fo", "Zm8="},
                                   {"foo", "Zm9v"},
                                   {"foob", "Zm9vYg=="},
                                   {"fooba", "Zm9vYmE="},
                                   {"foobar", "Zm9vYmFy"}};
    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        char out[16];
        size_t n = eio_base64_encode(vec[i][0], strlen(vec[i][0]), out);
        assert_int_equal(n, strlen(vec[i][1]));
        assert_string_equal(out, vec[i][1]);
        unsigned char dec[16];
        long d = eio_base64_decode(vec[i][1], strlen(vec[i][1]), dec);
        assert_int_equal(d, (long)strlen(vec[i][0]));
        assert_memory_equal(dec, vec[i][0], (size_t)d);
    }
    static const char *bad[] = {"Zg=", "Z===", "Zm9v!A==", "=AAA", "Zg==Zg==", "Zm=v", "A"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        unsigned char dec[16];
        assert_int_equal(eio_base64_decode(bad[i], strlen(bad[i]), dec), -1);
    }
}

static void test_base64_roundtrip(void **state)
{
    srand(7);
    for (size_t len = 0; len < 200; len++) {
        unsigned char in[200], dec[200];
        char enc[300];
        for (size_t i = 0; i < len; i++)
            in[i] = (unsigned char)rand();
        size_t n = eio_base64_encode(in, len, enc);
        assert_int_equal(n, (len + 2) / 3 * 4);
        assert_int_equal(eio_base64_decode(enc, n, dec), (long)len);
        assert_memory_equal(dec, in, len);
    }
}

static void test_msg_refs(void **state)
{
    struct eio_msg *m = eio_msg_text(EIO_MESSAGE, "2[\"x\"]", 6);
    assert_int_equal(m->len, 7);
    assert_string_equal(m->data, "42[\"x\"]");
    assert_false(m->binary);
    eio_msg_ref(m);
    assert_int_equal(m->refs, 2);
    eio_msg_unref(m);
    eio_msg_unref(m); /* freed: LeakSanitizer checks the count */
    eio_msg_unref(NULL);
}

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_text),      cmocka_unit_test(test_payload_decode),
        cmocka_unit_test(test_payload_limit),    cmocka_unit_test(test_payload_build),
        cmocka_unit_test(test_open_packet),      cmocka_unit_test(test_base64_vectors),
        cmocka_unit_test(test_base64_roundtrip), cmocka_unit_test(test_msg_refs),
    };
    return cmocka_run_group_tests_name("eio_packet", tests, NULL, NULL);
}
