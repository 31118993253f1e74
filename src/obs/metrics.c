/* SPDX-License-Identifier: MIT */
/* metrics.c -- metric families with a capped number of label sets, and their Prometheus text
 * exposition (format 0.0.4: "# HELP", "# TYPE", one sample per line, histogram buckets
 * cumulative with le="+Inf" equal to _count). Pure: updated on the loop by obs.c, formatted
 * on a scrape, called directly by the unit tests. */
#include <stdio.h>
#include <string.h>

#include "../core/xalloc.h"
#include "obs_int.h"

static bool same(const char *a, const char *b)
{
    return a == b || strcmp(a, b) == 0;
}

static struct obs_series *find(struct obs_family *f, const char *v[OBS_MAX_LABELS])
{
    for (size_t i = 0; i < f->n; i++) {
        struct obs_series *s = &f->s[i];
        if (same(s->v[0], v[0]) && same(s->v[1], v[1]) && same(s->v[2], v[2]))
            return s;
    }
    return NULL;
}

static struct obs_series *add_series(struct obs_family *f, const char *v[OBS_MAX_LABELS])
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 8;
        f->s = xrealloc(f->s, f->cap * sizeof(*f->s));
    }
    struct obs_series *s = &f->s[f->n++];
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < OBS_MAX_LABELS; i++)
        s->v[i] = xstrdup(v[i]);
    if (f->type == OBS_HISTOGRAM)
        s->buckets = xcalloc(f->nbounds + 1, sizeof(uint64_t));
    return s;
}

struct obs_series *obs__series(struct obs_family *f, const char *v0, const char *v1, const char *v2)
{
    const char *v[OBS_MAX_LABELS] = {v0 ? v0 : "", v1 ? v1 : "", v2 ? v2 : ""};
    int nlabels = 0;
    while (nlabels < OBS_MAX_LABELS && f->labels[nlabels])
        nlabels++;
    for (int i = nlabels; i < OBS_MAX_LABELS; i++)
        v[i] = "";
    struct obs_series *s = find(f, v);
    if (s)
        return s;
    if (f->n >= OBS_MAX_SERIES) {
        /* One overflow set: every label "other" (still a valid, bounded exposition). */
        for (int i = 0; i < nlabels; i++)
            v[i] = "other";
        s = find(f, v);
        if (s)
            return s;
    }
    return add_series(f, v);
}

void obs__add(struct obs_family *f, int64_t n, const char *v0, const char *v1, const char *v2)
{
    obs__series(f, v0, v1, v2)->value += n;
}

void obs__observe(struct obs_family *f, uint64_t value, const char *v0, const char *v1,
                  const char *v2)
{
    struct obs_series *s = obs__series(f, v0, v1, v2);
    size_t i = 0;
    while (i < f->nbounds && value > f->bounds[i])
        i++;
    s->buckets[i]++;
    s->count++;
    s->sum += value;
}

void obs__family_clear(struct obs_family *f)
{
    for (size_t i = 0; i < f->n; i++) {
        for (int k = 0; k < OBS_MAX_LABELS; k++)
            xfree(f->s[i].v[k]);
        xfree(f->s[i].buckets);
    }
    xfree(f->s);
    f->s = NULL;
    f->n = f->cap = 0;
}

/* ---- exposition ---- */

void obs__label_escape(struct buf *out, const char *s)
{
    size_t start = 0, i = 0;
    for (; s[i]; i++) {
        const char *rep = s[i] == '\\'   ? "\\\\"
                          : s[i] == '"'  ? "\\\""
                          : s[i] == '\n' ? "\\n"
                                         : NULL;
        if (rep == NULL)
            continue;
        buf_append(out, s + start, i - start);
        buf_appends(out, rep);
        start = i + 1;
    }
    buf_append(out, s + start, i - start);
}

/* HELP text escapes backslash and newline only. */
static void help_escape(struct buf *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            buf_append_lit(out, "\\\\");
        else if (*s == '\n')
            buf_append_lit(out, "\\n");
        else
            buf_appendc(out, *s);
    }
}

