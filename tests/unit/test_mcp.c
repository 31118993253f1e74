/* SPDX-License-Identifier: MIT */
/* test_mcp.c -- the MCP client against a scriptable fake server (tests/fixtures/mcp/
 * fake-server.mjs, run with node): handshake, paging, results, errors, debug lines on stdout, a
 * crash, a hang, a slow tool, abort, server requests, environment, filters, start failures,
 * Streamable HTTP with JSON and SSE answers; and the pure tool-result -> LLM parts conversion.
 * Each test runs on its own loop and must leave it closable (every handle closed). */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <uv.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "core/xalloc.h"
#include "tools/mcp.h"
#include "tools/mcp_int.h"

#define FAKE "tests/fixtures/mcp/fake-server.mjs"

struct http_fake {
    uv_process_t proc;
    bool started, exited;
    char port_file[160];
    int port;
};

struct fx {
    uv_loop_t loop;
    struct http_fake http; /* killed by teardown if a test failed half-way */
    char dir[64];
    char log[128];
    char script[PATH_MAX];
};

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    assert_int_equal(uv_loop_init(&f->loop), 0);
    snprintf(f->dir, sizeof(f->dir), "/tmp/test-mcp-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->log, sizeof(f->log), "%s/log.jsonl", f->dir);
    if (realpath(FAKE, f->script) == NULL)
        fail_msg("cannot find %s (run the tests from the repository root)", FAKE);
    *state = f;
    return 0;
}

static void rm_dir(const char *dir)
{
    uv_fs_t req;
    if (uv_fs_scandir(NULL, &req, dir, 0, NULL) >= 0) {
        uv_dirent_t ent;
        while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
            char *p = xasprintf("%s/%s", dir, ent.name);
            unlink(p);
            xfree(p);
        }
    }
    uv_fs_req_cleanup(&req);
    rmdir(dir);
}

static void http_fake_kill(struct fx *f);

static int teardown(void **state)
{
    struct fx *f = *state;
    mcp_shutdown();
    http_fake_kill(f);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&f->loop);
    rm_dir(f->dir);
    xfree(f);
    assert_int_equal(rc, 0); /* every handle was closed */
    return 0;
}

/* ---- loop helpers ------------------------------------------------------------------------ */

static void on_deadline(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

static void on_tick(uv_timer_t *t)
{
    /* wakes the loop so that conditions outside it (files, pids) are polled */
}

/* Runs the loop until pred(arg) holds; fails after timeout_ms. */
static void run_until(struct fx *f, bool (*pred)(void *), void *arg, uint64_t timeout_ms,
                      const char *what)
{
    bool expired = false;
    uv_timer_t t;
    uv_timer_init(&f->loop, &t);
    t.data = &expired;
    uv_timer_start(&t, on_deadline, timeout_ms, 0);
    uv_timer_t tick;
    uv_timer_init(&f->loop, &tick);
    uv_timer_start(&tick, on_tick, 20, 20);
    while (!pred(arg) && !expired)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    if (expired && !pred(arg))
        fail_msg("timed out after %llu ms waiting for %s", (unsigned long long)timeout_ms, what);
}

static bool ready_pred(void *arg)
{
    return mcp_ready();
}

static void sleep_loop(struct fx *f, uint64_t ms)
{
    bool never = false;
    bool expired = false;
    uv_timer_t t;
    uv_timer_init(&f->loop, &t);
    t.data = &expired;
    uv_timer_start(&t, on_deadline, ms, 0);
    while (!expired && !never)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
}

/* ---- config ------------------------------------------------------------------------------ */

/* {"command":"node","args":[script, extra...],"env":{"FAKE_MCP_LOG":log}} */
static json_t *fake_server(struct fx *f, const char *const *extra)
{
    json_t *args = json_array();
    json_array_append_new(args, json_string(f->script));
    for (size_t i = 0; extra && extra[i]; i++)
        json_array_append_new(args, json_string(extra[i]));
    return json_pack("{s:s, s:o, s:{s:s}}", "command", "node", "args", args, "env", "FAKE_MCP_LOG",
                     f->log);
}

/* Starts the client with config (taken over) and waits until every server settled. */
static void start(struct fx *f, json_t *config)
{
    char *err = NULL;
    int rc = mcp_init(&f->loop, config, &err);
    if (rc < 0)
        fail_msg("mcp_init: %s", err);
    json_decref(config);
    run_until(f, ready_pred, NULL, 15000, "mcp_ready");
}

static void start_one(struct fx *f, const char *const *extra, json_t *mcp_settings)
{
    json_t *cfg = json_pack("{s:{s:o}}", "mcpServers", "fake", fake_server(f, extra));
    if (mcp_settings)
        json_object_set_new(cfg, "mcp", mcp_settings);
    start(f, cfg);
}

/* ---- calls ------------------------------------------------------------------------------- */

struct box {
    int calls;
    json_t *content;
    char *error;
};

static void on_done(void *data, const struct tool_result *res)
{
    struct box *b = data;
    b->calls++;
    b->content = json_incref(res->content);
    b->error = res->error ? xstrdup(res->error) : NULL;
}

static bool done_pred(void *arg)
{
    return ((struct box *)arg)->calls > 0;
}

static void box_release(struct box *b)
{
    json_decref(b->content);
    xfree(b->error);
    memset(b, 0, sizeof(*b));
}

/* Calls a tool and waits for its result (box must be released by the caller). */
static void call(struct fx *f, const char *tool, json_t *args, struct box *b, uint64_t wait_ms)
{
    memset(b, 0, sizeof(*b));
    struct mcp_call *c = NULL;
    int rc = mcp_call_start(tool, args, on_done, b, &c);
    json_decref(args);
    assert_int_equal(rc, 0);
    assert_non_null(c);
    assert_int_equal(b->calls, 0); /* never inside mcp_call_start */
    run_until(f, done_pred, b, wait_ms, tool);
    assert_int_equal(b->calls, 1);
}

/* The text of a one-text-item MCP content array. */
static const char *text_of(const struct box *b)
{
    const json_t *item = json_array_get(b->content, 0);
    const char *t = json_get_str(item, "text");
    if (t == NULL || json_array_size(b->content) != 1) {
        char *d = json_dump_compact(b->content, NULL);
        print_error("unexpected content %s (error %s)\n", d, b->error ? b->error : "-");
        xfree(d);
        fail();
    }
    return t;
}

static long call_pid(struct fx *f)
{
    struct box b;
    call(f, "pid", json_object(), &b, 10000);
    assert_null(b.error);
    long pid = strtol(text_of(&b), NULL, 10);
    box_release(&b);
    assert_true(pid > 0);
    return pid;
}

struct pid_arg {
    long pid;
};

static bool gone_pred(void *arg)
{
    long pid = ((struct pid_arg *)arg)->pid;
    return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

static void wait_gone(struct fx *f, long pid)
{
    struct pid_arg a = {pid};
    run_until(f, gone_pred, &a, 10000, "the server process to be gone");
}

/* ---- the fake's log ---------------------------------------------------------------------- */

/* Every message the fake received, in order. */
static json_t *read_log(struct fx *f)
{
    json_t *out = json_array();
    FILE *fp = fopen(f->log, "r");
    if (fp == NULL)
        return out;
    struct buf b;
    buf_init(&b, 256u << 20);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0)
        assert_int_equal(buf_append(&b, chunk, n), 0);
    fclose(fp);
    for (const char *p = buf_str(&b); *p;) {
        const char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p) : strlen(p);
        json_t *j = json_loadb(p, len, 0, NULL);
        if (j)
            json_array_append_new(out, j);
        p += len + (nl ? 1 : 0);
    }
    buf_release(&b);
    return out;
}

