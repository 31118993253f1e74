/* SPDX-License-Identifier: MIT */
/* fuzz_edit_diff.c -- edit_file's text edits and unified diff (src/tools/tool_edit.c, included
 * for its static functions). Input: old text NUL new text [NUL oldText NUL newText]. Property:
 * applying the diff's hunks to the old text's lines gives the new text's lines (a small patch
 * applier below is the oracle); edits either apply or fail with a message. */
#include <stdlib.h>

#include "../../src/tools/tool_edit.c"
#include "fuzz.h"

struct lines {
    struct line *v;
    size_t n;
};

/* Lines without their \n; a final \n does not start another line. */
static struct lines split_lines(const char *p, size_t len)
{
    struct lines L = {xmalloc((len + 1) * sizeof(struct line)), 0};
    size_t s = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len && s == len)
            break;
        if (i == len || p[i] == '\n') {
            L.v[L.n++] = (struct line){p + s, i - s};
            s = i + 1;
        }
    }
    return L;
}

static bool same(struct line a, const char *p, size_t n)
{
    return a.len == n && memcmp(a.p, p, n) == 0;
}

/* Applies the hunks of diff to A; aborts on any mismatch, then compares with B. */
static void check_patch(const struct buf *diff, struct lines A, struct lines B)
{
    struct lines D = split_lines(diff->data, diff->len);
    struct line *out = xmalloc((A.n + D.n + 1) * sizeof(struct line));
    size_t no = 0, cur = 0;
    for (size_t i = 4; i < D.n; i++) { /* after Index, ===, ---, +++ */
        struct line l = D.v[i];
        if (l.len == 0)
            abort();
        if (l.p[0] == '@') {
            unsigned long os, on, ns, nn;
            char tmp[128];
            size_t k = l.len < sizeof(tmp) - 1 ? l.len : sizeof(tmp) - 1;
            memcpy(tmp, l.p, k);
            tmp[k] = '\0';
            if (sscanf(tmp, "@@ -%lu,%lu +%lu,%lu @@", &os, &on, &ns, &nn) != 4)
                abort();
            size_t upto = on ? os - 1 : os;
            if (upto < cur || upto > A.n)
                abort();
            while (cur < upto)
                out[no++] = A.v[cur++];
        } else if (l.p[0] == ' ' || l.p[0] == '-') {
            if (cur >= A.n || !same(A.v[cur], l.p + 1, l.len - 1))
                abort();
            if (l.p[0] == ' ')
                out[no++] = A.v[cur];
            cur++;
        } else if (l.p[0] == '+') {
            out[no++] = (struct line){l.p + 1, l.len - 1};
        } else if (l.p[0] != '\\') {
            abort();
        }
    }
    while (cur < A.n)
        out[no++] = A.v[cur++];
    if (no != B.n)
        abort();
    for (size_t i = 0; i < no; i++)
        if (!same(out[i], B.v[i].p, B.v[i].len))
            abort();
    xfree(out);
    xfree(D.v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (size > 8192)
        return 0;
    const char *parts[4] = {"", "", "", ""};
    size_t lens[4] = {0, 0, 0, 0};
    const char *p = (const char *)data, *end = p + size;
    for (int k = 0; k < 4 && p <= end; k++) {
        const char *z = memchr(p, '\0', (size_t)(end - p));
        parts[k] = p;
        lens[k] = z ? (size_t)(z - p) : (size_t)(end - p);
        p += lens[k] + 1;
        if (!z)
            break;
    }
    struct text a = text_dup_lf(parts[0], lens[0]), b = text_dup_lf(parts[1], lens[1]);
    struct buf diff;
    buf_init(&diff, SIZE_MAX / 2);
    unified_diff(&diff, "f.txt", &a, &b);
    struct lines A = split_lines(a.p, a.len), B = split_lines(b.p, b.len);
    check_patch(&diff, A, B);
    xfree(A.v);
    xfree(B.v);
    buf_release(&diff);
    /* The edit: oldText/newText from parts 2 and 3 applied to the old text. */
    json_t *edits = json_pack("[{s:s%, s:s%}]", "oldText", parts[2], lens[2], "newText",
                              parts[3], lens[3]);
    if (edits) {
        char *err = NULL;
        int rc = apply_edits(&a, edits, &err);
        if ((rc < 0) != (err != NULL))
            abort();
        xfree(err);
        json_decref(edits);
    }
    xfree(a.p);
    xfree(b.p);
    return 0;
}
