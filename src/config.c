/* SPDX-License-Identifier: MIT */
/* config.c -- flags and the JSON config file, merged into one jansson tree, then read out into
 * typed fields. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <stdint.h>

#include "core/log.h"
#include "core/xalloc.h"

static const char usage[] =
    "usage: agent-tars-server [options]\n"
    "\n"
    "Server:\n"
    "  --port N                    port to listen on (default 8888; 0 = any free port)\n"
    "  --host ADDR                 address to bind (default 127.0.0.1)\n"
    "  --config FILE               JSON config file with the original's keys (model, workspace,\n"
    "                              maxIterations, maxTokens, temperature, thinking, instructions,\n"
    "                              server.port, ...); may be given more than once\n"
    "  --workspace PATH            workspace directory (default ./agent-tars-workspace)\n"
    "  --isolate-sessions          give every session its own subdirectory of the workspace\n"
    "  --logLevel LEVEL            error|warn|info|debug|silent (default info)\n"
    "  --server.maxBodyBytes N     request body cap (default 1048576)\n"
    "  --server.headerTimeoutMs N  time allowed for a request head (default 10000)\n"
    "  --server.idleTimeoutMs N    keep-alive idle timeout (default 60000)\n"
    "  --server.maxConnections N   connection cap (default 10000)\n"
    "  --server.storage.type T     sqlite (default) or memory\n"
    "  --server.storage.path FILE  SQLite file (default ~/.agent-tars/agent-tars.db)\n"
    "  --server.exclusive          one running session at a time (409 for new ones)\n"
    "  --server.maxConcurrentRuns N  runs at once, 0 = unlimited (default 0); more wait\n"
    "  --server.maxQueuedRuns N    waiting runs beyond which queries get 429 (default 64)\n"
    "  --server.basePath PATH      serve the UI and every route under PATH (reverse proxy)\n"
    "  --webui.staticPath DIR      serve the web UI in DIR (e.g. the original's, from npm\n"
    "                              @tarko/agent-ui-builder/static) instead of the built-in one\n"
    "  --webui.base PREFIX         that UI (and its API calls) under PREFIX, a path or a regex\n"
    "  --sio-test-mode             Socket.IO conformance-suite endpoints (development only)\n"
    "\n"
    "Access (README \"Security\"):\n"
    "  --server.allowedHosts A,B   extra Host names (env TARKO_ALLOWED_HOSTS)\n"
    "  --server.allowedOrigins A,B extra browser origins, exact (env TARKO_ALLOWED_ORIGINS)\n"
    "  --server.auth.mode M        auto (token off loopback or when set), always, never\n"
    "  --auth-token T              access token, 16+ chars (env TARKO_AUTH_TOKEN)\n"
    "  --server.secret S           key of cookies and CSRF tokens (env TARKO_SERVER_SECRET)\n"
    "  --server.csrf required      browser writes must carry X-CSRF-Token\n"
    "\n"
    "Model:\n"
    "  --model.provider NAME       openai, openai-compatible, openai-non-streaming, azure-openai,\n"
    "                              anthropic, gemini, mistral, perplexity, deepseek, volcengine,\n"
    "                              ollama, lm-studio, openrouter, groq (unknown = openai-compatible)\n"
    "  --model.apiVersion V        azure-openai api-version (default 2024-10-21)\n"
    "  --toolCallEngine E          native (default), prompt_engineering or structured_outputs\n"
    "  --model.id ID               model id (default gpt-4o)\n"
    "  --model.baseURL URL         API base URL (fallback $OPENAI_BASE_URL, then the provider's)\n"
    "  --model.apiKey KEY          API key (fallback $OPENAI_API_KEY); a value like MY_VAR is read\n"
    "                              from that environment variable\n"
    "  --maxIterations N           LLM calls per query at most (default 1000)\n"
    "  --maxTokens N               max_tokens sent to the model (default 8192)\n"
    "  --temperature X             temperature sent to the model (default 0.7)\n"
    "  --thinking                  ask the model to think (thinking.type enabled)\n"
    "  --llm.idleTimeoutMs N       drop a model stream silent for this long (default 60000)\n"
    "  --llm.maxRetries N          retries on 429/5xx/connection errors (default 2)\n"
    "  --llm.retryBaseMs N         first retry backoff (default 500)\n"
    "  --context.maxImagesCount N  images kept in what the model sees (default 5)\n"
    "  --context.maxToolResultBytes N  tool result text sent to the model (default 100000)\n"
    "\n"
    "Commands (run_command, run_script):\n"
    "  --command.sandbox MODE      auto (bubblewrap when installed), bwrap (required) or none\n"
    "  --command.network false     no network at all in the sandbox, not even 127.0.0.1\n"
    "  --command.passEnv A,B       variables passed from the server's environment\n"
    "  --command.timeoutMs N       kill a command after N ms (default 60000)\n"
    "\n"
    "Observability (README \"Observability\"):\n"
    "  --log.format json           one JSON object per log line (default text)\n"
    "  --log.access false          no access line per request\n"
    "  --server.metrics.token T    Bearer token for GET /metrics only (env TARKO_METRICS_TOKEN)\n"
    "  --agio.provider URL         send AGIO telemetry there; traces: OTEL_EXPORTER_OTLP_ENDPOINT\n"
    "\n"
    "  --<any.dotted.key> VALUE    sets that key of the config tree\n"
    "  -h, --help                  this text\n";

/* The provider table lives in llm/providers.c. */
const char *config_provider_base_url(const char *provider)
{
    return llm_provider_known(provider) ? llm_provider_get(provider)->base_url : NULL;
}

