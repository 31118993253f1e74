/* SPDX-License-Identifier: MIT */
/* trace.c -- OpenTelemetry spans: the OTEL_* environment, the sampler, live spans in a fixed
 * table (handles carry a generation, so a stale handle is ignored), and the batch exporter.
 * Ended spans wait in a bounded queue; a timer (OTEL_BSP_SCHEDULE_DELAY, 5 s) or a full batch
 * (512) sends them as one OTLP/HTTP JSON POST through the sender main installed, one POST at a
 * time. A full queue drops spans and counts them (tars_trace_spans_total{result="dropped"}),
 * so tracing never holds up a run and never grows without bound. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/log.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "obs_int.h"

#define LIVE_MAX 4096  /* spans open at once; more are not traced */
#define QUEUE_MAX 2048 /* ended spans waiting for export (OTEL_BSP_MAX_QUEUE_SIZE) */
#define BATCH_MAX 512  /* spans per POST (OTEL_BSP_MAX_EXPORT_BATCH_SIZE) */
#define HEADERS_MAX 16

struct live {
    struct obs_span sp;
    uint32_t gen; /* 0 = free */
};

static struct {
    bool on;
    uv_loop_t *loop;
    char *url, *service;
    char *headers[HEADERS_MAX + 2]; /* "Name: value", Content-Type first, NULL-terminated */
    enum { S_ALWAYS_ON, S_ALWAYS_OFF, S_RATIO } root_sampler;
    bool parent_based;
    double ratio;
    unsigned delay_ms;
    struct live *live; /* LIVE_MAX */
    uint32_t next_gen;
    struct obs_span *queue; /* QUEUE_MAX */
    size_t nqueue;
    bool sending;
    bool timer_on;
    uint32_t current; /* span of the request being handled, or the entered one */
    uint32_t saved;   /* current before obs_model_span_start */
    obs_post_fn send;
} T;
static uv_timer_t export_timer; /* outside T: T is cleared while the handle is closing */

static uint64_t unix_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- configuration (the OpenTelemetry SDK environment variables) ---- */

static void add_header(size_t *n, const char *name, size_t nlen, const char *value, size_t vlen)
{
    if (*n >= HEADERS_MAX + 1 || nlen == 0)
        return;
    char *v = xmalloc(vlen + 1);
    /* values are URL-encoded (W3C Baggage syntax) */
    size_t o = 0;
    for (size_t i = 0; i < vlen; i++) {
        if (value[i] == '%' && i + 2 < vlen) {
            char hx[3] = {value[i + 1], value[i + 2], 0};
            char *end;
            long c = strtol(hx, &end, 16);
            if (*end == '\0' && c > 0x1f) {
                v[o++] = (char)c;
                i += 2;
                continue;
            }
        }
        if (value[i] != '\r' && value[i] != '\n')
            v[o++] = value[i];
    }
    v[o] = '\0';
    while (nlen && name[nlen - 1] == ' ')
        nlen--;
    while (nlen && *name == ' ')
        name++, nlen--;
    const char *vs = v;
    while (*vs == ' ')
        vs++;
    T.headers[(*n)++] = xasprintf("%.*s: %s", (int)nlen, name, vs);
    xfree(v);
}

static void parse_headers(const char *env)
{
    size_t n = 0;
    T.headers[n++] = xstrdup("Content-Type: application/json");
    while (env && *env) {
        size_t len = strcspn(env, ",");
        const char *eq = memchr(env, '=', len);
        if (eq)
            add_header(&n, env, (size_t)(eq - env), eq + 1, len - (size_t)(eq - env) - 1);
        env += len;
        if (*env == ',')
            env++;
    }
    T.headers[n] = NULL;
}

