/* SPDX-License-Identifier: MIT */
/* tool.c -- the registry of tools (built-ins, then the MCP servers' tools), the name filters of
 * the original ("tool": {include, exclude}), the schemas as the LLM sees them, and the runner.
 * File tools run on libuv's threadpool (uv_queue_work) and their result is handed over from the
 * after-work callback on the loop thread; command and search tools run on the loop itself; other
 * names go to the MCP client. */
#include "tools.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "core/xalloc.h"
#include "mcp.h"
#include "tools_int.h"

enum run_kind {
    RUN_POOL,     /* a threadpool body */
    RUN_LOOP,     /* a loop tool, started */
    RUN_MCP,      /* an MCP server's tool */
    RUN_FINISHED, /* the result is already known; it is delivered through the pool */
};

struct tool_run {
    uv_work_t work; /* first member: the work callbacks cast back from it */
    const struct tool_ops *ops;
    enum run_kind kind;
    char *name;
    char *root;
    atomic_bool aborted;
    bool abort_sent;        /* ops->abort / mcp_call_abort already called */
    void *handle;           /* RUN_LOOP: what ops->start returned */
    struct mcp_call *mcp;   /* RUN_MCP */
    struct tool_call call;  /* call.args is our deep copy */
    struct tool_result res; /* built on the worker, delivered on the loop thread */
    tool_done_cb on_done;
    void *data;
};

/* ---------------------------------------------------------------- filters */

/* Name-substring filters of the original: a tool must contain one of `include` (when given)
 * and none of `exclude`. Both are NULL-terminated heap arrays (NULL when not configured). */
static char **filter_include;
static char **filter_exclude;

static void strv_free(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        xfree(v[i]);
    xfree(v);
}

/* Appends the comma-separated parts of s (as the CLI's "--tool.include a,b") to *v. */
static void strv_add_split(char ***v, size_t *n, const char *s)
{
    while (*s != '\0') {
        size_t len = strcspn(s, ",");
        const char *p = s;
        size_t k = len;
        while (k > 0 && (*p == ' ' || *p == '\t'))
            p++, k--;
        while (k > 0 && (p[k - 1] == ' ' || p[k - 1] == '\t'))
            k--;
        if (k > 0) {
            *v = xrealloc(*v, (*n + 2) * sizeof(**v));
            (*v)[(*n)++] = xstrndup(p, k);
            (*v)[*n] = NULL;
        }
        s += len;
        if (*s == ',')
            s++;
    }
}

static int parse_patterns(const json_t *tool, const char *key, char ***out, char **err)
{
    const json_t *v = json_object_get(tool, key);
    size_t n = 0;
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_string(v)) {
        strv_add_split(out, &n, json_string_value(v));
        return 0;
    }
    size_t i;
    const json_t *item;
    if (json_is_array(v)) {
        json_array_foreach(v, i, item)
        {
            if (!json_is_string(item))
                break;
            strv_add_split(out, &n, json_string_value(item));
        }
        if (i == json_array_size(v))
            return 0;
    }
    strv_free(*out);
    *out = NULL;
    *err = xasprintf("'tool.%s' must be a string or an array of strings", key);
    return -EINVAL;
}

static bool name_allowed(const char *name)
{
    bool ok = filter_include == NULL;
    for (size_t i = 0; !ok && filter_include[i] != NULL; i++)
        ok = strstr(name, filter_include[i]) != NULL;
    for (size_t i = 0; ok && filter_exclude != NULL && filter_exclude[i] != NULL; i++)
        ok = strstr(name, filter_exclude[i]) == NULL;
    return ok;
}

/* ---------------------------------------------------------------- registry and schemas */

/* The built-ins on offer, in the original's registration order: web_search (when a provider is
 * configured), the filesystem tools, the commands. */
static const struct tool_ops *builtin_next(size_t *i)
{
    size_t k = (*i)++;
    if (k == 0)
        return tool__search_enabled() ? &tool__search_ops : builtin_next(i);
    k--;
    if (k < tool__fs_count)
        return &tool__fs_ops[k];
    k -= tool__fs_count;
    return k < tool__exec_count ? &tool__exec_ops[k] : NULL;
}

