/* SPDX-License-Identifier: MIT */
/* multipart.c -- see multipart.h. The body is scanned for the delimiter CRLF "--" boundary; the
 * bytes of a partial match are held back (they are the delimiter's own prefix, so nothing needs
 * copying) and released when the match fails. CR occurs only first in the delimiter (a boundary
 * has no CR), so a failed match restarts only at a CR. The first delimiter may open the body
 * without its CRLF: the parser starts as if a CRLF had just been seen. */
#include <string.h>
#include <strings.h>

#include "multipart.h"

/* RFC 2046 §5.1.1 bchars, space allowed but not last. */
static bool bchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("'()+_,-./:=? ", c) != NULL;
}

/* Copies a parameter value (quoted string or token) at s into out; returns the end of it. */
static const char *param_value(const char *s, char *out, size_t cap)
{
    size_t n = 0;
    if (*s == '"') {
        for (s++; *s && *s != '"'; s++) {
            if (*s == '\\' && s[1])
                s++;
            if (n < cap)
                out[n++] = *s;
        }
        if (*s == '"')
            s++;
    } else {
        for (; *s && *s != ';' && *s != ' ' && *s != '\t'; s++)
            if (n < cap)
                out[n++] = *s;
    }
    out[n] = '\0';
    return s;
}

/* Finds parameter `name` in a "; a=b; c=\"d\"" list and copies its value. */
static bool find_param(const char *params, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    const char *s = params;
    while (*s) {
        while (*s == ';' || *s == ' ' || *s == '\t')
            s++;
        const char *key = s;
        while (*s && *s != '=' && *s != ';')
            s++;
        size_t klen = (size_t)(s - key);
        while (klen > 0 && (key[klen - 1] == ' ' || key[klen - 1] == '\t'))
            klen--;
        if (*s != '=') {
            continue;
        }
        s++;
        while (*s == ' ' || *s == '\t')
            s++;
        char tmp[MULTIPART_MAX_NAME + 1];
        s = param_value(s, tmp, MULTIPART_MAX_NAME);
        if (klen == nlen && strncasecmp(key, name, nlen) == 0) {
            size_t n = strlen(tmp);
            if (n > cap)
                n = cap;
            memcpy(out, tmp, n);
            out[n] = '\0';
            return true;
        }
        while (*s && *s != ';')
            s++;
    }
    return false;
}

int multipart_boundary(const char *ct, char out[MULTIPART_MAX_BOUNDARY + 1])
{
    out[0] = '\0';
    if (ct == NULL)
        return -1;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (strncasecmp(ct, "multipart/form-data", 19) != 0)
        return -1;
    ct += 19;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    if (*ct != ';')
        return -1;
    char b[MULTIPART_MAX_NAME + 1];
    if (!find_param(ct, "boundary", b, MULTIPART_MAX_NAME))
        return -1;
    size_t n = strlen(b);
    if (n == 0 || n > MULTIPART_MAX_BOUNDARY || b[n - 1] == ' ')
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!bchar(b[i]))
            return -1;
    memcpy(out, b, n + 1);
    return (int)n;
}

void multipart_init(struct multipart *m, const char *boundary, size_t max_parts)
{
    memset(m, 0, sizeof(*m));
    size_t n = strlen(boundary);
    if (n > MULTIPART_MAX_BOUNDARY)
        n = MULTIPART_MAX_BOUNDARY;
    memcpy(m->delim, "\r\n--", 4);
    memcpy(m->delim + 4, boundary, n);
    m->delim_len = n + 4;
    m->match = 2; /* the body may open with "--boundary" */
    m->max_parts = max_parts;
    m->state = MP_PREAMBLE;
}

static int fail(struct multipart *m, int err)
{
    m->err = err;
    m->state = MP_DEAD;
    return err;
}

/* Parses the finished header block of a part (CRLF-separated lines, no final blank line). */
static int parse_head(struct multipart *m)
{
    m->name[0] = m->filename[0] = m->ctype[0] = '\0';
    m->has_filename = false;
    bool disposition = false;
    char *s = m->head;
    char *end = m->head + m->head_len;
    *end = '\0';
    while (s < end) {
        char *eol = strstr(s, "\r\n");
        if (eol == NULL)
            eol = end;
        *eol = '\0';
        char *colon = strchr(s, ':');
        if (colon == NULL || colon == s || memchr(s, '\n', (size_t)(eol - s)) || s[0] == ' ' ||
            s[0] == '\t')
            return MULTIPART_E_SYNTAX; /* no field name, a bare LF, or obsolete folding */
        *colon = '\0';
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t')
            v++;
        if (strcasecmp(s, "content-disposition") == 0) {
            if (strncasecmp(v, "form-data", 9) != 0 || (v[9] && v[9] != ';' && v[9] != ' '))
                return MULTIPART_E_SYNTAX;
            disposition = true;
            find_param(v + 9, "name", m->name, MULTIPART_MAX_NAME);
            m->has_filename = find_param(v + 9, "filename", m->filename, MULTIPART_MAX_NAME);
        } else if (strcasecmp(s, "content-type") == 0) {
            size_t n = strlen(v);
            if (n > MULTIPART_MAX_NAME)
                n = MULTIPART_MAX_NAME;
            memcpy(m->ctype, v, n);
            m->ctype[n] = '\0';
        }
        s = eol + 2;
    }
    return disposition ? MULTIPART_OK : MULTIPART_E_SYNTAX;
}

