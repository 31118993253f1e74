/* SPDX-License-Identifier: MIT */
/* tool_search.c -- web_search {query, count?} over the HTTP search APIs the original's
 * SearchClient speaks (agent-tools-llm.md §4): Tavily (POST /search), Bing Web Search
 * (GET /v7.0/search, Ocp-Apim-Subscription-Key) and SearXNG (GET /search?format=json),
 * configured by "search": {provider, apiKey, baseURL, count}. Requests run on the loop through a
 * curl_uv instance of our own; the result is the original's page list [{title, url, content}]
 * as JSON text. */
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "core/xalloc.h"
#include "llm/curl_uv.h"
#include "obs/obs.h"
#include "tools.h"
#include "tools_int.h"

#define SEARCH_COUNT 10         /* default of "search": {"count"} */
#define SEARCH_MAX_COUNT 50     /* count is clamped to this (Bing's own limit) */
#define SEARCH_TIMEOUT_MS 30000 /* default of "search": {"timeoutMs"} */
#define SEARCH_CONNECT_MS 10000
#define SEARCH_MAX_BODY (4 * 1024 * 1024) /* a larger answer is an error */

enum provider { PROV_NONE, PROV_TAVILY, PROV_BING, PROV_SEARXNG };

struct search_job {
    struct tool_call *call;
    struct curl_uv_xfer *xfer; /* NULL once done or cancelled */
    uv_timer_t timer;          /* the timeout; closing it delivers the result */
    struct buf body;
    long status; /* of the last HTTP status line */
    size_t count;
    bool too_big; /* the answer went over SEARCH_MAX_BODY */
    bool finishing;
    struct search_job *prev, *next;
};

static struct {
    enum provider provider;
    char *api_key;
    char *base_url;
    long long count;
    long long timeout_ms;
    uv_loop_t *loop;
    struct curl_uv *cu;
    struct search_job *jobs;
} sc;

/* ---------------------------------------------------------------- config */

static const char *default_base(enum provider p)
{
    switch (p) {
    case PROV_TAVILY:
        return "https://api.tavily.com";
    case PROV_BING:
        return "https://api.bing.microsoft.com/v7.0";
    default:
        return "https://127.0.0.1:8081"; /* SearchClient's SearXNG default */
    }
}

/* The providers the original maps; browser_search and duckduckgo scrape web pages with a
 * browser or an npm package and are not offered here. */
static enum provider provider_of(const char *name)
{
    if (strcmp(name, "tavily") == 0)
        return PROV_TAVILY;
    if (strcmp(name, "bing_search") == 0 || strcmp(name, "bing") == 0)
        return PROV_BING;
    if (strcmp(name, "searxng") == 0)
        return PROV_SEARXNG;
    return PROV_NONE;
}

static void settings_free(void)
{
    xfree(sc.api_key);
    xfree(sc.base_url);
    sc.api_key = sc.base_url = NULL;
    sc.provider = PROV_NONE;
}

static int read_settings(const json_t *s, char **err)
{
    char *name = NULL;
    sc.count = SEARCH_COUNT;
    sc.timeout_ms = SEARCH_TIMEOUT_MS;
    int rc = tool__cfg_str(s, "search", "provider", &name, err);
    if (rc < 0 || name == NULL)
        return rc;
    sc.provider = provider_of(name);
    if (sc.provider == PROV_NONE)
        log_warn("web_search: search provider '%s' is not supported (tavily, bing_search and "
                 "searxng are); web_search is not offered",
                 name);
    xfree(name);
    if (sc.provider == PROV_NONE)
        return 0;
    rc = tool__cfg_str(s, "search", "apiKey", &sc.api_key, err);
    if (rc == 0)
        rc = tool__cfg_str(s, "search", "baseURL", &sc.base_url, err);
    if (rc == 0 && sc.base_url == NULL) /* the original's spelling */
        rc = tool__cfg_str(s, "search", "baseUrl", &sc.base_url, err);
    if (rc == 0)
        rc = tool__cfg_int(s, "search", "count", 1, SEARCH_MAX_COUNT, &sc.count, err);
    if (rc == 0)
        rc = tool__cfg_int(s, "search", "timeoutMs", 1, 600000, &sc.timeout_ms, err);
    return rc;
}

