/* SPDX-License-Identifier: MIT */
/* json_skim.c -- one recursive-descent pass over a chat.completion.chunk that validates it
 * (RFC 8259 plus the limits jansson adds: strict UTF-8, no \u0000, no lone surrogates, integers
 * in int64, finite reals) and notes where the few strings the decoder wants are. It never copies:
 * strings are handed back as spans of the input. */
#include "json_skim.h"

#include <stdbool.h>
#include <string.h>

/* 1 for the bytes a string may hold as they are: printable ASCII but '"' and '\'. Control
 * characters, the two specials and every byte >= 0x80 (checked as UTF-8) take the slow lane. */
static const unsigned char plain_byte[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    /* 0x80..0xFF: 0 */
};

/* Where an object sits in a chunk; only these three levels have members we look at. */
enum level { LVL_ANY, LVL_TOP, LVL_CHOICE, LVL_DELTA };

/* Members looked for; each is a bit in the per-object "seen" mask that spots duplicates. */
enum key {
    /* top level */
    K_ERROR,
    K_CHOICES,
    K_USAGE,
    /* choices[0] */
    K_INDEX,
    K_DELTA,
    K_FINISH,
    K_STOP,
    /* choices[0].delta */
    K_CONTENT,
    K_REASONING_CONTENT,
    K_REASONING,
    K_TOOL_CALLS,
    K_UNKNOWN = -1,
};

struct skim {
    const unsigned char *p, *end;
    int depth;  /* objects and arrays open around p */
    bool other; /* valid so far, but the chunk needs the full parse */
    struct json_skim_chunk *out;
};

/* Internal results: 0 to go on, else the verdict that ends the scan. */
#define BAD JSON_SKIM_INVALID
#define UNSURE JSON_SKIM_UNSURE

static int skip_value(struct skim *s);
static int scan_object(struct skim *s, enum level lvl);

static inline bool is_digit(unsigned c)
{
    return c - '0' < 10u;
}

static inline void skip_ws(struct skim *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

/* ------------------------------------------------------------------------------------------
 * Strings
 * ---------------------------------------------------------------------------------------- */

static bool hex4(const unsigned char *p, const unsigned char *end, unsigned *out)
{
    if (end - p < 4)
        return false;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], lc = c | 0x20;
        if (is_digit(c))
            v = v << 4 | (c - '0');
        else if (lc >= 'a' && lc <= 'f')
            v = v << 4 | (lc - 'a' + 10);
        else
            return false;
    }
    *out = v;
    return true;
}

/* Checks one escape (s->p just past the backslash) and returns the length it decodes to, or 0
 * when jansson would refuse it: an unknown letter, bad hex, \u0000 (NUL is not allowed in its
 * strings or keys), or a surrogate that is not a high one directly followed by a low one. */
static size_t scan_escape(struct skim *s)
{
    if (s->p >= s->end)
        return 0;
    switch (*s->p++) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return 1;
    case 'u':
        break;
    default:
        return 0;
    }
    unsigned cp, lo;
    if (!hex4(s->p, s->end, &cp) || cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
        return 0;
    s->p += 4;
    if (cp < 0xD800 || cp > 0xDBFF)
        return cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
    if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' || !hex4(s->p + 2, s->end, &lo) ||
        lo < 0xDC00 || lo > 0xDFFF)
        return 0;
    s->p += 6;
    return 4;
}

/* Checks the UTF-8 sequence whose lead byte (>= 0x80) is at s->p by RFC 3629 rules, as jansson's
 * reader does: no overlong forms, no surrogates, nothing above U+10FFFF, no cut sequence. */
static bool scan_utf8(struct skim *s)
{
    const unsigned char *p = s->p;
    unsigned c = p[0], lo = 0x80, hi = 0xBF;
    ptrdiff_t n;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* overlong below U+0800 */
        hi = c == 0xED ? 0x9F : 0xBF; /* U+D800..U+DFFF */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80; /* overlong below U+10000 */
        hi = c == 0xF4 ? 0x8F : 0xBF; /* above U+10FFFF */
    } else {
        return false; /* a continuation byte, C0/C1, or F5..FF */
    }
    if (s->end - p < n || p[1] < lo || p[1] > hi)
        return false;
    for (ptrdiff_t i = 2; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF)
            return false;
    }
    s->p += n;
    return true;
}