static void head(struct buf *out, const char *name, const char *help, const char *type)
{
    buf_append_lit(out, "# HELP ");
    buf_appends(out, name);
    buf_appendc(out, ' ');
    help_escape(out, help);
    buf_append_lit(out, "\n# TYPE ");
    buf_appends(out, name);
    buf_appendc(out, ' ');
    buf_appends(out, type);
    buf_appendc(out, '\n');
}

/* name{a="x",b="y"[,le="..."]} -- braces left out when there is no label at all. */
static void sample_name(struct buf *out, const struct obs_family *f, const struct obs_series *s,
                        const char *suffix, const char *le)
{
    buf_appends(out, f->name);
    if (suffix)
        buf_appends(out, suffix);
    bool any = false;
    for (int i = 0; i < OBS_MAX_LABELS && f->labels[i]; i++) {
        buf_appendc(out, any ? ',' : '{');
        any = true;
        buf_appends(out, f->labels[i]);
        buf_append_lit(out, "=\"");
        obs__label_escape(out, s->v[i]);
        buf_appendc(out, '"');
    }
    if (le) {
        buf_appendc(out, any ? ',' : '{');
        any = true;
        buf_append_lit(out, "le=\"");
        buf_appends(out, le);
        buf_appendc(out, '"');
    }
    if (any)
        buf_appendc(out, '}');
    buf_appendc(out, ' ');
}

/* A float in the shortest form Go's and Prometheus's parsers read back: %.17g trimmed by
 * trying shorter precisions first. */
static void append_double(struct buf *out, double v)
{
    char s[40];
    for (int prec = 6; prec <= 17; prec++) {
        snprintf(s, sizeof(s), "%.*g", prec, v);
        double back;
        if (sscanf(s, "%lf", &back) == 1 && back == v)
            break;
    }
    buf_appends(out, s);
}

static void render_histogram(struct buf *out, const struct obs_family *f,
                             const struct obs_series *s)
{
    uint64_t cum = 0;
    char le[40];
    for (size_t b = 0; b < f->nbounds; b++) {
        cum += s->buckets[b];
        struct buf tmp;
        buf_init(&tmp, sizeof(le) - 1);
        append_double(&tmp, (double)f->bounds[b] / f->scale);
        snprintf(le, sizeof(le), "%s", buf_str(&tmp));
        buf_release(&tmp);
        sample_name(out, f, s, "_bucket", le);
        buf_append_i64(out, (long long)cum);
        buf_appendc(out, '\n');
    }
    cum += s->buckets[f->nbounds];
    sample_name(out, f, s, "_bucket", "+Inf");
    buf_append_i64(out, (long long)cum);
    buf_appendc(out, '\n');
    sample_name(out, f, s, "_sum", NULL);
    append_double(out, (double)s->sum / f->scale);
    buf_appendc(out, '\n');
    sample_name(out, f, s, "_count", NULL);
    buf_append_i64(out, (long long)s->count);
    buf_appendc(out, '\n');
}

void obs__render(struct buf *out, const struct obs_family *f)
{
    static const char *types[] = {"counter", "gauge", "histogram"};
    if (f->n == 0 && f->labels[0])
        return; /* a labelled family with no sample yet: nothing to say */
    head(out, f->name, f->help, types[f->type]);
    if (f->n == 0) {
        /* Unlabelled and never touched: one zero sample (histograms: empty buckets). */
        struct obs_series zero = {.v = {"", "", ""}};
        uint64_t buckets[32] = {0};
        zero.buckets = buckets;
        if (f->type == OBS_HISTOGRAM && f->nbounds < 32) {
            render_histogram(out, f, &zero);
        } else {
            sample_name(out, f, &zero, NULL, NULL);
            buf_append_lit(out, "0\n");
        }
        return;
    }
    for (size_t i = 0; i < f->n; i++) {
        const struct obs_series *s = &f->s[i];
        if (f->type == OBS_HISTOGRAM) {
            render_histogram(out, f, s);
            continue;
        }
        sample_name(out, f, s, NULL, NULL);
        buf_append_i64(out, (long long)s->value);
        buf_appendc(out, '\n');
    }
}

void obs__render_value(struct buf *out, const char *name, const char *help, const char *type,
                       double v)
{
    head(out, name, help, type);
    buf_appends(out, name);
    buf_appendc(out, ' ');
    append_double(out, v);
    buf_appendc(out, '\n');
}