/* Keys whose values stay strings even when they look like numbers. */
static bool string_key(const char *key)
{
    static const char *keys[] = {"model.id",       "model.apiKey", "model.baseURL",
                                 "model.provider", "workspace",    "instructions",
                                 "host",           "config",       "model.displayName",
                                 "search.apiKey",  "search.baseURL", "search.provider",
                                 "tool.include",   "tool.exclude",   "toolCallEngine",
                                 "server.auth.token", "server.secret", "server.allowedHosts",
                                 "server.allowedOrigins", "model.apiVersion"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strcmp(keys[i], key) == 0)
            return true;
    return false;
}

static json_t *flag_value(const char *key, const char *v)
{
    if (string_key(key))
        return json_string(v);
    if (strcmp(v, "true") == 0)
        return json_true();
    if (strcmp(v, "false") == 0)
        return json_false();
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    if (*v && *end == '\0' && errno == 0 && !isspace((unsigned char)*v) && isfinite(d)) {
        /* in range before the cast: converting 4e91 to an integer is undefined (fuzz_config) */
        if (d >= -9.2e18 && d <= 9.2e18 && d == (double)(json_int_t)d && strchr(v, '.') == NULL)
            return json_integer((json_int_t)d);
        return json_real(d);
    }
    return json_string(v);
}

/* Sets root[a][b][c] = val for key "a.b.c", creating objects (replacing non-objects). */
static void set_dotted(json_t *root, const char *key, json_t *val)
{
    json_t *obj = root;
    const char *p = key;
    const char *dot;
    while ((dot = strchr(p, '.')) != NULL) {
        char *part = xstrndup(p, (size_t)(dot - p));
        json_t *child = json_object_get(obj, part);
        if (!json_is_object(child)) {
            child = json_object();
            json_object_set_new(obj, part, child);
        }
        xfree(part);
        obj = child;
        p = dot + 1;
    }
    json_object_set_new(obj, p, val);
}

/* Recursive merge of src into dst: objects merge, anything else replaces. */
static void merge(json_t *dst, json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v)
    {
        json_t *d = json_object_get(dst, k);
        if (json_is_object(d) && json_is_object(v))
            merge(d, v);
        else
            json_object_set(dst, k, v);
    }
}

static void strv_push(char ***v, const char *s)
{
    size_t n = 0;
    while (*v != NULL && (*v)[n] != NULL)
        n++;
    *v = xrealloc(*v, (n + 2) * sizeof(char *));
    (*v)[n] = xstrdup(s);
    (*v)[n + 1] = NULL;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        xfree(v[i]);
    xfree(v);
}