static const json_t *find_msg(const json_t *log, const char *method, size_t nth)
{
    size_t i;
    json_t *m;
    json_array_foreach(log, i, m)
    {
        const char *meth = json_get_str(m, "method");
        if (meth && strcmp(meth, method) == 0 && nth-- == 0)
            return m;
    }
    return NULL;
}

struct log_wait {
    struct fx *f;
    const char *method;
};

static bool log_has_pred(void *arg)
{
    struct log_wait *w = arg;
    json_t *log = read_log(w->f);
    bool hit = find_msg(log, w->method, 0) != NULL;
    json_decref(log);
    return hit;
}

/* The id the fake saw on the tools/call of `tool`. */
static json_int_t call_id_of(const json_t *log, const char *tool)
{
    size_t i;
    json_t *m;
    json_array_foreach(log, i, m)
    {
        const char *meth = json_get_str(m, "method");
        const json_t *p = json_object_get(m, "params");
        if (meth && strcmp(meth, "tools/call") == 0 && strcmp(json_get_str(p, "name"), tool) == 0)
            return json_integer_value(json_object_get(m, "id"));
    }
    return -1;
}

/* ================================================================ stdio tests */

static void test_handshake(void **state)
{
    struct fx *f = *state;
    start_one(f, NULL, NULL);
    const json_t *schema = mcp_tools_schema();
    assert_int_equal(json_array_size(schema), 15);
    const json_t *first = json_array_get(schema, 0);
    assert_string_equal(json_get_str(first, "type"), "function");
    const json_t *fn = json_object_get(first, "function");
    assert_string_equal(json_get_str(fn, "name"), "echo");
    assert_string_equal(json_get_str(fn, "description"), "[fake] Echoes the text back");
    json_t *want = json_pack("{s:s, s:{s:{s:s}}, s:[s]}", "type", "object", "properties", "text",
                             "type", "string", "required", "text");
    assert_true(json_equal(json_object_get(fn, "parameters"), want));
    const json_t *d = mcp_tool_describe("echo");
    assert_non_null(d);
    assert_string_equal(json_get_str(d, "name"), "echo");
    assert_string_equal(json_get_str(d, "description"), "[fake] Echoes the text back");
    assert_true(json_equal(json_object_get(d, "schema"), want));
    json_decref(want);
    assert_null(mcp_tool_describe("nope"));

    json_t *log = read_log(f);
    const json_t *init = json_array_get(log, 0);
    assert_string_equal(json_get_str(init, "method"), "initialize");
    assert_string_equal(json_get_str(init, "jsonrpc"), "2.0");
    const json_t *p = json_object_get(init, "params");
    assert_string_equal(json_get_str(p, "protocolVersion"), "2025-06-18");
    assert_int_equal(json_object_size(json_object_get(p, "capabilities")), 0);
    assert_string_equal(json_get_str(json_object_get(p, "clientInfo"), "name"),
                        "agent-tars-server");
    const json_t *note = json_array_get(log, 1);
    assert_string_equal(json_get_str(note, "method"), "notifications/initialized");
    assert_null(json_object_get(note, "id"));
    const json_t *list = json_array_get(log, 2);
    assert_string_equal(json_get_str(list, "method"), "tools/list");
    assert_true(json_is_object(json_object_get(list, "params")));
    json_decref(log);
}

