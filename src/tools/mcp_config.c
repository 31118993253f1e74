/* SPDX-License-Identifier: MIT */
/* mcp_config.c -- the MCP client's configuration, read from the config tree as the original
 * (agent-tools-llm.md §3): "mcpServers": { NAME: { command, args, env, cwd, sandbox, timeout } |
 * { url, headers, timeout } }, filtered by "mcpServer": { include, exclude }, and our "mcp"
 * timeouts. Each entry becomes a struct mcp_server with its transport's ops; mcp.c runs them. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "core/xalloc.h"
#include "mcp_int.h"
#include "tools_int.h"

#define DEFAULT_CALL_TIMEOUT_MS 120000
#define DEFAULT_INIT_TIMEOUT_MS 30000
#define DEFAULT_PING_TIMEOUT_MS 5000
#define DEFAULT_BACKOFF_MS 1000

/* ================================================================ one server */

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        xfree(v[i]);
    xfree(v);
}

void mcp__srv_free(struct mcp_server *s)
{
    xfree(s->name);
    strv_free(s->argv);
    strv_free(s->envp);
    xfree(s->cwd);
    xfree(s->url);
    for (size_t i = 0; i < s->nheaders; i++)
        xfree(s->headers[i]);
    xfree(s->headers);
    xfree(s->session);
    xfree(s->proto);
    json_decref(s->tools);
    json_decref(s->listing);
    xfree(s);
}

/* A config value as the string Node would pass on: strings as they are, numbers and booleans
 * in their JSON form. Caller owns the result; NULL for anything else. */
static char *scalar_str(const json_t *v)
{
    if (json_is_string(v))
        return xstrdup(json_string_value(v));
    if (json_is_number(v) || json_is_boolean(v)) {
        struct buf b;
        buf_init(&b, 64);
        mcp__js_stringify(&b, v, 0);
        return buf_detach(&b, NULL);
    }
    return NULL;
}

static const char *const inherited_env[] = {"HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER"};

/* PATH plus the places @agent-infra/mcp-client adds on Linux, so that npx, uvx and friends
 * are found as they are by the original. */
static char *enhanced_path(void)
{
    const char *path = getenv("PATH");
    const char *home = getenv("HOME");
    struct buf b;
    buf_init(&b, 1 << 20);
    buf_appends(&b, path ? path : "");
    const char *extra[] = {
        "/bin",       "/usr/bin",    "/usr/local/bin", "/.nvm/current/bin", "/.npm-global/bin",
        "/.yarn/bin", "/.cargo/bin", "/snap/bin"};
    for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
        bool in_home = i >= 3 && i <= 6;
        char *dir = in_home ? xasprintf("%s%s", home ? home : "", extra[i]) : xstrdup(extra[i]);
        char *wrapped = xasprintf(":%s:", buf_str(&b));
        char *needle = xasprintf(":%s:", dir);
        if (strstr(wrapped, needle) == NULL)
            buf_appendf(&b, "%s%s", b.len ? ":" : "", dir);
        xfree(wrapped);
        xfree(needle);
        xfree(dir);
    }
    return buf_detach(&b, NULL);
}

/* The child's environment, as the original's stdio transport builds it: a short list of
 * inherited variables (the SDK's getDefaultEnvironment, so our API keys never reach a server),
 * PATH widened, then the configured env on top. */
static int env_build(struct mcp_server *s, const json_t *env, char **err)
{
    json_t *vars = json_object();
    for (size_t i = 0; i < sizeof(inherited_env) / sizeof(inherited_env[0]); i++) {
        const char *v = getenv(inherited_env[i]);
        if (v)
            json_object_set_new(vars, inherited_env[i], json_string_lossy(v, strlen(v)));
    }
    char *path = enhanced_path();
    json_object_set_new(vars, "PATH", json_string_lossy(path, strlen(path)));
    xfree(path);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)env, k, v)
    {
        char *sv = scalar_str(v);
        if (sv == NULL || strchr(k, '=') || *k == '\0') {
            *err = xasprintf("mcpServers.%s.env.%s must be a string", s->name, k);
            xfree(sv);
            json_decref(vars);
            return -EINVAL;
        }
        json_object_set_new(vars, k, json_string_lossy(sv, strlen(sv)));
        xfree(sv);
    }
    s->envp = xcalloc(json_object_size(vars) + 1, sizeof(char *));
    size_t n = 0;
    json_object_foreach(vars, k, v) s->envp[n++] = xasprintf("%s=%s", k, json_string_value(v));
    json_decref(vars);
    return 0;
}

