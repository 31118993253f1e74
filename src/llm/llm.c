/* SPDX-License-Identifier: MIT */
/* llm.c -- streamed chat completions over curl_uv: request URL, body and headers for the
 * OpenAI-compatible wire (§1.1) or the Anthropic Messages API (§1.5), the retry policy of anchor
 * spec agent-tools-llm.md §1.3, the idle timeout, and the hand-off of 2xx body bytes to the
 * provider's decoder, optionally through the prompt-engineering parser (§2.2). One uv_timer_t
 * per request serves, in turn, as idle watchdog, retry delay and deferred-completion tick. */
#include "llm.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "../obs/obs.h"
#include "anthropic_stream.h"
#include "curl_uv.h"
#include "openai_full.h"
#include "openai_stream.h"
#include "pe_parser.h"
#include "structured.h"

#define LLM_ERRBODY_MAX (64 * 1024)
#define LLM_DEFAULT_IDLE_MS 60000u
#define LLM_FULL_MIN_IDLE_MS 300000u
#define LLM_DEFAULT_CONNECT_MS 10000u
#define LLM_DEFAULT_RETRY_BASE_MS 500u
#define LLM_MAX_BACKOFF_MS 8000.0
#define LLM_MAX_RETRY_AFTER_MS 60000.0
#define LLM_DEFAULT_MAX_LINE (4u * 1024 * 1024)
#define LLM_ERR_SNIPPET 200
#define LLM_ANTHROPIC_VERSION "anthropic-version: 2023-06-01"

struct llm_ctx {
    uv_loop_t *loop;
    struct curl_uv *cu;
    struct llm_request *reqs; /* live requests (not yet finished or cancelled) */
    size_t nalive;            /* requests whose timer has not closed yet */
    bool closing, cu_closed;
};

enum req_state {
    REQ_RUNNING,    /* a transfer is in flight; timer = idle watchdog */
    REQ_RETRY_WAIT, /* timer = retry delay */
    REQ_FAIL_WAIT,  /* failed before starting; timer(0) delivers on_done */
    REQ_DONE,       /* on_done is running */
    REQ_DEAD,       /* unlinked, timer closing, freed in its close callback */
};

struct llm_request {
    struct llm_ctx *ctx;
    struct llm_request *prev, *next; /* ctx->reqs */
    bool linked;                     /* in ctx->reqs */
    struct llm_callbacks cb;
    void *data;
    enum req_state state;
    char *url;
    char *body; /* serialized JSON, xfree */
    size_t body_len;
    char *auth; /* "Authorization: Bearer ..." / "x-api-key: ..." / "api-key: ..." or NULL;
                 * never logged */
    const char *version_header; /* "anthropic-version: ..." or NULL (static) */
    unsigned max_retries, idle_ms, connect_ms, retry_base_ms;
    unsigned retries; /* retries made so far */
    struct curl_uv_xfer *xfer;
    uv_timer_t timer;
    uint64_t last_rx_ms; /* uv_now() when the last byte arrived */
    /* Per attempt, reset by the status line of each response. */
    long status;
    int should_retry;      /* x-should-retry: -1 absent, 0 false, 1 true */
    double retry_after_ms; /* retry-after-ms, or -1 */
    char retry_after[64];  /* raw retry-after value, "" if absent */
    struct buf errbody;    /* body of a non-2xx answer, capped */
    /* Per request. */
    bool delivered;     /* a 2xx body byte went to the decoder: never retry after that */
    bool stream_failed; /* the decoder reported an error; the transfer was aborted */
    bool have_res;
    bool anthropic; /* the Messages API wire: dec.anth */
    bool full;      /* one unstreamed answer (openai-non-streaming): dec.full, else dec.oai */
    bool pe;        /* content goes through the prompt-engineering parser */
    bool so;        /* content goes through the structured-outputs parser */
    char **extra_headers; /* model.headers lines, NULL-terminated, or NULL */
    char traceparent[80]; /* "traceparent: ..." of the model call's span (obs.h), or "" */
    union {
        struct oai_stream oai;
        struct anth_stream anth;
        struct oai_full full;
    } dec;
    struct pe_parser pe_parser;
    struct so_parser so_parser;
    struct llm_result res;
    int busy;       /* user callbacks of this request on the stack */
    bool cancelled; /* llm_request_cancel from inside one of them */
    int fail_status;
    char *fail_msg;
};