static void test_paging_and_debug_lines(void **state)
{
    struct fx *f = *state;
    const char *extra[] = {"--page-size", "4", "--debug-lines", NULL};
    start_one(f, extra, NULL);
    assert_int_equal(json_array_size(mcp_tools_schema()), 15);
    assert_non_null(mcp_tool_describe("expire")); /* on the last page */
    json_t *log = read_log(f);
    const char *cursors[] = {NULL, "4", "8", "12"};
    for (size_t i = 0; i < 4; i++) {
        const json_t *m = find_msg(log, "tools/list", i);
        assert_non_null(m);
        const char *c = json_get_str(json_object_get(m, "params"), "cursor");
        if (cursors[i])
            assert_string_equal(c, cursors[i]);
        else
            assert_null(c);
    }
    assert_null(find_msg(log, "tools/list", 4));
    json_decref(log);
    /* The fake prints multi-line debug output around every answer. */
    struct box b;
    call(f, "echo", json_pack("{s:s}", "text", "through the noise"), &b, 10000);
    assert_null(b.error);
    assert_string_equal(text_of(&b), "through the noise");
    box_release(&b);
}

static void test_results_and_errors(void **state)
{
    struct fx *f = *state;
    start_one(f, NULL, NULL);
    struct box b;
    call(f, "echo", json_pack("{s:s}", "text", "h\xc3\xa9llo\nworld"), &b, 10000);
    assert_null(b.error);
    json_t *want = json_pack("[{s:s, s:s}]", "type", "text", "text", "h\xc3\xa9llo\nworld");
    assert_true(json_equal(b.content, want));
    json_decref(want);
    box_release(&b);

    call(f, "image", NULL, &b, 10000);
    assert_null(b.error);
    assert_int_equal(json_array_size(b.content), 2);
    assert_string_equal(json_get_str(json_array_get(b.content, 1), "type"), "image");
    assert_string_equal(json_get_str(json_array_get(b.content, 1), "mimeType"), "image/png");
    box_release(&b);

    call(f, "fail", json_object(), &b, 10000);
    assert_string_equal(b.error, "it failed");
    assert_string_equal(json_string_value(b.content), "Error: it failed");
    box_release(&b);

    call(f, "rpc_error", json_object(), &b, 10000);
    assert_string_equal(b.error, "Failed to execute tool rpc_error: MCP error -32602: "
                                 "Invalid arguments for tool rpc_error");
    assert_string_equal(json_string_value(b.content),
                        "Error: Failed to execute tool rpc_error: MCP error -32602: "
                        "Invalid arguments for tool rpc_error");
    box_release(&b);

    /* Arguments go out as given. */
    call(f, "env", json_pack("{s:s}", "name", "FAKE_MCP_LOG"), &b, 10000);
    assert_string_equal(text_of(&b), f->log);
    box_release(&b);
    json_t *log = read_log(f);
    const json_t *m = find_msg(log, "tools/call", 0);
    json_t *args = json_pack("{s:s}", "text", "h\xc3\xa9llo\nworld");
    assert_true(json_equal(json_object_get(json_object_get(m, "params"), "arguments"), args));
    json_decref(args);
    /* A call without arguments sends an empty object. */
    m = find_msg(log, "tools/call", 1);
    assert_int_equal(json_object_size(json_object_get(json_object_get(m, "params"), "arguments")),
                     0);
    json_decref(log);

    struct mcp_call *c = NULL;
    assert_true(mcp_call_start("no_such_tool", NULL, on_done, &b, &c) < 0);
    assert_int_equal(b.calls, 0);
}

static void test_big_line(void **state)
{
    struct fx *f = *state;
    start_one(f, NULL, NULL);
    struct box b;
    call(f, "big", json_pack("{s:i}", "bytes", 3000000), &b, 15000);
    assert_null(b.error);
    assert_int_equal(strlen(text_of(&b)), 3000000);
    box_release(&b);
}

