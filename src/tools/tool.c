/* SPDX-License-Identifier: MIT */
/* tool.c -- the registry of built-in tools, their schemas as the LLM sees them, and the runner:
 * a tool body runs on libuv's threadpool (uv_queue_work, UV_THREADPOOL_SIZE threads) and its
 * result is handed to the caller from the after-work callback, on the loop thread. */
#include "tools.h"

#include <errno.h>
#include <string.h>

#include "core/util.h"
#include "core/xalloc.h"
#include "tools_int.h"

struct tool_run {
    uv_work_t work;             /* first member: the work callbacks cast back from it */
    const struct tool_ops *ops; /* NULL for an unknown tool (the error is the result) */
    char *name;
    char *root;
    atomic_bool aborted;
    struct tool_call call;  /* call.args is our deep copy */
    struct tool_result res; /* built on the worker, delivered on the loop thread */
    tool_done_cb on_done;
    void *data;
};

/* ---------------------------------------------------------------- registry and schemas */

static const struct tool_ops *find_tool(const char *name)
{
    for (size_t i = 0; i < tool__fs_count; i++) {
        if (strcmp(tool__fs_ops[i].name, name) == 0)
            return &tool__fs_ops[i];
    }
    return NULL;
}

/* Built once, on first use, on the loop thread; never freed (borrowed by callers for the
 * process lifetime). Workers never read them. */
static json_t *openai_tools;
static json_t *descriptions; /* name -> {name, description, schema} */

static void build_schemas(void)
{
    if (openai_tools != NULL)
        return;
    openai_tools = json_array();
    descriptions = json_object();
    for (size_t i = 0; i < tool__fs_count; i++) {
        const struct tool_ops *t = &tool__fs_ops[i];
        json_t *schema = t->schema_new();
        json_array_append_new(openai_tools,
                              json_pack("{s:s, s:{s:s, s:s, s:O}}", "type", "function", "function",
                                        "name", t->name, "description", t->description,
                                        "parameters", schema));
        json_object_set_new(descriptions, t->name,
                            json_pack("{s:s, s:s, s:o}", "name", t->name, "description",
                                      t->description, "schema", schema));
    }
}

const json_t *tools_openai_schema(void)
{
    build_schemas();
    return openai_tools;
}

const json_t *tools_describe(const char *name)
{
    build_schemas();
    return name != NULL ? json_object_get(descriptions, name) : NULL;
}

/* ---------------------------------------------------------------- helpers for tool bodies */

const char *tool__arg_str(struct tool_call *call, const char *key)
{
    const char *s = json_string_value(json_object_get(call->args, key));
    if (s == NULL && call->error == NULL)
        call->error = xasprintf("Invalid arguments for %s: %s must be a string", call->name, key);
    return s;
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
    if (run->ops == NULL)
        run->call.error = xasprintf("Tool \"%s\" not found", run->name);
    else
        run->ops->run(&run->call);
    make_result(run);
}

static void run_free(struct tool_run *run)
{
    json_decref(run->res.content);
    xfree(run->res.error);
    json_decref((json_t *)run->call.args);
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

int tool_run_start(uv_loop_t *loop, const char *root, const char *name, const json_t *args,
                   tool_done_cb on_done, void *data, struct tool_run **out)
{
    if (out != NULL)
        *out = NULL;
    if (loop == NULL || root == NULL || name == NULL || on_done == NULL)
        return -EINVAL;
    struct tool_run *run = xcalloc(1, sizeof(*run));
    run->ops = find_tool(name);
    run->name = xstrdup(name);
    run->root = xstrdup(root);
    atomic_init(&run->aborted, false);
    run->call.name = run->name;
    run->call.root = run->root;
    run->call.args = args != NULL ? json_deep_copy(args) : NULL;
    run->call.aborted = &run->aborted;
    run->on_done = on_done;
    run->data = data;
    /* Unknown tools go through the pool too, so on_done never fires inside this call. */
    int rc = uv_queue_work(loop, &run->work, on_work, on_after_work);
    if (rc < 0) {
        run_free(run);
        return rc;
    }
    if (out != NULL)
        *out = run;
    return 0;
}

void tool_run_abort(struct tool_run *run)
{
    if (run != NULL)
        atomic_store(&run->aborted, true);
}