static const struct curl_uv_cbs xfer_cbs;
static void finish(struct llm_request *req, int status, const char *msg);
static void stream_ended(struct llm_request *req, CURLcode rc, const char *detail);

/* ---- the decoder of the request's wire ------------------------------------------------- */

static const struct llm_callbacks decoder_cbs, pe_cbs;

static void dec_init(struct llm_request *req, size_t max_line)
{
    if (req->anthropic)
        anth_stream_init(&req->dec.anth, &decoder_cbs, req, max_line);
    else if (req->full)
        oai_full_init(&req->dec.full, &decoder_cbs, req, max_line);
    else
        oai_stream_init(&req->dec.oai, &decoder_cbs, req, max_line);
    if (req->pe)
        pe_parser_init(&req->pe_parser, &pe_cbs, req);
    if (req->so)
        so_parser_init(&req->so_parser, &pe_cbs, req);
}

static void dec_release(struct llm_request *req)
{
    if (req->anthropic)
        anth_stream_release(&req->dec.anth);
    else if (req->full)
        oai_full_release(&req->dec.full);
    else
        oai_stream_release(&req->dec.oai);
    if (req->pe)
        pe_parser_release(&req->pe_parser);
    if (req->so)
        so_parser_release(&req->so_parser);
}

static int dec_feed(struct llm_request *req, const char *p, size_t len)
{
    return req->anthropic ? anth_stream_feed(&req->dec.anth, p, len)
           : req->full    ? oai_full_feed(&req->dec.full, p, len)
                          : oai_stream_feed(&req->dec.oai, p, len);
}

/* The end marker ([DONE] / message_stop / a complete answer) was seen. */
static bool dec_done(const struct llm_request *req)
{
    return req->anthropic ? req->dec.anth.done
           : req->full    ? req->dec.full.done
                          : req->dec.oai.done;
}

static int dec_status(const struct llm_request *req)
{
    return req->anthropic ? req->dec.anth.status
           : req->full    ? req->dec.full.status
                          : req->dec.oai.status;
}

static const char *dec_error(const struct llm_request *req)
{
    return req->anthropic ? req->dec.anth.error
           : req->full    ? req->dec.full.error
                          : req->dec.oai.error;
}

static int dec_finish(struct llm_request *req, struct llm_result *res)
{
    int st = req->anthropic ? anth_stream_finish(&req->dec.anth, res)
             : req->full    ? oai_full_finish(&req->dec.full, res)
                            : oai_stream_finish(&req->dec.oai, res);
    if (res->raw_content == NULL)
        res->raw_content = res->content;
    if (res->reasoning_signature == NULL)
        res->reasoning_signature = "";
    if (req->pe)
        pe_parser_finish(&req->pe_parser, res);
    if (req->so)
        so_parser_finish(&req->so_parser, res);
    return st;
}

/* ---- lifetime --------------------------------------------------------------------------- */

static void ctx_maybe_free(struct llm_ctx *ctx)
{
    if (ctx->closing && ctx->cu_closed && ctx->nalive == 0) {
        xfree(ctx);
        curl_global_cleanup();
    }
}

static void on_req_closed(uv_handle_t *h)
{
    struct llm_request *req = h->data;
    struct llm_ctx *ctx = req->ctx;
    xfree(req);
    ctx->nalive--;
    ctx_maybe_free(ctx);
}

static void req_unlink(struct llm_request *req)
{
    if (!req->linked)
        return;
    if (req->prev)
        req->prev->next = req->next;
    else
        req->ctx->reqs = req->next;
    if (req->next)
        req->next->prev = req->prev;
    req->prev = req->next = NULL;
    req->linked = false;
}

/* Releases everything now except the memory of req itself, which waits for the timer's close
 * callback. Nothing of req is used by curl after this: curl_uv owns the easy handle's data. */
static void req_destroy(struct llm_request *req)
{
    curl_uv_cancel(req->xfer);
    req->xfer = NULL;
    req_unlink(req);
    req->state = REQ_DEAD;
    dec_release(req);
    buf_release(&req->errbody);
    xfree(req->url);
    xfree(req->body);
    xfree(req->auth);
    for (size_t i = 0; req->extra_headers && req->extra_headers[i]; i++)
        xfree(req->extra_headers[i]);
    xfree(req->extra_headers);
    xfree(req->fail_msg);
    uv_timer_stop(&req->timer);
    uv_close((uv_handle_t *)&req->timer, on_req_closed);
}