static void test_crash_restarts(void **state)
{
    struct fx *f = *state;
    start_one(f, NULL, NULL);
    long pid1 = call_pid(f);
    struct box b;
    call(f, "crash", json_object(), &b, 10000);
    assert_string_equal(b.error,
                        "Failed to execute tool crash: MCP error -32000: Connection closed");
    box_release(&b);
    wait_gone(f, pid1);
    /* The tools stay listed, and the next call starts a fresh server. */
    assert_non_null(mcp_tool_describe("pid"));
    long pid2 = call_pid(f);
    assert_true(pid2 != pid1);
    json_t *log = read_log(f);
    assert_non_null(find_msg(log, "initialize", 1));
    json_decref(log);
}

static void test_hang_is_killed(void **state)
{
    struct fx *f = *state;
    start_one(f, NULL, json_pack("{s:i, s:i}", "callTimeoutMs", 500, "pingTimeoutMs", 300));
    long pid1 = call_pid(f);
    struct box b;
    uint64_t t0 = mono_ms();
    call(f, "freeze", json_object(), &b, 10000);
    assert_true(mono_ms() - t0 >= 450);
    assert_string_equal(b.error,
                        "Failed to execute tool freeze: MCP error -32001: Request timed out");
    box_release(&b);
    /* No answer to the ping that followed: the whole process group is killed. */
    wait_gone(f, pid1);
    long pid2 = call_pid(f);
    assert_true(pid2 != pid1);
}

static void test_slow_tool_keeps_server(void **state)
{
    struct fx *f = *state;
    start_one(f, NULL, json_pack("{s:i}", "callTimeoutMs", 400));
    long pid1 = call_pid(f);
    struct box b;
    call(f, "sleep", json_pack("{s:i}", "ms", 3000), &b, 10000);
    assert_string_equal(b.error,
                        "Failed to execute tool sleep: MCP error -32001: Request timed out");
    box_release(&b);
    sleep_loop(f, 600); /* the ping goes out and is answered */
    assert_int_equal(call_pid(f), pid1);
    json_t *log = read_log(f);
    const json_t *cancel = find_msg(log, "notifications/cancelled", 0);
    assert_non_null(cancel);
    const json_t *p = json_object_get(cancel, "params");
    assert_int_equal(json_integer_value(json_object_get(p, "requestId")), call_id_of(log, "sleep"));
    assert_string_equal(json_get_str(p, "reason"), "Request timed out");
    assert_non_null(find_msg(log, "ping", 0));
    json_decref(log);
}

static void test_abort(void **state)
{
    struct fx *f = *state;
    start_one(f, NULL, NULL);
    struct box b = {0};
    struct mcp_call *c = NULL;
    json_t *args = json_pack("{s:i}", "ms", 20000);
    assert_int_equal(mcp_call_start("sleep", args, on_done, &b, &c), 0);
    json_decref(args);
    struct log_wait w = {f, "tools/call"};
    run_until(f, log_has_pred, &w, 10000, "the call to reach the fake");
    uint64_t t0 = mono_ms();
    mcp_call_abort(c);
    assert_int_equal(b.calls, 0); /* not inside mcp_call_abort */
    run_until(f, done_pred, &b, 2000, "the aborted result");
    assert_true(mono_ms() - t0 < 1000);
    assert_string_equal(b.error, "aborted");
    assert_string_equal(json_string_value(b.content), "Error: aborted");
    box_release(&b);
    w.method = "notifications/cancelled";
    run_until(f, log_has_pred, &w, 10000, "the cancel notification");
    json_t *log = read_log(f);
    const json_t *p = json_object_get(find_msg(log, "notifications/cancelled", 0), "params");
    assert_int_equal(json_integer_value(json_object_get(p, "requestId")), call_id_of(log, "sleep"));
    assert_string_equal(json_get_str(p, "reason"), "aborted");
    json_decref(log);
    /* The server is fine afterwards. */
    call(f, "echo", json_pack("{s:s}", "text", "still here"), &b, 10000);
    assert_string_equal(text_of(&b), "still here");
    box_release(&b);
}

/* The fake asks us for roots/list (not supported: -32601) and ping (answered {}). */
static void test_server_requests(void **state)
{
    struct fx *f = *state;
    start_one(f, NULL, NULL);
    struct box b;
    call(f, "ask_roots", json_object(), &b, 10000);
    assert_null(b.error);
    json_t *got = json_loads(text_of(&b), 0, NULL);
    json_t *want = json_pack("{s:{s:{s:i, s:s}}, s:{s:{}}}", "roots", "error", "code", -32601,
                             "message", "Method not found", "ping", "result");
    assert_true(json_equal(got, want));
    json_decref(got);
    json_decref(want);
    box_release(&b);
}

