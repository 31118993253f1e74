/* SPDX-License-Identifier: MIT */
/* jsonrpc.c -- newline-delimited JSON-RPC 2.0 framing and codec (see jsonrpc.h). A line is
 * only decoded once its \n has arrived, so bytes may be split anywhere, even inside a UTF-8
 * sequence; lines that are not JSON-RPC are reported and skipped instead of failing the stream,
 * because real MCP servers print debug output on stdout (agent-tools-llm.md §3.3). */
#include "jsonrpc.h"

#include <stdint.h>
#include <string.h>

#include "../core/xalloc.h"

void jsonrpc_reader_init(struct jsonrpc_reader *r, size_t max_line)
{
    r->max_line = max_line ? max_line : JSONRPC_DEFAULT_MAX_LINE;
    buf_init(&r->line, r->max_line);
    r->discarding = 0;
    r->head_len = 0;
    r->err = 0;
}

void jsonrpc_reader_release(struct jsonrpc_reader *r)
{
    buf_release(&r->line);
    r->discarding = 0;
    r->head_len = 0;
}

/* ---- decoding --------------------------------------------------------------------------- */

static bool valid_id(const json_t *id)
{
    return json_is_integer(id) || json_is_string(id);
}

/* JSON-RPC 2.0 §4-§5: a request has a method and an id, a notification a method only, a
 * response an id and exactly one of result and error. "jsonrpc":"2.0" is not required: no
 * server omits it, and being lenient costs nothing. */
int jsonrpc_classify(json_t *j, struct jsonrpc_msg *msg)
{
    memset(msg, 0, sizeof(*msg));
    if (!json_is_object(j))
        return -1;
    const json_t *ver = json_object_get(j, "jsonrpc");
    if (ver && !(json_is_string(ver) && strcmp(json_string_value(ver), "2.0") == 0))
        return -1;
    const json_t *id = json_object_get(j, "id");
    const json_t *method = json_object_get(j, "method");
    const json_t *params = json_object_get(j, "params");
    if (method) {
        if (!json_is_string(method) ||
            (params && !json_is_object(params) && !json_is_array(params)))
            return -1;
        if (id && !valid_id(id))
            return -1;
        msg->kind = id ? JSONRPC_REQUEST : JSONRPC_NOTIFICATION;
        msg->method = json_string_value(method);
        msg->id = id;
        msg->params = params;
    } else {
        const json_t *result = json_object_get(j, "result");
        const json_t *error = json_object_get(j, "error");
        if (id == NULL || !(valid_id(id) || json_is_null(id)))
            return -1;
        if ((result == NULL) == (error == NULL))
            return -1;
        if (error && !json_is_object(error))
            return -1;
        msg->kind = JSONRPC_RESPONSE;
        msg->id = id;
        msg->result = result;
        msg->error = error;
    }
    msg->root = json_incref(j);
    return 0;
}

int jsonrpc_decode(const char *s, size_t len, struct jsonrpc_msg *msg, enum jsonrpc_skip *why)
{
    json_error_t je;
    json_t *j = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (j == NULL) {
        memset(msg, 0, sizeof(*msg));
        *why = JSONRPC_SKIP_NOT_JSON;
        return -1;
    }
    int rc = jsonrpc_classify(j, msg);
    json_decref(j);
    if (rc < 0)
        *why = JSONRPC_SKIP_NOT_JSONRPC;
    return rc;
}

void jsonrpc_msg_release(struct jsonrpc_msg *msg)
{
    json_decref(msg->root);
    memset(msg, 0, sizeof(*msg));
}

/* ---- framing ---------------------------------------------------------------------------- */

static bool blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
            return false;
    return true;
}

static int on_line(struct jsonrpc_reader *r, const char *s, size_t len,
                   const struct jsonrpc_cbs *cbs, void *data)
{
    if (len > 0 && s[len - 1] == '\r')
        len--;
    if (blank(s, len))
        return 0;
    struct jsonrpc_msg msg;
    enum jsonrpc_skip why;
    if (jsonrpc_decode(s, len, &msg, &why) < 0) {
        if (cbs->on_skip)
            cbs->on_skip(data, why, s, len, len);
        return 0;
    }
    int rc = cbs->on_message ? cbs->on_message(data, &msg) : 0;
    jsonrpc_msg_release(&msg);
    return rc < 0 ? rc : 0;
}