/* ---- one attempt ------------------------------------------------------------------------ */

static void reset_attempt(struct llm_request *req)
{
    req->status = 0;
    req->should_retry = -1;
    req->retry_after_ms = -1;
    req->retry_after[0] = '\0';
    buf_reset(&req->errbody);
}

static struct curl_slist *build_headers(const struct llm_request *req)
{
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, "Content-Type: application/json");
    h = curl_slist_append(h, req->full ? "Accept: application/json" : "Accept: text/event-stream");
    /* Bodies over 1 MiB would otherwise wait for "100 Continue", which some servers never send. */
    h = curl_slist_append(h, "Expect:");
    if (req->auth)
        h = curl_slist_append(h, req->auth);
    if (req->version_header)
        h = curl_slist_append(h, req->version_header);
    for (size_t i = 0; req->extra_headers && req->extra_headers[i]; i++)
        h = curl_slist_append(h, req->extra_headers[i]);
    if (req->traceparent[0]) /* W3C trace context of the model call's span */
        h = curl_slist_append(h, req->traceparent);
    return h;
}

static void on_idle(uv_timer_t *t);

static int attempt_start(struct llm_request *req)
{
    CURL *easy = curl_easy_init();
    struct curl_slist *headers = build_headers(req);
    if (easy == NULL || headers == NULL) {
        curl_easy_cleanup(easy);
        curl_slist_free_all(headers);
        return -ENOMEM;
    }
    curl_easy_setopt(easy, CURLOPT_URL, req->url);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, req->body);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)req->connect_ms);
    reset_attempt(req);
    req->xfer = curl_uv_add(req->ctx->cu, easy, headers, &xfer_cbs, req);
    if (req->xfer == NULL)
        return -EIO;
    req->state = REQ_RUNNING;
    req->last_rx_ms = uv_now(req->ctx->loop);
    uv_timer_start(&req->timer, on_idle, req->idle_ms, 0);
    log_debug("llm req %p: POST %s (attempt %u)", (void *)req, req->url, req->retries + 1);
    return 0;
}

/* The watchdog is not restarted per byte; it compares the time of the last byte when it fires
 * and re-arms for the remainder, which has the same effect for a fraction of the cost. */
static void on_idle(uv_timer_t *t)
{
    struct llm_request *req = t->data;
    uint64_t since = uv_now(req->ctx->loop) - req->last_rx_ms;
    if (since < req->idle_ms) {
        uv_timer_start(&req->timer, on_idle, req->idle_ms - since, 0);
        return;
    }
    curl_uv_cancel(req->xfer);
    req->xfer = NULL;
    if (dec_done(req)) {
        /* [DONE] came but the server kept the response open: the answer is complete. */
        stream_ended(req, CURLE_OK, "");
        return;
    }
    char *msg = xasprintf("LLM stream stalled: no data for %u ms", req->idle_ms);
    log_info("llm req %p: %s", (void *)req, msg);
    finish(req, LLM_ERR_TIMEOUT, msg);
    xfree(msg);
}

/* ---- response headers and body (inside libcurl: no curl calls here) --------------------- */

static bool is_2xx(long status)
{
    return status >= 200 && status < 300;
}

/* Trims spaces and the line end; returns the length left. */
static size_t trim_value(const char **v, size_t len)
{
    while (len > 0 && isspace((unsigned char)**v)) {
        (*v)++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)(*v)[len - 1]))
        len--;
    return len;
}

static bool header_is(const char *line, size_t name_len, const char *name)
{
    return strlen(name) == name_len && strncasecmp(line, name, name_len) == 0;
}

static void parse_status_line(struct llm_request *req, const char *line, size_t len)
{
    reset_attempt(req);
    const char *sp = memchr(line, ' ', len);
    long code = 0;
    for (const char *p = sp ? sp + 1 : line + len; p < line + len && isdigit((unsigned char)*p);
         p++)
        code = code * 10 + (*p - '0');
    req->status = code < 1000 ? code : 0;
}

