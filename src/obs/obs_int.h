/* SPDX-License-Identifier: MIT */
/* obs_int.h -- internals of src/obs: the metric families of metrics.c (pure: no loop, no I/O,
 * unit-tested directly), the request-id helpers and the OTLP span encoding of otlp.c (pure too).
 * Nothing outside src/obs includes it except tests/unit/test_obs.c. */
#ifndef OBS_OBS_INT_H
#define OBS_OBS_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../core/buf.h"
#include "obs.h"

/* ---- metric families (metrics.c) ---- */

enum obs_type { OBS_COUNTER, OBS_GAUGE, OBS_HISTOGRAM };

#define OBS_MAX_LABELS 3
/* Label sets per family; beyond this every new set is counted under label values "other", so
 * a scrape stays small whatever the clients send (no per-session or per-request labels). */
#define OBS_MAX_SERIES 128

struct obs_series {
    char *v[OBS_MAX_LABELS]; /* owned label values */
    int64_t value;           /* counter or gauge */
    uint64_t *buckets;       /* histogram: per-bucket (not cumulative) counts, nbounds + 1 */
    uint64_t count, sum;     /* histogram: observations and their sum, in raw units */
};

struct obs_family {
    const char *name, *help; /* static */
    enum obs_type type;
    const char *labels[OBS_MAX_LABELS]; /* label names, NULL-terminated when fewer */
    const uint64_t *bounds;             /* histogram upper bounds in raw units, ascending */
    size_t nbounds;
    double scale;         /* raw units per exposed unit (1e6: microseconds -> seconds) */
    struct obs_series *s; /* owned */
    size_t n, cap;
};

/* The series of f with these label values (missing ones ""), created on first use; past
 * OBS_MAX_SERIES, the shared overflow series. Never NULL. */
struct obs_series *obs__series(struct obs_family *f, const char *v0, const char *v1,
                               const char *v2);
void obs__add(struct obs_family *f, int64_t n, const char *v0, const char *v1, const char *v2);
void obs__observe(struct obs_family *f, uint64_t value, const char *v0, const char *v1,
                  const char *v2);
/* Appends HELP, TYPE and every series of f (nothing for a labelled family without series). */
void obs__render(struct buf *out, const struct obs_family *f);
/* A single sample line without labels, for scrape-time values. */
void obs__render_value(struct buf *out, const char *name, const char *help, const char *type,
                       double v);
void obs__family_clear(struct obs_family *f);
/* Appends s as a Prometheus label value (backslash, double quote and newline escaped). */
void obs__label_escape(struct buf *out, const char *s);

/* ---- request ids (obs.c) ---- */

/* Whether s may be used as a request id as sent: 1-64 chars of [A-Za-z0-9._:/+=-]. */
bool obs__req_id_ok(const char *s);

/* ---- spans (trace.c) ---- */

int obs__trace_init(uv_loop_t *loop, char **err);
void obs__trace_shutdown(void);
/* The server span of a request (parent from its traceparent), made current; 0 if not traced. */
uint32_t obs__req_span_begin(struct obs_req *o, const char *method, const char *path,
                             const char *traceparent);
void obs__req_span_end(struct obs_req *o, const char *route);
/* The handler returned: no current span any more. */
void obs__trace_leave(void);
/* Adds n to tars_trace_spans_total{result} (obs.c). */
void obs__span_count(const char *result, int64_t n);

/* ---- AGIO (agio.c) ---- */

int obs__agio_init(uv_loop_t *loop, const json_t *root, char **err);
void obs__agio_sender(obs_post_fn fn);
/* An agent event of session sid (type is ev's "type"). */
void obs__agio_event(const char *sid, const char *type, const json_t *ev);
/* The model call that ended, for the agent_ttft / agent_tps of the assistant_message after it. */
void obs__agio_model_done(const char *model, int status, uint64_t start_ms, uint64_t first_ms);
void obs__agio_shutdown(void);
/* Adds n to tars_agio_events_total{result} (obs.c). */
void obs__agio_count(const char *result, int64_t n);

/* ---- trace context and OTLP (otlp.c) ---- */

struct obs_ctx {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    bool sampled;
};

/* W3C Trace Context §3.2: "00-<32 hex>-<16 hex>-<2 hex>", lowercase, ids not all zero. Returns
 * true and fills ctx (span_id = the caller's span, the parent) when valid. */
bool obs__traceparent_parse(const char *s, struct obs_ctx *ctx);
void obs__hex(char *out, const uint8_t *p, size_t n); /* 2n chars plus NUL */

struct obs_attr {
    const char *key; /* static */
    char *str;       /* owned string value, or NULL for an int */
    long long num;
};

#define OBS_SPAN_MAX_ATTRS 12

struct obs_span {
    uint8_t trace_id[16], span_id[8], parent_id[8]; /* parent all zero for a root */
    const char *name;                               /* static */
    int kind;                  /* OTLP SpanKind: 1 internal, 2 server, 3 client */
    uint64_t start_ns, end_ns; /* unix nanoseconds */
    char *error;               /* owned; status error message, or NULL (status unset) */
    struct obs_attr attrs[OBS_SPAN_MAX_ATTRS];
    size_t nattrs;
};

/* The OTLP/HTTP JSON body of an ExportTraceServiceRequest for spans[0..n) (one resource with
 * service.name, one scope). Ids are hex strings, times decimal strings of unix nanoseconds,
 * attributes typed ({"stringValue"} / {"intValue": "<decimal>"}) as the OTLP JSON mapping
 * requires. Returns a new reference. */
json_t *obs__otlp_json(const struct obs_span *spans, size_t n, const char *service_name);
void obs__span_release(struct obs_span *sp);

#endif
