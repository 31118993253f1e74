/* SPDX-License-Identifier: MIT */
/* test_sio_packet.c -- the Socket.IO v5 codec: a table of packets with their decoded type,
 * namespace, ack id, attachment count and payload, the malformed ones the reference parser
 * refuses (which close the connection), and header encoding. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/buf.h"
#include "core/xalloc.h"
#include "sio/sio_packet.h"

struct dec_case {
    const char *in;
    int rc;
    int type;
    const char *nsp;
    int64_t ack;
    unsigned atts;
    const char *data; /* compact JSON, or NULL for no payload */
};

static const struct dec_case cases[] = {
    {"0", 0, SIO_CONNECT, "/", -1, 0, NULL},
    {"0{\"token\":\"123\"}", 0, SIO_CONNECT, "/", -1, 0, "{\"token\":\"123\"}"},
    {"0/admin,", 0, SIO_CONNECT, "/admin", -1, 0, NULL},
    {"0/admin,{\"token\":\"123\"}", 0, SIO_CONNECT, "/admin", -1, 0, "{\"token\":\"123\"}"},
    {"0/random", 0, SIO_CONNECT, "/random", -1, 0, NULL},
    {"1", 0, SIO_DISCONNECT, "/", -1, 0, NULL},
    {"1/admin,", 0, SIO_DISCONNECT, "/admin", -1, 0, NULL},
    {"2[\"hello\",1]", 0, SIO_EVENT, "/", -1, 0, "[\"hello\",1]"},
    {"2/admin,456[\"project:delete\",123]", 0, SIO_EVENT, "/admin", 456, 0,
     "[\"project:delete\",123]"},
    {"2456[\"message-with-ack\",1,\"2\",{\"3\":[false]}]", 0, SIO_EVENT, "/", 456, 0,
     "[\"message-with-ack\",1,\"2\",{\"3\":[false]}]"},
    {"2[1,2]", 0, SIO_EVENT, "/", -1, 0, "[1,2]"},
    {"3/admin,456[]", 0, SIO_ACK, "/admin", 456, 0, "[]"},
    {"30[\"x\"]", 0, SIO_ACK, "/", 0, 0, "[\"x\"]"},
    {"4{\"message\":\"Not authorized\"}", 0, SIO_CONNECT_ERROR, "/", -1, 0,
     "{\"message\":\"Not authorized\"}"},
    {"4\"boom\"", 0, SIO_CONNECT_ERROR, "/", -1, 0, "\"boom\""},
    {"51-[\"hello\",{\"_placeholder\":true,\"num\":0}]", 0, SIO_BINARY_EVENT, "/", -1, 1,
     "[\"hello\",{\"_placeholder\":true,\"num\":0}]"},
    {"52-789[\"m\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]", 0,
     SIO_BINARY_EVENT, "/", 789, 2,
     "[\"m\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]"},
    {"61-/admin,456[{\"_placeholder\":true,\"num\":0}]", 0, SIO_BINARY_ACK, "/admin", 456, 1,
     "[{\"_placeholder\":true,\"num\":0}]"},
    {"50-[\"plain\"]", 0, SIO_BINARY_EVENT, "/", -1, 0, "[\"plain\"]"},
    /* malformed */
    {"", -1, 0, NULL, 0, 0, NULL},
    {"7", -1, 0, NULL, 0, 0, NULL},
    {"abc", -1, 0, NULL, 0, 0, NULL},
    {"2{}", -1, 0, NULL, 0, 0, NULL},
    {"2abc[\"message\"]", -1, 0, NULL, 0, 0, NULL},
    {"2[]", -1, 0, NULL, 0, 0, NULL},
    {"2[null]", -1, 0, NULL, 0, 0, NULL},
    {"2[\"connect\"]", -1, 0, NULL, 0, 0, NULL},
    {"2[\"disconnecting\",1]", -1, 0, NULL, 0, 0, NULL},
    {"2[\"a\"]x", -1, 0, NULL, 0, 0, NULL},
    {"2[\"a\"", -1, 0, NULL, 0, 0, NULL},
    {"0\"x\"", -1, 0, NULL, 0, 0, NULL},
    {"0[]", -1, 0, NULL, 0, 0, NULL},
    {"1{}", -1, 0, NULL, 0, 0, NULL},
    {"3{}", -1, 0, NULL, 0, 0, NULL},
    {"4[]", -1, 0, NULL, 0, 0, NULL},
    {"5-[\"a\"]", -1, 0, NULL, 0, 0, NULL},
    {"5x-[\"a\"]", -1, 0, NULL, 0, 0, NULL},
    {"51[\"a\"]", -1, 0, NULL, 0, 0, NULL},
    {"565-[\"a\"]", -1, 0, NULL, 0, 0, NULL},
    {"21234567890123456[\"a\"]", -1, 0, NULL, 0, 0, NULL},
};

