/* SPDX-License-Identifier: MIT */
/* tool_edit.c -- edit_file as the original's filesystem server does it: edits applied in turn
 * (exact text first, then lines equal apart from surrounding whitespace, re-indented), CRLF
 * read as LF, and the change returned as a unified diff in a ```diff fence, in the layout of
 * jsdiff's createTwoFilesPatch ("Index:", "=== ", "--- p\toriginal", "+++ p\tmodified", hunks
 * with 4 lines of context). Runs on a threadpool thread. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "core/util.h"
#include "core/xalloc.h"
#include "tools.h"
#include "tools_int.h"

#define EDIT_MAX_BYTES (8 * 1024 * 1024) /* edit_file refuses larger files */
#define DIFF_CONTEXT 4                   /* lines of context around a change, as jsdiff */

/* A slice of some text. */
struct line {
    const char *p;
    size_t len;
};

/* A growable text owned by the edit. */
struct text {
    char *p;
    size_t len;
};

/* ---------------------------------------------------------------- schema */

json_t *tool__edit_file_schema_new(void)
{
    json_t *edit = json_pack("{s:s, s:{s:{s:s, s:s}, s:{s:s, s:s}}, s:[s, s], s:b}", "type",
                             "object", "properties", "oldText", "type", "string", "description",
                             "The exact text to find", "newText", "type", "string", "description",
                             "The text to put in its place", "required", "oldText", "newText",
                             "additionalProperties", 0);
    return json_pack("{s:s, s:{s:{s:s}, s:{s:s, s:o}, s:{s:s, s:b, s:s}}, s:[s, s], s:b}", "type",
                     "object", "properties", "path", "type", "string", "edits", "type", "array",
                     "items", edit, "dryRun", "type", "boolean", "default", 0, "description",
                     "Only show the diff; leave the file unchanged", "required", "path", "edits",
                     "additionalProperties", 0);
}

/* ---------------------------------------------------------------- text helpers */

/* CRLF -> LF in place. */
static void text_lf(struct text *t)
{
    size_t w = 0;
    for (size_t r = 0; r < t->len; r++) {
        if (t->p[r] == '\r' && r + 1 < t->len && t->p[r + 1] == '\n')
            continue;
        t->p[w++] = t->p[r];
    }
    t->len = w;
    t->p[w] = '\0';
}

static struct text text_dup_lf(const char *p, size_t len)
{
    struct text t = {xstrndup(p, len), len};
    text_lf(&t);
    return t;
}

/* Splits like JavaScript's s.split("\n"): pieces without the newline, "" gives one piece. */
static size_t split_js(const char *s, size_t len, struct line **out)
{
    size_t n = 1;
    for (size_t i = 0; i < len; i++)
        n += s[i] == '\n';
    struct line *v = xmalloc(n * sizeof(*v));
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == '\n') {
            v[k].p = s + start;
            v[k++].len = i - start;
            start = i + 1;
        }
    }
    *out = v;
    return n;
}

/* Splits into diff lines as jsdiff tokenizes them: each keeps its newline, and a final empty
 * piece is dropped ("a\nb\n" -> "a\n", "b\n"; "" -> nothing). */
static size_t split_diff(const char *s, size_t len, struct line **out)
{
    size_t n = split_js(s, len, out);
    struct line *v = *out;
    for (size_t i = 0; i + 1 < n; i++)
        v[i].len++; /* take the newline */
    if (v[n - 1].len == 0)
        n--;
    return n;
}

/* ASCII whitespace as JavaScript's \s and trim() see it (the Unicode spaces are not handled). */
static bool js_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f' || c == '\n';
}

static size_t lead_ws(struct line l)
{
    size_t i = 0;
    while (i < l.len && js_space(l.p[i]))
        i++;
    return i;
}

static struct line trim(struct line l)
{
    size_t a = lead_ws(l);
    l.p += a;
    l.len -= a;
    while (l.len > 0 && js_space(l.p[l.len - 1]))
        l.len--;
    return l;
}