static int load_file(json_t *root, const char *path, char ***files, char **err)
{
    strv_push(files, path);
    json_error_t je;
    json_t *j = json_load_file(path, 0, &je);
    if (j == NULL) {
        *err = xasprintf("cannot read config '%s': %s (line %d)", path, je.text, je.line);
        return -1;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        *err = xasprintf("config '%s' is not a JSON object", path);
        return -1;
    }
    merge(root, j);
    json_decref(j);
    return 0;
}

static bool is_bool_flag(const char *name)
{
    return strcmp(name, "isolate-sessions") == 0 || strcmp(name, "thinking") == 0 ||
           strcmp(name, "help") == 0 || strcmp(name, "server.exclusive") == 0 ||
           strcmp(name, "stream") == 0 || strcmp(name, "debug") == 0 ||
           strcmp(name, "quiet") == 0 || strcmp(name, "sio-test-mode") == 0;
}

/* Maps the original's short and deprecated flag names onto config keys. */
static const char *flag_key(const char *name)
{
    static const char *map[][2] = {
        {"port", "server.port"},         {"host", "server.host"},
        {"provider", "model.provider"},  {"apiKey", "model.apiKey"},
        {"baseURL", "model.baseURL"},    {"model", "model.id"},
        {"isolate-sessions", "workspace.isolateSessions"},
        {"thinking", "thinking.type"},   {"debug", "logLevel"},
        {"quiet", "logLevel"},           {"sio-test-mode", "sioTestMode"},
        {"auth-token", "server.auth.token"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (strcmp(map[i][0], name) == 0)
            return map[i][1];
    return name;
}

struct flag {
    const char *name;  /* without "--" and without "=value" */
    size_t name_len;
    const char *value; /* NULL for bare boolean flags */
};

/* Splits argv[*i] (and maybe argv[*i+1]) into a flag. Returns 0, or -1 with *err. */
static int next_flag(int argc, char **argv, int *i, struct flag *f, char **err)
{
    const char *a = argv[*i];
    if (strcmp(a, "-h") == 0)
        a = "--help";
    if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
        *err = xasprintf("unexpected argument '%s' (see --help)", a);
        return -1;
    }
    f->name = a + 2;
    const char *eq = strchr(f->name, '=');
    if (eq) {
        f->name_len = (size_t)(eq - f->name);
        f->value = eq + 1;
        return 0;
    }
    f->name_len = strlen(f->name);
    f->value = NULL;
    char name[128];
    snprintf(name, sizeof(name), "%.*s", (int)f->name_len, f->name);
    if (is_bool_flag(name))
        return 0;
    if (*i + 1 >= argc) {
        *err = xasprintf("option '--%s' needs a value", name);
        return -1;
    }
    f->value = argv[++*i];
    return 0;
}

/* Flags without a dot must be known; dotted ones may set any key of the tree. */
static bool known_flag(const char *name)
{
    static const char *names[] = {
        "port",        "host",        "workspace", "config",   "c",          "help",
        "isolate-sessions", "logLevel", "maxIterations", "maxTokens", "temperature",
        "thinking",    "instructions", "provider", "apiKey",   "baseURL",    "model",
        "debug",       "quiet",       "stream",    "toolCallEngine", "open", "agent", "sio-test-mode", "auth-token",
    };
    if (strchr(name, '.'))
        return name[0] != '.' && name[strlen(name) - 1] != '.' && strstr(name, "..") == NULL;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(names[i], name) == 0)
            return true;
    return false;
}

static void apply_flag(json_t *flags, const char *name, const char *value)
{
    const char *key = flag_key(name);
    json_t *v;
    if (strcmp(name, "thinking") == 0 && value == NULL)
        v = json_string("enabled");
    else if (strcmp(name, "debug") == 0)
        v = json_string("debug");
    else if (strcmp(name, "quiet") == 0)
        v = json_string("error");
    else if (value == NULL)
        v = json_true();
    else
        v = flag_value(key, value);
    set_dotted(flags, key, v);
}