static int read_stdio(struct mcp_server *s, const json_t *cfg, char **err)
{
    const json_t *args = json_object_get(cfg, "args");
    const json_t *env = json_object_get(cfg, "env");
    const json_t *cwd = json_object_get(cfg, "cwd");
    if ((args && !json_is_array(args) && !json_is_null(args)) ||
        (env && !json_is_object(env) && !json_is_null(env)) || (cwd && !json_is_string(cwd))) {
        *err =
            xasprintf("mcpServers.%s: args must be an array, env an object, cwd a string", s->name);
        return -EINVAL;
    }
    size_t n = json_array_size(args);
    s->argv = xcalloc(n + 2, sizeof(char *));
    s->argv[0] = xstrdup(json_string_value(json_object_get(cfg, "command")));
    for (size_t i = 0; i < n; i++) {
        s->argv[i + 1] = scalar_str(json_array_get(args, i));
        if (s->argv[i + 1] == NULL) {
            *err = xasprintf("mcpServers.%s.args[%zu] must be a string", s->name, i);
            return -EINVAL;
        }
    }
    if (cwd)
        s->cwd = xstrdup(json_string_value(cwd));
    s->ops = &mcp__stdio_ops;
    const json_t *sandbox = json_object_get(cfg, "sandbox");
    if (sandbox && !json_is_boolean(sandbox) && !json_is_null(sandbox)) {
        *err = xasprintf("mcpServers.%s.sandbox must be true or false", s->name);
        return -EINVAL;
    }
    s->sandbox = json_is_true(sandbox);
    if (s->sandbox && tool__sandbox_mode() != TOOL_SANDBOX_BWRAP) {
        *err = xasprintf("mcpServers.%s.sandbox needs the bubblewrap sandbox, which is off "
                         "(command.sandbox none, or bwrap missing: apt-get install bubblewrap)",
                         s->name);
        return -EINVAL;
    }
    int rc = env_build(s, json_is_object(env) ? env : NULL, err);
    /* In the sandbox the server's home is absent: HOME is the private /tmp, where npx and
     * friends keep their caches for the sandbox's lifetime, unless the config sets one. */
    for (size_t i = 0; rc == 0 && s->sandbox && s->envp[i] != NULL; i++)
        if (strncmp(s->envp[i], "HOME=", 5) == 0 &&
            json_object_get(json_is_object(env) ? env : NULL, "HOME") == NULL) {
            xfree(s->envp[i]);
            s->envp[i] = xstrdup("HOME=/tmp");
        }
    return rc;
}

static int read_http(struct mcp_server *s, const json_t *cfg, char **err)
{
    const char *type = json_get_str(cfg, "type");
    if (type && strcmp(type, "streamable-http") != 0) {
        *err = xasprintf("mcpServers.%s: transport type '%s' is not supported "
                         "(only streamable-http)",
                         s->name, type);
        return -EINVAL;
    }
    const json_t *headers = json_object_get(cfg, "headers");
    if (headers && !json_is_object(headers) && !json_is_null(headers)) {
        *err = xasprintf("mcpServers.%s.headers must be an object", s->name);
        return -EINVAL;
    }
    s->url = xstrdup(json_get_str(cfg, "url"));
    s->headers = xcalloc(json_object_size(headers) + 1, sizeof(char *));
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)headers, k, v)
    {
        char *sv = scalar_str(v);
        if (sv == NULL || strpbrk(k, ":\r\n") || strpbrk(sv, "\r\n")) {
            *err = xasprintf("mcpServers.%s.headers.%s must be a one-line string", s->name, k);
            xfree(sv);
            return -EINVAL;
        }
        s->headers[s->nheaders++] = xasprintf("%s: %s", k, sv);
        xfree(sv);
    }
    s->ops = &mcp__http_ops;
    return 0;
}