static const struct tool_ops *find_builtin(const char *name)
{
    size_t i = 0;
    const struct tool_ops *t;
    while ((t = builtin_next(&i)) != NULL)
        if (strcmp(t->name, name) == 0)
            return t;
    return NULL;
}

/* Built on first use on the loop thread and dropped by tools_init/tools_shutdown; workers never
 * read them. `merged` is rebuilt whenever the MCP client's array changes; we hold a reference
 * to the array it was built from so its address cannot be reused by a new one unnoticed. */
static json_t *builtin_tools; /* OpenAI "tools" entries of the allowed built-ins */
static json_t *descriptions;  /* name -> {name, description, schema} */
static json_t *merged;        /* built-ins not shadowed by MCP, then the allowed MCP tools */
static json_t *merged_from;   /* the mcp_tools_schema() array merged was built from */
static size_t merged_from_size;

static void build_builtins(void)
{
    if (builtin_tools != NULL)
        return;
    builtin_tools = json_array();
    descriptions = json_object();
    size_t i = 0;
    const struct tool_ops *t;
    while ((t = builtin_next(&i)) != NULL) {
        if (!name_allowed(t->name))
            continue;
        json_t *schema = t->schema_new();
        json_array_append_new(builtin_tools,
                              json_pack("{s:s, s:{s:s, s:s, s:O}}", "type", "function", "function",
                                        "name", t->name, "description", t->description,
                                        "parameters", schema));
        json_object_set_new(descriptions, t->name,
                            json_pack("{s:s, s:s, s:o}", "name", t->name, "description",
                                      t->description, "schema", schema));
    }
}

static const char *entry_name(const json_t *entry)
{
    return json_get_str(json_object_get(entry, "function"), "name");
}

static bool mcp_has(const json_t *mcp, const char *name)
{
    size_t i;
    const json_t *e;
    json_array_foreach(mcp, i, e)
    {
        const char *n = entry_name(e);
        if (n != NULL && strcmp(n, name) == 0)
            return true;
    }
    return false;
}

/* As the original keeps tools in a name-keyed map where a later registration replaces an
 * earlier one, an MCP tool shadows a built-in of the same name. */
static void build_merged(const json_t *mcp)
{
    json_decref(merged);
    json_decref(merged_from);
    merged = json_array();
    merged_from = json_incref((json_t *)mcp);
    merged_from_size = json_array_size(mcp);
    size_t i;
    json_t *e;
    json_array_foreach(builtin_tools, i, e)
    {
        if (!mcp_has(mcp, entry_name(e)))
            json_array_append(merged, e);
    }
    json_array_foreach(mcp, i, e)
    {
        const char *n = entry_name(e);
        if (n != NULL && name_allowed(n))
            json_array_append(merged, e);
    }
}

const json_t *tools_openai_schema(void)
{
    build_builtins();
    const json_t *mcp = mcp_tools_schema();
    if (!json_is_array(mcp) || json_array_size(mcp) == 0)
        return builtin_tools;
    if (merged == NULL || mcp != merged_from || json_array_size(mcp) != merged_from_size)
        build_merged(mcp);
    return merged;
}

const json_t *tools_describe(const char *name)
{
    if (name == NULL || !name_allowed(name))
        return NULL;
    const json_t *d = mcp_tool_describe(name);
    if (d != NULL)
        return d;
    build_builtins();
    return json_object_get(descriptions, name);
}

static void drop_schemas(void)
{
    json_decref(builtin_tools);
    json_decref(descriptions);
    json_decref(merged);
    json_decref(merged_from);
    builtin_tools = descriptions = merged = merged_from = NULL;
    merged_from_size = 0;
}

/* ---------------------------------------------------------------- init and shutdown */