/* Scans the string whose opening quote is at s->p into *v. */
static int scan_string(struct skim *s, struct json_skim_str *v)
{
    const unsigned char *start = ++s->p;
    size_t shrink = 0; /* bytes the escapes lose when decoded */
    for (;;) {
        while (s->p < s->end && plain_byte[*s->p])
            s->p++;
        if (s->p >= s->end)
            return BAD; /* no closing quote */
        unsigned c = *s->p;
        if (c == '"')
            break;
        if (c == '\\') {
            const unsigned char *esc = s->p++;
            size_t n = scan_escape(s);
            if (n == 0)
                return BAD;
            shrink += (size_t)(s->p - esc) - n;
        } else if (c < 0x20 || !scan_utf8(s)) {
            return BAD; /* a raw control character, or bad UTF-8 */
        }
    }
    v->raw = (const char *)start;
    v->raw_len = (size_t)(s->p - start);
    v->len = v->raw_len - shrink;
    s->p++;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Numbers and literals
 * ---------------------------------------------------------------------------------------- */

/* The digits at *pp, how many. */
static size_t scan_digits(const unsigned char **pp, const unsigned char *end)
{
    const unsigned char *p = *pp;
    while (p < end && is_digit(*p))
        p++;
    size_t n = (size_t)(p - *pp);
    *pp = p;
    return n;
}

/* A real's exponent: whether strtod could overflow. int_digits + exponent <= 308 means the value
 * is below 1e308 < DBL_MAX; a negative exponent only shrinks it (underflow is no error). */
static int check_exponent(const unsigned char *p, const unsigned char *end, size_t int_digits)
{
    bool neg = *p == '-';
    if (*p == '+' || *p == '-')
        p++;
    size_t e = 0;
    for (; p < end && is_digit(*p); p++) {
        e = e * 10 + (*p - '0');
        if (e > 1000)
            return UNSURE;
    }
    if (neg)
        return int_digits <= 308 ? 0 : UNSURE;
    return int_digits + e <= 308 ? 0 : UNSURE;
}

/* A number as jansson's lexer takes it: an optional '-', 0 or digits without a leading zero,
 * then optionally a fraction and an exponent. Without either it is an integer, and jansson refuses
 * one outside int64 ("too big integer"); a real that strtod overflows is refused too. */
static int scan_number(struct skim *s)
{
    const unsigned char *p = s->p, *end = s->end;
    bool neg = *p == '-';
    if (neg)
        p++;
    const unsigned char *digits = p;
    size_t n;
    if (p < end && *p == '0') {
        n = 1; /* a leading zero stands alone: "01" ends the number after the 0 */
        p++;
    } else if ((n = scan_digits(&p, end)) == 0) {
        return BAD;
    }
    bool real = false;
    if (p < end && *p == '.') {
        p++;
        if (scan_digits(&p, end) == 0)
            return BAD;
        real = true;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        const unsigned char *exp = ++p;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (scan_digits(&p, end) == 0)
            return BAD;
        s->p = p;
        if (p < end && *p == '\0')
            return UNSURE; /* as below */
        return check_exponent(exp, end, n);
    }
    s->p = p;
    /* jansson skips one NUL byte right after a number or a literal ([1<NUL>] loads; found by
     * tests/fuzz/fuzz_json_skim.c): let it judge. */
    if (p < end && *p == '\0')
        return UNSURE;
    if (real)
        return n <= 308 ? 0 : UNSURE;
    if (n != 19)
        return n < 19 ? 0 : BAD;
    return memcmp(digits, neg ? "9223372036854775808" : "9223372036854775807", 19) > 0 ? BAD : 0;
}

static int scan_literal(struct skim *s, const char *word, size_t len)
{
    if ((size_t)(s->end - s->p) < len || memcmp(s->p, word, len) != 0)
        return BAD;
    s->p += len;
    return s->p < s->end && *s->p == '\0' ? UNSURE : 0; /* as after a number */
}

/* ------------------------------------------------------------------------------------------
 * Values, arrays, objects
 * ---------------------------------------------------------------------------------------- */

/* An array. When it is the top-level "choices", its first element is looked into. */
static int scan_array(struct skim *s, bool choices)
{
    if (++s->depth > JSON_SKIM_MAX_DEPTH)
        return UNSURE;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == ']') {
        s->p++;
        s->depth--;
        return 0;
    }
    for (size_t i = 0;; i++) {
        int rc;
        if (choices && i == 0 && s->p < s->end && *s->p == '{') {
            rc = scan_object(s, LVL_CHOICE);
        } else {
            s->other |= choices; /* a second choice, or a first one that is not an object */
            rc = skip_value(s);
        }
        if (rc)
            return rc;
        skip_ws(s);
        if (s->p >= s->end || (*s->p != ',' && *s->p != ']'))
            return BAD;
        if (*s->p++ == ']')
            break;
        skip_ws(s);
    }
    s->depth--;
    return 0;
}