static void test_environment(void **state)
{
    struct fx *f = *state;
    setenv("TARS_TEST_SECRET", "s3cret", 1);
    json_t *srv = fake_server(f, NULL);
    json_object_set_new(json_object_get(srv, "env"), "FOO", json_string("bar"));
    json_object_set_new(json_object_get(srv, "env"), "NUM", json_integer(5));
    start(f, json_pack("{s:{s:o}}", "mcpServers", "fake", srv));
    unsetenv("TARS_TEST_SECRET");
    struct {
        const char *name, *want;
    } cases[] = {{"FOO", "bar"}, {"NUM", "5"}, {"TARS_TEST_SECRET", "(unset)"}};
    for (size_t i = 0; i < 3; i++) {
        struct box b;
        call(f, "env", json_pack("{s:s}", "name", cases[i].name), &b, 10000);
        assert_string_equal(text_of(&b), cases[i].want);
        box_release(&b);
    }
    struct box b;
    call(f, "env", json_pack("{s:s}", "name", "PATH"), &b, 10000);
    assert_non_null(strstr(text_of(&b), "/usr/bin"));
    box_release(&b);
}

static void test_filters(void **state)
{
    struct fx *f = *state;
    const char *a[] = {"--prefix", "a_", NULL};
    const char *b[] = {"--prefix", "b_", NULL};
    const char *c[] = {"--prefix", "c_", NULL};
    json_t *cfg =
        json_pack("{s:{s:o, s:o, s:o}, s:{s:[s, s], s:s}}", "mcpServers", "alpha",
                  fake_server(f, a), "beta", fake_server(f, b), "gamma", fake_server(f, c),
                  "mcpServer", "include", "alp", "gam", "exclude", "zzz,amm");
    start(f, cfg);
    assert_int_equal(json_array_size(mcp_tools_schema()), 15);
    assert_non_null(mcp_tool_describe("a_echo"));
    assert_null(mcp_tool_describe("b_echo"));
    assert_null(mcp_tool_describe("c_echo"));
    assert_string_equal(json_get_str(mcp_tool_describe("a_echo"), "description"),
                        "[alpha] Echoes the text back");
}

/* The same tool name on two servers: the later one wins, as in the original's tool map. */
static void test_duplicate_names(void **state)
{
    struct fx *f = *state;
    json_t *cfg = json_pack("{s:{s:o, s:o}}", "mcpServers", "first", fake_server(f, NULL), "second",
                            fake_server(f, NULL));
    start(f, cfg);
    assert_int_equal(json_array_size(mcp_tools_schema()), 15);
    assert_string_equal(json_get_str(mcp_tool_describe("echo"), "description"),
                        "[second] Echoes the text back");
}

static void test_start_failures(void **state)
{
    struct fx *f = *state;
    const char *refuse[] = {"--fail-init", NULL};
    const char *exits[] = {"--exit-at-start", NULL};
    json_t *cfg = json_pack("{s:{s:{s:s}, s:o, s:o, s:{s:s, s:[s]}}, s:{s:i}}", "mcpServers",
                            "missing", "command", "/nonexistent/mcp-server", "refuses",
                            fake_server(f, refuse), "exits", fake_server(f, exits), "silent",
                            "command", "sleep", "args", "30", "mcp", "initTimeoutMs", 400);
    uint64_t t0 = mono_ms();
    start(f, cfg);
    assert_true(mono_ms() - t0 < 5000);
    assert_int_equal(json_array_size(mcp_tools_schema()), 0);
}

static void test_config_errors(void **state)
{
    struct fx *f = *state;
    const char *bad[] = {
        "{\"mcpServers\": 3}",
        "{\"mcpServers\": {\"x\": 1}}",
        "{\"mcpServers\": {\"x\": {}}}",
        "{\"mcpServers\": {\"x\": {\"command\": \"a\", \"args\": [{}]}}}",
        "{\"mcpServers\": {\"x\": {\"command\": \"a\", \"args\": \"b\"}}}",
        "{\"mcpServers\": {\"x\": {\"command\": \"a\", \"env\": {\"A\": [1]}}}}",
        "{\"mcpServers\": {\"x\": {\"command\": \"a\", \"timeout\": \"10\"}}}",
        "{\"mcpServers\": {\"x\": {\"url\": \"http://127.0.0.1:1/mcp\", \"headers\": {\"A\": "
        "\"b\\nc\"}}}}",
        "{\"mcpServers\": {\"x\": {\"url\": \"http://127.0.0.1:1/sse\", \"type\": \"sse\"}}}",
        "{\"mcp\": {\"callTimeoutMs\": -1}}",
        "{\"mcp\": 5}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *cfg = json_loads(bad[i], 0, NULL);
        assert_non_null(cfg);
        char *err = NULL;
        int rc = mcp_init(&f->loop, cfg, &err);
        json_decref(cfg);
        if (rc >= 0)
            fail_msg("accepted %s", bad[i]);
        assert_non_null(err);
        xfree(err);
        assert_true(mcp_ready());
        assert_null(mcp_tools_schema());
    }
    json_t *empty = json_object();
    char *err = NULL;
    assert_int_equal(mcp_init(&f->loop, empty, &err), 0);
    json_decref(empty);
    assert_true(mcp_ready());
    assert_int_equal(json_array_size(mcp_tools_schema()), 0);
}