/* Bytes of an over-long line: only its first bytes are kept, for the report. */
static void discard(struct jsonrpc_reader *r, const char *p, size_t n)
{
    size_t room = sizeof(r->head) - r->head_len;
    size_t take = n < room ? n : room;
    memcpy(r->head + r->head_len, p, take);
    r->head_len += take;
    r->discarding += n;
}

static void start_discard(struct jsonrpc_reader *r, const char *p, size_t n)
{
    r->head_len = 0;
    r->discarding = 0;
    discard(r, r->line.data ? r->line.data : "", r->line.len);
    discard(r, p, n);
    buf_reset(&r->line);
}

static int feed(struct jsonrpc_reader *r, const char *p, size_t len, const struct jsonrpc_cbs *cbs,
                void *data)
{
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(p + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - p) : len;
        size_t n = end - i;
        if (r->discarding > 0) {
            discard(r, p + i, n);
        } else if (r->line.len == 0 && nl && n <= r->max_line) {
            int rc = on_line(r, p + i, n, cbs, data); /* the whole line is here: no copy */
            if (rc < 0)
                return rc;
        } else if (buf_append(&r->line, p + i, n) < 0) {
            start_discard(r, p + i, n);
        } else if (nl) {
            int rc = on_line(r, r->line.data, r->line.len, cbs, data);
            buf_reset(&r->line);
            if (rc < 0)
                return rc;
        }
        if (nl && r->discarding > 0) {
            if (cbs->on_skip)
                cbs->on_skip(data, JSONRPC_SKIP_TOO_LONG, r->head, r->head_len, r->discarding);
            r->discarding = 0;
            r->head_len = 0;
        }
        i = nl ? end + 1 : len;
    }
    return 0;
}

int jsonrpc_reader_feed(struct jsonrpc_reader *r, const char *p, size_t len,
                        const struct jsonrpc_cbs *cbs, void *data)
{
    if (r->err < 0)
        return r->err;
    int rc = feed(r, p, len, cbs, data);
    if (rc < 0)
        r->err = rc;
    return rc;
}

/* ---- encoding --------------------------------------------------------------------------- */

static int dump_cb(const char *p, size_t n, void *data)
{
    return buf_append(data, p, n) < 0 ? -1 : 0;
}

/* Steals msg. */
static char *line_new(json_t *msg, size_t *len)
{
    struct buf b;
    buf_init(&b, SIZE_MAX - 1);
    json_dump_callback(msg, dump_cb, &b, JSON_COMPACT);
    json_decref(msg);
    buf_appendc(&b, '\n');
    return buf_detach(&b, len);
}

char *jsonrpc_encode_request(json_int_t id, const char *method, const json_t *params, size_t *len)
{
    json_t *m = json_pack("{s:s, s:I, s:s}", "jsonrpc", "2.0", "id", id, "method", method);
    if (params)
        json_object_set(m, "params", (json_t *)params);
    return line_new(m, len);
}

char *jsonrpc_encode_notification(const char *method, const json_t *params, size_t *len)
{
    json_t *m = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", method);
    if (params)
        json_object_set(m, "params", (json_t *)params);
    return line_new(m, len);
}

char *jsonrpc_encode_result(const json_t *id, const json_t *result, size_t *len)
{
    json_t *m = json_pack("{s:s, s:O, s:O}", "jsonrpc", "2.0", "id", id ? id : json_null(),
                          "result", result);
    return line_new(m, len);
}

char *jsonrpc_encode_error(const json_t *id, int code, const char *message, size_t *len)
{
    json_t *m = json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id ? id : json_null(),
                          "error", "code", code, "message", message);
    return line_new(m, len);
}

char *jsonrpc_error_text(const json_t *error)
{
    const json_t *code = json_object_get(error, "code");
    const char *message = json_string_value(json_object_get(error, "message"));
    if (message == NULL)
        message = "unknown error";
    if (json_is_integer(code))
        return xasprintf("MCP error %lld: %s", (long long)json_integer_value(code), message);
    return xasprintf("MCP error: %s", message);
}
