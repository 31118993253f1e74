/* SPDX-License-Identifier: MIT */
/* fuzz_sio.c -- Socket.IO v5 packet decoding (src/sio/sio_packet.c): a decoded packet's fields
 * stay in range, and its header re-encodes. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sio/sio_packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    struct sio_pkt k;
    memset(&k, 0, sizeof(k));
    if (sio_decode((const char *)data, size, &k) == 0) {
        if (k.type > SIO_BINARY_ACK || strlen(k.nsp) > SIO_MAX_NSP || k.nsp[0] != '/' ||
            k.attachments > SIO_MAX_ATTACHMENTS || k.ack_id < -1)
            abort();
        struct buf b;
        buf_init(&b, SIZE_MAX / 2);
        sio_encode_head(&b, k.type, k.attachments, k.nsp, k.ack_id);
        if (k.data) {
            char *s = json_dumps(k.data, JSON_COMPACT | JSON_ENCODE_ANY);
            buf_appends(&b, s);
            xfree(s);
        }
        struct sio_pkt again;
        memset(&again, 0, sizeof(again));
        /* what we encode, we decode to the same header */
        if (sio_decode(b.data, b.len, &again) == 0) {
            if (again.type != k.type || strcmp(again.nsp, k.nsp) != 0 || again.ack_id != k.ack_id)
                abort();
            sio_pkt_release(&again);
        }
        buf_release(&b);
        sio_pkt_release(&k);
    }
    return 0;
}