static int read_sampler(char **err)
{
    const char *s = getenv("OTEL_TRACES_SAMPLER");
    const char *arg = getenv("OTEL_TRACES_SAMPLER_ARG");
    T.parent_based = true;
    T.root_sampler = S_ALWAYS_ON;
    T.ratio = 1.0;
    if (s == NULL || *s == '\0' || strcmp(s, "parentbased_always_on") == 0)
        return 0;
    if (strcmp(s, "always_on") == 0) {
        T.parent_based = false;
    } else if (strcmp(s, "always_off") == 0 || strcmp(s, "parentbased_always_off") == 0) {
        T.parent_based = strcmp(s, "always_off") != 0;
        T.root_sampler = S_ALWAYS_OFF;
    } else if (strcmp(s, "traceidratio") == 0 || strcmp(s, "parentbased_traceidratio") == 0) {
        T.parent_based = strcmp(s, "traceidratio") != 0;
        T.root_sampler = S_RATIO;
        char *end = NULL;
        double r = arg ? strtod(arg, &end) : 1.0;
        if (arg && (end == arg || *end != '\0' || r < 0 || r > 1)) {
            *err = xasprintf("OTEL_TRACES_SAMPLER_ARG must be a ratio in [0, 1], not '%s'", arg);
            return -1;
        }
        T.ratio = r;
    } else {
        *err = xasprintf("unknown OTEL_TRACES_SAMPLER '%s'", s);
        return -1;
    }
    return 0;
}

static void on_timer(uv_timer_t *t);

int obs__trace_init(uv_loop_t *loop, char **err)
{
    const char *sdk_off = getenv("OTEL_SDK_DISABLED");
    const char *traces = getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
    const char *base = getenv("OTEL_EXPORTER_OTLP_ENDPOINT");
    if ((sdk_off && strcmp(sdk_off, "true") == 0) || loop == NULL)
        return 0;
    if (traces && *traces) {
        T.url = xstrdup(traces); /* used as is (OTLP exporter spec) */
    } else if (base && *base) {
        size_t n = strlen(base);
        T.url = xasprintf("%s%sv1/traces", base, n && base[n - 1] == '/' ? "" : "/");
    } else {
        return 0;
    }
    if (read_sampler(err) < 0)
        return -1;
    const char *svc = getenv("OTEL_SERVICE_NAME");
    T.service = xstrdup(svc && *svc ? svc : "agent-tars-server");
    parse_headers(getenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
                      ? getenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
                      : getenv("OTEL_EXPORTER_OTLP_HEADERS"));
    const char *delay = getenv("OTEL_BSP_SCHEDULE_DELAY");
    char *end = NULL;
    long d = delay ? strtol(delay, &end, 10) : 5000;
    T.delay_ms = delay && (end == delay || *end != '\0' || d < 1) ? 5000 : (unsigned)d;
    T.loop = loop;
    T.live = xcalloc(LIVE_MAX, sizeof(*T.live));
    T.queue = xcalloc(QUEUE_MAX, sizeof(*T.queue));
    uv_timer_init(loop, &export_timer);
    uv_timer_start(&export_timer, on_timer, T.delay_ms, T.delay_ms);
    uv_unref((uv_handle_t *)&export_timer);
    T.timer_on = true;
    T.on = true;
    log_info("traces: OTLP/HTTP JSON to %s (service %s)", T.url, T.service);
    return 0;
}

void obs_set_sender(obs_post_fn fn)
{
    T.send = fn;
    obs__agio_sender(fn);
}

/* ---- export ---- */

static void on_sent(void *data, int status)
{
    size_t n = (size_t)(uintptr_t)data;
    T.sending = false;
    if (status >= 200 && status < 300) {
        obs__span_count("exported", (int64_t)n);
    } else {
        obs__span_count("failed", (int64_t)n);
        log_debug("traces: export of %zu spans failed (%d)", n, status);
    }
    if (T.nqueue >= BATCH_MAX && T.on)
        uv_timer_start(&export_timer, on_timer, 0, T.delay_ms);
}

static void flush(void)
{
    if (T.sending || T.nqueue == 0 || T.send == NULL)
        return;
    size_t n = T.nqueue < BATCH_MAX ? T.nqueue : BATCH_MAX;
    json_t *j = obs__otlp_json(T.queue, n, T.service);
    for (size_t i = 0; i < n; i++)
        obs__span_release(&T.queue[i]);
    memmove(T.queue, T.queue + n, (T.nqueue - n) * sizeof(*T.queue));
    memset(T.queue + (T.nqueue - n), 0, n * sizeof(*T.queue));
    T.nqueue -= n;
    size_t len = 0;
    char *body = json_dump_compact(j, &len);
    json_decref(j);
    T.sending = true;
    if (T.send(T.url, (const char *const *)T.headers, body, len, on_sent, (void *)(uintptr_t)n) <
        0) {
        T.sending = false;
        obs__span_count("failed", (int64_t)n);
    }
    xfree(body);
}

