/* SPDX-License-Identifier: MIT */
/* otlp.c -- W3C trace context parsing and the OTLP/HTTP JSON encoding of spans. Pure: no loop,
 * no I/O; trace.c batches spans and sends what this builds, the unit tests check it directly.
 * The JSON mapping of OTLP (opentelemetry-proto, "JSON Protobuf Encoding"): field names in
 * lowerCamelCase, trace and span ids as lowercase hex strings (not base64), 64-bit integers
 * (times in unix nanoseconds, intValue) as decimal strings, enums as numbers. */
#include <stdio.h>
#include <string.h>

#include "../core/xalloc.h"
#include "obs_int.h"

void obs__hex(char *out, const uint8_t *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[p[i] >> 4];
        out[2 * i + 1] = hex[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int unhex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* uppercase is invalid in traceparent (§3.2.2) */
}

static bool parse_hex(const char *s, uint8_t *out, size_t n)
{
    bool nonzero = false;
    for (size_t i = 0; i < n; i++) {
        int hi = unhex(s[2 * i]), lo = unhex(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
        nonzero |= out[i] != 0;
    }
    return nonzero;
}

bool obs__traceparent_parse(const char *s, struct obs_ctx *ctx)
{
    /* version "-" trace-id "-" parent-id "-" trace-flags: 2+1+32+1+16+1+2 = 55 chars. A version
     * other than 00 may carry more fields after a dash (§3.2.4); ff is invalid. */
    if (s == NULL || strlen(s) < 55)
        return false;
    uint8_t ver;
    if (!parse_hex(s, &ver, 1) && !(s[0] == '0' && s[1] == '0'))
        return false;
    if (s[0] == 'f' && s[1] == 'f')
        return false;
    if (s[2] != '-' || s[35] != '-' || s[52] != '-')
        return false;
    if (s[55] != '\0' && (ver == 0 || s[55] != '-'))
        return false;
    uint8_t flags = 0;
    if (!parse_hex(s + 3, ctx->trace_id, 16) || !parse_hex(s + 36, ctx->span_id, 8))
        return false;
    if (unhex(s[53]) < 0 || unhex(s[54]) < 0)
        return false;
    flags = (uint8_t)(unhex(s[53]) << 4 | unhex(s[54]));
    ctx->sampled = flags & 1;
    return true;
}

static json_t *u64_string(uint64_t v)
{
    char s[24];
    snprintf(s, sizeof(s), "%llu", (unsigned long long)v);
    return json_string(s);
}

static json_t *hex_string(const uint8_t *p, size_t n)
{
    char s[33];
    obs__hex(s, p, n);
    return json_string(s);
}

static json_t *attr_json(const struct obs_attr *a)
{
    json_t *value;
    if (a->str) {
        value = json_pack("{s:s}", "stringValue", a->str);
    } else {
        char s[24];
        snprintf(s, sizeof(s), "%lld", a->num);
        value = json_pack("{s:s}", "intValue", s);
    }
    return json_pack("{s:s, s:o}", "key", a->key, "value", value);
}

static json_t *span_json(const struct obs_span *sp)
{
    json_t *attrs = json_array();
    for (size_t i = 0; i < sp->nattrs; i++)
        json_array_append_new(attrs, attr_json(&sp->attrs[i]));
    json_t *j = json_pack(
        "{s:o, s:o, s:s, s:i, s:o, s:o, s:o}", "traceId", hex_string(sp->trace_id, 16), "spanId",
        hex_string(sp->span_id, 8), "name", sp->name, "kind", sp->kind, "startTimeUnixNano",
        u64_string(sp->start_ns), "endTimeUnixNano", u64_string(sp->end_ns), "attributes", attrs);
    static const uint8_t zero[8];
    if (memcmp(sp->parent_id, zero, 8) != 0)
        json_object_set_new(j, "parentSpanId", hex_string(sp->parent_id, 8));
    /* Status code: 0 unset, 2 error (STATUS_CODE_ERROR). */
    if (sp->error)
        json_object_set_new(j, "status", json_pack("{s:i, s:s}", "code", 2, "message", sp->error));
    return j;
}

json_t *obs__otlp_json(const struct obs_span *spans, size_t n, const char *service_name)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, span_json(&spans[i]));
    struct obs_attr svc = {.key = "service.name", .str = (char *)service_name};
    json_t *resource = json_pack("{s:[o]}", "attributes", attr_json(&svc));
    json_t *scope = json_pack("{s:s}", "name", "agent-tars-server");
    return json_pack("{s:[{s:o, s:[{s:o, s:o}]}]}", "resourceSpans", "resource", resource,
                     "scopeSpans", "scope", scope, "spans", arr);
}

void obs__span_release(struct obs_span *sp)
{
    for (size_t i = 0; i < sp->nattrs; i++)
        xfree(sp->attrs[i].str);
    xfree(sp->error);
    memset(sp, 0, sizeof(*sp));
}