static int skip_value(struct skim *s)
{
    if (s->p >= s->end)
        return BAD;
    struct json_skim_str v;
    switch (*s->p) {
    case '{':
        return scan_object(s, LVL_ANY);
    case '[':
        return scan_array(s, false);
    case '"':
        return scan_string(s, &v);
    case 't':
        return scan_literal(s, "true", 4);
    case 'f':
        return scan_literal(s, "false", 5);
    case 'n':
        return scan_literal(s, "null", 4);
    default:
        return *s->p == '-' || is_digit(*s->p) ? scan_number(s) : BAD;
    }
}

/* A member that keeps the chunk plain only when null (or false, for "error"). */
static int want_null(struct skim *s, bool false_too)
{
    if (*s->p == 'n')
        return scan_literal(s, "null", 4);
    if (false_too && *s->p == 'f')
        return scan_literal(s, "false", 5);
    s->other = true;
    return skip_value(s);
}

/* A member that keeps the chunk plain when null or a string; the string is noted in *v. */
static int want_string(struct skim *s, struct json_skim_str *v)
{
    if (*s->p == '"')
        return scan_string(s, v);
    if (*s->p == 'n') {
        *v = (struct json_skim_str){NULL, 0, 0};
        return scan_literal(s, "null", 4);
    }
    s->other = true;
    return skip_value(s);
}

/* A member that keeps the chunk plain when null or an object at the given level. */
static int want_object(struct skim *s, enum level lvl)
{
    if (*s->p == '{')
        return scan_object(s, lvl);
    return want_null(s, false);
}

/* "index" of choices[0]: the plain case is the integer 0 written as "0". */
static int want_zero(struct skim *s)
{
    const unsigned char *start = s->p;
    int rc = skip_value(s);
    if (rc == 0 && (s->p - start != 1 || *start != '0'))
        s->other = true;
    return rc;
}

/* The member names looked for at each level. Comparing with literals lets the compiler inline
 * each memcmp as a few loads. */
#define IS(lit) (k->raw_len == sizeof(lit) - 1 && memcmp(k->raw, lit, sizeof(lit) - 1) == 0)

static enum key find_key(enum level lvl, const struct json_skim_str *k)
{
    switch (lvl) {
    case LVL_TOP:
        return IS("choices") ? K_CHOICES
               : IS("error") ? K_ERROR
               : IS("usage") ? K_USAGE
                             : K_UNKNOWN;
    case LVL_CHOICE:
        return IS("delta")           ? K_DELTA
               : IS("index")         ? K_INDEX
               : IS("finish_reason") ? K_FINISH
               : IS("stop_reason")   ? K_STOP
                                     : K_UNKNOWN;
    case LVL_DELTA:
        return IS("content")             ? K_CONTENT
               : IS("reasoning_content") ? K_REASONING_CONTENT
               : IS("reasoning")         ? K_REASONING
               : IS("tool_calls")        ? K_TOOL_CALLS
                                         : K_UNKNOWN;
    default:
        return K_UNKNOWN;
    }
}

#undef IS