static void test_decode_table(void **state)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct dec_case *c = &cases[i];
        struct sio_pkt p;
        int rc = sio_decode(c->in, strlen(c->in), &p);
        if (rc != c->rc)
            fail_msg("case '%s': rc %d, want %d", c->in, rc, c->rc);
        if (rc < 0) {
            assert_null(p.data);
            continue;
        }
        assert_int_equal(p.type, c->type);
        assert_string_equal(p.nsp, c->nsp);
        assert_int_equal(p.ack_id, c->ack);
        assert_int_equal(p.attachments, c->atts);
        if (c->data == NULL) {
            assert_null(p.data);
        } else {
            char *s = json_dumps(p.data, JSON_COMPACT | JSON_ENCODE_ANY);
            assert_string_equal(s, c->data);
            xfree(s);
        }
        sio_pkt_release(&p);
    }
}

static void test_namespace_limit(void **state)
{
    char in[SIO_MAX_NSP + 8];
    in[0] = '0';
    in[1] = '/';
    memset(in + 2, 'n', SIO_MAX_NSP - 1);
    in[SIO_MAX_NSP + 1] = ',';
    struct sio_pkt p;
    assert_int_equal(sio_decode(in, SIO_MAX_NSP + 2, &p), 0); /* exactly the cap */
    assert_int_equal(strlen(p.nsp), SIO_MAX_NSP);
    sio_pkt_release(&p);
    in[SIO_MAX_NSP + 1] = 'n';
    in[SIO_MAX_NSP + 2] = ',';
    assert_int_equal(sio_decode(in, SIO_MAX_NSP + 3, &p), -1);
}

static void test_encode_head(void **state)
{
    static const struct {
        int type;
        unsigned atts;
        const char *nsp;
        int64_t ack;
        const char *want;
    } cases[] = {
        {SIO_CONNECT, 0, "/", -1, "0"},
        {SIO_CONNECT, 0, "/custom", -1, "0/custom,"},
        {SIO_EVENT, 0, "/", -1, "2"},
        {SIO_EVENT, 0, "/admin", 12, "2/admin,12"},
        {SIO_ACK, 0, "/", 456, "3456"},
        {SIO_CONNECT_ERROR, 0, "/random", -1, "4/random,"},
        {SIO_BINARY_EVENT, 2, "/", -1, "52-"},
        {SIO_BINARY_ACK, 2, "/", 789, "62-789"},
        {SIO_BINARY_ACK, 1, "/admin", 0, "61-/admin,0"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct buf b;
        buf_init(&b, 256);
        sio_encode_head(&b, cases[i].type, cases[i].atts, cases[i].nsp, cases[i].ack);
        assert_string_equal(buf_str(&b), cases[i].want);
        buf_release(&b);
    }
}

/* Every encoded header plus a payload decodes back to the same fields. */
static void test_roundtrip(void **state)
{
    const char *nsps[] = {"/", "/a", "/custom"};
    for (int type = SIO_EVENT; type <= SIO_BINARY_ACK; type++) {
        if (type == SIO_CONNECT_ERROR)
            continue;
        for (size_t n = 0; n < 3; n++) {
            for (int64_t ack = -1; ack < 1000; ack += 333) {
                struct buf b;
                buf_init(&b, 256);
                unsigned atts = type >= SIO_BINARY_EVENT ? 3 : 0;
                sio_encode_head(&b, type, atts, nsps[n], ack);
                buf_appends(&b,
                            type == SIO_EVENT || type == SIO_BINARY_EVENT ? "[\"e\",1]" : "[1]");
                struct sio_pkt p;
                assert_int_equal(sio_decode(b.data, b.len, &p), 0);
                assert_int_equal(p.type, type);
                assert_string_equal(p.nsp, nsps[n]);
                assert_int_equal(p.ack_id, ack);
                assert_int_equal(p.attachments, atts);
                sio_pkt_release(&p);
                buf_release(&b);
            }
        }
    }
}

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_table),
        cmocka_unit_test(test_namespace_limit),
        cmocka_unit_test(test_encode_head),
        cmocka_unit_test(test_roundtrip),
    };
    return cmocka_run_group_tests_name("sio_packet", tests, NULL, NULL);
}