static int on_header(void *data, const char *line, size_t len)
{
    struct llm_request *req = data;
    req->last_rx_ms = uv_now(req->ctx->loop);
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        parse_status_line(req, line, len);
        return 0;
    }
    const char *colon = memchr(line, ':', len);
    if (colon == NULL)
        return 0;
    size_t name_len = (size_t)(colon - line);
    const char *v = colon + 1;
    size_t vlen = trim_value(&v, len - name_len - 1);
    char val[64];
    if (vlen >= sizeof(val))
        return 0; /* none of the headers we read has a value that long */
    memcpy(val, v, vlen);
    val[vlen] = '\0';
    if (header_is(line, name_len, "x-should-retry")) {
        req->should_retry = strcmp(val, "true") == 0 ? 1 : strcmp(val, "false") == 0 ? 0 : -1;
    } else if (header_is(line, name_len, "retry-after-ms")) {
        char *end;
        double ms = strtod(val, &end);
        req->retry_after_ms = (end != val && *end == '\0' && isfinite(ms)) ? ms : -1;
    } else if (header_is(line, name_len, "retry-after")) {
        memcpy(req->retry_after, val, vlen + 1);
    }
    return 0;
}

static int on_body(void *data, const char *p, size_t len)
{
    struct llm_request *req = data;
    req->last_rx_ms = uv_now(req->ctx->loop);
    if (!is_2xx(req->status)) {
        /* An error body: keep the first 64 KiB and stop reading once that is full. */
        size_t room = req->errbody.max - req->errbody.len;
        buf_append(&req->errbody, p, len < room ? len : room);
        return len <= room ? 0 : -1;
    }
    req->delivered = true;
    req->busy++;
    int rc = dec_feed(req, p, len);
    req->busy--;
    if (req->cancelled) {
        req_destroy(req); /* cancelled from inside on_content & co; curl_uv drops the rest */
        return -1;
    }
    if (rc < 0) {
        req->stream_failed = true; /* an error object or a protocol error: stop at once */
        return -1;
    }
    return 0;
}

/* Decoder callbacks: forward to the caller unless the request was cancelled meanwhile; with
 * prompt engineering, content goes to the parser, which calls fwd_* in turn. */
static void fwd_content(void *data, const char *s, size_t len)
{
    struct llm_request *req = data;
    if (!req->cancelled && req->cb.on_content)
        req->cb.on_content(req->data, s, len);
}

static void fwd_tool_call(void *data, size_t index, const char *id, const char *name,
                          const char *args, size_t args_len)
{
    struct llm_request *req = data;
    if (!req->cancelled && req->cb.on_tool_call_delta)
        req->cb.on_tool_call_delta(req->data, index, id, name, args, args_len);
}

static void dec_content(void *data, const char *s, size_t len)
{
    struct llm_request *req = data;
    if (req->pe)
        pe_parser_feed(&req->pe_parser, s, len);
    else if (req->so)
        so_parser_feed(&req->so_parser, s, len);
    else
        fwd_content(data, s, len);
}

static void dec_reasoning(void *data, const char *s, size_t len)
{
    struct llm_request *req = data;
    if (!req->cancelled && req->cb.on_reasoning)
        req->cb.on_reasoning(req->data, s, len);
}

/* Native tool calls are not expected with prompt engineering or structured outputs (no tools
 * are sent); should a provider send some anyway, they are dropped so that the indexes stay the
 * parser's. */
static void dec_tool_call(void *data, size_t index, const char *id, const char *name,
                          const char *args, size_t args_len)
{
    struct llm_request *req = data;
    if (!req->pe && !req->so)
        fwd_tool_call(data, index, id, name, args, args_len);
}

static const struct llm_callbacks decoder_cbs = {
    .on_content = dec_content,
    .on_reasoning = dec_reasoning,
    .on_tool_call_delta = dec_tool_call,
    .on_done = NULL, /* the decoder never calls it */
};

static const struct llm_callbacks pe_cbs = {
    .on_content = fwd_content,
    .on_tool_call_delta = fwd_tool_call,
};

/* ---- completion and retries (outside libcurl) ------------------------------------------- */

/* Calls on_done once and frees the request. */
static void finish(struct llm_request *req, int status, const char *msg)
{
    if (!req->have_res) {
        dec_finish(req, &req->res);
        req->have_res = true;
    }
    uv_timer_stop(&req->timer);
    req->state = REQ_DONE;
    if (status != LLM_OK)
        log_debug("llm req %p: failed (%d): %s", (void *)req, status, msg);
    req->busy++;
    if (req->cb.on_done)
        req->cb.on_done(req->data, status, &req->res, status == LLM_OK ? NULL : msg);
    req->busy--;
    req_destroy(req);
}

