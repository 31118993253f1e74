/* SPDX-License-Identifier: MIT */
/* fuzz_eio.c -- Engine.IO v4 packets and polling payloads (src/sio/eio_packet.c) and their
 * base64: payload decoding is all or nothing, each packet re-encodes to a payload that decodes
 * to the same packets, and base64 round-trips. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sio/eio_packet.h"

static void check_roundtrip(const struct eio_payload *pl)
{
    struct buf b;
    buf_init(&b, SIZE_MAX / 2);
    for (size_t i = 0; i < pl->n; i++) {
        const struct eio_pkt *k = &pl->pkts[i];
        struct eio_msg *m = k->binary ? eio_msg_new(true, k->data, k->len)
                                       : eio_msg_text(k->type, k->data, k->len);
        eio_payload_append(&b, m);
        eio_msg_unref(m);
    }
    struct eio_payload again;
    memset(&again, 0, sizeof(again));
    /* Text data holding a 0x1e would split differently: only compare when there is none. */
    bool plain = true;
    for (size_t i = 0; i < pl->n; i++)
        if (!pl->pkts[i].binary && memchr(pl->pkts[i].data, EIO_SEPARATOR, pl->pkts[i].len))
            plain = false;
    if (plain && pl->n > 0) {
        if (eio_payload_decode(b.data, b.len, pl->n, &again) != 0 || again.n != pl->n)
            abort();
        for (size_t i = 0; i < pl->n; i++)
            if (again.pkts[i].type != pl->pkts[i].type || again.pkts[i].len != pl->pkts[i].len ||
                memcmp(again.pkts[i].data, pl->pkts[i].data, pl->pkts[i].len) != 0)
                abort();
        eio_payload_release(&again);
    }
    buf_release(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    const char *p = (const char *)data;
    struct eio_pkt k;
    memset(&k, 0, sizeof(k));
    if (eio_decode_text(p, size, &k) == 0 && (k.len > size || (k.len && !k.data)))
        abort();
    struct eio_payload pl;
    memset(&pl, 0, sizeof(pl));
    if (eio_payload_decode(p, size, 16, &pl) == 0) {
        if (pl.n > 16)
            abort();
        check_roundtrip(&pl);
        eio_payload_release(&pl);
    }
    /* base64 both ways */
    unsigned char *dec = xmalloc(size / 4 * 3 + 1);
    long n = eio_base64_decode(p, size, dec);
    if (n >= 0) {
        char *enc = xmalloc(((size_t)n + 2) / 3 * 4 + 1);
        size_t elen = eio_base64_encode(dec, (size_t)n, enc);
        if (elen != size || memcmp(enc, p, size) != 0) {
            /* decoding may accept non-canonical padding bits; re-decoding must be stable */
            unsigned char *dec2 = xmalloc(elen / 4 * 3 + 1);
            long n2 = eio_base64_decode(enc, elen, dec2);
            if (n2 != n || memcmp(dec, dec2, (size_t)n) != 0)
                abort();
            xfree(dec2);
        }
        xfree(enc);
    }
    xfree(dec);
    return 0;
}