/* The value of member k in an object at a level we look into (s->p at the value). */
static int scan_member(struct skim *s, enum level lvl, const struct json_skim_str *k,
                       unsigned *seen)
{
    if (s->p >= s->end)
        return BAD;
    if (k->len != k->raw_len) {
        s->other = true; /* an escaped name could spell one we look for */
        return skip_value(s);
    }
    enum key key = find_key(lvl, k);
    if (key == K_UNKNOWN)
        return skip_value(s);
    if (*seen & (1u << key))
        s->other = true; /* jansson keeps the last; rather than track that, take its path */
    *seen |= 1u << key;
    struct json_skim_chunk *out = s->out;
    switch (key) {
    case K_ERROR:
        return want_null(s, true);
    case K_CHOICES:
        if (*s->p == '[')
            return scan_array(s, true);
        return want_null(s, false);
    case K_DELTA:
        return want_object(s, LVL_DELTA);
    case K_INDEX:
        return want_zero(s);
    case K_FINISH:
        return want_string(s, &out->finish_reason);
    case K_CONTENT:
        return want_string(s, &out->content);
    case K_REASONING_CONTENT:
        return want_string(s, &out->reasoning_content);
    case K_REASONING:
        return want_string(s, &out->reasoning);
    case K_USAGE:
    case K_TOOL_CALLS:
        return want_null(s, false);
    case K_STOP:
    default:
        s->other = true;
        return skip_value(s);
    }
}

static int scan_object(struct skim *s, enum level lvl)
{
    if (++s->depth > JSON_SKIM_MAX_DEPTH)
        return UNSURE;
    unsigned seen = 0;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        s->depth--;
        return 0;
    }
    for (;;) {
        struct json_skim_str k;
        if (s->p >= s->end || *s->p != '"')
            return BAD;
        int rc = scan_string(s, &k);
        if (rc)
            return rc;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':')
            return BAD;
        s->p++;
        skip_ws(s);
        rc = lvl == LVL_ANY ? skip_value(s) : scan_member(s, lvl, &k, &seen);
        if (rc)
            return rc;
        skip_ws(s);
        if (s->p >= s->end || (*s->p != ',' && *s->p != '}'))
            return BAD;
        if (*s->p++ == '}')
            break;
        skip_ws(s);
    }
    s->depth--;
    return 0;
}

/* ------------------------------------------------------------------------------------------
 * Public API
 * ---------------------------------------------------------------------------------------- */

enum json_skim_verdict json_skim_chunk(const char *p, size_t len, struct json_skim_chunk *out)
{
    memset(out, 0, sizeof(*out));
    struct skim s = {(const unsigned char *)p, (const unsigned char *)p + len, 0, false, out};
    skip_ws(&s);
    int rc;
    if (s.p < s.end && *s.p == '{') {
        rc = scan_object(&s, LVL_TOP);
    } else if (s.p < s.end && *s.p == '[') {
        s.other = true; /* jansson takes it; the decoder then says it is no object */
        rc = scan_array(&s, false);
    } else {
        return JSON_SKIM_INVALID; /* jansson without JSON_DECODE_ANY wants '[' or '{' */
    }
    if (rc)
        return (enum json_skim_verdict)rc;
    skip_ws(&s);
    if (s.p != s.end)
        return JSON_SKIM_INVALID; /* "end of file expected" */
    return s.other ? JSON_SKIM_OTHER : JSON_SKIM_PLAIN;
}

static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12);
        o[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18);
    o[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    o[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decodes the escape after a backslash at *pp (already checked by scan_escape). */
static size_t decode_escape(const unsigned char **pp, const unsigned char *end, char *o)
{
    const unsigned char *p = *pp;
    unsigned cp, lo;
    char c = (char)*p++;
    switch (c) {
    case 'b':
        c = '\b';
        break;
    case 'f':
        c = '\f';
        break;
    case 'n':
        c = '\n';
        break;
    case 'r':
        c = '\r';
        break;
    case 't':
        c = '\t';
        break;
    case 'u':
        hex4(p, end, &cp);
        p += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            hex4(p + 2, end, &lo);
            p += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        *pp = p;
        return put_utf8(o, cp);
    default:
        break; /* '"', '\\' and '/' stand for themselves */
    }
    *o = c;
    *pp = p;
    return 1;
}

size_t json_skim_decode(const struct json_skim_str *v, char *dst)
{
    if (v->raw_len == 0)
        return 0;
    const unsigned char *p = (const unsigned char *)v->raw, *end = p + v->raw_len;
    char *o = dst;
    while (p < end) {
        const unsigned char *bs = memchr(p, '\\', (size_t)(end - p));
        size_t run = (size_t)((bs ? bs : end) - p);
        memcpy(o, p, run);
        o += run;
        p += run;
        if (bs == NULL)
            break;
        p++;
        o += decode_escape(&p, end, o);
    }
    return (size_t)(o - dst);
}
