/* SPDX-License-Identifier: MIT */
/* main.c -- config -> llm context -> agent -> HTTP server -> uv_run. SIGINT/SIGTERM close every
 * handle so that the loop ends and can be closed cleanly. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "agent/agent.h"
#include "api/api.h"
#include "auth/auth.h"
#include "config.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "http/http.h"
#include "llm/curl_uv.h"
#include "llm/llm.h"
#include "llm/llm_http.h"
#include "obs/obs.h"
#include "sio/sio.h"
#include "store/store.h"
#include "tools/mcp.h"
#include "tools/tools.h"

static struct {
    uv_loop_t *loop;
    uv_signal_t sigint, sigterm;
    struct http_server *http;
    struct llm_ctx *llm;
    struct store *store;
    struct auth *auth;
    char *workspace;     /* the configured workspace, resolved */
    uv_prepare_t commit; /* commits the events of this loop iteration before it sleeps */
    bool stopping;
} app;

static void commit_events(void *data)
{
    if (store_flush(app.store) < 0)
        log_error("cannot commit events: %s", store_last_error(app.store));
}

static void on_commit_prepare(uv_prepare_t *h)
{
    commit_events(NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    if (app.stopping)
        return;
    app.stopping = true;
    log_info("received signal %d, shutting down", signum);
    http_server_close(app.http);
    sio_shutdown();
    agent_shutdown();
    mcp_shutdown();
    tools_shutdown();
    llm_ctx_close(app.llm);
    obs_shutdown();
    llm_http_close();
    uv_close((uv_handle_t *)&app.commit, NULL);
    uv_close((uv_handle_t *)&app.sigint, NULL);
    uv_close((uv_handle_t *)&app.sigterm, NULL);
}

static void on_mcp_wait(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Starts the configured MCP servers and waits (at most 30 s) for their tool lists, so that the
 * first query already offers their tools. */
static int start_mcp(struct config *cfg)
{
    char *err = NULL;
    if (mcp_init(app.loop, cfg->root, &err) < 0) {
        fprintf(stderr, "error: %s\n", err);
        xfree(err);
        return -1;
    }
    static uv_timer_t timer;
    bool expired = false;
    uv_timer_init(app.loop, &timer);
    timer.data = &expired;
    uv_timer_start(&timer, on_mcp_wait, 30000, 0);
    while (!mcp_ready() && !expired)
        uv_run(app.loop, UV_RUN_ONCE);
    if (!mcp_ready())
        log_warn("MCP servers still starting after 30 s; their tools appear when they are ready");
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(app.loop, UV_RUN_NOWAIT);
    return 0;
}

/* Says who can reach the server, and prints the sign-in link of a generated token (once, on
 * stdout; logs never carry it). */
static void announce_access(const struct config *cfg)
{
    bool local = auth_is_loopback(cfg->host);
    int port = http_server_port(app.http);
    const char *token = auth_generated_token(app.auth);
    if (token) {
        const char *h = strcmp(cfg->host, "0.0.0.0") == 0 || strcmp(cfg->host, "::") == 0
                            ? "127.0.0.1"
                            : cfg->host;
        printf(strchr(h, ':') ? "sign in: http://[%s]:%d/?token=%s\n"
                              : "sign in: http://%s:%d/?token=%s\n",
               h, port, token);
    }
    if (!local && auth_token_required(app.auth))
        log_warn("listening on %s: reachable from the network; every request needs the access "
                 "token%s", cfg->host, token ? " printed above (sign-in link)" : "");
    else if (!local)
        log_warn("listening on %s with server.auth.mode never: anyone on the network can run "
                 "commands through this server", cfg->host);
}

static void on_stop_guard(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* A start-up failure after the MCP servers were spawned: stop them (a browser server would keep
 * chromium running) and give the loop up to 2 s to reap them and close their handles (issue 11:
 * every such path used to return and leave them behind). Returns the exit status. */
static int stop_mcp_and_fail(void)
{
    mcp_shutdown();
    tools_shutdown();
    static uv_timer_t guard;
    uv_timer_init(app.loop, &guard);
    uv_timer_start(&guard, on_stop_guard, 2000, 0);
    uv_unref((uv_handle_t *)&guard);
    uv_run(app.loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(app.loop, UV_RUN_NOWAIT);
    return 1;
}

/* Open files: the soft limit is raised to the hard one (a soft limit of 128 let 140 idle
 * connections stop the accepting: issue 11), and server.maxConnections is clamped to what fits
 * beside the descriptors everything else needs (the database, curl, MCP and command pipes, the
 * 503 answers in flight), with a warning that says so. */
static void fit_open_files(struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    if (rl.rlim_cur < rl.rlim_max) {
        struct rlimit want = {rl.rlim_max, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl.rlim_cur = rl.rlim_max;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 4u * 1024 * 1024)
        return;
    rlim_t reserve = rl.rlim_cur / 2 < 192 ? rl.rlim_cur / 2 : 192;
    rlim_t fit = rl.rlim_cur - reserve;
    if (cfg->max_conns > fit) {
        log_warn("server.maxConnections %u clamped to %u: the open-file limit is %llu", cfg->max_conns,
                 (unsigned)fit, (unsigned long long)rl.rlim_cur);
        cfg->max_conns = (unsigned)fit;
    }
}

/* The model connection pool (curl_uv_set_pool): llm.maxIdleConnections, llm.maxHostConnections. */
static void set_llm_pool(const json_t *root)
{
    const json_t *llm = json_object_get(root, "llm");
    const json_t *idle = json_object_get(llm, "maxIdleConnections");
    const json_t *host = json_object_get(llm, "maxHostConnections");
    curl_uv_set_pool(json_is_number(idle) ? (long)json_number_value(idle) : 16,
                     json_is_number(host) ? (long)json_number_value(host) : 0);
}

static double gauge_conns(void *data)
{
    return app.http ? http_server_conn_count(app.http) : 0;
}

static double gauge_sessions(void *data)
{
    return (double)agent_session_count();
}

static double gauge_runs(void *data)
{
    unsigned running, queued;
    agent_run_counts(&running, &queued);
    return data ? queued : running;
}

/* Metrics, request ids, log format and traces (src/obs). */
static int start_obs(const struct config *cfg, char **err)
{
    llm_http_init(app.loop);
    obs_set_sender(llm_http_post);
    obs_gauge_register("tars_http_connections_open", "Open client connections", gauge_conns, NULL);
    obs_gauge_register("tars_agent_sessions_loaded", "Sessions in memory", gauge_sessions, NULL);
    obs_gauge_register("tars_agent_runs_running", "Runs holding a run slot", gauge_runs, NULL);
    obs_gauge_register("tars_agent_runs_queued", "Runs waiting for a run slot", gauge_runs, &app);
    return obs_init(app.loop, cfg->root, err);
}

static int serve(struct config *cfg)
{
    app.loop = uv_default_loop();
    fit_open_files(cfg);
    set_llm_pool(cfg->root);
    char *err = NULL;
    if (start_obs(cfg, &err) < 0) {
        fprintf(stderr, "error: %s\n", err);
        xfree(err);
        return 2;
    }
    struct agent_options gov = {0}; /* checked before anything starts */
    if (agent_govern_config(&gov, cfg->root, &err) < 0) {
        fprintf(stderr, "error: %s\n", err);
        xfree(err);
        return 1;
    }
    if (auth_new(cfg->root, cfg->host, &app.auth, &err) < 0) {
        fprintf(stderr, "error: %s\n", err);
        xfree(err);
        return 1;
    }
    /* What commands must not read: the database and the config files. */
    size_t nfiles = 0;
    while (cfg->config_files != NULL && cfg->config_files[nfiles] != NULL)
        nfiles++;
    const char **hidden = xcalloc(nfiles + 2, sizeof(char *));
    for (size_t i = 0; i < nfiles; i++)
        hidden[i] = cfg->config_files[i];
    hidden[nfiles] = cfg->storage_path; /* NULL with the memory store: the list ends there */
    tools_set_hidden_paths(hidden);
    xfree(hidden);
    if (tools_init(app.loop, cfg->root, &err) < 0) {
        fprintf(stderr, "error: %s\n", err);
        xfree(err);
        return 1;
    }
    if (start_mcp(cfg) < 0)
        return 1;
    if (sio_init(app.loop, cfg->root, &err) < 0) { /* allocates nothing until it serves */
        fprintf(stderr, "error: %s\n", err);
        xfree(err);
        return stop_mcp_and_fail();
    }
    int rc = store_open(cfg->storage_path, &app.store, &err);
    if (rc < 0) {
        fprintf(stderr, "error: cannot use storage: %s\n", err);
        xfree(err);
        return stop_mcp_and_fail();
    }
    if (!auth_has_secret(app.auth)) {
        /* kept in the database, so that cookies and CSRF tokens survive a restart */
        char *secret = store_meta_get(app.store, "server_secret");
        if (secret == NULL) {
            secret = auth_random_secret();
            if (store_meta_set(app.store, "server_secret", secret) < 0)
                log_warn("cannot keep the server secret: %s", store_last_error(app.store));
        }
        auth_set_secret(app.auth, secret);
        xfree(secret);
    }
    rc = llm_ctx_new(app.loop, &app.llm);
    if (rc < 0) {
        fprintf(stderr, "error: cannot set up the HTTP client: %s\n", uv_strerror(rc));
        store_close(app.store);
        return stop_mcp_and_fail();
    }
    struct agent_options ao = {
        .loop = app.loop,
        .llm = app.llm,
        .llm_cfg = &cfg->llm,
        .model_error = cfg->model_error,
        .workspace = cfg->workspace,
        .isolate_sessions = cfg->isolate_sessions,
        .max_iterations = cfg->max_iterations,
        .instructions = cfg->instructions,
        .store = app.store,
        .max_concurrent_runs = cfg->max_concurrent_runs,
        .max_queued_runs = cfg->max_queued_runs,
        .max_images = cfg->max_images,
        .max_tool_result_bytes = cfg->max_tool_result_bytes,
    };
    ao.approval = gov.approval;
    ao.approval_timeout_ms = gov.approval_timeout_ms;
    ao.run_max_ms = gov.run_max_ms;
    ao.budget = gov.budget;
    ao.pricing = gov.pricing;
    ao.max_prompt_tokens = gov.max_prompt_tokens;
    const json_t *mls = json_object_get(json_object_get(cfg->root, "server"), "maxLoadedSessions");
    ao.max_loaded_sessions = json_is_integer(mls) && json_integer_value(mls) >= 0
                                 ? (size_t)json_integer_value(mls)
                                 : 1000;
    agent_init(&ao);
    app.workspace = workspace_path(cfg->workspace, NULL, false);
    static struct api_options apo;
    apo = (struct api_options){
        .store = app.store,
        .llm = app.llm,
        .llm_cfg = &cfg->llm,
        .config = cfg->root,
        .workspace = app.workspace,
        .exclusive = cfg->exclusive,
        .auth = app.auth,
    };
    api_init(&apo);
    sio_set_auth(app.auth);
    struct http_server_opts ho = {
        .host = cfg->host,
        .port = cfg->port,
        .max_body_bytes = cfg->max_body_bytes,
        .header_timeout_ms = cfg->header_timeout_ms,
        .idle_timeout_ms = cfg->idle_timeout_ms,
        .max_conns = cfg->max_conns,
        .stream_body = api_stream_body,
    };
    http_server_opts_defaults(&ho);
    rc = http_server_start(app.loop, &ho, api_handle, NULL, &app.http);
    if (rc < 0) {
        fprintf(stderr, "error: cannot listen on %s:%d: %s\n", cfg->host, cfg->port,
                uv_strerror(rc));
        sio_shutdown();
        agent_shutdown();
        mcp_shutdown();
        tools_shutdown();
        llm_ctx_close(app.llm);
        uv_run(app.loop, UV_RUN_DEFAULT);
        uv_loop_close(app.loop);
        store_close(app.store);
        return 1;
    }
    http_set_before_write_hook(commit_events, NULL);
    uv_prepare_init(app.loop, &app.commit);
    uv_prepare_start(&app.commit, on_commit_prepare);
    uv_signal_init(app.loop, &app.sigint);
    uv_signal_init(app.loop, &app.sigterm);
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);
    if (cfg->model_error)
        log_warn("%s", cfg->model_error);
    else
        log_info("model %s/%s at %s", cfg->provider, cfg->model_id, cfg->base_url);
    log_info("storage: %s%s%s", store_kind(app.store), cfg->storage_path ? " " : "",
             cfg->storage_path ? cfg->storage_path : "");
    const char *fmt = strchr(cfg->host, ':') ? "agent-tars-server listening on http://[%s]:%d\n"
                                             : "agent-tars-server listening on http://%s:%d\n";
    printf(fmt, cfg->host, http_server_port(app.http));
    announce_access(cfg);
    fflush(stdout);
    uv_run(app.loop, UV_RUN_DEFAULT);
    store_close(app.store);
    xfree(app.workspace);
    tools_set_hidden_paths(NULL);
    rc = uv_loop_close(app.loop);
    if (rc != 0)
        log_warn("event loop closed with handles still open: %s", uv_strerror(rc));
    return 0;
}

int main(int argc, char **argv)
{
    /* The same binary is the command helper of run_command without a sandbox (tools.h). */
    if (argc > 1 && strcmp(argv[1], TOOLS_HELPER_FLAG) == 0)
        return tools_command_helper_main(argc, argv);
    /* Not dumpable: no core file with our keys, and /proc/<pid>/{environ,mem,fd,...} of the
     * server closed to processes of the same user (commands, when they run unsandboxed). */
    prctl(PR_SET_DUMPABLE, 0);
    json_set_alloc_funcs(xmalloc, xfree);
    signal(SIGPIPE, SIG_IGN);
    struct config cfg;
    char *err = NULL;
    int rc = config_load(&cfg, argc, argv, &err);
    if (rc != 0) {
        if (rc < 0)
            fprintf(stderr, "error: %s\n", err);
        xfree(err);
        config_release(&cfg);
        return rc < 0 ? 2 : 0;
    }
    config_hide_secrets(&cfg, argc, argv);
    log_set_level(cfg.log_level);
    rc = serve(&cfg);
    auth_free(app.auth); /* here, so that every early return of serve frees it too */
    config_release(&cfg);
    return rc;
}
