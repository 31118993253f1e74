/* SPDX-License-Identifier: MIT */
/* tool_content.c -- what a tool result becomes before it goes to the model: the OpenAI content
 * parts the original makes of it (utils/multimodal.ts), with JSON.stringify(v, null, 2) emulated
 * byte for byte for the text. Pure: no I/O, no loop. Used by agent/run.c for every tool result
 * (built-in or MCP) and by mcp_config.c for scalar config values. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/util.h"
#include "core/xalloc.h"
#include "mcp_int.h"
#include "tools.h"

/* ================================================================ JSON.stringify */

static int js_string(struct buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    static const char short_esc[0x20] = {
        ['\b'] = 'b', ['\f'] = 'f', ['\n'] = 'n', ['\r'] = 'r', ['\t'] = 't'};
    int rc = buf_appendc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < len && rc == 0; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rc = buf_append(b, s + run, i - run);
        run = i + 1;
        char esc[6] = {'\\', (char)c};
        size_t n = 2;
        if (c < 0x20 && short_esc[c]) {
            esc[1] = short_esc[c];
        } else if (c < 0x20) {
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            n = 6;
        }
        if (rc == 0)
            rc = buf_append(b, esc, n);
    }
    if (rc == 0)
        rc = buf_append(b, s + run, len - run);
    return rc == 0 ? buf_appendc(b, '"') : rc;
}

/* Number::toString (ECMA-262 §6.1.6.1.20): the shortest digits that read back as the same
 * double, in plain notation for 1e-7 <= |x| < 1e21 and exponent notation outside. */
static int js_number(struct buf *b, double x)
{
    if (!isfinite(x))
        return buf_append_lit(b, "null");
    if (x == 0)
        return buf_appendc(b, '0');
    char tmp[40];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof(tmp), "%.*e", p - 1, x);
        if (strtod(tmp, NULL) == x)
            break;
    }
    const char *s = tmp;
    int rc = 0;
    if (*s == '-') {
        rc = buf_appendc(b, '-');
        s++;
    }
    char digits[24];
    int k = 0;
    for (; *s && *s != 'e'; s++)
        if (*s != '.')
            digits[k++] = *s;
    while (k > 1 && digits[k - 1] == '0')
        k--;
    int n = (int)strtol(s + 1, NULL, 10) + 1; /* x = 0.d1d2... * 10^n */
    if (k <= n && n <= 21) {
        rc |= buf_append(b, digits, (size_t)k);
        for (int i = k; i < n; i++)
            rc |= buf_appendc(b, '0');
    } else if (0 < n && n <= 21) {
        rc |= buf_append(b, digits, (size_t)n);
        rc |= buf_appendc(b, '.');
        rc |= buf_append(b, digits + n, (size_t)(k - n));
    } else if (-6 < n && n <= 0) {
        rc |= buf_append_lit(b, "0.");
        for (int i = 0; i < -n; i++)
            rc |= buf_appendc(b, '0');
        rc |= buf_append(b, digits, (size_t)k);
    } else {
        rc |= buf_appendc(b, digits[0]);
        if (k > 1) {
            rc |= buf_appendc(b, '.');
            rc |= buf_append(b, digits + 1, (size_t)(k - 1));
        }
        rc |= buf_appendf(b, "e%c%d", n - 1 < 0 ? '-' : '+', abs(n - 1));
    }
    return rc < 0 ? BUF_ERR_TOOBIG : 0;
}

static int js_newline(struct buf *b, int indent, int depth)
{
    if (indent == 0)
        return 0;
    int rc = buf_appendc(b, '\n');
    for (int i = 0; i < indent * depth && rc == 0; i++)
        rc = buf_appendc(b, ' ');
    return rc;
}

static int js_value(struct buf *b, const json_t *v, int indent, int depth);

static int js_array(struct buf *b, const json_t *v, int indent, int depth)
{
    if (json_array_size(v) == 0)
        return buf_append_lit(b, "[]");
    int rc = buf_appendc(b, '[');
    for (size_t i = 0; i < json_array_size(v) && rc == 0; i++) {
        if (i > 0)
            rc = buf_appendc(b, ',');
        if (rc == 0)
            rc = js_newline(b, indent, depth + 1);
        if (rc == 0)
            rc = js_value(b, json_array_get(v, i), indent, depth + 1);
    }
    if (rc == 0)
        rc = js_newline(b, indent, depth);
    return rc == 0 ? buf_appendc(b, ']') : rc;
}

static int js_object(struct buf *b, const json_t *v, int indent, int depth)
{
    if (json_object_size(v) == 0)
        return buf_append_lit(b, "{}");
    int rc = buf_appendc(b, '{');
    bool first = true;
    const char *k;
    size_t klen;
    json_t *item;
    json_object_keylen_foreach((json_t *)v, k, klen, item)
    {
        if (rc < 0)
            break;
        if (!first)
            rc = buf_appendc(b, ',');
        first = false;
        if (rc == 0)
            rc = js_newline(b, indent, depth + 1);
        if (rc == 0)
            rc = js_string(b, k, klen);
        if (rc == 0)
            rc = indent ? buf_append_lit(b, ": ") : buf_appendc(b, ':');
        if (rc == 0)
            rc = js_value(b, item, indent, depth + 1);
    }
    if (rc == 0)
        rc = js_newline(b, indent, depth);
    return rc == 0 ? buf_appendc(b, '}') : rc;
}