static int parse_argv(json_t *root, int argc, char **argv, char ***files, char **err)
{
    json_t *flags = json_object();
    char *workspace = NULL;
    int rc = 0;
    for (int i = 1; i < argc && rc == 0; i++) {
        struct flag f;
        rc = next_flag(argc, argv, &i, &f, err);
        if (rc < 0)
            break;
        char *name = xstrndup(f.name, f.name_len);
        if (!known_flag(name)) {
            *err = xasprintf("unknown option '--%s' (see --help)", name);
            rc = -1;
        } else if (strcmp(name, "help") == 0)
            rc = 1;
        else if (strcmp(name, "config") == 0 || strcmp(name, "c") == 0)
            rc = load_file(root, f.value, files, err);
        else if (strcmp(name, "workspace") == 0) {
            xfree(workspace);
            workspace = xstrdup(f.value ? f.value : "");
        } else
            apply_flag(flags, name, f.value);
        xfree(name);
    }
    if (rc == 0) {
        /* --workspace overrides the path but keeps isolateSessions of an object config. */
        json_t *ws = json_object_get(root, "workspace");
        if (workspace && json_is_object(ws))
            json_object_set_new(ws, "workingDirectory", json_string(workspace));
        else if (workspace)
            json_object_set_new(root, "workspace", json_string(workspace));
        json_t *fws = json_object_get(flags, "workspace");
        if (fws && json_is_object(json_object_get(root, "workspace")) == 0 &&
            json_is_string(json_object_get(root, "workspace"))) {
            json_t *obj = json_pack("{s:O}", "workingDirectory", json_object_get(root, "workspace"));
            json_object_set_new(root, "workspace", obj);
        }
        merge(root, flags);
    }
    xfree(workspace);
    json_decref(flags);
    return rc;
}

/* ---- reading typed values out of the merged tree ---- */

static json_t *get_path(json_t *root, const char *key)
{
    json_t *j = root;
    const char *p = key;
    while (j && *p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        char part[64];
        snprintf(part, sizeof(part), "%.*s", (int)n, p);
        j = json_object_get(j, part);
        p += n + (dot ? 1 : 0);
    }
    return j;
}

static int get_int(json_t *root, const char *key, long long def, long long min, long long max,
                   long long *out, char **err)
{
    json_t *j = get_path(root, key);
    if (j == NULL || json_is_null(j)) {
        *out = def;
        return 0;
    }
    if (!json_is_number(j) || json_number_value(j) < (double)min ||
        json_number_value(j) > (double)max) {
        *err = xasprintf("'%s' must be a number between %lld and %lld", key, min, max);
        return -1;
    }
    *out = (long long)json_number_value(j);
    return 0;
}

static char *get_str(json_t *root, const char *key)
{
    json_t *j = get_path(root, key);
    if (json_is_string(j))
        return xstrdup(json_string_value(j));
    if (json_is_number(j)) {
        char *s = json_dumps(j, JSON_ENCODE_ANY);
        char *r = xstrdup(s);
        xfree(s);
        return r;
    }
    return NULL;
}

/* The original reads a --model.apiKey / --model.baseURL value that looks like an environment
 * variable name (^[A-Z][A-Z0-9_]*$) from that variable when it is set. */