void tools_shutdown(void)
{
    tool__exec_shutdown();
    tool__search_shutdown();
    strv_free(filter_include);
    strv_free(filter_exclude);
    filter_include = filter_exclude = NULL;
    drop_schemas();
}

int tools_init(uv_loop_t *loop, const json_t *config_root, char **err)
{
    *err = NULL;
    tools_shutdown();
    const json_t *tool = json_object_get(config_root, "tool");
    if (tool != NULL && !json_is_null(tool) && !json_is_object(tool)) {
        *err = xstrdup("'tool' must be an object");
        return -EINVAL;
    }
    int rc = parse_patterns(tool, "include", &filter_include, err);
    if (rc == 0)
        rc = parse_patterns(tool, "exclude", &filter_exclude, err);
    if (rc == 0)
        rc = tool__exec_init(config_root, err);
    if (rc == 0)
        rc = tool__search_init(loop, config_root, err);
    if (rc < 0)
        tools_shutdown();
    return rc;
}

/* ---------------------------------------------------------------- helpers for tool bodies */

const char *tool__arg_str(struct tool_call *call, const char *key)
{
    const char *s = json_string_value(json_object_get(call->args, key));
    if (s == NULL && call->error == NULL)
        call->error = xasprintf("Invalid arguments for %s: %s must be a string", call->name, key);
    return s;
}

const char *tool__arg_opt_str(struct tool_call *call, const char *key)
{
    const json_t *v = json_object_get(call->args, key);
    if (v == NULL || json_is_null(v))
        return NULL;
    return tool__arg_str(call, key);
}

char *tool__errno_msg(int err, const char *syscall, const char *path)
{
    char name[64], desc[128];
    uv_err_name_r(err, name, sizeof(name));
    uv_strerror_r(err, desc, sizeof(desc));
    if (syscall == NULL)
        return xasprintf("%s: %s", name, desc);
    if (path == NULL)
        return xasprintf("%s: %s, %s", name, desc, syscall);
    return xasprintf("%s: %s, %s '%s'", name, desc, syscall, path);
}

size_t tool__utf8_trim(const char *data, size_t len)
{
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char c = (unsigned char)data[len - back];
        if ((c & 0xc0) == 0x80)
            continue; /* continuation byte: keep looking for the lead byte */
        size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        return need > back ? len - back : len;
    }
    return len;
}

int tool__cfg_str(const json_t *obj, const char *where, const char *key, char **out, char **err)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_string(v))
        *out = xstrndup(json_string_value(v), json_string_length(v));
    else if (json_is_integer(v))
        *out = xasprintf("%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        *out = xasprintf("%.17g", json_real_value(v));
    else {
        *err = xasprintf("'%s.%s' must be a string", where, key);
        return -EINVAL;
    }
    return 0;
}

int tool__cfg_int(const json_t *obj, const char *where, const char *key, long long min,
                  long long max, long long *out, char **err)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL || json_is_null(v))
        return 0;
    double d = json_number_value(v);
    if (!json_is_number(v) || d < (double)min || d > (double)max) {
        *err = xasprintf("'%s.%s' must be a number between %lld and %lld", where, key, min, max);
        return -EINVAL;
    }
    *out = (long long)d;
    return 0;
}

/* ---------------------------------------------------------------- the runner */

/* Turns what the body left in run->call into a tool_result. The error text may quote a path
 * that is not UTF-8; it is made safe here so consumers can put it into JSON as is. */
static void make_result(struct tool_run *run)
{
    struct tool_call *call = &run->call;
    if (call->error == NULL && call->content == NULL)
        call->error = xasprintf("Tool \"%s\" returned no result", run->name);
    if (call->error == NULL) {
        run->res.content = call->content;
        call->content = NULL;
        return;
    }
    json_t *msg = json_string_lossy(call->error, strlen(call->error));
    run->res.error = xstrdup(json_string_value(msg));
    char *text = xasprintf("Error: %s", run->res.error);
    run->res.content = json_string(text);
    xfree(text);
    json_decref(msg);
    json_decref(call->content); /* a body that set both: the error wins */
    call->content = NULL;
}

