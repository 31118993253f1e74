/* SPDX-License-Identifier: MIT */
/* test_tools_search.c -- web_search against fake Tavily, Bing and SearXNG servers written here
 * (a tiny HTTP/1.1 server on the same libuv loop): the exact requests each provider gets, the
 * mapping of their answers to [{title, url, content}], HTTP and transport errors, the timeout,
 * abort and shutdown paths, and the configuration. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/util.h"
#include "core/xalloc.h"
#include "tools/mcp.h"
#include "tools/tools.h"

/* tool.c asks the MCP client for its tools; none here. Weak, so a real mcp.o would win. */
__attribute__((weak)) const json_t *mcp_tools_schema(void)
{
    return NULL;
}
__attribute__((weak)) const json_t *mcp_tool_describe(const char *name)
{
    return NULL;
}
__attribute__((weak)) int mcp_call_start(const char *name, const json_t *args, tool_done_cb cb,
                                         void *data, struct mcp_call **out)
{
    return -ENOENT;
}
__attribute__((weak)) void mcp_call_abort(struct mcp_call *call)
{
}

/* ---------------------------------------------------------------- the fake HTTP server */

struct fake_conn {
    uv_tcp_t tcp;
    struct fake *srv;
    struct buf in;
    uv_write_t w;
    char *resp;
    struct fake_conn *next;
};

struct fake {
    uv_tcp_t tcp;
    int port;
    int status;       /* what to answer */
    const char *body; /* what to answer */
    bool hang;        /* never answer */
    int requests;
    char *method, *target, *headers, *req_body; /* the last request */
    struct fake_conn *conns;
};

static void on_conn_closed(uv_handle_t *h)
{
    struct fake_conn *c = h->data;
    buf_release(&c->in);
    xfree(c->resp);
    xfree(c);
}