static bool line_eq(struct line a, struct line b)
{
    return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

/* ---------------------------------------------------------------- applying edits */

/* Replaces text[pos, pos+old_len) by rep. */
static void text_splice(struct text *t, size_t pos, size_t old_len, const char *rep, size_t n)
{
    char *p = xmalloc(t->len - old_len + n + 1);
    memcpy(p, t->p, pos);
    memcpy(p + pos, rep, n);
    memcpy(p + pos + n, t->p + pos + old_len, t->len - pos - old_len);
    t->len = t->len - old_len + n;
    p[t->len] = '\0';
    xfree(t->p);
    t->p = p;
}

/* The replacement of a whitespace-tolerant line match: the first new line takes the indentation
 * of the matched line; a later one keeps its indentation relative to the old text's line, on
 * top of that indentation, when both are indented (the original's rule). */
static void reindent(struct buf *b, struct line first, const struct line *old_lines, size_t n_old,
                     const struct line *new_lines, size_t n_new)
{
    size_t indent = lead_ws(first);
    for (size_t j = 0; j < n_new; j++) {
        struct line l = new_lines[j];
        size_t ni = lead_ws(l);
        size_t oi = j < n_old ? lead_ws(old_lines[j]) : 0;
        if (j > 0)
            buf_append_lit(b, "\n");
        if (j == 0 || (oi > 0 && ni > 0)) {
            buf_append(b, first.p, indent);
            for (size_t k = oi; j > 0 && k < ni; k++)
                buf_append_lit(b, " ");
            buf_append(b, l.p + ni, l.len - ni);
        } else {
            buf_append(b, l.p, l.len);
        }
    }
}

/* Looks for old's lines among content's lines, comparing trimmed lines. */
static bool apply_loose(struct text *t, const struct text *old, const struct text *rep)
{
    struct line *cl, *ol, *nl;
    size_t cn = split_js(t->p, t->len, &cl);
    size_t on = split_js(old->p, old->len, &ol);
    size_t nn = split_js(rep->p, rep->len, &nl);
    bool found = false;
    for (size_t i = 0; !found && on <= cn && i <= cn - on; i++) {
        size_t j = 0;
        while (j < on && line_eq(trim(ol[j]), trim(cl[i + j])))
            j++;
        if (j < on)
            continue;
        struct buf b;
        buf_init(&b, (size_t)-1);
        for (size_t k = 0; k < i; k++)
            buf_append(&b, cl[k].p, cl[k].len), buf_append_lit(&b, "\n");
        reindent(&b, cl[i], ol, on, nl, nn);
        for (size_t k = i + on; k < cn; k++)
            buf_append_lit(&b, "\n"), buf_append(&b, cl[k].p, cl[k].len);
        xfree(t->p);
        t->p = buf_detach(&b, &t->len);
        found = true;
    }
    xfree(cl);
    xfree(ol);
    xfree(nl);
    return found;
}

/* Applies every edit in turn to t. Returns 0 or <0 with *err. */
static int apply_edits(struct text *t, const json_t *edits, char **err)
{
    size_t i;
    const json_t *e;
    json_array_foreach(edits, i, e)
    {
        const json_t *o = json_object_get(e, "oldText"), *n = json_object_get(e, "newText");
        struct text old = text_dup_lf(json_string_value(o), json_string_length(o));
        struct text rep = text_dup_lf(json_string_value(n), json_string_length(n));
        const char *at = old.len == 0 ? t->p : memmem(t->p, t->len, old.p, old.len);
        bool ok = true;
        if (at != NULL)
            text_splice(t, (size_t)(at - t->p), old.len, rep.p, rep.len);
        else
            ok = apply_loose(t, &old, &rep);
        if (!ok)
            *err = xasprintf("Could not find exact match for edit:\n%s", json_string_value(o));
        xfree(old.p);
        xfree(rep.p);
        if (!ok)
            return -ENOENT;
    }
    return 0;
}

/* ---------------------------------------------------------------- the diff */

/* The diff follows jsdiff 5 (bundled by the original server) step by step, so the same edit
 * gives the same patch: Myers' O(ND) search over lines with jsdiff's choice between an
 * insertion and a deletion, its run-length "components", removals moved before insertions, and
 * structuredPatch's hunk and end-of-file rules. Past DIFF_MAX_EDITS changed lines the search
 * stops and the differing middle becomes one replaced block (jsdiff would go on; the memory of
 * the search grows with the square of the edit length). */

enum { C_SAME, C_ADD, C_DEL };

/* A run of lines of one kind. Runs are immutable and shared between search paths. */
struct comp {
    struct comp *prev;
    size_t count;
    int kind;
};

struct arena {
    struct comp *blocks[4096]; /* blocks of 4096 runs */
    size_t nblocks, used;
};

static struct comp *comp_new(struct arena *ar, int kind, size_t count, struct comp *prev)
{
    if (ar->nblocks == 0 || ar->used == 4096) {
        ar->blocks[ar->nblocks++] = xmalloc(4096 * sizeof(struct comp));
        ar->used = 0;
    }
    struct comp *c = &ar->blocks[ar->nblocks - 1][ar->used++];
    *c = (struct comp){prev, count, kind};
    return c;
}

static void arena_free(struct arena *ar)
{
    for (size_t i = 0; i < ar->nblocks; i++)
        xfree(ar->blocks[i]);
}

/* A search path: the last old line taken (-1 before the first) and its runs. */
struct mpath {
    bool set;
    long old_pos;
    struct comp *last;
};

struct myers {
    const struct line *A, *B;
    long na, nb;
    struct arena ar;
};

static struct mpath add_to_path(struct myers *m, struct mpath p, int kind, long old_inc)
{
    struct comp *l = p.last;
    bool same = l != NULL && l->kind == kind;
    p.last = comp_new(&m->ar, kind, same ? l->count + 1 : 1, same ? l->prev : l);
    p.old_pos += old_inc;
    return p;
}

/* Follows the diagonal while lines are equal; returns the new position. */
static long extract_common(struct myers *m, struct mpath *p, long diag)
{
    long o = p->old_pos, n = o - diag, k = 0;
    while (n + 1 < m->nb && o + 1 < m->na && line_eq(m->B[n + 1], m->A[o + 1]))
        n++, o++, k++;
    if (k > 0)
        p->last = comp_new(&m->ar, C_SAME, (size_t)k, p->last);
    p->old_pos = o;
    return n;
}

#define DIFF_MAX_EDITS 1000 /* edit length at which the search gives up */

/* The runs of the shortest edit script (last run first), or NULL when it is too long. */
static struct comp *myers_search(struct myers *m)
{
    long max_d = m->na + m->nb < DIFF_MAX_EDITS ? m->na + m->nb : DIFF_MAX_EDITS;
    long off = max_d + 1;
    struct mpath *best = xcalloc((size_t)(2 * max_d + 3), sizeof(*best));
    struct comp *out = NULL;
    best[off] = (struct mpath){true, -1, NULL};
    long n = extract_common(m, &best[off], 0);
    if (best[off].old_pos + 1 >= m->na && n + 1 >= m->nb) {
        out = best[off].last ? best[off].last : comp_new(&m->ar, C_SAME, 0, NULL);
        goto done;
    }
    long lo = -max_d - 1, hi = max_d + 1;
    for (long e = 1; e <= max_d; e++) {
        for (long d = lo > -e ? lo : -e; d <= (hi < e ? hi : e); d += 2) {
            struct mpath rm = best[off + d - 1], ad = best[off + d + 1];
            best[off + d - 1].set = false;
            bool can_add = ad.set && ad.old_pos - d >= 0 && ad.old_pos - d < m->nb;
            bool can_rm = rm.set && rm.old_pos + 1 < m->na;
            if (!can_add && !can_rm) {
                best[off + d].set = false;
                continue;
            }
            struct mpath base = !can_rm || (can_add && rm.old_pos + 1 < ad.old_pos)
                                    ? add_to_path(m, ad, C_ADD, 0)
                                    : add_to_path(m, rm, C_DEL, 1);
            n = extract_common(m, &base, d);
            if (base.old_pos + 1 >= m->na && n + 1 >= m->nb) {
                out = base.last;
                goto done;
            }
            best[off + d] = base;
            if (base.old_pos + 1 >= m->na && d - 1 < hi)
                hi = d - 1;
            if (n + 1 >= m->nb && d + 1 > lo)
                lo = d + 1;
        }
    }
done:
    xfree(best);
    return out;
}

/* A run in file order with where its lines start. */
struct run {
    int kind;
    size_t count;
    size_t a, b; /* first old / new line of the run */
};

/* The runs in order, removals before the insertions they replace; *n gets their count. */
static struct run *runs_of(struct comp *last, size_t *n)
{
    size_t k = 0;
    for (struct comp *c = last; c != NULL; c = c->prev)
        k++;
    struct run *r = xmalloc((k + 1) * sizeof(*r));
    size_t i = k;
    for (struct comp *c = last; c != NULL; c = c->prev)
        r[--i] = (struct run){c->kind, c->count, 0, 0};
    size_t a = 0, b = 0;
    for (i = 0; i < k; i++) {
        r[i].a = a, r[i].b = b;
        a += r[i].kind != C_ADD ? r[i].count : 0;
        b += r[i].kind != C_DEL ? r[i].count : 0;
        if (r[i].kind == C_DEL && i > 0 && r[i - 1].kind == C_ADD) {
            struct run t = r[i - 1];
            r[i - 1] = r[i];
            r[i] = t;
        }
    }
    *n = k;
    return r;
}

/* Without a search result: common head, the rest replaced, common tail. */
static struct run *runs_fallback(const struct line *A, size_t na, const struct line *B, size_t nb,
                                 size_t *n)
{
    size_t pre = 0, suf = 0;
    while (pre < na && pre < nb && line_eq(A[pre], B[pre]))
        pre++;
    while (suf < na - pre && suf < nb - pre && line_eq(A[na - 1 - suf], B[nb - 1 - suf]))
        suf++;
    struct run *r = xmalloc(4 * sizeof(*r));
    size_t k = 0;
    if (pre > 0)
        r[k++] = (struct run){C_SAME, pre, 0, 0};
    if (na - pre - suf > 0)
        r[k++] = (struct run){C_DEL, na - pre - suf, pre, pre};
    if (nb - pre - suf > 0)
        r[k++] = (struct run){C_ADD, nb - pre - suf, na - suf, pre};
    if (suf > 0)
        r[k++] = (struct run){C_SAME, suf, na - suf, nb - suf};
    *n = k;
    return r;
}

/* One hunk line: a prefix and a line (its newline not shown), or the no-newline marker. */
struct hline {
    char prefix; /* ' ', '-', '+', or 0 for "\ No newline at end of file" */
    struct line l;
};

struct hunk_state {
    struct buf *out;
    struct hline *lines;
    size_t n, cap;
    size_t old_start, new_start; /* 0 while no hunk is open */
};

static void hl_push(struct hunk_state *h, char prefix, struct line l)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->lines = xrealloc(h->lines, h->cap * sizeof(*h->lines));
    }
    if (prefix != 0 && l.len > 0 && l.p[l.len - 1] == '\n')
        l.len--;
    h->lines[h->n++] = (struct hline){prefix, l};
}