static void on_timer(uv_timer_t *t)
{
    flush();
}

void obs__trace_shutdown(void)
{
    if (!T.on)
        return;
    flush(); /* best effort: the sender's transfer may be cut by the shutdown */
    T.on = false;
    if (T.timer_on) {
        uv_timer_stop(&export_timer);
        uv_close((uv_handle_t *)&export_timer, NULL);
        T.timer_on = false;
    }
    for (size_t i = 0; i < LIVE_MAX; i++)
        if (T.live[i].gen)
            obs__span_release(&T.live[i].sp);
    for (size_t i = 0; i < T.nqueue; i++)
        obs__span_release(&T.queue[i]);
    xfree(T.live);
    xfree(T.queue);
    xfree(T.url);
    xfree(T.service);
    for (size_t i = 0; T.headers[i]; i++)
        xfree(T.headers[i]);
    memset(&T, 0, sizeof(T));
}

/* ---- spans ---- */

/* handle = generation << 12 | slot; generations skip 0 */
static struct live *live_get(uint32_t h)
{
    if (!T.on || h == 0)
        return NULL;
    uint32_t slot = h & (LIVE_MAX - 1), gen = h >> 12;
    struct live *l = &T.live[slot];
    return l->gen == gen ? l : NULL;
}

static uint32_t live_new(struct live **out)
{
    static uint32_t hint;
    for (uint32_t k = 0; k < LIVE_MAX; k++) {
        uint32_t slot = (hint + k) & (LIVE_MAX - 1);
        if (T.live[slot].gen == 0) {
            hint = slot + 1;
            T.next_gen = (T.next_gen + 1) & 0xfffff;
            if (T.next_gen == 0)
                T.next_gen = 1;
            T.live[slot].gen = T.next_gen;
            *out = &T.live[slot];
            return T.next_gen << 12 | slot;
        }
    }
    obs__span_count("dropped", 1);
    return 0;
}

static bool sample_root(const uint8_t trace_id[16])
{
    if (T.root_sampler == S_ALWAYS_ON)
        return true;
    if (T.root_sampler == S_ALWAYS_OFF)
        return false;
    /* TraceIdRatioBased: the low 8 bytes of the id as a number under ratio * 2^64. */
    uint64_t x = 0;
    for (int i = 8; i < 16; i++)
        x = x << 8 | trace_id[i];
    return (double)x < T.ratio * 18446744073709551616.0;
}

static uint32_t start(const struct obs_ctx *parent, const char *name, int kind)
{
    struct obs_ctx ctx = {0};
    bool sampled;
    if (parent) {
        memcpy(ctx.trace_id, parent->trace_id, 16);
        sampled = T.parent_based ? parent->sampled : sample_root(parent->trace_id);
    } else {
        rand_bytes(ctx.trace_id, 16);
        sampled = sample_root(ctx.trace_id);
    }
    if (!sampled)
        return 0;
    struct live *l;
    uint32_t h = live_new(&l);
    if (h == 0)
        return 0;
    memcpy(l->sp.trace_id, ctx.trace_id, 16);
    if (parent)
        memcpy(l->sp.parent_id, parent->span_id, 8);
    rand_bytes(l->sp.span_id, 8);
    l->sp.name = name;
    l->sp.kind = kind;
    l->sp.start_ns = unix_ns();
    return h;
}

bool obs_tracing(void)
{
    return T.on;
}

uint32_t obs_current_span(void)
{
    return live_get(T.current) ? T.current : 0;
}

uint32_t obs_span_start(uint32_t parent, const char *name, int kind)
{
    if (!T.on)
        return 0;
    struct live *p = live_get(parent);
    if (p == NULL) {
        if (parent != 0)
            return 0; /* the parent was not sampled (or is gone): neither is the child */
        return start(NULL, name, kind);
    }
    struct obs_ctx ctx = {.sampled = true};
    memcpy(ctx.trace_id, p->sp.trace_id, 16);
    memcpy(ctx.span_id, p->sp.span_id, 8);
    return start(&ctx, name, kind);
}

uint32_t obs_span_enter(uint32_t span)
{
    uint32_t prev = T.current;
    T.current = span;
    return prev;
}