static void conn_close(struct fake_conn *c)
{
    struct fake_conn **pp = &c->srv->conns;
    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_written(uv_write_t *w, int status)
{
    conn_close(w->data);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    static char chunk[65536];
    *b = uv_buf_init(chunk, sizeof(chunk));
}

/* Records a complete request and answers it (unless the fake hangs). */
static void handle_request(struct fake_conn *c, const char *head, size_t head_len, const char *body,
                           size_t body_len)
{
    struct fake *f = c->srv;
    f->requests++;
    xfree(f->method), xfree(f->target), xfree(f->headers), xfree(f->req_body);
    const char *sp1 = memchr(head, ' ', head_len);
    const char *sp2 = memchr(sp1 + 1, ' ', head_len - (size_t)(sp1 + 1 - head));
    f->method = xstrndup(head, (size_t)(sp1 - head));
    f->target = xstrndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    f->headers = xstrndup(head, head_len);
    f->req_body = xstrndup(body, body_len);
    if (f->hang)
        return;
    c->resp = xasprintf("HTTP/1.1 %d Answer\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                        f->status, strlen(f->body), f->body);
    uv_buf_t b = uv_buf_init(c->resp, (unsigned int)strlen(c->resp));
    c->w.data = c;
    uv_write(&c->w, (uv_stream_t *)&c->tcp, &b, 1, on_written);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct fake_conn *c = s->data;
    if (n < 0) {
        uv_read_stop(s);
        if (c->resp == NULL)
            conn_close(c);
        return;
    }
    buf_append(&c->in, b->base, (size_t)n);
    const char *all = buf_str(&c->in);
    const char *end = strstr(all, "\r\n\r\n");
    if (end == NULL)
        return;
    size_t head_len = (size_t)(end - all), body_len = 0;
    const char *cl = strcasestr(all, "\r\ncontent-length:");
    if (cl != NULL && cl < end)
        body_len = strtoul(cl + 17, NULL, 10);
    if (c->in.len < head_len + 4 + body_len)
        return;
    uv_read_stop(s);
    handle_request(c, all, head_len, end + 4, body_len);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct fake *f = server->data;
    struct fake_conn *c = xcalloc(1, sizeof(*c));
    c->srv = f;
    buf_init(&c->in, 1 << 20);
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    c->next = f->conns;
    f->conns = c;
    assert_int_equal(uv_accept(server, (uv_stream_t *)&c->tcp), 0);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static void fake_start(uv_loop_t *loop, struct fake *f)
{
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(loop, &f->tcp);
    f->tcp.data = f;
    assert_int_equal(uv_tcp_bind(&f->tcp, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->tcp, 16, on_connection), 0);
    struct sockaddr_in got;
    int len = sizeof(got);
    uv_tcp_getsockname(&f->tcp, (struct sockaddr *)&got, &len);
    f->port = ntohs(got.sin_port);
    f->status = 200;
}

static void fake_stop(struct fake *f)
{
    while (f->conns != NULL)
        conn_close(f->conns);
    uv_close((uv_handle_t *)&f->tcp, NULL);
    xfree(f->method), xfree(f->target), xfree(f->headers), xfree(f->req_body);
}

/* The value of request header `name` (case-insensitive), or NULL. Caller frees. */
static char *req_header(const struct fake *f, const char *name)
{
    char *pat = xasprintf("\r\n%s:", name);
    const char *h = strcasestr(f->headers, pat);
    size_t skip = strlen(pat);
    xfree(pat);
    if (h == NULL)
        return NULL;
    h += skip;
    while (*h == ' ')
        h++;
    return xstrndup(h, strcspn(h, "\r"));
}

/* ---------------------------------------------------------------- fixture */

struct fx {
    uv_loop_t loop;
    struct fake srv;
};

struct done {
    int calls;
    json_t *content;
    char *error;
};

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    fake_start(&f->loop, &f->srv);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    tools_shutdown();
    fake_stop(&f->srv);
    assert_int_equal(uv_run(&f->loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    xfree(f);
    return 0;
}

static void on_done(void *data, const struct tool_result *res)
{
    struct done *d = data;
    d->calls++;
    d->content = json_incref(res->content);
    d->error = res->error ? xstrdup(res->error) : NULL;
}

static void done_release(struct done *d)
{
    json_decref(d->content);
    xfree(d->error);
}

/* tools_init with a config whose "%d" is replaced by the fake's port. */
static void init_search(struct fx *f, const char *fmt)
{
    char *text = xasprintf(fmt, f->srv.port);
    json_t *cfg = json_loads(text, 0, NULL);
    assert_non_null(cfg);
    char *err = NULL;
    if (tools_init(&f->loop, cfg, &err) != 0)
        fail_msg("tools_init: %s", err);
    json_decref(cfg);
    xfree(text);
}

static void run_until(struct fx *f, const int *calls, uint64_t limit_ms)
{
    uint64_t t0 = mono_ms();
    while (*calls == 0 && mono_ms() - t0 < limit_ms)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(*calls, 1);
}

static struct done search(struct fx *f, const char *args_json)
{
    struct done d = {0};
    json_t *args = json_loads(args_json, 0, NULL);
    assert_non_null(args);
    assert_int_equal(tool_run_start(&f->loop, "/tmp", "web_search", args, on_done, &d, NULL), 0);
    json_decref(args);
    assert_int_equal(d.calls, 0);
    run_until(f, &d.calls, 10000);
    return d;
}

/* The result is the page list as JSON text (indented like JSON.stringify(pages, null, 2)). */
static void assert_pages(const struct done *d, json_t *want)
{
    if (d->error != NULL)
        fail_msg("unexpected error: %s", d->error);
    assert_true(json_is_string(d->content));
    json_t *got = json_loads(json_string_value(d->content), 0, NULL);
    assert_non_null(got);
    if (!json_equal(got, want))
        fail_msg("unexpected pages: %s", json_string_value(d->content));
    json_decref(got);
    json_decref(want);
}

static size_t page_count(const struct done *d)
{
    json_t *got = json_loads(json_string_value(d->content), 0, NULL);
    size_t n = json_array_size(got);
    json_decref(got);
    return n;
}

static void assert_err(const struct done *d, const char *msg)
{
    if (d->error == NULL)
        fail_msg("expected the error '%s'", msg);
    assert_string_equal(d->error, msg);
    char *want = xasprintf("Error: %s", msg);
    assert_string_equal(json_string_value(d->content), want);
    xfree(want);
}

static void assert_header(const struct fake *srv, const char *name, const char *want)
{
    char *v = req_header(srv, name);
    if (v == NULL)
        fail_msg("no %s header", name);
    assert_string_equal(v, want);
    xfree(v);
}

/* ---------------------------------------------------------------- providers */

static const char *TAVILY_ANSWER =
    "{\"query\":\"agent tars\",\"answer\":null,\"images\":[],\"results\":["
    "{\"title\":\"Agent TARS\",\"url\":\"https://agent-tars.com/\",\"content\":\"A multimodal "
    "AI agent\",\"score\":0.98,\"raw_content\":null},"
    "{\"url\":\"https://example.com/2\",\"content\":\"no title here\",\"score\":0.5},"
    "{\"title\":\"Third\",\"url\":\"https://example.com/3\",\"content\":\"3\",\"score\":0.4},"
    "{\"title\":\"Fourth\",\"url\":\"https://example.com/4\",\"content\":\"4\",\"score\":0.3}"
    "],\"response_time\":1.2}";

static void test_tavily(void **state)
{
    struct fx *f = *state;
    init_search(f, "{\"search\": {\"provider\": \"tavily\", \"apiKey\": \"tvly-test-key\", "
                   "\"baseURL\": \"http://127.0.0.1:%d\", \"count\": 3}}");
    f->srv.body = TAVILY_ANSWER;
    struct done d = search(f, "{\"query\": \"agent tars\"}");
    assert_pages(&d, json_pack("[{s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}]", "title",
                               "Agent TARS", "url", "https://agent-tars.com/", "content",
                               "A multimodal AI agent", "title", "", "url", "https://example.com/2",
                               "content", "no title here", "title", "Third", "url",
                               "https://example.com/3", "content", "3"));
    assert_true(strncmp(json_string_value(d.content),
                        "[\n  {\n    \"title\": \"Agent TARS\",\n    \"url\": "
                        "\"https://agent-tars.com/\",\n    \"content\": ",
                        70) == 0);
    done_release(&d);
    json_t *want;
    assert_string_equal(f->srv.method, "POST");
    assert_string_equal(f->srv.target, "/search");
    assert_header(&f->srv, "Authorization", "Bearer tvly-test-key");
    assert_header(&f->srv, "Content-Type", "application/json");
    json_t *body = json_loads(f->srv.req_body, 0, NULL);
    want = json_pack("{s:s, s:i, s:s}", "query", "agent tars", "max_results", 3, "api_key",
                     "tvly-test-key");
    assert_true(json_equal(body, want));
    json_decref(want);
    json_decref(body);

    /* count from the call wins; 0 means the configured default, as `count || config.count`. */
    d = search(f, "{\"query\": \"agent tars\", \"count\": 2}");
    assert_int_equal(page_count(&d), 2);
    done_release(&d);
    body = json_loads(f->srv.req_body, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(body, "max_results")), 2);
    json_decref(body);
    d = search(f, "{\"query\": \"x\", \"count\": 0}");
    body = json_loads(f->srv.req_body, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(body, "max_results")), 3);
    json_decref(body);
    done_release(&d);
    d = search(f, "{\"query\": \"x\", \"count\": 1000}");
    body = json_loads(f->srv.req_body, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(body, "max_results")), 50);
    json_decref(body);
    done_release(&d);
    assert_int_equal(f->srv.requests, 4);
}

static void test_bing(void **state)
{
    struct fx *f = *state;
    init_search(f, "{\"search\": {\"provider\": \"bing_search\", \"apiKey\": \"bing-key-1\", "
                   "\"baseURL\": \"http://127.0.0.1:%d/v7.0\"}}");
    f->srv.body = "{\"_type\":\"SearchResponse\",\"queryContext\":{\"originalQuery\":\"c & d\"},"
                  "\"webPages\":{\"totalEstimatedMatches\":2,\"value\":["
                  "{\"id\":\"0\",\"name\":\"C and D\",\"url\":\"https://c.example/\","
                  "\"snippet\":\"About c & d.\",\"displayUrl\":\"c.example\"},"
                  "{\"id\":\"1\",\"name\":\"Second\",\"url\":\"https://d.example/\","
                  "\"snippet\":\"More.\"}]}}";
    struct done d = search(f, "{\"query\": \"c & d\"}");
    assert_pages(&d, json_pack("[{s:s, s:s, s:s}, {s:s, s:s, s:s}]", "title", "C and D", "url",
                               "https://c.example/", "content", "About c & d.", "title", "Second",
                               "url", "https://d.example/", "content", "More."));
    done_release(&d);
    assert_string_equal(f->srv.method, "GET");
    assert_string_equal(f->srv.target, "/v7.0/search?q=c%20%26%20d&count=10");
    assert_header(&f->srv, "Ocp-Apim-Subscription-Key", "bing-key-1");
    assert_null(req_header(&f->srv, "Authorization"));

    /* A base URL that already names the endpoint, and the short provider name. */
    init_search(f, "{\"search\": {\"provider\": \"bing\", \"apiKey\": 12345678, "
                   "\"baseURL\": \"http://127.0.0.1:%d/v7.0/search/\", \"count\": 7}}");
    f->srv.body = "{\"_type\":\"SearchResponse\"}"; /* no webPages at all: no results */
    d = search(f, "{\"query\": \"x\"}");
    assert_null(d.error);
    assert_string_equal(json_string_value(d.content), "[]");
    done_release(&d);
    assert_string_equal(f->srv.target, "/v7.0/search?q=x&count=7");
    assert_header(&f->srv, "Ocp-Apim-Subscription-Key", "12345678");
}

static void test_searxng(void **state)
{
    struct fx *f = *state;
    init_search(f, "{\"search\": {\"provider\": \"searxng\", "
                   "\"baseURL\": \"http://127.0.0.1:%d\", \"count\": 2}}");
    f->srv.body = "{\"query\":\"tars\",\"number_of_results\":0,\"results\":["
                  "{\"url\":\"https://a.example/\",\"title\":\"A\",\"content\":\"about a\","
                  "\"engine\":\"duckduckgo\"},"
                  "{\"url\":\"https://b.example/\",\"title\":\"B\",\"snippet\":\"about b\"},"
                  "{\"url\":\"https://c.example/\",\"title\":\"C\",\"content\":\"about c\"}]}";
    struct done d = search(f, "{\"query\": \"tars \\u00e9\"}");
    assert_pages(&d, json_pack("[{s:s, s:s, s:s}, {s:s, s:s, s:s}]", "title", "A", "url",
                               "https://a.example/", "content", "about a", "title", "B", "url",
                               "https://b.example/", "content", "about b"));
    done_release(&d);
    assert_string_equal(f->srv.method, "GET");
    assert_string_equal(f->srv.target, "/search?q=tars%20%C3%A9&format=json&count=2");
    assert_null(req_header(&f->srv, "Authorization"));
}

/* ---------------------------------------------------------------- errors */

static void test_http_errors(void **state)
{
    struct fx *f = *state;
    init_search(f, "{\"search\": {\"provider\": \"tavily\", \"apiKey\": \"tvly-bad\", "
                   "\"baseURL\": \"http://127.0.0.1:%d/\"}}");
    f->srv.status = 401;
    f->srv.body = "{\"detail\":{\"error\":\"Unauthorized: missing or invalid API key.\"}}";
    struct done d = search(f, "{\"query\": \"x\"}");
    assert_err(&d, "Search failed: HTTP 401: Unauthorized: missing or invalid API key.");
    done_release(&d);
    assert_string_equal(f->srv.target, "/search");

    f->srv.status = 429;
    f->srv.body = "{\"error\":{\"code\":\"429\",\"message\":\"Rate limit is exceeded.\"}}";
    d = search(f, "{\"query\": \"x\"}");
    assert_err(&d, "Search failed: HTTP 429: Rate limit is exceeded.");
    done_release(&d);

    f->srv.status = 502;
    f->srv.body = "<html>bad gateway</html>";
    d = search(f, "{\"query\": \"x\"}");
    assert_err(&d, "Search failed: HTTP 502: <html>bad gateway</html>");
    done_release(&d);

    f->srv.status = 200;
    f->srv.body = "not json";
    d = search(f, "{\"query\": \"x\"}");
    assert_err(&d, "Search failed: the answer is not a JSON object");
    done_release(&d);
}

static void test_bad_calls(void **state)
{
    struct fx *f = *state;
    init_search(f, "{\"search\": {\"provider\": \"tavily\", \"apiKey\": \"k-12345678\", "
                   "\"baseURL\": \"http://127.0.0.1:%d\"}}");
    struct done d = search(f, "{\"query\": \"  \"}");
    assert_err(&d, "Search query is required");
    done_release(&d);
    d = search(f, "{}");
    assert_err(&d, "Invalid arguments for web_search: query must be a string");
    done_release(&d);
    d = search(f, "{\"query\": \"x\", \"count\": \"5\"}");
    assert_err(&d, "Invalid arguments for web_search: count must be a number");
    done_release(&d);
    assert_int_equal(f->srv.requests, 0);
}

static void test_unreachable(void **state)
{
    struct fx *f = *state;
    /* A port nothing listens on: bind one, then close it. */
    uv_tcp_t probe;
    struct sockaddr_in addr, got;
    int len = sizeof(got);
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(&f->loop, &probe);
    uv_tcp_bind(&probe, (const struct sockaddr *)&addr, 0);
    uv_tcp_getsockname(&probe, (struct sockaddr *)&got, &len);
    uv_close((uv_handle_t *)&probe, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    char *cfg = xasprintf("{\"search\": {\"provider\": \"searxng\", "
                          "\"baseURL\": \"http://127.0.0.1:%d\"}}",
                          ntohs(got.sin_port));
    init_search(f, cfg); /* no %d left: the port is already in */
    xfree(cfg);
    struct done d = search(f, "{\"query\": \"x\"}");
    assert_non_null(d.error);
    if (strncmp(d.error, "Search failed: Couldn't connect to server", 41) != 0)
        fail_msg("unexpected error '%s'", d.error);
    done_release(&d);
}

static void test_timeout(void **state)
{
    struct fx *f = *state;
    init_search(f, "{\"search\": {\"provider\": \"searxng\", \"timeoutMs\": 300, "
                   "\"baseURL\": \"http://127.0.0.1:%d\"}}");
    f->srv.hang = true;
    /* The message says which limit ended it; how long that took is not asserted (no timing
     * assertions: a loaded machine stretches it, libuv's cached loop time can shorten it). */
    struct done d = search(f, "{\"query\": \"x\"}");
    assert_err(&d, "Search failed: no answer within 300 ms");
    assert_int_equal(f->srv.requests, 1);
    done_release(&d);
}

static void test_abort(void **state)
{
    struct fx *f = *state;
    init_search(f, "{\"search\": {\"provider\": \"searxng\", "
                   "\"baseURL\": \"http://127.0.0.1:%d\"}}");
    f->srv.hang = true;
    struct done d = {0};
    json_t *args = json_pack("{s:s}", "query", "slow");
    struct tool_run *run;
    assert_int_equal(tool_run_start(&f->loop, "/tmp", "web_search", args, on_done, &d, &run), 0);
    json_decref(args);
    uint64_t t0 = mono_ms();
    while (f->srv.requests == 0 && mono_ms() - t0 < 5000)
        uv_run(&f->loop, UV_RUN_ONCE);
    assert_int_equal(f->srv.requests, 1);
    tool_run_abort(run);
    tool_run_abort(run);
    assert_int_equal(d.calls, 0); /* not inside tool_run_abort */
    run_until(f, &d.calls, 2000);
    assert_err(&d, "Search aborted");
    done_release(&d);

    /* tools_shutdown with a search in flight: it completes, aborted. */
    d = (struct done){0};
    args = json_pack("{s:s}", "query", "slow");
    assert_int_equal(tool_run_start(&f->loop, "/tmp", "web_search", args, on_done, &d, NULL), 0);
    json_decref(args);
    while (f->srv.requests == 1 && mono_ms() - t0 < 5000)
        uv_run(&f->loop, UV_RUN_ONCE);
    tools_shutdown();
    run_until(f, &d.calls, 2000);
    assert_err(&d, "Search aborted: the server is shutting down");
    done_release(&d);
}

/* ---------------------------------------------------------------- configuration */

static bool offered(const char *name)
{
    size_t i;
    const json_t *t;
    json_array_foreach(tools_openai_schema(), i, t)
    {
        if (strcmp(json_get_str(json_object_get(t, "function"), "name"), name) == 0)
            return true;
    }
    return false;
}

static void test_config(void **state)
{
    struct fx *f = *state;
    /* Without a provider web_search is not offered, and calling it finds nothing. */
    init_search(f, "{}");
    assert_false(offered("web_search"));
    assert_null(tools_describe("web_search"));
    struct done d = search(f, "{\"query\": \"x\"}");
    assert_err(&d, "Tool \"web_search\" not found");
    done_release(&d);
    /* Providers that need a browser are not supported: not offered either. */
    init_search(f, "{\"search\": {\"provider\": \"browser_search\"}}");
    assert_false(offered("web_search"));

    init_search(f, "{\"search\": {\"provider\": \"searxng\", \"count\": 4}}");
    assert_true(offered("web_search"));
    const json_t *first = json_array_get(tools_openai_schema(), 0);
    const json_t *fn = json_object_get(first, "function");
    assert_string_equal(json_get_str(fn, "name"), "web_search"); /* registered first */
    const json_t *props = json_object_get(json_object_get(fn, "parameters"), "properties");
    assert_string_equal(json_get_str(json_object_get(props, "query"), "type"), "string");
    assert_string_equal(json_get_str(json_object_get(props, "count"), "type"), "number");
    assert_non_null(
        strstr(json_get_str(json_object_get(props, "count"), "description"), "(default 4)"));
    assert_non_null(tools_describe("web_search"));

    static const char *bad[] = {
        "{\"search\": \"tavily\"}",
        "{\"search\": {\"provider\": \"tavily\", \"count\": 0}}",
        "{\"search\": {\"provider\": \"tavily\", \"count\": \"ten\"}}",
        "{\"search\": {\"provider\": \"tavily\", \"apiKey\": {}}}",
        "{\"search\": {\"provider\": [\"tavily\"]}}",
        "{\"tool\": {\"include\": 5}}",
        "{\"tool\": []}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *cfg = json_loads(bad[i], 0, NULL);
        char *err = NULL;
        if (tools_init(&f->loop, cfg, &err) >= 0)
            fail_msg("accepted %s", bad[i]);
        assert_non_null(err);
        xfree(err);
        json_decref(cfg);
    }
    assert_false(offered("web_search")); /* a failed init leaves nothing configured */
}

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    signal(SIGPIPE, SIG_IGN);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_tavily),      T(test_bing),      T(test_searxng),
        T(test_http_errors), T(test_bad_calls), T(test_unreachable),
        T(test_timeout),     T(test_abort),     T(test_config),
    };
#undef T
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tools_shutdown();
    return rc;
}
