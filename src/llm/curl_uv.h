/* SPDX-License-Identifier: MIT */
/* curl_uv.h -- one libcurl multi handle driven by a libuv loop (curl_multi_socket_action with a
 * uv_poll_t per socket and one uv_timer_t). Internal to src/llm. It never lets a caller re-enter
 * libcurl from inside a libcurl callback: adds and removals made while libcurl is on the stack
 * are queued and applied as soon as it returns. See docs/internals/CURL_UV.md. */
#ifndef LLM_CURL_UV_H
#define LLM_CURL_UV_H

#include <curl/curl.h>
#include <stddef.h>
#include <uv.h>

struct curl_uv;
struct curl_uv_xfer;

/* Per-transfer callbacks. on_header and on_body run inside libcurl (do not call curl there;
 * curl_uv_add/curl_uv_cancel are safe because they defer). on_done runs outside libcurl. */
struct curl_uv_cbs {
    /* One header line, CRLF included (the status line too). Return 0 to go on, <0 to abort. */
    int (*on_header)(void *data, const char *line, size_t len);
    /* Body bytes. Return 0 to go on, <0 to abort (on_done then gets CURLE_WRITE_ERROR). */
    int (*on_body)(void *data, const char *p, size_t len);
    /* The transfer ended. The easy handle has already been removed and cleaned up; the xfer
     * is freed when this returns. errmsg is libcurl's detail text ("" when none). */
    void (*on_done)(void *data, CURLcode rc, const char *errmsg);
};

typedef void (*curl_uv_close_cb)(void *data);

/* Creates the multi handle on `loop`. Returns 0 or a negative errno. */
int curl_uv_new(uv_loop_t *loop, struct curl_uv **out);
/* The connection pool of every multi handle made after this call: at most max_idle connections
 * are kept open for reuse (CURLMOPT_MAXCONNECTS; libcurl's own default grows with the number of
 * transfers ever added, so 200 streams left 151 idle connections behind), and at most
 * max_per_host are open to one host at once (CURLMOPT_MAX_HOST_CONNECTIONS; 0 = no cap, the
 * transfers over it wait for a connection). Defaults: 16 and 0. */
void curl_uv_set_pool(long max_idle, long max_per_host);
/* Cancels every transfer (no callbacks), cleans up the multi handle, closes the uv handles and
 * frees cu once they have closed, then calls cb(data) (cb may be NULL). Safe from any callback,
 * including curl_uv's own: the teardown then happens when the stack unwinds. */
void curl_uv_close(struct curl_uv *cu, curl_uv_close_cb cb, void *data);

/* Starts a transfer on a configured easy handle. Takes ownership of `easy` and of `headers`
 * (the list set as CURLOPT_HTTPHEADER, may be NULL) in every case: both live until libcurl is
 * done with them, which can be after a cancel. For the same reason a request body must be set
 * with CURLOPT_COPYPOSTFIELDS. curl_uv sets WRITEFUNCTION/WRITEDATA, HEADERFUNCTION/HEADERDATA,
 * PRIVATE and ERRORBUFFER; do not set them. Returns the transfer, or NULL if cu is closing
 * or curl refused the handle (nothing fires then). Otherwise on_done fires once unless the
 * transfer is cancelled, never from inside this call. */
struct curl_uv_xfer *curl_uv_add(struct curl_uv *cu, CURL *easy, struct curl_slist *headers,
                                 const struct curl_uv_cbs *cbs, void *data);
/* Stops a transfer: no callback fires afterwards. The connection is closed and the easy handle
 * removed now, or right after libcurl returns if it is on the stack. x must not be used after
 * this. NULL ok. */
void curl_uv_cancel(struct curl_uv_xfer *x);

#endif