static void on_work(uv_work_t *w)
{
    struct tool_run *run = (struct tool_run *)w;
    if (run->kind == RUN_POOL)
        run->ops->run(&run->call);
    make_result(run);
}

static void run_free(struct tool_run *run)
{
    json_decref(run->res.content);
    xfree(run->res.error);
    json_decref((json_t *)run->call.args);
    json_decref(run->call.content);
    xfree(run->call.error);
    xfree(run->name);
    xfree(run->root);
    xfree(run);
}

static void on_after_work(uv_work_t *w, int status)
{
    struct tool_run *run = (struct tool_run *)w;
    if (status < 0 && run->res.content == NULL) { /* UV_ECANCELED: the body never ran */
        run->res.error = xstrdup("Tool run was cancelled");
        run->res.content = json_string("Error: Tool run was cancelled");
    }
    run->on_done(run->data, &run->res);
    run_free(run);
}

void tool__loop_done(struct tool_call *call)
{
    struct tool_run *run = (struct tool_run *)((char *)call - offsetof(struct tool_run, call));
    make_result(run);
    run->on_done(run->data, &run->res);
    run_free(run);
}

static void on_mcp_done(void *data, const struct tool_result *res)
{
    struct tool_run *run = data;
    run->on_done(run->data, res);
    run_free(run);
}

/* Starts what the kind says; returns 0 or <0 (then nothing fires and run is still ours). */
static int dispatch(uv_loop_t *loop, struct tool_run *run, const json_t *args)
{
    if (!name_allowed(run->name)) {
        run->kind = RUN_FINISHED;
    } else if (mcp_tool_describe(run->name) != NULL &&
               mcp_call_start(run->name, args, on_mcp_done, run, &run->mcp) == 0) {
        run->kind = RUN_MCP;
        return 0;
    } else if ((run->ops = find_builtin(run->name)) == NULL) {
        run->kind = RUN_FINISHED;
    } else if (run->ops->run != NULL) {
        run->kind = RUN_POOL;
    } else {
        run->handle = run->ops->start(loop, &run->call);
        run->kind = run->handle != NULL ? RUN_LOOP : RUN_FINISHED;
        if (run->handle != NULL)
            return 0;
    }
    if (run->kind == RUN_FINISHED && run->call.error == NULL)
        run->call.error = xasprintf("Tool \"%s\" not found", run->name);
    /* Finished runs go through the pool too, so on_done never fires inside tool_run_start. */
    return uv_queue_work(loop, &run->work, on_work, on_after_work);
}

int tool_run_start(uv_loop_t *loop, const char *root, const char *name, const json_t *args,
                   tool_done_cb on_done, void *data, struct tool_run **out)
{
    if (out != NULL)
        *out = NULL;
    if (loop == NULL || root == NULL || name == NULL || on_done == NULL)
        return -EINVAL;
    struct tool_run *run = xcalloc(1, sizeof(*run));
    run->name = xstrdup(name);
    run->root = xstrdup(root);
    atomic_init(&run->aborted, false);
    run->call.name = run->name;
    run->call.root = run->root;
    run->call.args = args != NULL ? json_deep_copy(args) : NULL;
    run->call.aborted = &run->aborted;
    run->on_done = on_done;
    run->data = data;
    int rc = dispatch(loop, run, args);
    if (rc < 0) {
        /* Only uv_queue_work can fail here, and a loop tool is never started before it. */
        run_free(run);
        return rc;
    }
    if (out != NULL)
        *out = run;
    return 0;
}

void tool_run_abort(struct tool_run *run)
{
    if (run == NULL)
        return;
    atomic_store(&run->aborted, true);
    if (run->abort_sent)
        return;
    if (run->kind == RUN_LOOP && run->ops->abort != NULL) {
        run->abort_sent = true;
        run->ops->abort(run->handle);
    } else if (run->kind == RUN_MCP) {
        run->abort_sent = true;
        mcp_call_abort(run->mcp);
    }
}