static double retry_after_header_ms(const struct llm_request *req)
{
    if (req->retry_after_ms >= 0)
        return req->retry_after_ms;
    if (req->retry_after[0] == '\0')
        return -1;
    char *end;
    double s = strtod(req->retry_after, &end);
    if (end != req->retry_after && *end == '\0' && isfinite(s))
        return s * 1000.0;
    time_t when = curl_getdate(req->retry_after, NULL);
    if (when == (time_t)-1)
        return -1;
    return difftime(when, time(NULL)) * 1000.0;
}

/* §1.3: retry-after-ms, else retry-after, when within [0, 60 s]; else base * 2^n capped at
 * 8 s, minus up to 25% jitter. */
static uint64_t retry_delay_ms(const struct llm_request *req)
{
    double ms = retry_after_header_ms(req);
    if (ms >= 0 && ms <= LLM_MAX_RETRY_AFTER_MS)
        return (uint64_t)ms;
    ms = req->retry_base_ms * pow(2.0, req->retries);
    if (ms > LLM_MAX_BACKOFF_MS)
        ms = LLM_MAX_BACKOFF_MS;
    uint32_t r;
    rand_bytes(&r, sizeof(r));
    ms *= 1.0 - 0.25 * ((double)r / UINT32_MAX);
    return (uint64_t)ms;
}

static bool may_retry(const struct llm_request *req, bool by_default)
{
    if (req->delivered || req->retries >= req->max_retries || req->ctx->closing)
        return false;
    if (req->should_retry >= 0)
        return req->should_retry == 1;
    return by_default;
}

static void on_retry(uv_timer_t *t)
{
    struct llm_request *req = t->data;
    if (attempt_start(req) < 0)
        finish(req, LLM_ERR_CONNECT, "cannot start the LLM request");
}

static void schedule_retry(struct llm_request *req, const char *reason)
{
    uint64_t delay = retry_delay_ms(req);
    req->retries++;
    obs_model_retry();
    log_info("llm request failed (%s), retry %u/%u in %llu ms", reason, req->retries,
             req->max_retries, (unsigned long long)delay);
    req->state = REQ_RETRY_WAIT;
    uv_timer_start(&req->timer, on_retry, delay, 0);
}

/* Cuts s to at most max bytes without splitting a UTF-8 sequence. */
static size_t utf8_cut(const char *s, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* "<status> <error.message>" for OpenAI and Anthropic error bodies (j is the parsed body, or
 * NULL), else "<status> <body start>". Caller owns the result. */
static char *http_error_message(long status, const json_t *j, const struct buf *body)
{
    const char *m = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
    char *msg;
    if (m) {
        msg = xasprintf("%ld %s", status, m);
    } else if (body->len > 0) {
        size_t n = utf8_cut(buf_str(body), body->len, LLM_ERR_SNIPPET);
        msg = xasprintf("%ld %.*s", status, (int)n, buf_str(body));
    } else {
        msg = xasprintf("%ld status code (no body)", status);
    }
    return msg;
}

/* Anthropic's 429 for an organisation over its monthly spend limit lasts until the month
 * ends: retrying cannot help, whatever the headers say (§1.3). */
static bool spend_limit_reached(const json_t *j)
{
    const json_t *details = json_object_get(json_object_get(j, "error"), "details");
    const char *code = json_get_str(details, "error_code");
    return code != NULL && strcmp(code, "enforced_spend_limit_reached") == 0;
}

static bool retryable_status(long status)
{
    return status == 408 || status == 409 || status == 429 || status >= 500;
}

static bool retryable_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return true;
    default:
        return false;
    }
}

static void http_failed(struct llm_request *req)
{
    json_t *j = json_loadb(buf_str(&req->errbody), req->errbody.len, 0, NULL);
    char *msg = http_error_message(req->status, j, &req->errbody);
    bool final = req->status == 429 && spend_limit_reached(j);
    json_decref(j);
    if (!final && may_retry(req, retryable_status(req->status)))
        schedule_retry(req, msg);
    else
        finish(req, LLM_ERR_HTTP, msg);
    xfree(msg);
}