static int read_server(const char *name, const json_t *cfg, uint64_t call_timeout_ms,
                       struct mcp_server **out, char **err)
{
    if (!json_is_object(cfg)) {
        *err = xasprintf("mcpServers.%s must be an object", name);
        return -EINVAL;
    }
    struct mcp_server *s = xcalloc(1, sizeof(*s));
    s->name = xstrdup(name);
    s->call_timeout_ms = call_timeout_ms;
    const json_t *timeout = json_object_get(cfg, "timeout"); /* seconds, as the original */
    int rc;
    if (timeout && !(json_is_number(timeout) && json_number_value(timeout) > 0)) {
        *err = xasprintf("mcpServers.%s.timeout must be a positive number of seconds", name);
        rc = -EINVAL;
    } else if (json_get_str(cfg, "command")) {
        rc = read_stdio(s, cfg, err);
    } else if (json_get_str(cfg, "url")) {
        rc = read_http(s, cfg, err);
    } else {
        *err = xasprintf("mcpServers.%s needs a \"command\" or a \"url\"", name);
        rc = -EINVAL;
    }
    if (timeout && rc == 0)
        s->call_timeout_ms = (uint64_t)(json_number_value(timeout) * 1000);
    if (rc < 0) {
        mcp__srv_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* ================================================================ the server list and settings */

/* mcpServer.include / exclude: arrays of name substrings (a string is split on commas, as a
 * repeated or comma-separated CLI flag gives it). Include first, then exclude, as the
 * original's filterItems. */
static bool matches_any(const json_t *patterns, const char *name)
{
    if (json_is_string(patterns)) {
        char *list = xstrdup(json_string_value(patterns));
        bool hit = false;
        char *save = NULL;
        for (char *p = strtok_r(list, ",", &save); p && !hit; p = strtok_r(NULL, ",", &save))
            hit = *p && strstr(name, p) != NULL;
        xfree(list);
        return hit;
    }
    size_t i;
    json_t *p;
    json_array_foreach(patterns, i, p)
    {
        if (json_is_string(p) && strstr(name, json_string_value(p)))
            return true;
    }
    return false;
}

static bool has_patterns(const json_t *p)
{
    return (json_is_string(p) && *json_string_value(p)) || json_array_size(p) > 0;
}

static bool filtered_out(const json_t *filter, const char *name)
{
    const json_t *inc = json_object_get(filter, "include");
    const json_t *exc = json_object_get(filter, "exclude");
    if (has_patterns(inc) && !matches_any(inc, name))
        return true;
    return has_patterns(exc) && matches_any(exc, name);
}

static int read_ms(const json_t *mcp, const char *key, uint64_t def, uint64_t *out, char **err)
{
    const json_t *v = json_object_get(mcp, key);
    *out = def;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_number(v) || json_number_value(v) <= 0 || json_number_value(v) > 86400000.0) {
        *err = xasprintf("mcp.%s must be a number of milliseconds", key);
        return -EINVAL;
    }
    *out = (uint64_t)json_number_value(v);
    return 0;
}

static int read_settings(const json_t *root, struct mcp_settings *set, char **err)
{
    const json_t *mcp = json_object_get(root, "mcp");
    if (mcp && !json_is_object(mcp)) {
        *err = xstrdup("'mcp' must be an object");
        return -EINVAL;
    }
    int rc = read_ms(mcp, "callTimeoutMs", DEFAULT_CALL_TIMEOUT_MS, &set->call_timeout_ms, err);
    if (rc == 0)
        rc = read_ms(mcp, "initTimeoutMs", DEFAULT_INIT_TIMEOUT_MS, &set->init_timeout_ms, err);
    if (rc == 0)
        rc = read_ms(mcp, "pingTimeoutMs", DEFAULT_PING_TIMEOUT_MS, &set->ping_timeout_ms, err);
    if (rc == 0)
        rc = read_ms(mcp, "restartBackoffMs", DEFAULT_BACKOFF_MS, &set->backoff_ms, err);
    return rc;
}

static int read_servers(const json_t *root, uint64_t call_timeout_ms, struct mcp_server ***out,
                        size_t *n, char **err)
{
    const json_t *servers = json_object_get(root, "mcpServers");
    const json_t *filter = json_object_get(root, "mcpServer");
    if (servers && !json_is_object(servers) && !json_is_null(servers)) {
        *err = xstrdup("'mcpServers' must be an object");
        return -EINVAL;
    }
    *out = xcalloc(json_object_size(servers) + 1, sizeof(**out));
    const char *name;
    json_t *cfg;
    json_object_foreach((json_t *)servers, name, cfg)
    {
        if (json_is_object(filter) && filtered_out(filter, name)) {
            log_info("mcp server '%s' filtered out by mcpServer.include/exclude", name);
            continue;
        }
        struct mcp_server *s;
        int rc = read_server(name, cfg, call_timeout_ms, &s, err);
        if (rc < 0)
            return rc;
        (*out)[(*n)++] = s;
    }
    return 0;
}

int mcp__config_read(const json_t *root, struct mcp_settings *set, struct mcp_server ***servers,
                     size_t *nservers, char **err)
{
    int rc = read_settings(root, set, err);
    if (rc == 0)
        rc = read_servers(root, set->call_timeout_ms, servers, nservers, err);
    return rc;
}