static void hl_insert_nonl(struct hunk_state *h, size_t at)
{
    hl_push(h, 0, (struct line){NULL, 0});
    memmove(h->lines + at + 1, h->lines + at, (h->n - 1 - at) * sizeof(*h->lines));
    h->lines[at] = (struct hline){0, {NULL, 0}};
}

static void hunk_flush(struct hunk_state *h, size_t old_n, size_t new_n)
{
    /* jsdiff numbers an empty side by the line before it. */
    buf_appendf(h->out, "@@ -%zu,%zu +%zu,%zu @@\n", old_n ? h->old_start : h->old_start - 1, old_n,
                new_n ? h->new_start : h->new_start - 1, new_n);
    for (size_t i = 0; i < h->n; i++) {
        if (h->lines[i].prefix == 0) {
            buf_append_lit(h->out, "\\ No newline at end of file\n");
            continue;
        }
        buf_appendc(h->out, h->lines[i].prefix);
        buf_append(h->out, h->lines[i].l.p, h->lines[i].l.len);
        buf_append_lit(h->out, "\n");
    }
    h->n = 0;
    h->old_start = h->new_start = 0;
}

/* structuredPatch's walk over the runs (with an empty common run appended at the end). */
static void emit_hunks(struct buf *out, const struct run *r, size_t nr, const struct line *A,
                       const struct line *B, bool old_eol, bool new_eol, bool old_empty)
{
    struct hunk_state h = {.out = out};
    size_t old_line = 1, new_line = 1;
    for (size_t i = 0; i <= nr; i++) {
        struct run c = i < nr ? r[i] : (struct run){C_SAME, 0, 0, 0};
        const struct line *src = c.kind == C_ADD ? B + c.b : A + c.a;
        if (c.kind != C_SAME) {
            if (h.old_start == 0) {
                h.old_start = old_line, h.new_start = new_line;
                size_t ctx =
                    i > 0 ? (r[i - 1].count < DIFF_CONTEXT ? r[i - 1].count : DIFF_CONTEXT) : 0;
                for (size_t k = 0; k < ctx; k++)
                    hl_push(&h, ' ', A[r[i - 1].a + r[i - 1].count - ctx + k]);
                h.old_start -= ctx, h.new_start -= ctx;
            }
            for (size_t k = 0; k < c.count; k++)
                hl_push(&h, c.kind == C_ADD ? '+' : '-', src[k]);
            if (c.kind == C_ADD)
                new_line += c.count;
            else
                old_line += c.count;
            continue;
        }
        if (h.old_start != 0 && c.count <= 2 * DIFF_CONTEXT && i + 1 < nr) {
            for (size_t k = 0; k < c.count; k++)
                hl_push(&h, ' ', src[k]);
        } else if (h.old_start != 0) {
            size_t cs = c.count < DIFF_CONTEXT ? c.count : DIFF_CONTEXT;
            for (size_t k = 0; k < cs; k++)
                hl_push(&h, ' ', src[k]);
            size_t old_n = old_line - h.old_start + cs, new_n = new_line - h.new_start + cs;
            if (i + 1 >= nr && c.count <= DIFF_CONTEXT) {
                bool no_nl_before_adds = c.count == 0 && h.n > old_n;
                if (!old_eol && no_nl_before_adds && !old_empty)
                    hl_insert_nonl(&h, old_n);
                if ((!old_eol && !no_nl_before_adds) || !new_eol)
                    hl_push(&h, 0, (struct line){NULL, 0});
            }
            hunk_flush(&h, old_n, new_n);
        }
        old_line += c.count, new_line += c.count;
    }
    xfree(h.lines);
}