static void conn_failed(struct llm_request *req, CURLcode rc, const char *detail)
{
    char *msg = xasprintf("LLM connection failed: %s", *detail ? detail : curl_easy_strerror(rc));
    if (may_retry(req, retryable_curl(rc)))
        schedule_retry(req, msg);
    else
        finish(req, LLM_ERR_CONNECT, msg);
    xfree(msg);
}

static void stream_ended(struct llm_request *req, CURLcode rc, const char *detail)
{
    if (req->full && !req->have_res) {
        /* The unstreamed answer is reported now that it is complete; a callback may cancel. */
        req->busy++;
        oai_full_emit(&req->dec.full);
        req->busy--;
        if (req->cancelled) {
            req_destroy(req);
            return;
        }
    }
    int st = dec_finish(req, &req->res);
    req->have_res = true;
    if (st == LLM_ERR_TRUNCATED && rc != CURLE_OK) {
        char *msg = xasprintf("LLM stream cut off: %s", *detail ? detail : curl_easy_strerror(rc));
        finish(req, LLM_ERR_TRUNCATED, msg);
        xfree(msg);
    } else if (st == LLM_ERR_TRUNCATED) {
        finish(req, st, "LLM stream ended before [DONE] or a finish_reason");
    } else if (st < 0) {
        finish(req, st, dec_error(req) ? dec_error(req) : "LLM stream error");
    } else {
        finish(req, LLM_OK, NULL); /* complete even if the connection broke afterwards */
    }
}

static void on_xfer_done(void *data, CURLcode rc, const char *detail)
{
    struct llm_request *req = data;
    req->xfer = NULL;
    uv_timer_stop(&req->timer);
    if (req->stream_failed)
        finish(req, dec_status(req) ? dec_status(req) : LLM_ERR_PROTOCOL,
               dec_error(req) ? dec_error(req) : "LLM stream error");
    else if (is_2xx(req->status) && (req->delivered || rc == CURLE_OK))
        stream_ended(req, rc, detail);
    else if (req->status > 0 && !is_2xx(req->status))
        http_failed(req);
    else
        conn_failed(req, rc, detail);
}

static const struct curl_uv_cbs xfer_cbs = {
    .on_header = on_header,
    .on_body = on_body,
    .on_done = on_xfer_done,
};

/* ---- public API ------------------------------------------------------------------------- */

int llm_ctx_new(uv_loop_t *loop, struct llm_ctx **out)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return -ENOMEM;
    struct llm_ctx *ctx = xcalloc(1, sizeof(*ctx));
    ctx->loop = loop;
    int rc = curl_uv_new(loop, &ctx->cu);
    if (rc < 0) {
        xfree(ctx);
        curl_global_cleanup();
        return rc;
    }
    *out = ctx;
    return 0;
}

static void on_cu_closed(void *data)
{
    struct llm_ctx *ctx = data;
    ctx->cu_closed = true;
    ctx_maybe_free(ctx);
}

void llm_ctx_close(struct llm_ctx *ctx)
{
    if (ctx == NULL || ctx->closing)
        return;
    ctx->closing = true;
    while (ctx->reqs) {
        struct llm_request *req = ctx->reqs;
        llm_request_cancel(req);
        req_unlink(req); /* if busy it is destroyed when its callback returns */
    }
    curl_uv_close(ctx->cu, on_cu_closed, ctx);
}

static void on_deferred_fail(uv_timer_t *t)
{
    struct llm_request *req = t->data;
    finish(req, req->fail_status, req->fail_msg);
}

/* Reports an error that happened before the first attempt, through the loop. */
static void fail_later(struct llm_request *req, int status, const char *msg)
{
    req->state = REQ_FAIL_WAIT;
    req->fail_status = status;
    req->fail_msg = xstrdup(msg);
    uv_timer_start(&req->timer, on_deferred_fail, 0, 0);
}