static int js_value(struct buf *b, const json_t *v, int indent, int depth)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return js_object(b, v, indent, depth);
    case JSON_ARRAY:
        return js_array(b, v, indent, depth);
    case JSON_STRING:
        return js_string(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return buf_append_i64(b, (long long)json_integer_value(v));
    case JSON_REAL:
        return js_number(b, json_real_value(v));
    case JSON_TRUE:
        return buf_append_lit(b, "true");
    case JSON_FALSE:
        return buf_append_lit(b, "false");
    default:
        return buf_append_lit(b, "null");
    }
}

int mcp__js_stringify(struct buf *b, const json_t *v, int indent)
{
    return v ? js_value(b, v, indent, 0) : buf_append_lit(b, "null");
}

/* ================================================================ tool results -> LLM parts */

static json_t *text_part_stringified(const json_t *v)
{
    struct buf b;
    buf_init(&b, SIZE_MAX - 1);
    mcp__js_stringify(&b, v, 2);
    json_t *part = json_pack("{s:s, s:s%}", "type", "text", "text", buf_str(&b), b.len);
    buf_release(&b);
    return part;
}

static bool is_base64(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || c == '=';
        if (!ok)
            return false;
    }
    return true;
}

static bool has_prefix(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* multimodal.ts extractImageData: an object whose type names an image or screenshot and that
 * has string data; or, failing that, any object whose trimmed data looks like base64 (the MIME
 * type is then guessed from the magic bytes, PNG when unknown). Returns the data URI part. */
static json_t *image_part(const json_t *obj)
{
    const char *type = json_get_str(obj, "type");
    const char *data = json_get_str(obj, "data");
    if (data == NULL || *data == '\0')
        return NULL;
    const char *mime = NULL;
    size_t dlen = strlen(data);
    if (type && *type && (strstr(type, "screenshot") || strstr(type, "image"))) {
        mime = json_get_str(obj, "mimeType");
        if (mime == NULL || *mime == '\0')
            mime = strstr(type, "png")                           ? "image/png"
                   : strstr(type, "jpg") || strstr(type, "jpeg") ? "image/jpeg"
                   : strstr(type, "gif")                         ? "image/gif"
                   : strstr(type, "webp")                        ? "image/webp"
                                                                 : "image/png";
    } else {
        while (*data == ' ' || *data == '\t' || *data == '\n' || *data == '\r')
            data++, dlen--;
        while (dlen > 0 && strchr(" \t\n\r", data[dlen - 1]))
            dlen--;
        if (!is_base64(data, dlen))
            return NULL;
        mime = has_prefix(data, "/9j/")     ? "image/jpeg"
               : has_prefix(data, "R0lGOD") ? "image/gif"
               : has_prefix(data, "UklGR")  ? "image/webp"
                                            : "image/png";
    }
    char *url = xasprintf("data:%s;base64,%.*s", mime, (int)dlen, data);
    json_t *part = json_pack("{s:s, s:{s:s}}", "type", "image_url", "image_url", "url", url);
    xfree(url);
    return part;
}

/* The object without its image fields, or NULL when nothing else is left. */
static json_t *image_remainder(const json_t *obj)
{
    json_t *rest = json_copy((json_t *)obj);
    json_object_del(rest, "data");
    json_object_del(rest, "type");
    json_object_del(rest, "mimeType");
    if (json_object_size(rest) > 0)
        return rest;
    json_decref(rest);
    return NULL;
}

static void array_parts(json_t *parts, const json_t *content)
{
    json_t *kept = json_array();
    bool image = false;
    size_t i;
    json_t *item;
    json_array_foreach(content, i, item)
    {
        json_t *img = json_is_object(item) ? image_part(item) : NULL;
        if (img == NULL) {
            json_array_append(kept, item);
            continue;
        }
        image = true;
        json_array_append_new(parts, img);
        json_t *rest = image_remainder(item);
        if (rest)
            json_array_append_new(kept, rest);
    }
    if (json_array_size(kept) > 0)
        json_array_append_new(parts, text_part_stringified(kept));
    if (!image && json_array_size(parts) == 0)
        json_array_append_new(parts, text_part_stringified(content));
    json_decref(kept);
}

json_t *mcp_content_to_parts(const json_t *content)
{
    json_t *parts = json_array();
    if (json_is_string(content)) {
        json_array_append_new(parts,
                              json_pack("{s:s, s:s%}", "type", "text", "text",
                                        json_string_value(content), json_string_length(content)));
    } else if (json_is_array(content)) {
        array_parts(parts, content);
    } else if (json_is_object(content)) {
        json_t *img = image_part(content);
        json_t *rest = img ? image_remainder(content) : NULL;
        json_array_append_new(parts, img ? img : text_part_stringified(content));
        if (rest)
            json_array_append_new(parts, text_part_stringified(rest));
        json_decref(rest);
    } else {
        /* String(null) and friends; a missing result reads "undefined" in the original. */
        struct buf b;
        buf_init(&b, 64);
        if (content)
            mcp__js_stringify(&b, content, 0);
        else
            buf_append_lit(&b, "undefined");
        json_array_append_new(parts, json_pack("{s:s, s:s}", "type", "text", "text", buf_str(&b)));
        buf_release(&b);
    }
    if (json_array_size(parts) == 0)
        json_array_append_new(parts, json_pack("{s:s, s:s}", "type", "text", "text", ""));
    return parts;
}