static void test_shutdown_with_pending_call(void **state)
{
    struct fx *f = *state;
    start_one(f, NULL, NULL);
    long pid = call_pid(f);
    struct box b = {0};
    struct mcp_call *c = NULL;
    json_t *args = json_pack("{s:i}", "ms", 20000);
    assert_int_equal(mcp_call_start("sleep", args, on_done, &b, &c), 0);
    json_decref(args);
    mcp_shutdown();
    assert_int_equal(b.calls, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(b.calls, 1);
    assert_string_equal(b.error,
                        "Failed to execute tool sleep: MCP error -32000: Connection closed");
    box_release(&b);
    assert_true(kill((pid_t)pid, 0) < 0 && errno == ESRCH);
}

/* ================================================================ Streamable HTTP */

static void on_fake_exit(uv_process_t *p, int64_t status, int sig)
{
    ((struct http_fake *)p->data)->exited = true;
    uv_close((uv_handle_t *)p, NULL);
}

static void http_fake_kill(struct fx *f)
{
    if (f->http.started && !f->http.exited)
        uv_process_kill(&f->http.proc, SIGKILL);
}

static bool port_pred(void *arg)
{
    struct http_fake *h = arg;
    FILE *fp = fopen(h->port_file, "r");
    if (fp == NULL)
        return false;
    if (fscanf(fp, "%d", &h->port) != 1)
        h->port = 0;
    fclose(fp);
    return h->port > 0;
}

static void http_fake_start(struct fx *f, struct http_fake *h)
{
    memset(h, 0, sizeof(*h));
    snprintf(h->port_file, sizeof(h->port_file), "%s/port", f->dir);
    char *args[] = {"node",       f->script, "--http", "--port-file",
                    h->port_file, "--log",   f->log,   NULL};
    uv_stdio_container_t io[3] = {
        {.flags = UV_IGNORE}, {.flags = UV_IGNORE}, {.flags = UV_INHERIT_FD, .data.fd = 2}};
    uv_process_options_t o = {
        .exit_cb = on_fake_exit, .file = "node", .args = args, .stdio_count = 3, .stdio = io};
    h->proc.data = h;
    assert_int_equal(uv_spawn(&f->loop, &h->proc, &o), 0);
    h->started = true;
    run_until(f, port_pred, h, 10000, "the HTTP fake's port");
}

static bool exited_pred(void *arg)
{
    return ((struct http_fake *)arg)->exited;
}

static void http_fake_stop(struct fx *f, struct http_fake *h)
{
    uv_process_kill(&h->proc, SIGTERM);
    run_until(f, exited_pred, h, 10000, "the HTTP fake to exit");
}

static void test_http(void **state)
{
    struct fx *f = *state;
    struct http_fake *h = &f->http;
    http_fake_start(f, h);
    char *url = xasprintf("http://127.0.0.1:%d/mcp", h->port);
    start(f, json_pack("{s:{s:{s:s, s:{s:s}}}, s:{s:i}}", "mcpServers", "web", "url", url,
                       "headers", "X-Custom", "yes", "mcp", "callTimeoutMs", 3000));
    xfree(url);
    assert_int_equal(json_array_size(mcp_tools_schema()), 15);
    assert_string_equal(json_get_str(mcp_tool_describe("echo_sse"), "description"),
                        "[web] Echo, answered as an SSE stream (HTTP only)");
    struct box b;
    call(f, "echo", json_pack("{s:s}", "text", "json answer"), &b, 10000);
    assert_null(b.error);
    assert_string_equal(text_of(&b), "json answer");
    box_release(&b);
    call(f, "echo_sse", json_pack("{s:s}", "text", "sse answer \xe2\x82\xac"), &b, 10000);
    assert_null(b.error);
    assert_string_equal(text_of(&b), "sse answer \xe2\x82\xac");
    box_release(&b);

    call(f, "headers", json_object(), &b, 10000);
    json_t *hd = json_loads(text_of(&b), 0, NULL);
    assert_true(strncmp(json_get_str(hd, "mcp-session-id"), "sess-", 5) == 0);
    assert_string_equal(json_get_str(hd, "mcp-protocol-version"), "2025-06-18");
    assert_string_equal(json_get_str(hd, "x-custom"), "yes");
    assert_string_equal(json_get_str(hd, "accept"), "application/json, text/event-stream");
    assert_string_equal(json_get_str(hd, "content-type"), "application/json");
    json_decref(hd);
    box_release(&b);

    /* Server requests inside an SSE answer are answered by POST. */
    call(f, "ask_roots", json_object(), &b, 10000);
    json_t *got = json_loads(text_of(&b), 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(json_object_get(got, "roots"), "error"), "code")),
                     -32601);
    assert_true(json_is_object(json_object_get(json_object_get(got, "ping"), "result")));
    json_decref(got);
    box_release(&b);

    /* isError and a JSON-RPC error over HTTP. */
    call(f, "fail", json_object(), &b, 10000);
    assert_string_equal(b.error, "it failed");
    box_release(&b);
    call(f, "rpc_error", json_object(), &b, 10000);
    assert_non_null(strstr(b.error, "MCP error -32602"));
    box_release(&b);

    /* The initialize request carried no session and no protocol header. */
    json_t *log = read_log(f);
    const json_t *hdrs = json_object_get(find_msg(log, "initialize", 0), "_headers");
    assert_null(json_object_get(hdrs, "mcp-session-id"));
    assert_null(json_object_get(hdrs, "mcp-protocol-version"));
    json_decref(log);

    /* An expired session: that call fails with the 404, the next one re-initializes. */
    call(f, "expire", json_object(), &b, 10000);
    box_release(&b);
    call(f, "echo", json_pack("{s:s}", "text", "lost"), &b, 10000);
    assert_non_null(b.error);
    assert_non_null(strstr(b.error, "HTTP 404"));
    box_release(&b);
    call(f, "echo", json_pack("{s:s}", "text", "again"), &b, 10000);
    assert_null(b.error);
    assert_string_equal(text_of(&b), "again");
    box_release(&b);
    log = read_log(f);
    assert_non_null(find_msg(log, "initialize", 1));
    json_decref(log);

    mcp_shutdown();
    http_fake_stop(f, h);
}