static struct obs_attr *attr_slot(uint32_t span, const char *key)
{
    struct live *l = live_get(span);
    if (l == NULL)
        return NULL;
    for (size_t i = 0; i < l->sp.nattrs; i++)
        if (strcmp(l->sp.attrs[i].key, key) == 0) {
            xfree(l->sp.attrs[i].str);
            l->sp.attrs[i].str = NULL;
            return &l->sp.attrs[i];
        }
    if (l->sp.nattrs == OBS_SPAN_MAX_ATTRS)
        return NULL;
    struct obs_attr *a = &l->sp.attrs[l->sp.nattrs++];
    a->key = key;
    return a;
}

void obs_span_attr_str(uint32_t span, const char *key, const char *value)
{
    struct obs_attr *a = attr_slot(span, key);
    if (a)
        a->str = xstrdup(value ? value : "");
}

void obs_span_attr_int(uint32_t span, const char *key, long long value)
{
    struct obs_attr *a = attr_slot(span, key);
    if (a)
        a->num = value;
}

void obs_span_end(uint32_t span, const char *error)
{
    struct live *l = live_get(span);
    if (l == NULL)
        return;
    l->sp.end_ns = unix_ns();
    if (error)
        l->sp.error = xstrdup(error);
    if (T.current == span)
        T.current = 0;
    if (T.nqueue == QUEUE_MAX) {
        obs__span_release(&l->sp);
        obs__span_count("dropped", 1);
    } else {
        T.queue[T.nqueue++] = l->sp; /* the strings move with it */
        memset(&l->sp, 0, sizeof(l->sp));
        if (T.nqueue >= BATCH_MAX && !T.sending)
            uv_timer_start(&export_timer, on_timer, 0, T.delay_ms);
    }
    l->gen = 0;
}

void obs_traceparent_header(uint32_t span, char out[80])
{
    struct live *l = live_get(span);
    out[0] = '\0';
    if (l == NULL)
        return;
    char tid[33], sid[17];
    obs__hex(tid, l->sp.trace_id, 16);
    obs__hex(sid, l->sp.span_id, 8);
    snprintf(out, 80, "traceparent: 00-%s-%s-01", tid, sid);
}

/* ---- GenAI spans (semantic conventions for generative AI: gen_ai.*) ---- */

uint32_t obs_model_span_start(uint32_t parent, const char *provider, const char *model)
{
    uint32_t h = obs_span_start(parent, "chat", 3);
    if (h) {
        obs_span_attr_str(h, "gen_ai.operation.name", "chat");
        obs_span_attr_str(h, "gen_ai.system", provider);
        obs_span_attr_str(h, "gen_ai.request.model", model);
    }
    T.saved = T.current;
    T.current = h;
    return h;
}

void obs_span_leave(void)
{
    T.current = T.saved;
    T.saved = 0;
}

uint32_t obs_tool_span_start(uint32_t parent, const char *tool)
{
    uint32_t h = obs_span_start(parent, "execute_tool", 1);
    if (h) {
        obs_span_attr_str(h, "gen_ai.operation.name", "execute_tool");
        obs_span_attr_str(h, "gen_ai.tool.name", tool);
    }
    return h;
}

/* ---- HTTP server spans ---- */

uint32_t obs__req_span_begin(struct obs_req *o, const char *method, const char *path,
                             const char *traceparent)
{
    if (!T.on)
        return 0;
    struct obs_ctx parent;
    uint32_t h;
    if (obs__traceparent_parse(traceparent, &parent))
        h = start(&parent, "http.request", 2);
    else
        h = start(NULL, "http.request", 2);
    if (h) {
        obs_span_attr_str(h, "http.request.method", method);
        obs_span_attr_str(h, "url.path", path);
        obs_span_attr_str(h, "http.request.id", o->id);
    }
    T.current = h;
    return h;
}

void obs__req_span_end(struct obs_req *o, const char *route)
{
    if (o->span == 0)
        return;
    obs_span_attr_str(o->span, "http.route", route);
    obs_span_attr_int(o->span, "http.response.status_code", o->status);
    obs_span_end(o->span, o->status >= 500 ? "server error" : NULL);
    o->span = 0;
}

void obs__trace_leave(void)
{
    T.current = 0;
}