/* The unified diff of two texts, named `path`, as createTwoFilesPatch lays it out. */
static void unified_diff(struct buf *out, const char *path, const struct text *a,
                         const struct text *b)
{
    struct line *A, *B;
    size_t na = split_diff(a->p, a->len, &A), nb = split_diff(b->p, b->len, &B);
    struct myers m = {A, B, (long)na, (long)nb, {{0}, 0, 0}};
    struct comp *last = myers_search(&m);
    size_t nr;
    struct run *r = last ? runs_of(last, &nr) : runs_fallback(A, na, B, nb, &nr);
    arena_free(&m.ar);
    buf_appendf(out, "Index: %s\n", path);
    buf_append_lit(out, "===================================================================\n");
    buf_appendf(out, "--- %s\toriginal\n+++ %s\tmodified\n", path, path);
    emit_hunks(out, r, nr, A, B, a->len > 0 && a->p[a->len - 1] == '\n',
               b->len > 0 && b->p[b->len - 1] == '\n', a->len == 0);
    xfree(r);
    xfree(A);
    xfree(B);
}

/* ---------------------------------------------------------------- edit_file */

static bool edits_valid(const json_t *edits)
{
    if (!json_is_array(edits))
        return false;
    size_t i;
    const json_t *e;
    json_array_foreach(edits, i, e)
    {
        if (!json_is_string(json_object_get(e, "oldText")) ||
            !json_is_string(json_object_get(e, "newText")))
            return false;
    }
    return true;
}