int tool__search_init(uv_loop_t *loop, const json_t *root, char **err)
{
    settings_free();
    const json_t *s = json_object_get(root, "search");
    if (s == NULL || json_is_null(s))
        return 0;
    if (!json_is_object(s)) {
        *err = xstrdup("'search' must be an object");
        return -EINVAL;
    }
    int rc = read_settings(s, err);
    if (rc < 0 || sc.provider == PROV_NONE) {
        settings_free();
        return rc;
    }
    if (sc.api_key != NULL)
        log_add_secret(sc.api_key);
    else if (sc.provider != PROV_SEARXNG)
        log_warn("web_search: no search.apiKey is configured; the provider will refuse requests");
    if (loop == NULL || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        (rc = curl_uv_new(loop, &sc.cu)) < 0) {
        *err = xstrdup("cannot start the HTTP client of web_search");
        settings_free();
        return rc < 0 ? rc : -EINVAL;
    }
    sc.loop = loop;
    return 0;
}

bool tool__search_enabled(void)
{
    return sc.provider != PROV_NONE && sc.cu != NULL;
}

/* ---------------------------------------------------------------- finishing */

static void on_timer_closed(uv_handle_t *h)
{
    struct search_job *job = h->data;
    struct tool_call *call = job->call;
    buf_release(&job->body);
    xfree(job);
    tool__loop_done(call);
}

/* Stops the transfer (if any) and delivers the result once the timer has closed. */
static void finish(struct search_job *job)
{
    if (job->finishing)
        return;
    job->finishing = true;
    if (job->xfer != NULL)
        curl_uv_cancel(job->xfer);
    job->xfer = NULL;
    if (job->prev != NULL)
        job->prev->next = job->next;
    else
        sc.jobs = job->next;
    if (job->next != NULL)
        job->next->prev = job->prev;
    uv_close((uv_handle_t *)&job->timer, on_timer_closed);
}

static void fail(struct search_job *job, char *msg)
{
    if (job->call->error == NULL)
        job->call->error = msg;
    else
        xfree(msg);
    json_decref(job->call->content);
    job->call->content = NULL;
    finish(job);
}

void tool__search_shutdown(void)
{
    while (sc.jobs != NULL)
        fail(sc.jobs, xstrdup("Search aborted: the server is shutting down"));
    if (sc.cu != NULL)
        curl_uv_close(sc.cu, NULL, NULL);
    sc.cu = NULL;
    sc.loop = NULL;
    settings_free();
}

/* ---------------------------------------------------------------- responses */

static json_t *page_new(const json_t *item, const char *title, const char *content,
                        const char *alt_content)
{
    const char *t = json_get_str(item, title), *u = json_get_str(item, "url");
    const char *c = json_get_str(item, content);
    if (c == NULL && alt_content != NULL)
        c = json_get_str(item, alt_content);
    return json_pack("{s:s, s:s, s:s}", "title", t ? t : "", "url", u ? u : "", "content",
                     c ? c : "");
}

/* The provider's result list as [{title, url, content}], at most job->count of them. */
static json_t *pages_new(const struct search_job *job, const json_t *root)
{
    const json_t *items = sc.provider == PROV_BING
                              ? json_object_get(json_object_get(root, "webPages"), "value")
                              : json_object_get(root, "results");
    json_t *pages = json_array();
    size_t i;
    const json_t *item;
    json_array_foreach(items, i, item)
    {
        if (i == job->count)
            break;
        if (sc.provider == PROV_BING)
            json_array_append_new(pages, page_new(item, "name", "snippet", NULL));
        else
            json_array_append_new(pages, page_new(item, "title", "content", "snippet"));
    }
    return pages;
}

/* What a provider says about a refused request: Tavily {"detail": {"error"}} or {"detail"},
 * Bing {"error": {"message"}}, others {"error"} or {"message"}; else the start of the body. */
static char *http_error_text(const struct search_job *job)
{
    json_t *root = json_loadb(buf_str(&job->body), job->body.len, 0, NULL);
    const json_t *detail = json_object_get(root, "detail"), *e = json_object_get(root, "error");
    const char *msg = json_get_str(detail, "error");
    msg = msg ? msg : json_string_value(detail);
    msg = msg ? msg : json_get_str(e, "message");
    msg = msg ? msg : json_string_value(e);
    msg = msg ? msg : json_get_str(root, "message");
    char *out;
    if (msg != NULL) {
        out = xasprintf("Search failed: HTTP %ld: %s", job->status, msg);
    } else {
        size_t n = job->body.len < 200 ? job->body.len : tool__utf8_trim(buf_str(&job->body), 200);
        json_t *snippet = json_string_lossy(buf_str(&job->body), n);
        out = n ? xasprintf("Search failed: HTTP %ld: %s", job->status, json_string_value(snippet))
                : xasprintf("Search failed: HTTP %ld", job->status);
        json_decref(snippet);
    }
    json_decref(root);
    return out;
}