static void test_http_timeout_and_down(void **state)
{
    struct fx *f = *state;
    struct http_fake *h = &f->http;
    http_fake_start(f, h);
    char *url = xasprintf("http://127.0.0.1:%d/mcp", h->port);
    start(f, json_pack("{s:{s:{s:s, s:i}}}", "mcpServers", "web", "url", url, "timeout", 1));
    xfree(url);
    struct box b;
    uint64_t t0 = mono_ms();
    call(f, "sleep", json_pack("{s:i}", "ms", 5000), &b, 10000);
    assert_true(mono_ms() - t0 >= 900);
    assert_string_equal(b.error,
                        "Failed to execute tool sleep: MCP error -32001: Request timed out");
    box_release(&b);
    struct log_wait w = {f, "notifications/cancelled"};
    run_until(f, log_has_pred, &w, 10000, "the cancel notification");
    /* The server goes away: calls fail with the connection error. */
    http_fake_stop(f, h);
    call(f, "echo", json_pack("{s:s}", "text", "x"), &b, 10000);
    assert_non_null(strstr(b.error, "Failed to execute tool echo: Streamable HTTP error: "));
    box_release(&b);
}

static void test_http_unreachable(void **state)
{
    struct fx *f = *state;
    start(f, json_pack("{s:{s:{s:s}}}", "mcpServers", "web", "url", "http://127.0.0.1:1/mcp"));
    assert_int_equal(json_array_size(mcp_tools_schema()), 0);
}

/* ================================================================ LLM parts (pure) */

static void expect_parts(const char *content_json, const char *want_json)
{
    json_t *content = content_json ? json_loads(content_json, JSON_DECODE_ANY, NULL) : NULL;
    json_t *want = json_loads(want_json, 0, NULL);
    assert_non_null(want);
    json_t *got = mcp_content_to_parts(content);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_INDENT(1));
        print_error("for %s\ngot  %s\nwant %s\n", content_json ? content_json : "NULL", g,
                    want_json);
        xfree(g);
        fail();
    }
    json_decref(got);
    json_decref(want);
    json_decref(content);
}