/* Bytes of the head block; the block ends at an empty line. */
static int feed_head(struct multipart *m, const char *p, size_t len, size_t *used,
                     const struct multipart_cbs *cb, void *data)
{
    size_t i = 0;
    while (i < len) {
        if (m->head_len >= MULTIPART_MAX_HEAD)
            return MULTIPART_E_HEAD;
        m->head[m->head_len++] = p[i++];
        size_t n = m->head_len;
        bool blank_first = n == 2 && memcmp(m->head, "\r\n", 2) == 0;
        if (blank_first || (n >= 4 && memcmp(m->head + n - 4, "\r\n\r\n", 4) == 0)) {
            m->head_len = blank_first ? 0 : n - 4;
            int rc = parse_head(m);
            if (rc < 0)
                return rc;
            struct multipart_part part = {m->name, m->has_filename ? m->filename : NULL, m->ctype};
            if (cb->on_part && cb->on_part(data, &part) < 0)
                return MULTIPART_E_STOPPED;
            m->state = MP_BODY;
            m->match = 0;
            break;
        }
    }
    *used = i;
    return MULTIPART_OK;
}

static int emit(const struct multipart_cbs *cb, void *data, const char *p, size_t len)
{
    if (len == 0 || cb->on_data == NULL)
        return 0;
    return cb->on_data(data, p, len) < 0 ? MULTIPART_E_STOPPED : 0;
}

/* Scans for the delimiter. In the body, bytes that cannot be part of it are emitted; in the
 * preamble they are dropped. Sets *used to the bytes consumed (up to and including a
 * delimiter, *found then set). Held-back bytes always equal the delimiter's prefix, so a
 * failed match releases them from m->delim, wherever they came from. */
static int feed_scan(struct multipart *m, const char *p, size_t len, size_t *used, bool *found,
                     const struct multipart_cbs *cb, void *data)
{
    bool body = m->state == MP_BODY;
    size_t i = 0;
    *found = false;
    while (i < len) {
        if (m->match == 0) {
            const char *cr = memchr(p + i, '\r', len - i);
            size_t end = cr ? (size_t)(cr - p) : len;
            if (body && emit(cb, data, p + i, end - i) < 0)
                return MULTIPART_E_STOPPED;
            i = end;
            if (cr == NULL)
                break;
            m->match = 1;
            i++;
            continue;
        }
        if (p[i] == m->delim[m->match]) {
            m->match++;
            i++;
            if (m->match == m->delim_len) {
                m->match = 0;
                *found = true;
                break;
            }
            continue;
        }
        /* p[i] is examined again: it may start a delimiter itself */
        if (body && emit(cb, data, m->delim, m->match) < 0)
            return MULTIPART_E_STOPPED;
        m->match = 0;
    }
    *used = i;
    return MULTIPART_OK;
}

/* After a delimiter: "--" closes the body; otherwise optional blanks, then CRLF. */
static int feed_after(struct multipart *m, char c)
{
    if (m->after == 0 && c == '-') {
        m->after = 1;
        m->after_prev = c;
        return MULTIPART_OK;
    }
    if (m->after == 1 && m->after_prev == '-') {
        if (c != '-')
            return MULTIPART_E_SYNTAX;
        m->state = MP_EPILOGUE;
        return MULTIPART_OK;
    }
    if (c == ' ' || c == '\t') {
        if (m->after_prev == '\r')
            return MULTIPART_E_SYNTAX;
        m->after = 2;
        m->after_prev = c;
        return MULTIPART_OK;
    }
    if (c == '\r' && m->after_prev != '\r') {
        m->after = 2;
        m->after_prev = c;
        return MULTIPART_OK;
    }
    if (c == '\n' && m->after_prev == '\r') {
        if (m->parts >= m->max_parts)
            return MULTIPART_E_PARTS;
        m->parts++;
        m->state = MP_HEAD;
        m->head_len = 0;
        return MULTIPART_OK;
    }
    return MULTIPART_E_SYNTAX;
}

int multipart_feed(struct multipart *m, const char *p, size_t len, const struct multipart_cbs *cb,
                   void *data)
{
    if (m->err)
        return m->err;
    size_t off = 0;
    while (off < len) {
        size_t used = 0;
        int rc = MULTIPART_OK;
        bool found = false;
        switch (m->state) {
        case MP_PREAMBLE:
        case MP_BODY:
            rc = feed_scan(m, p + off, len - off, &used, &found, cb, data);
            if (rc == MULTIPART_OK && found) {
                if (m->state == MP_BODY && cb->on_part_end && cb->on_part_end(data) < 0)
                    rc = MULTIPART_E_STOPPED;
                m->state = MP_AFTER_DELIM;
                m->after = 0;
                m->after_prev = 0;
            }
            break;
        case MP_AFTER_DELIM:
            rc = feed_after(m, p[off]);
            used = 1;
            break;
        case MP_HEAD:
            rc = feed_head(m, p + off, len - off, &used, cb, data);
            break;
        case MP_EPILOGUE:
            used = len - off; /* ignored (RFC 2046 §5.1.1) */
            break;
        case MP_DEAD:
            return m->err;
        }
        if (rc < 0)
            return fail(m, rc);
        off += used;
    }
    return MULTIPART_OK;
}

int multipart_finish(struct multipart *m)
{
    if (m->err)
        return m->err;
    return m->state == MP_EPILOGUE ? MULTIPART_OK : fail(m, MULTIPART_E_TRUNCATED);
}
