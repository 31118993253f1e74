/* SPDX-License-Identifier: MIT */
/* llm_http.h -- a small fire-and-forget HTTP POST on the loop, for senders outside src/llm
 * (the OTLP trace exporter, telemetry): its own curl_uv multi handle, made on first use. */
#ifndef LLM_LLM_HTTP_H
#define LLM_LLM_HTTP_H

#include <stddef.h>
#include <uv.h>

typedef void (*llm_http_done_cb)(void *data, int status);

void llm_http_init(uv_loop_t *loop);
/* POSTs body (copied) to url with the header lines ("Name: value", NULL-terminated array,
 * borrowed). cb(data, status) fires once, outside this call, with the HTTP status or a
 * negative value when no answer came; it does not fire if this returns <0, nor after
 * llm_http_close. The answer's body is read and dropped. At most 5 s per request. */
int llm_http_post(const char *url, const char *const *headers, const char *body, size_t len,
                  llm_http_done_cb cb, void *data);
/* Cancels what is in flight (no callbacks) and closes the multi handle. */
void llm_http_close(void);

#endif