static void test_content_to_parts(void **state)
{
    /* The usual MCP text result reaches the model as the pretty-printed JSON array. */
    expect_parts(
        "[{\"type\":\"text\",\"text\":\"out\\n\",\"name\":\"STDOUT\"}]",
        "[{\"type\":\"text\",\"text\":\"[\\n  {\\n    \\\"type\\\": \\\"text\\\",\\n"
        "    \\\"text\\\": \\\"out\\\\n\\\",\\n    \\\"name\\\": \\\"STDOUT\\\"\\n  }\\n]\"}]");
    /* Images become data URIs first; the rest follows as text. */
    expect_parts("[{\"type\":\"text\",\"text\":\"Shot\"},"
                 "{\"type\":\"image\",\"data\":\"iVBORw0K\",\"mimeType\":\"image/webp\"}]",
                 "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/webp;base64,"
                 "iVBORw0K\"}},{\"type\":\"text\",\"text\":\"[\\n  {\\n    \\\"type\\\": "
                 "\\\"text\\\",\\n    \\\"text\\\": \\\"Shot\\\"\\n  }\\n]\"}]");
    /* Only an image: no text part; extra fields of the image item stay as text. */
    expect_parts(
        "[{\"type\":\"image\",\"data\":\"AAAA\",\"mimeType\":\"image/png\"}]",
        "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}}]");
    expect_parts("[{\"type\":\"image\",\"data\":\"AAAA\",\"annotations\":{\"a\":1}}]",
                 "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/png;base64,AAAA\"}},"
                 "{\"type\":\"text\",\"text\":\"[\\n  {\\n    \\\"annotations\\\": {\\n      "
                 "\\\"a\\\": 1\\n    }\\n  }\\n]\"}]");
    /* MIME type from the type name, and from magic bytes for base64 data without an image type. */
    expect_parts(
        "[{\"type\":\"screenshot_jpeg\",\"data\":\"x y\"}]",
        "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/jpeg;base64,x y\"}}]");
    expect_parts(
        "[{\"type\":\"audio\",\"data\":\" UklGRabc= \",\"mimeType\":\"audio/wav\"}]",
        "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/webp;base64,UklGRabc=\"}}]");
    expect_parts("[{\"type\":\"blob\",\"data\":\"not base64!\"}]",
                 "[{\"type\":\"text\",\"text\":\"[\\n  {\\n    \\\"type\\\": \\\"blob\\\",\\n    "
                 "\\\"data\\\": \\\"not base64!\\\"\\n  }\\n]\"}]");
    /* Strings, objects, primitives, empties. */
    expect_parts("\"plain\"", "[{\"type\":\"text\",\"text\":\"plain\"}]");
    expect_parts("{\"status\":\"success\",\"url\":\"http://x\"}",
                 "[{\"type\":\"text\",\"text\":\"{\\n  \\\"status\\\": \\\"success\\\",\\n  "
                 "\\\"url\\\": \\\"http://x\\\"\\n}\"}]");
    expect_parts("{\"type\":\"image\",\"data\":\"QUJD\",\"mimeType\":\"image/gif\",\"w\":2}",
                 "[{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:image/gif;base64,QUJD\"}},"
                 "{\"type\":\"text\",\"text\":\"{\\n  \\\"w\\\": 2\\n}\"}]");
    expect_parts("[]", "[{\"type\":\"text\",\"text\":\"[]\"}]");
    expect_parts("{}", "[{\"type\":\"text\",\"text\":\"{}\"}]");
    expect_parts("null", "[{\"type\":\"text\",\"text\":\"null\"}]");
    expect_parts("1.5", "[{\"type\":\"text\",\"text\":\"1.5\"}]");
    expect_parts("true", "[{\"type\":\"text\",\"text\":\"true\"}]");
    expect_parts(NULL, "[{\"type\":\"text\",\"text\":\"undefined\"}]");
    expect_parts("\"\"", "[{\"type\":\"text\",\"text\":\"\"}]");
}

static void expect_js(const char *json, int indent, const char *want)
{
    json_t *v = json_loads(json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    assert_non_null(v);
    struct buf b;
    buf_init(&b, 1 << 20);
    assert_int_equal(mcp__js_stringify(&b, v, indent), 0);
    if (strcmp(buf_str(&b), want) != 0) {
        print_error("for %s got %s want %s\n", json, buf_str(&b), want);
        buf_release(&b);
        json_decref(v);
        fail();
    }
    buf_release(&b);
    json_decref(v);
}

/* What node prints for JSON.stringify(JSON.parse(json), null, indent). */
static void test_js_stringify(void **state)
{
    expect_js("[1, [], {}, [[]], {\"a\": []}]", 2,
              "[\n  1,\n  [],\n  {},\n  [\n    []\n  ],\n  {\n    \"a\": []\n  }\n]");
    expect_js("{\"a\":{\"b\":[true,false,null]}}", 0, "{\"a\":{\"b\":[true,false,null]}}");
    expect_js("\"q\\\" b\\\\ \\b\\f\\n\\r\\t \\u0001\\u001f\\u0000 \\u007f \\u2028 /\"", 0,
              "\"q\\\" b\\\\ \\b\\f\\n\\r\\t \\u0001\\u001f\\u0000 \x7f \xe2\x80\xa8 /\"");
    const char *nums[][2] = {
        {"0.1", "0.1"},
        {"1.0", "1"},
        {"-2.5", "-2.5"},
        {"1e21", "1e+21"},
        {"1e20", "100000000000000000000"},
        {"123e18", "123000000000000000000"},
        {"1.5e300", "1.5e+300"},
        {"1e-7", "1e-7"},
        {"1.5e-7", "1.5e-7"},
        {"0.000001", "0.000001"},
        {"0.0000015", "0.0000015"},
        {"-0.0", "0"},
        {"3.141592653589793", "3.141592653589793"},
        {"0.30000000000000004", "0.30000000000000004"},
        {"5e-324", "5e-324"},
        {"1.7976931348623157e308", "1.7976931348623157e+308"},
        {"42", "42"},
    };
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++)
        expect_js(nums[i][0], 0, nums[i][1]);
}

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    signal(SIGPIPE, SIG_IGN);
    if (getenv("TEST_MCP_DEBUG"))
        log_set_level(LOG_DEBUG);
    else
        log_set_level(LOG_ERROR);
    if (getenv("TEST_FILTER"))
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_to_parts),
        cmocka_unit_test(test_js_stringify),
        cmocka_unit_test_setup_teardown(test_handshake, setup, teardown),
        cmocka_unit_test_setup_teardown(test_paging_and_debug_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_results_and_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_big_line, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hang_is_killed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_slow_tool_keeps_server, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_server_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_environment, setup, teardown),
        cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_with_pending_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_timeout_and_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_unreachable, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