/* The diff in a fence longer than any run of backticks inside it. */
static void set_fenced(struct tool_call *call, const struct buf *diff)
{
    size_t fence = 3;
    for (;;) {
        size_t run = 0, i = 0;
        while (i < diff->len && run < fence)
            run = diff->data[i++] == '`' ? run + 1 : 0;
        if (run < fence)
            break;
        fence++;
    }
    struct buf b;
    buf_init(&b, (size_t)-1);
    for (size_t i = 0; i < fence; i++)
        buf_append_lit(&b, "`");
    buf_append_lit(&b, "diff\n");
    buf_append(&b, buf_str(diff), diff->len);
    for (size_t i = 0; i < fence; i++)
        buf_append_lit(&b, "`");
    buf_append_lit(&b, "\n\n");
    call->content = json_string_lossy(buf_str(&b), b.len);
    buf_release(&b);
}

void tool__edit_file_run(struct tool_call *call)
{
    const char *path = tool__arg_str(call, "path");
    const json_t *edits = json_object_get(call->args, "edits");
    const json_t *dry = json_object_get(call->args, "dryRun");
    if (path != NULL && !edits_valid(edits))
        call->error = xstrdup("Invalid arguments for edit_file: edits must be an array of "
                              "{oldText, newText} objects with string values");
    if (path != NULL && dry != NULL && !json_is_null(dry) && !json_is_boolean(dry) &&
        call->error == NULL)
        call->error = xstrdup("Invalid arguments for edit_file: dryRun must be a boolean");
    char *real = NULL;
    if (call->error != NULL || workspace_resolve(call->root, path, &real, &call->error) < 0)
        return;
    struct text orig = {NULL, 0}, mod = {NULL, 0};
    struct buf diff;
    buf_init(&diff, (size_t)-1);
    if (tool__read_all(real, EDIT_MAX_BYTES, &orig.p, &orig.len, &call->error) < 0)
        goto out;
    text_lf(&orig);
    mod.p = xstrndup(orig.p, orig.len);
    mod.len = orig.len;
    if (apply_edits(&mod, edits, &call->error) < 0)
        goto out;
    unified_diff(&diff, real, &orig, &mod);
    if (!json_is_true(dry) && tool__write_file(real, mod.p, mod.len, &call->error) < 0)
        goto out;
    set_fenced(call, &diff);
out:
    buf_release(&diff);
    xfree(orig.p);
    xfree(mod.p);
    xfree(real);
}