static void on_xfer_done(void *data, CURLcode rc, const char *errmsg)
{
    struct search_job *job = data;
    job->xfer = NULL; /* curl_uv frees it when this returns */
    if (job->too_big) {
        fail(job, xasprintf("Search failed: the answer is larger than %d bytes", SEARCH_MAX_BODY));
    } else if (rc != CURLE_OK) {
        fail(job, xasprintf("Search failed: %s%s%s", curl_easy_strerror(rc), errmsg[0] ? ": " : "",
                            errmsg));
    } else if (job->status < 200 || job->status > 299) {
        fail(job, http_error_text(job));
    } else {
        json_t *root = json_loadb(buf_str(&job->body), job->body.len, 0, NULL);
        if (json_is_object(root)) {
            /* The text the original's model reads: its agent JSON.stringify()s the page list
             * with an indent of 2, which is the layout of JSON_INDENT(2). */
            json_t *pages = pages_new(job, root);
            char *text = json_dumps(pages, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
            job->call->content = json_string(text);
            xfree(text);
            json_decref(pages);
            finish(job);
        } else {
            fail(job, xstrdup("Search failed: the answer is not a JSON object"));
        }
        json_decref(root);
    }
}

static int on_header(void *data, const char *line, size_t len)
{
    struct search_job *job = data;
    if (len > 9 && memcmp(line, "HTTP/", 5) == 0) {
        const char *sp = memchr(line, ' ', len);
        if (sp != NULL)
            job->status = strtol(sp + 1, NULL, 10); /* the line ends in CRLF: strtol stops */
    }
    return 0;
}

static int on_body(void *data, const char *p, size_t len)
{
    struct search_job *job = data;
    if (buf_append(&job->body, p, len) == 0)
        return 0;
    job->too_big = true;
    return -1;
}

static const struct curl_uv_cbs xfer_cbs = {on_header, on_body, on_xfer_done};

/* ---------------------------------------------------------------- requests */

/* base + "/search" unless base already names that endpoint (the original fetches Bing's
 * configured URL as is, SearXNG's with "/search" appended). */
static char *endpoint(void)
{
    const char *base = sc.base_url ? sc.base_url : default_base(sc.provider);
    size_t n = strlen(base);
    while (n > 0 && base[n - 1] == '/')
        n--;
    if (n >= 7 && strncmp(base + n - 7, "/search", 7) == 0)
        return xstrndup(base, n);
    return xasprintf("%.*s/search", (int)n, base);
}

static struct curl_slist *add_header(struct curl_slist *h, const char *fmt, const char *v)
{
    char *line = xasprintf(fmt, v);
    struct curl_slist *out = curl_slist_append(h, line);
    xfree(line);
    return out;
}

/* Sets the URL, method, body and headers of the provider's request. */
static struct curl_slist *prepare(CURL *easy, const char *query, size_t count)
{
    char *url = endpoint(), *full = NULL;
    char *q = curl_easy_escape(easy, query, 0);
    struct curl_slist *h = curl_slist_append(NULL, "Accept: application/json");
    char tp[80]; /* W3C trace context of the tool call (obs.h), when traced */
    obs_traceparent_header(obs_current_span(), tp);
    if (tp[0])
        h = curl_slist_append(h, tp);
    if (sc.provider == PROV_TAVILY) {
        json_t *body = json_pack("{s:s, s:I}", "query", query, "max_results", (json_int_t)count);
        if (sc.api_key != NULL)
            json_object_set_new(body, "api_key", json_string(sc.api_key));
        char *text = json_dump_compact(body, NULL);
        curl_easy_setopt(easy, CURLOPT_POST, 1L);
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
        curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, text);
        h = curl_slist_append(h, "Content-Type: application/json");
        if (sc.api_key != NULL)
            h = add_header(h, "Authorization: Bearer %s", sc.api_key);
        xfree(text);
        json_decref(body);
        full = xstrdup(url);
    } else if (sc.provider == PROV_BING) {
        full = xasprintf("%s?q=%s&count=%zu", url, q, count);
        if (sc.api_key != NULL)
            h = add_header(h, "Ocp-Apim-Subscription-Key: %s", sc.api_key);
    } else {
        full = xasprintf("%s?q=%s&format=json&count=%zu", url, q, count);
        if (sc.api_key != NULL)
            h = add_header(h, "Authorization: Bearer %s", sc.api_key);
    }
    curl_easy_setopt(easy, CURLOPT_URL, full);
    curl_free(q);
    xfree(url);
    xfree(full);
    return h;
}