static void req_configure(struct llm_request *req, const struct llm_config *cfg)
{
    req->max_retries = cfg->max_retries;
    req->idle_ms = cfg->idle_timeout_ms ? cfg->idle_timeout_ms : LLM_DEFAULT_IDLE_MS;
    req->connect_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms : LLM_DEFAULT_CONNECT_MS;
    req->retry_base_ms = cfg->retry_base_ms ? cfg->retry_base_ms : LLM_DEFAULT_RETRY_BASE_MS;
    const struct llm_provider *prov = llm_provider_get(cfg->provider);
    req->anthropic = prov->wire == LLM_WIRE_ANTHROPIC;
    req->full = prov->non_streaming;
    /* An unstreamed answer sends nothing until the whole reply is written: the stall watchdog
     * waits at least LLM_FULL_MIN_IDLE_MS for it. */
    if (req->full && req->idle_ms < LLM_FULL_MIN_IDLE_MS)
        req->idle_ms = LLM_FULL_MIN_IDLE_MS;
    req->pe = cfg->tool_call_engine == LLM_ENGINE_PROMPT_ENGINEERING;
    req->so = cfg->tool_call_engine == LLM_ENGINE_STRUCTURED_OUTPUTS;
    req->url = llm_request_url(cfg);
    bool key = cfg->api_key && cfg->api_key[0];
    if (req->anthropic) {
        if (key)
            req->auth = xasprintf("x-api-key: %s", cfg->api_key);
        req->version_header = LLM_ANTHROPIC_VERSION;
    } else if (key && prov->wire == LLM_WIRE_AZURE) {
        req->auth = xasprintf("api-key: %s", cfg->api_key);
    } else if (key) {
        req->auth = xasprintf("Authorization: Bearer %s", cfg->api_key);
    }
    size_t nh = 0;
    while (cfg->headers && cfg->headers[nh])
        nh++;
    if (nh > 0) {
        req->extra_headers = xcalloc(nh + 1, sizeof(char *));
        for (size_t i = 0; i < nh; i++)
            req->extra_headers[i] = xstrdup(cfg->headers[i]);
    }
    dec_init(req, cfg->max_line_bytes ? cfg->max_line_bytes : LLM_DEFAULT_MAX_LINE);
    buf_init(&req->errbody, LLM_ERRBODY_MAX);
}

int llm_request_start(struct llm_ctx *ctx, const struct llm_config *cfg, const json_t *messages,
                      const json_t *tools, const struct llm_callbacks *cb, void *data,
                      struct llm_request **out)
{
    if (!ctx || ctx->closing || !cfg || !cb || !out || !json_is_array(messages) ||
        (tools && !json_is_array(tools)))
        return -EINVAL;
    struct llm_request *req = xcalloc(1, sizeof(*req));
    int rc = uv_timer_init(ctx->loop, &req->timer);
    if (rc < 0) {
        xfree(req);
        return rc;
    }
    req->timer.data = req;
    req->ctx = ctx;
    obs_traceparent_header(obs_current_span(), req->traceparent);
    req->cb = *cb;
    req->data = data;
    req->next = ctx->reqs;
    if (ctx->reqs)
        ctx->reqs->prev = req;
    ctx->reqs = req;
    req->linked = true;
    ctx->nalive++;
    req_configure(req, cfg);
    *out = req;

    if (!cfg->model || !cfg->model[0]) {
        fail_later(req, LLM_ERR_CONFIG, "no LLM model configured");
        return 0;
    }
    if (!cfg->base_url || !cfg->base_url[0]) {
        fail_later(req, LLM_ERR_CONFIG, "no LLM base URL configured");
        return 0;
    }
    json_t *body = req->anthropic ? llm_anthropic_body(cfg, messages, tools)
                                  : llm_openai_body(cfg, messages, tools);
    /* 15 significant digits: "temperature":0.7 rather than 0.69999999999999996. */
    req->body = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(body);
    if (req->body == NULL) {
        fail_later(req, LLM_ERR_CONFIG, "cannot serialize the LLM request body");
        return 0;
    }
    req->body_len = strlen(req->body);
    if (attempt_start(req) < 0)
        fail_later(req, LLM_ERR_CONNECT, "cannot start the LLM request");
    return 0;
}

void llm_request_cancel(struct llm_request *req)
{
    if (req == NULL || req->state == REQ_DEAD || req->cancelled)
        return;
    if (req->busy > 0) {
        /* From inside this request's own callback: stop the transfer and every further
         * callback now, free when the callback has returned (on_body / finish do that). */
        req->cancelled = true;
        curl_uv_cancel(req->xfer);
        req->xfer = NULL;
        uv_timer_stop(&req->timer);
        return;
    }
    req_destroy(req);
}