static char *from_env_name(char *v, char ***names)
{
    if (v == NULL || !isupper((unsigned char)v[0]))
        return v;
    for (const char *p = v; *p; p++)
        if (!isupper((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_')
            return v;
    const char *e = getenv(v);
    if (e == NULL || *e == '\0')
        return v;
    if (names != NULL)
        strv_push(names, v);
    xfree(v);
    return xstrdup(e);
}

static char *env_dup(const char *name, char ***names)
{
    const char *e = getenv(name);
    if (e == NULL || *e == '\0')
        return NULL;
    if (names != NULL)
        strv_push(names, name);
    return xstrdup(e);
}

static void read_model(struct config *c)
{
    json_t *root = c->root;
    /* The early config nests the model under model.use {provider, model, apiKey, baseURL}. */
    json_t *use = get_path(root, "model.use");
    json_t *m = json_is_object(use) ? use : get_path(root, "model");
    c->provider = json_is_object(m) ? get_str(m, "provider") : NULL;
    c->model_id = json_is_object(m) ? get_str(m, json_is_object(use) ? "model" : "id") : NULL;
    c->base_url = from_env_name(json_is_object(m) ? get_str(m, "baseURL") : NULL, NULL);
    c->api_key = from_env_name(json_is_object(m) ? get_str(m, "apiKey") : NULL, &c->key_env);
    if (c->provider == NULL)
        c->provider = xstrdup("openai");
    if (c->model_id == NULL)
        c->model_id = xstrdup("gpt-4o");
    bool anthropic = strcmp(c->provider, "anthropic") == 0;
    if (c->base_url == NULL)
        c->base_url = env_dup(anthropic ? "ANTHROPIC_BASE_URL" : "OPENAI_BASE_URL", NULL);
    if (c->api_key == NULL)
        c->api_key = env_dup(anthropic ? "ANTHROPIC_API_KEY" : "OPENAI_API_KEY", &c->key_env);
    const char *def = config_provider_base_url(c->provider);
    bool keyless = strcmp(c->provider, "ollama") == 0 || strcmp(c->provider, "lm-studio") == 0;
    if (c->base_url == NULL && def && (c->api_key || keyless))
        c->base_url = xstrdup(def);
    if (c->base_url == NULL)
        c->model_error = xasprintf(
            "no model configured: provider '%s' needs %s; set --model.baseURL and --model.apiKey "
            "(or OPENAI_BASE_URL and OPENAI_API_KEY), or a \"model\" object in --config",
            c->provider, def ? "an API key" : "a base URL");
    if (c->api_key)
        log_add_secret(c->api_key);
}

static int read_storage(struct config *c, char **err)
{
    char *type = get_str(c->root, "server.storage.type");
    int rc = 0;
    if (type == NULL || strcmp(type, "sqlite") == 0) {
        c->storage_path = get_str(c->root, "server.storage.path");
        if (c->storage_path == NULL) {
            const char *home = getenv("HOME");
            c->storage_path = xasprintf("%s/.agent-tars/agent-tars.db", home ? home : ".");
        }
    } else if (strcmp(type, "memory") != 0) {
        *err = xasprintf("unknown server.storage.type '%s' (use sqlite or memory)", type);
        rc = -1;
    }
    xfree(type);
    return rc;
}

/* Secrets that may come from the environment go into the config tree here, while the
 * environment still holds them, and their variables join key_env, so config_hide_secrets removes
 * them before any command could see them. A value already in the tree wins. */
static void read_env_secrets(struct config *c)
{
    static const char *const vars[][2] = {
        {"TARKO_AUTH_TOKEN", "server.auth.token"},
        {"TARKO_SERVER_SECRET", "server.secret"},
        {"TARKO_METRICS_TOKEN", "server.metrics.token"},
    };
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        const char *v = getenv(vars[i][0]);
        if (v == NULL || *v == '\0')
            continue;
        if (get_path(c->root, vars[i][1]) == NULL)
            set_dotted(c->root, vars[i][1], json_string(v));
        strv_push(&c->key_env, vars[i][0]);
    }
}

static int read_all(struct config *c, char **err)
{
    json_t *r = c->root;
    long long v;
    if (get_int(r, "server.port", 8888, 0, 65535, &v, err) < 0)
        return -1;
    c->port = (int)v;
    c->host = get_str(r, "server.host");
    if (c->host == NULL)
        c->host = xstrdup("127.0.0.1");
    json_t *ws = get_path(r, "workspace");
    c->workspace = json_is_object(ws) ? get_str(ws, "workingDirectory") : get_str(r, "workspace");
    c->isolate_sessions = json_is_true(get_path(r, "workspace.isolateSessions"));
    if (get_int(r, "maxIterations", 1000, 1, 1000000, &v, err) < 0)
        return -1;
    c->max_iterations = (int)v;
    c->instructions = get_str(r, "instructions");
    read_env_secrets(c);
    read_model(c);
    struct llm_config *l = &c->llm;
    l->provider = c->provider;
    l->model = c->model_id;
    l->base_url = c->base_url;
    l->api_key = c->api_key;
    if (get_int(r, "maxTokens", 8192, 0, 10000000, &v, err) < 0)
        return -1;
    l->max_tokens = (int)v;
    json_t *t = get_path(r, "temperature");
    l->temperature = json_is_number(t) ? json_number_value(t) : 0.7;
    json_t *th = get_path(r, "thinking");
    const char *tt = json_string_value(json_is_object(th) ? json_object_get(th, "type") : th);
    l->thinking = json_is_true(th) || (tt && strcmp(tt, "enabled") == 0) ? 1
                  : json_is_false(th) || (tt && strcmp(tt, "disabled") == 0) ? 0
                                                                             : -1;
    json_t *budget = json_is_object(th) ? json_object_get(th, "budgetTokens") : NULL;
    l->thinking_budget_tokens = json_is_integer(budget) ? (int)json_integer_value(budget) : 0;
    static const struct {
        const char *key;
        long long def, min, max;
    } nums[] = {
        {"llm.idleTimeoutMs", 60000, 1, 86400000}, {"llm.maxRetries", 2, 0, 20},
        {"llm.retryBaseMs", 500, 0, 60000},        {"server.maxBodyBytes", 1 << 20, 1, 1LL << 31},
        {"server.headerTimeoutMs", 10000, 1, 86400000},
        {"server.idleTimeoutMs", 60000, 1, 86400000},
        {"server.maxConnections", 10000, 1, 1000000},
        {"server.maxConcurrentRuns", 0, 0, 1000000},
        {"server.maxQueuedRuns", 64, 0, 1000000},
        {"context.maxImagesCount", 5, 1, 1000},
        {"context.maxToolResultBytes", 100000, 0, 1LL << 30},
    };
    long long out[11];
    for (size_t i = 0; i < 11; i++)
        if (get_int(r, nums[i].key, nums[i].def, nums[i].min, nums[i].max, &out[i], err) < 0)
            return -1;
    l->idle_timeout_ms = (unsigned)out[0];
    l->max_retries = (unsigned)out[1];
    l->retry_base_ms = (unsigned)out[2];
    l->connect_timeout_ms = 10000;
    l->max_line_bytes = 4 << 20;
    c->max_body_bytes = (size_t)out[3];
    c->header_timeout_ms = (unsigned)out[4];
    c->idle_timeout_ms = (unsigned)out[5];
    c->max_conns = (unsigned)out[6];
    c->max_concurrent_runs = (unsigned)out[7];
    c->max_queued_runs = (unsigned)out[8];
    c->max_images = (size_t)out[9];
    c->max_tool_result_bytes = (size_t)out[10];
    c->exclusive = json_is_true(get_path(r, "server.exclusive"));
    if (read_storage(c, err) < 0)
        return -1;
    char *lvl = get_str(r, "logLevel");
    c->log_level = lvl ? log_level_parse(lvl) : LOG_INFO;
    if (lvl && c->log_level == -1) {
        *err = xasprintf("unknown logLevel '%s'", lvl);
        xfree(lvl);
        return -1;
    }
    xfree(lvl);
    char *engine = get_str(r, "toolCallEngine");
    l->tool_call_engine = engine && strcmp(engine, "prompt_engineering") == 0
                              ? LLM_ENGINE_PROMPT_ENGINEERING
                          : engine && strcmp(engine, "structured_outputs") == 0
                              ? LLM_ENGINE_STRUCTURED_OUTPUTS
                              : LLM_ENGINE_NATIVE;
    if (engine && l->tool_call_engine == LLM_ENGINE_NATIVE && strcmp(engine, "native") != 0) {
        *err = xasprintf("unknown toolCallEngine '%s' (use native, prompt_engineering or "
                         "structured_outputs)", engine);
        xfree(engine);
        return -1;
    }
    xfree(engine);
    return 0;
}

/* ---- the model catalogue (issue 18) ---- */

/* Catalogue values that name an environment variable are read from it; keys are recorded for
 * config_hide_secrets and for the log's redaction. */
static const char *catalog_env(void *data, const char *s, bool secret)
{
    struct config *c = data;
    bool name = isupper((unsigned char)s[0]);
    for (const char *p = s; *p && name; p++)
        name = isupper((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_';
    const char *e = name ? getenv(s) : NULL;
    if (e != NULL && *e != '\0') {
        if (secret)
            strv_push(&c->key_env, s);
        s = e;
    } else if (name) {
        return s;
    }
    if (secret)
        log_add_secret(s);
    return s;
}

/* server.models and model.providers after the default model; the default's own headers and
 * params; with no model selected at all, the first catalogue model is the default (as the
 * original's resolver). Installs the catalogue for the agent and the API. */
static int read_catalog(struct config *c, char **err)
{
    json_t *m = get_path(c->root, "model");
    json_t *use = get_path(c->root, "model.use");
    json_t *sel = json_is_object(use) ? use : m;
    const char *display = json_string_value(json_object_get(sel, "displayName"));
    if (llm_catalog_build(&c->catalog, &c->llm, display, c->root, catalog_env, c, err) < 0 ||
        llm_catalog_default_options(&c->catalog, &c->llm, sel, err) < 0)
        return -1;
    static const char *keys[] = {"provider", "id", "model", "apiKey", "baseURL", "displayName"};
    bool chosen = false;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        chosen = chosen || json_object_get(sel, keys[i]) != NULL;
    if (!chosen && c->catalog.n > 1) {
        llm_catalog_promote_first(&c->catalog, &c->llm);
        xfree(c->model_error);
        c->model_error = c->llm.base_url ? NULL
                                         : xasprintf("no model configured: model '%s' has no "
                                                     "baseURL", c->llm.model);
    }
    llm_catalog_install(&c->catalog);
    return 0;
}

int config_load(struct config *c, int argc, char **argv, char **err)
{
    memset(c, 0, sizeof(*c));
    c->root = json_object();
    *err = NULL;
    int rc = parse_argv(c->root, argc, argv, &c->config_files, err);
    if (rc == 1) {
        fputs(usage, stdout);
        return 1;
    }
    if (rc < 0)
        return -1;
    if (read_all(c, err) < 0)
        return -1;
    return read_catalog(c, err);
}

void config_release(struct config *c)
{
    json_decref(c->root);
    xfree(c->host);
    xfree(c->workspace);
    xfree(c->provider);
    xfree(c->model_id);
    xfree(c->base_url);
    xfree(c->api_key);
    xfree(c->model_error);
    xfree(c->instructions);
    xfree(c->storage_path);
    llm_catalog_release(&c->catalog);
    strv_free(c->config_files);
    strv_free(c->key_env);
    memset(c, 0, sizeof(*c));
}

/* ---- keeping secrets out of children and /proc ---- */

static bool secret_flag(const char *name, size_t len)
{
    static const char *const words[] = {"key", "token", "secret", "password"};
    for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
        size_t k = strlen(words[w]);
        for (size_t i = 0; i + k <= len; i++)
            if (strncasecmp(name + i, words[w], k) == 0)
                return true;
    }
    return false;
}

static void redact(char *s)
{
    for (; *s; s++)
        *s = '*';
}

static void redact_argv(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--", 2) != 0)
            continue;
        const char *name = argv[i] + 2;
        char *eq = strchr(argv[i], '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (!secret_flag(name, len))
            continue;
        if (eq != NULL)
            redact(eq + 1);
        else if (i + 1 < argc)
            redact(argv[++i]);
    }
}

extern char **environ;
static char **env_copy; /* the environment on the heap; kept reachable for leak checkers */

/* The initial environment strings sit just above argv's on the stack, where
 * /proc/<pid>/environ reads them whatever environ says later: copy them to the heap, point
 * environ there, and zero the originals. Strings elsewhere (set by setenv) are left alone. */
static void env_off_stack(int argc, char **argv)
{
    size_t n = 0;
    while (environ[n] != NULL)
        n++;
    char **old = environ;
    env_copy = xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        env_copy[i] = xstrdup(old[i]);
    environ = env_copy;
    uintptr_t lo = (uintptr_t)argv[argc - 1];
    for (size_t i = 0; i < n; i++) {
        uintptr_t p = (uintptr_t)old[i];
        if (p > lo && p - lo < (uintptr_t)64 << 20)
            explicit_bzero(old[i], strlen(old[i]));
    }
}

void config_hide_secrets(struct config *c, int argc, char **argv)
{
    for (size_t i = 0; c->key_env != NULL && c->key_env[i] != NULL; i++)
        unsetenv(c->key_env[i]);
    redact_argv(argc, argv);
    if (argc > 0 && environ != NULL)
        env_off_stack(argc, argv);
}