static CURL *easy_new(const char *query, size_t count, struct curl_slist **headers)
{
    CURL *easy = curl_easy_init();
    if (easy == NULL)
        return NULL;
    *headers = prepare(easy, query, count);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, *headers);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(easy, CURLOPT_MAXREDIRS, 3L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)SEARCH_CONNECT_MS);
    curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(easy, CURLOPT_USERAGENT, "agent-tars-server");
    return easy;
}

static void on_timeout(uv_timer_t *t)
{
    struct search_job *job = t->data;
    fail(job, xasprintf("Search failed: no answer within %lld ms", sc.timeout_ms));
}

/* `count || config.count`, as the original: absent, zero or negative means the default. */
static size_t arg_count(struct tool_call *call)
{
    const json_t *v = json_object_get(call->args, "count");
    if (v != NULL && !json_is_null(v) && !json_is_number(v)) {
        call->error = xstrdup("Invalid arguments for web_search: count must be a number");
        return 0;
    }
    double d = json_number_value(v);
    if (d < 1)
        return (size_t)sc.count;
    return d > SEARCH_MAX_COUNT ? SEARCH_MAX_COUNT : (size_t)d;
}

static void *search_start(uv_loop_t *loop, struct tool_call *call)
{
    const char *query = tool__arg_str(call, "query");
    size_t count = query ? arg_count(call) : 0;
    const char *q = query;
    while (q != NULL && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
        q++;
    if (call->error == NULL && q[0] == '\0')
        call->error = xstrdup("Search query is required");
    if (call->error == NULL && sc.cu == NULL)
        call->error = xstrdup("web_search is not configured");
    if (call->error != NULL)
        return NULL;
    /* Everything runs on the loop tools_init was given (where our curl_uv lives). */
    struct search_job *job = xcalloc(1, sizeof(*job));
    job->call = call;
    job->count = count;
    buf_init(&job->body, SEARCH_MAX_BODY);
    uv_timer_init(sc.loop, &job->timer);
    job->timer.data = job;
    job->next = sc.jobs;
    if (sc.jobs != NULL)
        sc.jobs->prev = job;
    sc.jobs = job;
    struct curl_slist *headers = NULL;
    CURL *easy = easy_new(query, count, &headers);
    job->xfer = easy ? curl_uv_add(sc.cu, easy, headers, &xfer_cbs, job) : NULL;
    if (job->xfer == NULL) { /* curl_uv owns easy and headers even then */
        fail(job, xstrdup("Search failed: cannot start the request"));
    } else {
        uv_timer_start(&job->timer, on_timeout, (uint64_t)sc.timeout_ms, 0);
    }
    return job;
}

static void search_abort(void *handle)
{
    fail(handle, xstrdup("Search aborted"));
}

static json_t *schema_search_new(void)
{
    char *count = xasprintf("How many results to return (default %lld)", sc.count);
    json_t *s =
        json_pack("{s:s, s:{s:{s:s, s:s}, s:{s:s, s:s}}, s:[s], s:b}", "type", "object",
                  "properties", "query", "type", "string", "description",
                  "What to search for: a few keywords, at most 7 words", "count", "type", "number",
                  "description", count, "required", "query", "additionalProperties", 0);
    xfree(count);
    return s;
}

/* The description is ours; the advice on short queries is the original's. */
const struct tool_ops tool__search_ops = {
    "web_search",
    "Search the web. Use short keyword queries (3 to 5 words is best, never more than 7); for "
    "a complex topic run several simple searches instead of one long one. Returns a JSON list "
    "of results, each with title, url and content.",
    schema_search_new,
    NULL,
    search_start,
    search_abort,
};
