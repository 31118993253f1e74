/* SPDX-License-Identifier: MIT */
/* test_tools.c -- the built-in file tools run through tool_run_start on a real libuv loop
 * (results, Node-style errors, confinement, caps, unknown tools and bad arguments), the
 * registry (schemas, order, the tool.include/exclude filters) and the merge with the MCP
 * client's tools, which a fake MCP client in this file provides. Commands and web_search have
 * their own files (test_tools_exec.c, test_tools_search.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/util.h"
#include "core/xalloc.h"
#include "tools/mcp.h"
#include "tools/tools.h"

#define MIB (1024 * 1024)

struct fx {
    char *tmp; /* canonical temp dir */
    char *ws;  /* tmp/ws, the workspace root */
    char *out; /* tmp/out, outside the workspace */
};

/* What on_done saw, copied out of the borrowed result. */
struct done {
    int calls;
    char *content; /* the content string (NULL if it was not a string) */
    size_t content_len;
    char *error;
};

/* ---------------------------------------------------------------- a fake MCP client */

/* tool.c merges and dispatches to the MCP client through mcp.h; these weak definitions stand in
 * for src/tools/mcp.c (a linker pulls mcp.o from the archive only for undefined symbols). A call
 * answers after 20 ms with the text "mcp <name> <args>"; an abort answers at once with an
 * error. */
static json_t *stub_tools;   /* what mcp_tools_schema returns (NULL: no servers) */
static json_t *stub_descs;   /* name -> {name, description, schema} */
static uv_loop_t *stub_loop; /* where calls run */
static int stub_calls, stub_aborts;

struct mcp_call {
    uv_timer_t timer;
    tool_done_cb cb;
    void *data;
    char *text;
    bool aborted;
};

static void stub_set(json_t *tools_new)
{
    json_decref(stub_tools);
    json_decref(stub_descs);
    stub_tools = tools_new;
    stub_descs = json_object();
    size_t i;
    json_t *t;
    json_array_foreach(stub_tools, i, t)
    {
        json_t *fn = json_object_get(t, "function");
        json_object_set_new(stub_descs, json_get_str(fn, "name"),
                            json_pack("{s:O, s:O, s:O}", "name", json_object_get(fn, "name"),
                                      "description", json_object_get(fn, "description"), "schema",
                                      json_object_get(fn, "parameters")));
    }
}

static json_t *stub_tool_new(const char *name)
{
    char *desc = xasprintf("[srv] %s from MCP", name);
    json_t *t =
        json_pack("{s:s, s:{s:s, s:s, s:{s:s, s:{}}}}", "type", "function", "function", "name",
                  name, "description", desc, "parameters", "type", "object", "properties");
    xfree(desc);
    return t;
}

__attribute__((weak)) const json_t *mcp_tools_schema(void)
{
    return stub_tools;
}

__attribute__((weak)) const json_t *mcp_tool_describe(const char *name)
{
    return json_object_get(stub_descs, name);
}

static void stub_closed(uv_handle_t *h)
{
    struct mcp_call *c = h->data;
    xfree(c->text);
    xfree(c);
}

static void stub_fire(uv_timer_t *t)
{
    struct mcp_call *c = t->data;
    struct tool_result res = {NULL, NULL};
    if (c->aborted) {
        res.error = "aborted";
        res.content = json_string("Error: aborted");
    } else {
        res.content = json_pack("[{s:s, s:s}]", "type", "text", "text", c->text);
    }
    c->cb(c->data, &res);
    json_decref(res.content);
    uv_close((uv_handle_t *)t, stub_closed);
}

__attribute__((weak)) int mcp_call_start(const char *name, const json_t *args, tool_done_cb cb,
                                         void *data, struct mcp_call **out)
{
    if (mcp_tool_describe(name) == NULL)
        return -ENOENT;
    struct mcp_call *c = xcalloc(1, sizeof(*c));
    char *a = json_dump_compact(args, NULL);
    c->text = xasprintf("mcp %s %s", name, a);
    xfree(a);
    c->cb = cb;
    c->data = data;
    uv_timer_init(stub_loop, &c->timer);
    c->timer.data = c;
    uv_timer_start(&c->timer, stub_fire, 20, 0);
    stub_calls++;
    *out = c;
    return 0;
}

__attribute__((weak)) void mcp_call_abort(struct mcp_call *c)
{
    stub_aborts++;
    c->aborted = true;
    uv_timer_start(&c->timer, stub_fire, 0, 0);
}

/* ---------------------------------------------------------------- helpers */

static void put_bytes(const char *path, const char *p, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        assert_true(w > 0);
        p += w, n -= (size_t)w;
    }
    close(fd);
}

static char *at(const char *dir, const char *rel)
{
    return xasprintf("%s/%s", dir, rel);
}

static char *slurp(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    char *buf = xmalloc(MIB);
    ssize_t n = read(fd, buf, MIB - 1);
    assert_true(n >= 0);
    buf[n] = '\0';
    close(fd);
    *len = (size_t)n;
    return buf;
}

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    char tmpl[] = "/tmp/test_tools-XXXXXX", real[PATH_MAX];
    assert_non_null(mkdtemp(tmpl));
    assert_non_null(realpath(tmpl, real));
    f->tmp = xstrdup(real);
    f->ws = at(f->tmp, "ws");
    f->out = at(f->tmp, "out");
    assert_int_equal(mkdir(f->ws, 0755), 0);
    assert_int_equal(mkdir(f->out, 0755), 0);
    char *p = at(f->ws, "hello.txt");
    put_bytes(p, "hello\n", 6);
    xfree(p);
    p = at(f->out, "secret");
    put_bytes(p, "secret", 6);
    xfree(p);
    p = at(f->ws, "link_out");
    assert_int_equal(symlink(f->out, p), 0);
    xfree(p);
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    struct fx *f = *state;
    tools_shutdown();
    stub_set(NULL);
    nftw(f->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    xfree(f->tmp), xfree(f->ws), xfree(f->out);
    xfree(f);
    return 0;
}

static void on_done(void *data, const struct tool_result *res)
{
    struct done *d = data;
    d->calls++;
    assert_non_null(res->content);
    if (json_is_string(res->content)) {
        d->content_len = json_string_length(res->content);
        d->content = xstrndup(json_string_value(res->content), d->content_len);
    }
    d->error = res->error ? xstrdup(res->error) : NULL;
}

static void done_release(struct done *d)
{
    xfree(d->content);
    xfree(d->error);
}

/* Runs one tool on a fresh loop until on_done. args_json NULL passes NULL arguments. */
static struct done run_tool(const char *root, const char *name, const char *args_json)
{
    struct done d = {0};
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    json_t *args = NULL;
    if (args_json != NULL) {
        args = json_loads(args_json, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        assert_non_null(args);
    }
    struct tool_run *run = NULL;
    stub_loop = &loop; /* where the fake MCP client runs calls */
    assert_int_equal(tool_run_start(&loop, root, name, args, on_done, &d, &run), 0);
    assert_non_null(run);
    json_decref(args);            /* copied before return */
    assert_int_equal(d.calls, 0); /* never inside tool_run_start */
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(d.calls, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
    return d;
}

/* Runs a tool whose arguments are {"path": path} plus an optional "content". */
static struct done run_path(const char *root, const char *name, const char *path,
                            const char *content)
{
    json_t *args = json_pack("{s:s}", "path", path);
    if (content != NULL)
        json_object_set_new(args, "content", json_string(content));
    char *text = json_dumps(args, 0);
    struct done d = run_tool(root, name, text);
    xfree(text);
    json_decref(args);
    return d;
}

static void assert_ok(const struct done *d, const char *want)
{
    if (d->error != NULL)
        fail_msg("unexpected error: %s", d->error);
    assert_non_null(d->content);
    assert_string_equal(d->content, want);
}

/* An error result: error is msg, content is "Error: " msg. */
static void assert_err(const struct done *d, const char *msg)
{
    assert_non_null(d->error);
    assert_string_equal(d->error, msg);
    char *want = xasprintf("Error: %s", msg);
    assert_non_null(d->content);
    assert_string_equal(d->content, want);
    xfree(want);
}

static void assert_err_prefix(const struct done *d, const char *prefix)
{
    assert_non_null(d->error);
    if (strncmp(d->error, prefix, strlen(prefix)) != 0)
        fail_msg("error '%s' does not start with '%s'", d->error, prefix);
    assert_true(strncmp(d->content, "Error: ", 7) == 0);
    assert_string_equal(d->content + 7, d->error);
}

/* ---------------------------------------------------------------- schemas */

/* The built-ins in the original's registration order (anchor-api.md §6.1; web_search, first when
 * configured, is tested in test_tools_search.c). */
static const char *const BUILTINS[] = {
    "read_file",        "read_multiple_files",      "write_file",     "edit_file",
    "create_directory", "list_directory",           "move_file",      "search_files",
    "get_file_info",    "list_allowed_directories", "directory_tree", "run_command",
    "run_script",
};
#define N_BUILTINS (sizeof(BUILTINS) / sizeof(BUILTINS[0]))

static const char *entry_name(const json_t *t)
{
    return json_get_str(json_object_get(t, "function"), "name");
}

/* The names of tools_openai_schema(), joined with commas. Caller frees. */
static char *schema_names(void)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    size_t i;
    const json_t *t;
    json_array_foreach(tools_openai_schema(), i, t)
        buf_appendf(&b, "%s%s", i ? "," : "", entry_name(t));
    return buf_detach(&b, NULL);
}

static void test_schemas(void **state)
{
    const json_t *tools = tools_openai_schema();
    assert_true(json_is_array(tools));
    assert_int_equal(json_array_size(tools), N_BUILTINS);
    for (size_t i = 0; i < N_BUILTINS; i++) {
        const json_t *t = json_array_get(tools, i);
        assert_string_equal(json_string_value(json_object_get(t, "type")), "function");
        const json_t *fn = json_object_get(t, "function");
        assert_string_equal(json_string_value(json_object_get(fn, "name")), BUILTINS[i]);
        const char *desc = json_string_value(json_object_get(fn, "description"));
        const char *prefix = strncmp(BUILTINS[i], "run_", 4) == 0 ? "[commands] " : "[filesystem] ";
        assert_true(strncmp(desc, prefix, strlen(prefix)) == 0);
        const json_t *params = json_object_get(fn, "parameters");
        assert_string_equal(json_string_value(json_object_get(params, "type")), "object");
        assert_true(json_is_object(json_object_get(params, "properties")));

        const json_t *d = tools_describe(BUILTINS[i]);
        assert_non_null(d);
        assert_string_equal(json_string_value(json_object_get(d, "name")), BUILTINS[i]);
        assert_string_equal(json_string_value(json_object_get(d, "description")), desc);
        assert_true(json_equal(json_object_get(d, "schema"), (json_t *)params));
    }
    /* Argument names and required lists as the original's (agent-tools-llm.md §2.1). */
    static const struct {
        const char *tool, *props, *required;
    } shapes[] = {
        {"read_file", "path", "path"},
        {"read_multiple_files", "paths", "paths"},
        {"write_file", "path,content", "path,content"},
        {"edit_file", "path,edits,dryRun", "path,edits"},
        {"create_directory", "path", "path"},
        {"list_directory", "path", "path"},
        {"move_file", "source,destination", "source,destination"},
        {"search_files", "path,pattern,excludePatterns", "path,pattern"},
        {"get_file_info", "path", "path"},
        {"list_allowed_directories", "", ""},
        {"directory_tree", "path,maxDepth,maxFiles,excludePatterns", "path"},
        {"run_command", "command,cwd", "command"},
        {"run_script", "interpreter,script,cwd", "script"},
    };
    for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        const json_t *schema = json_object_get(tools_describe(shapes[i].tool), "schema");
        struct buf b;
        buf_init(&b, 4096);
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)json_object_get(schema, "properties"), k, v)
            buf_appendf(&b, "%s%s", b.len ? "," : "", k);
        assert_string_equal(buf_str(&b), shapes[i].props);
        buf_reset(&b);
        size_t j;
        json_array_foreach(json_object_get(schema, "required"), j, v)
            buf_appendf(&b, "%s%s", j ? "," : "", json_string_value(v));
        assert_string_equal(buf_str(&b), shapes[i].required);
        buf_release(&b);
    }
    const json_t *tree =
        json_object_get(json_object_get(tools_describe("directory_tree"), "schema"), "properties");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(tree, "maxDepth"), "default")), 3);
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(tree, "maxFiles"), "default")), 1000);
    const json_t *ex = json_object_get(json_object_get(tree, "excludePatterns"), "default");
    assert_string_equal(json_string_value(json_array_get(ex, 0)), "node_modules");
    assert_ptr_equal(tools_openai_schema(), tools); /* built once */
    assert_null(tools_describe("nope"));
    assert_null(tools_describe(NULL));
    assert_null(tools_describe("web_search")); /* no search provider configured */
}

/* ---------------------------------------------------------------- read_file */

static void test_read_file(void **state)
{
    struct fx *f = *state;
    struct done d = run_path(f->ws, "read_file", "hello.txt", NULL);
    assert_ok(&d, "hello\n");
    done_release(&d);

    char *abs = at(f->ws, "hello.txt");
    d = run_path(f->ws, "read_file", abs, NULL);
    assert_ok(&d, "hello\n");
    done_release(&d);
    xfree(abs);

    char *p = at(f->ws, "empty");
    put_bytes(p, "", 0);
    xfree(p);
    d = run_path(f->ws, "read_file", "./empty", NULL);
    assert_ok(&d, "");
    done_release(&d);
}

static void test_read_file_errors(void **state)
{
    struct fx *f = *state;
    char *msg = xasprintf("ENOENT: no such file or directory, open '%s/nope.txt'", f->ws);
    struct done d = run_path(f->ws, "read_file", "nope.txt", NULL);
    assert_err(&d, msg);
    done_release(&d);
    xfree(msg);

    d = run_path(f->ws, "read_file", "/etc/passwd", NULL);
    msg =
        xasprintf("Access denied - path outside allowed directories: /etc/passwd not in %s", f->ws);
    assert_err(&d, msg);
    done_release(&d);
    xfree(msg);

    d = run_path(f->ws, "read_file", "../out/secret", NULL);
    assert_err_prefix(&d, "Access denied - path outside allowed directories: ");
    done_release(&d);

    d = run_path(f->ws, "read_file", "link_out/secret", NULL);
    assert_err_prefix(&d, "Access denied - symlink target outside allowed directories: ");
    done_release(&d);

    d = run_path(f->ws, "read_file", ".", NULL);
    assert_err(&d, "EISDIR: illegal operation on a directory, read");
    done_release(&d);

    /* A FIFO would block a reader forever; it is refused instead. */
    char *fifo = at(f->ws, "pipe");
    assert_int_equal(mkfifo(fifo, 0644), 0);
    d = run_path(f->ws, "read_file", "pipe", NULL);
    msg = xasprintf("Not a regular file: %s", fifo);
    assert_err(&d, msg);
    done_release(&d);
    xfree(msg), xfree(fifo);

    char *longp = xmalloc(PATH_MAX + 2);
    memset(longp, 'a', PATH_MAX + 1);
    longp[PATH_MAX + 1] = '\0';
    d = run_path(f->ws, "read_file", longp, NULL);
    assert_err(&d, "ENAMETOOLONG: name too long");
    done_release(&d);
    xfree(longp);
}

static void test_read_file_truncated(void **state)
{
    struct fx *f = *state;
    size_t n = MIB + 100;
    char *data = xmalloc(n);
    memset(data, 'x', n);
    char *p = at(f->ws, "big.txt");
    put_bytes(p, data, n);
    struct done d = run_path(f->ws, "read_file", "big.txt", NULL);
    assert_null(d.error);
    const char *note = "\n[truncated: file is 1048676 bytes, showing the first 1048576]";
    assert_int_equal(d.content_len, MIB + strlen(note));
    assert_memory_equal(d.content, data, MIB);
    assert_string_equal(d.content + MIB, note);
    done_release(&d);

    /* Exactly the cap: not truncated. */
    put_bytes(p, data, MIB);
    d = run_path(f->ws, "read_file", "big.txt", NULL);
    assert_null(d.error);
    assert_int_equal(d.content_len, MIB);
    done_release(&d);

    /* A two-byte character straddling the cap is dropped whole, not turned into U+FFFD. */
    memcpy(data + MIB - 1, "\xc3\xa9", 2);
    put_bytes(p, data, MIB + 10);
    d = run_path(f->ws, "read_file", "big.txt", NULL);
    assert_null(d.error);
    const char *note2 = "\n[truncated: file is 1048586 bytes, showing the first 1048576]";
    assert_int_equal(d.content_len, MIB - 1 + strlen(note2));
    assert_memory_equal(d.content, data, MIB - 1);
    assert_string_equal(d.content + MIB - 1, note2);
    done_release(&d);
    xfree(p), xfree(data);
}

static void test_read_file_invalid_utf8(void **state)
{
    struct fx *f = *state;
    char *p = at(f->ws, "bin");
    put_bytes(p, "a\377b\000c\303", 6);
    xfree(p);
    struct done d = run_path(f->ws, "read_file", "bin", NULL);
    assert_null(d.error);
    const char want[] = "a\357\277\275b\357\277\275c\357\277\275";
    assert_int_equal(d.content_len, sizeof(want) - 1);
    assert_memory_equal(d.content, want, sizeof(want) - 1);
    done_release(&d);
}

/* ---------------------------------------------------------------- write_file */

static void test_write_file(void **state)
{
    struct fx *f = *state;
    char *p = at(f->ws, "out.txt"), *msg = xasprintf("Successfully wrote to %s", p);
    struct done d = run_path(f->ws, "write_file", "out.txt", "first version\n");
    assert_ok(&d, msg);
    done_release(&d);
    size_t len;
    char *got = slurp(p, &len);
    assert_string_equal(got, "first version\n");
    xfree(got);

    /* Overwrite with something shorter: truncated, not patched. */
    d = run_path(f->ws, "write_file", p, "v2");
    assert_ok(&d, msg);
    done_release(&d);
    got = slurp(p, &len);
    assert_string_equal(got, "v2");
    xfree(got);

    /* Embedded NUL survives (JSON strings may hold it). */
    d = run_tool(f->ws, "write_file", "{\"path\":\"nul.bin\",\"content\":\"a\\u0000b\"}");
    assert_null(d.error);
    done_release(&d);
    char *q = at(f->ws, "nul.bin");
    got = slurp(q, &len);
    assert_int_equal(len, 3);
    assert_memory_equal(got, "a\0b", 3);
    xfree(got), xfree(q);

    /* The message shows the normalized absolute path. */
    d = run_path(f->ws, "write_file", "./sub/../out.txt", "v3");
    assert_ok(&d, msg);
    done_release(&d);
    xfree(p), xfree(msg);
}

static void test_write_file_errors(void **state)
{
    struct fx *f = *state;
    struct done d = run_path(f->ws, "write_file", "nodir/x.txt", "x");
    char *msg = xasprintf("ENOENT: no such file or directory, open '%s/nodir/x.txt'", f->ws);
    assert_err(&d, msg);
    done_release(&d);
    xfree(msg);

    char *outside = at(f->out, "evil.txt");
    d = run_path(f->ws, "write_file", outside, "x");
    assert_err_prefix(&d, "Access denied - path outside allowed directories: ");
    done_release(&d);
    d = run_path(f->ws, "write_file", "link_out/evil.txt", "x");
    assert_err_prefix(&d, "Access denied - symlink target outside allowed directories: ");
    done_release(&d);
    d = run_path(f->ws, "write_file", "../out/evil.txt", "x");
    assert_err_prefix(&d, "Access denied - ");
    done_release(&d);
    /* A dangling link inside that points outside must not create its target. */
    char *dl = at(f->ws, "dangling");
    assert_int_equal(symlink(outside, dl), 0);
    d = run_path(f->ws, "write_file", "dangling", "x");
    assert_err_prefix(&d, "Access denied - symlink target outside allowed directories: ");
    done_release(&d);
    assert_int_equal(access(outside, F_OK), -1);
    xfree(dl), xfree(outside);

    /* A dangling link inside that points inside is followed. */
    dl = at(f->ws, "dangling_in");
    assert_int_equal(symlink("created.txt", dl), 0);
    d = run_path(f->ws, "write_file", "dangling_in", "made");
    assert_null(d.error);
    done_release(&d);
    char *created = at(f->ws, "created.txt");
    size_t len;
    char *got = slurp(created, &len);
    assert_string_equal(got, "made");
    xfree(got), xfree(created), xfree(dl);

    d = run_path(f->ws, "write_file", ".", "x");
    msg = xasprintf("EISDIR: illegal operation on a directory, open '%s'", f->ws);
    assert_err(&d, msg);
    done_release(&d);
    xfree(msg);
}

/* ---------------------------------------------------------------- list_directory */

static void test_list_directory(void **state)
{
    struct fx *f = *state;
    char *p;
    assert_int_equal(mkdir(p = at(f->ws, "a_dir"), 0755), 0), xfree(p);
    put_bytes(p = at(f->ws, "b.txt"), "b", 1), xfree(p);
    put_bytes(p = at(f->ws, "C.txt"), "c", 1), xfree(p);
    put_bytes(p = at(f->ws, "..foo"), "d", 1), xfree(p);
    struct done d = run_path(f->ws, "list_directory", ".", NULL);
    /* Sorted bytewise; symlinks (even to directories) are [FILE], as readdir reports them. */
    assert_ok(&d, "[FILE] ..foo\n[FILE] C.txt\n[DIR] a_dir\n[FILE] b.txt\n[FILE] hello.txt\n"
                  "[FILE] link_out");
    done_release(&d);

    d = run_path(f->ws, "list_directory", f->ws, NULL);
    assert_null(d.error);
    done_release(&d);

    d = run_path(f->ws, "list_directory", "a_dir", NULL);
    assert_ok(&d, "");
    done_release(&d);

    d = run_path(f->ws, "list_directory", "b.txt", NULL);
    char *msg = xasprintf("ENOTDIR: not a directory, scandir '%s/b.txt'", f->ws);
    assert_err(&d, msg);
    done_release(&d);
    xfree(msg);

    d = run_path(f->ws, "list_directory", "missing", NULL);
    msg = xasprintf("ENOENT: no such file or directory, scandir '%s/missing'", f->ws);
    assert_err(&d, msg);
    done_release(&d);
    xfree(msg);

    d = run_path(f->ws, "list_directory", "link_out", NULL);
    assert_err_prefix(&d, "Access denied - symlink target outside allowed directories: ");
    done_release(&d);
    d = run_path(f->ws, "list_directory", "..", NULL);
    assert_err_prefix(&d, "Access denied - path outside allowed directories: ");
    done_release(&d);
}

static void test_list_directory_capped(void **state)
{
    struct fx *f = *state;
    char *dir = at(f->ws, "many");
    assert_int_equal(mkdir(dir, 0755), 0);
    for (int i = 1004; i >= 0; i--) { /* created in reverse: the output must still be sorted */
        char *p = xasprintf("%s/f%04d", dir, i);
        put_bytes(p, "", 0);
        xfree(p);
    }
    struct done d = run_path(f->ws, "list_directory", "many", NULL);
    assert_null(d.error);
    assert_true(strncmp(d.content, "[FILE] f0000\n[FILE] f0001\n", 26) == 0);
    size_t lines = 1;
    for (const char *c = d.content; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 1001);
    const char *tail = "[FILE] f0999\n[truncated: directory has 1005 entries, showing the "
                       "first 1000]";
    assert_string_equal(d.content + d.content_len - strlen(tail), tail);
    done_release(&d);
    xfree(dir);
}

/* ---------------------------------------------------------------- the runner */

static void test_unknown_tool(void **state)
{
    struct fx *f = *state;
    struct done d = run_tool(f->ws, "nope", "{}");
    assert_err(&d, "Tool \"nope\" not found");
    done_release(&d);
}

static void test_bad_args(void **state)
{
    struct fx *f = *state;
    struct done d = run_tool(f->ws, "read_file", "{}");
    assert_err(&d, "Invalid arguments for read_file: path must be a string");
    done_release(&d);
    d = run_tool(f->ws, "read_file", "{\"path\": 42}");
    assert_err(&d, "Invalid arguments for read_file: path must be a string");
    done_release(&d);
    d = run_tool(f->ws, "list_directory", NULL);
    assert_err(&d, "Invalid arguments for list_directory: path must be a string");
    done_release(&d);
    d = run_tool(f->ws, "list_directory", "[\"x\"]");
    assert_err(&d, "Invalid arguments for list_directory: path must be a string");
    done_release(&d);
    d = run_tool(f->ws, "write_file", "{\"path\": \"x.txt\"}");
    assert_err(&d, "Invalid arguments for write_file: content must be a string");
    done_release(&d);
    d = run_tool(f->ws, "write_file", "{\"path\": \"x.txt\", \"content\": null}");
    assert_err(&d, "Invalid arguments for write_file: content must be a string");
    done_release(&d);
    char *p = at(f->ws, "x.txt");
    assert_int_equal(access(p, F_OK), -1); /* nothing was written */
    xfree(p);
    d = run_tool(f->ws, "read_file", "{\"path\": \"\"}");
    assert_err(&d, "Invalid path: the path is empty");
    done_release(&d);
    /* Extra properties are ignored, as the original's schema validation strips them. */
    d = run_tool(f->ws, "read_file", "{\"path\": \"hello.txt\", \"extra\": 1}");
    assert_ok(&d, "hello\n");
    done_release(&d);
}

static void test_start_refused(void **state)
{
    struct fx *f = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct done d = {0};
    struct tool_run *run = (struct tool_run *)&d;
    assert_int_equal(tool_run_start(&loop, NULL, "read_file", NULL, on_done, &d, &run), -EINVAL);
    assert_null(run);
    assert_int_equal(tool_run_start(&loop, f->ws, NULL, NULL, on_done, &d, NULL), -EINVAL);
    assert_int_equal(tool_run_start(&loop, f->ws, "read_file", NULL, NULL, &d, NULL), -EINVAL);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(d.calls, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    tool_run_abort(NULL);
}

/* Several runs at once on one loop, one of them aborted: each on_done fires exactly once and
 * the aborted file tool still completes normally. */
static void test_concurrent_and_abort(void **state)
{
    struct fx *f = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    enum { N = 8 };
    struct done d[N] = {{0}};
    struct tool_run *runs[N];
    json_t *args = json_pack("{s:s}", "path", "hello.txt");
    for (int i = 0; i < N; i++)
        assert_int_equal(tool_run_start(&loop, f->ws, i % 2 ? "read_file" : "list_directory",
                                        i % 2 ? args : NULL, on_done, &d[i], &runs[i]),
                         0);
    json_decref(args);
    tool_run_abort(runs[1]);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    for (int i = 0; i < N; i++) {
        assert_int_equal(d[i].calls, 1);
        if (i % 2)
            assert_ok(&d[i], "hello\n");
        else
            assert_non_null(d[i].error);
        done_release(&d[i]);
    }
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* ---------------------------------------------------------------- read_multiple_files */

static struct done run_args(const char *root, const char *name, json_t *args)
{
    char *text = json_dumps(args, 0);
    struct done d = run_tool(root, name, text);
    xfree(text);
    json_decref(args);
    return d;
}

static void test_read_multiple_files(void **state)
{
    struct fx *f = *state;
    struct done d =
        run_args(f->ws, "read_multiple_files",
                 json_pack("{s:[s, s, s]}", "paths", "hello.txt", "nope.txt", "/etc/passwd"));
    char *want = xasprintf("%s/hello.txt:\nhello\n\n\n---\n%s/nope.txt: Error - ENOENT: no such "
                           "file or directory, open '%s/nope.txt'\n---\n/etc/passwd: Error - "
                           "Access denied - path outside allowed directories: /etc/passwd not in "
                           "%s",
                           f->ws, f->ws, f->ws, f->ws);
    assert_ok(&d, want);
    xfree(want);
    done_release(&d);

    d = run_args(f->ws, "read_multiple_files", json_pack("{s:[]}", "paths"));
    assert_ok(&d, "");
    done_release(&d);

    static const char *bad[] = {"{}", "{\"paths\": \"hello.txt\"}", "{\"paths\": [1]}"};
    for (size_t i = 0; i < 3; i++) {
        d = run_tool(f->ws, "read_multiple_files", bad[i]);
        assert_err(&d, "Invalid arguments for read_multiple_files: paths must be an array of "
                       "strings");
        done_release(&d);
    }
    json_t *many = json_array();
    for (int i = 0; i < 101; i++)
        json_array_append_new(many, json_string("hello.txt"));
    d = run_args(f->ws, "read_multiple_files", json_pack("{s:o}", "paths", many));
    assert_err(&d, "Invalid arguments for read_multiple_files: at most 100 paths at once");
    done_release(&d);
}

/* Five 1 MiB files: the combined output stops near 4 MiB; the file that crosses the limit is
 * cut with a note and the next one is skipped. */
static void test_read_multiple_files_capped(void **state)
{
    struct fx *f = *state;
    char *data = xmalloc(MIB);
    memset(data, 'y', MIB);
    json_t *paths = json_array();
    for (int i = 0; i < 5; i++) {
        char *name = xasprintf("big%d.txt", i), *p = at(f->ws, name);
        put_bytes(p, data, MIB);
        json_array_append_new(paths, json_string(name));
        xfree(name), xfree(p);
    }
    xfree(data);
    struct done d = run_args(f->ws, "read_multiple_files", json_pack("{s:o}", "paths", paths));
    assert_null(d.error);
    assert_true(d.content_len < 4 * MIB + 4096);
    assert_non_null(strstr(d.content, "big3.txt:\n"));
    assert_non_null(strstr(d.content, "[truncated: file is 1048576 bytes, showing the first "));
    char *skipped = xasprintf("%s/big4.txt: Error - skipped: the combined output limit of "
                              "4194304 bytes was reached",
                              f->ws);
    assert_string_equal(d.content + d.content_len - strlen(skipped), skipped);
    xfree(skipped);
    done_release(&d);
}

/* ---------------------------------------------------------------- edit_file */

static char *edit_args(const char *path, const char *old_text, const char *new_text, int dry)
{
    json_t *a = json_pack("{s:s, s:[{s:s, s:s}]}", "path", path, "edits", "oldText", old_text,
                          "newText", new_text);
    if (dry >= 0)
        json_object_set_new(a, "dryRun", json_boolean(dry));
    char *text = json_dumps(a, 0);
    json_decref(a);
    return text;
}

static struct done run_edit(const char *root, const char *path, const char *old_text,
                            const char *new_text, int dry)
{
    char *args = edit_args(path, old_text, new_text, dry);
    struct done d = run_tool(root, "edit_file", args);
    xfree(args);
    return d;
}

static void assert_file(const char *dir, const char *rel, const char *want)
{
    char *p = at(dir, rel);
    size_t len;
    char *got = slurp(p, &len);
    assert_string_equal(got, want);
    xfree(got), xfree(p);
}

/* The expected result: the diff of <dir>/<rel> (hunks given) in a ```diff fence. */
static char *diff_text(const char *dir, const char *rel, const char *hunks)
{
    return xasprintf("```diff\nIndex: %s/%s\n"
                     "===================================================================\n"
                     "--- %s/%s\toriginal\n+++ %s/%s\tmodified\n%s```\n\n",
                     dir, rel, dir, rel, dir, rel, hunks);
}

static void test_edit_file(void **state)
{
    struct fx *f = *state;
    char *p = at(f->ws, "e.txt");
    put_bytes(p, "line1\nline2\nline3\n", 18);
    struct done d = run_edit(f->ws, "e.txt", "line2", "LINE2", 1);
    char *want = diff_text(f->ws, "e.txt", "@@ -1,3 +1,3 @@\n line1\n-line2\n+LINE2\n line3\n");
    assert_ok(&d, want);
    done_release(&d);
    assert_file(f->ws, "e.txt", "line1\nline2\nline3\n"); /* dryRun: unchanged */
    d = run_edit(f->ws, "e.txt", "line2", "LINE2", -1);
    assert_ok(&d, want);
    done_release(&d);
    xfree(want);
    assert_file(f->ws, "e.txt", "line1\nLINE2\nline3\n");

    /* Edits apply in turn, each to the first occurrence; "$&" is literal. */
    put_bytes(p, "a\nb\na\n", 6);
    d = run_tool(f->ws, "edit_file",
                 "{\"path\": \"e.txt\", \"edits\": [{\"oldText\": \"a\", \"newText\": \"c\"}, "
                 "{\"oldText\": \"c\\nb\", \"newText\": \"$&d\"}]}");
    assert_null(d.error);
    done_release(&d);
    assert_file(f->ws, "e.txt", "$&d\na\n");

    /* Lines equal apart from surrounding whitespace match too; the first new line takes the
     * matched line's indentation (the original's rule). */
    const char *src = "function f() {\n    if (x) {\n        return 1;\n    }\n}\n";
    put_bytes(p, src, strlen(src));
    d = run_edit(f->ws, "e.txt", "if (x) {\n    return 1;\n}", "if (y) {\n    return 2;\n}", 0);
    assert_null(d.error);
    done_release(&d);
    assert_file(f->ws, "e.txt", "function f() {\n    if (y) {\n    return 2;\n}\n}\n");

    /* CRLF is read as LF (and written back as LF, as the original does). */
    put_bytes(p, "one\r\ntwo\r\n", 10);
    d = run_edit(f->ws, "e.txt", "two\r\n", "2\n", 0);
    want = diff_text(f->ws, "e.txt", "@@ -1,2 +1,2 @@\n one\n-two\n+2\n");
    assert_ok(&d, want);
    xfree(want);
    done_release(&d);
    assert_file(f->ws, "e.txt", "one\n2\n");

    /* No newline at the end of the file. */
    put_bytes(p, "x\ny", 3);
    d = run_edit(f->ws, "e.txt", "y", "z", 1);
    want = diff_text(f->ws, "e.txt",
                     "@@ -1,2 +1,2 @@\n x\n-y\n\\ No newline at end of file\n+z\n"
                     "\\ No newline at end of file\n");
    assert_ok(&d, want);
    xfree(want);
    done_release(&d);

    /* Two changes far apart: two hunks with 4 lines of context each. */
    const char *nums = "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n";
    put_bytes(p, nums, strlen(nums));
    d = run_tool(f->ws, "edit_file",
                 "{\"path\": \"e.txt\", \"dryRun\": true, \"edits\": [{\"oldText\": \"2\\n\", "
                 "\"newText\": \"two\\n\"}, {\"oldText\": \"13\", \"newText\": \"\"}]}");
    want = diff_text(f->ws, "e.txt",
                     "@@ -1,6 +1,6 @@\n 1\n-2\n+two\n 3\n 4\n 5\n 6\n"
                     "@@ -9,6 +9,6 @@\n 9\n 10\n 11\n 12\n-13\n+\n 14\n");
    assert_ok(&d, want);
    xfree(want);
    done_release(&d);

    /* Backticks in the diff: a longer fence. */
    put_bytes(p, "a ``` b\n", 8);
    d = run_edit(f->ws, "e.txt", "a", "c", 1);
    assert_true(strncmp(d.content, "````diff\n", 9) == 0);
    assert_string_equal(d.content + d.content_len - 6, "````\n\n");
    done_release(&d);
    xfree(p);
}

static void test_edit_file_errors(void **state)
{
    struct fx *f = *state;
    struct done d = run_edit(f->ws, "hello.txt", "nope", "x", 0);
    assert_err(&d, "Could not find exact match for edit:\nnope");
    done_release(&d);
    assert_file(f->ws, "hello.txt", "hello\n");

    char *msg = xasprintf("ENOENT: no such file or directory, open '%s/missing.txt'", f->ws);
    d = run_edit(f->ws, "missing.txt", "a", "b", 0);
    assert_err(&d, msg);
    done_release(&d);
    xfree(msg);
    d = run_edit(f->ws, "../out/secret", "secret", "x", 0);
    assert_err_prefix(&d, "Access denied - path outside allowed directories: ");
    done_release(&d);
    d = run_edit(f->ws, "link_out/secret", "secret", "x", 0);
    assert_err_prefix(&d, "Access denied - symlink target outside allowed directories: ");
    done_release(&d);
    assert_file(f->out, "secret", "secret");
    d = run_edit(f->ws, ".", "a", "b", 0);
    assert_err(&d, "EISDIR: illegal operation on a directory, read");
    done_release(&d);

    static const char *bad[] = {
        "{\"path\": \"hello.txt\"}",
        "{\"path\": \"hello.txt\", \"edits\": {}}",
        "{\"path\": \"hello.txt\", \"edits\": [{\"oldText\": \"h\"}]}",
        "{\"path\": \"hello.txt\", \"edits\": [{\"oldText\": 1, \"newText\": \"x\"}]}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        d = run_tool(f->ws, "edit_file", bad[i]);
        assert_err(&d, "Invalid arguments for edit_file: edits must be an array of {oldText, "
                       "newText} objects with string values");
        done_release(&d);
    }
    d = run_tool(f->ws, "edit_file", "{\"path\": \"hello.txt\", \"edits\": [], \"dryRun\": 1}");
    assert_err(&d, "Invalid arguments for edit_file: dryRun must be a boolean");
    done_release(&d);
    d = run_tool(f->ws, "edit_file", "{\"edits\": []}");
    assert_err(&d, "Invalid arguments for edit_file: path must be a string");
    done_release(&d);

    /* No edits: an empty diff, nothing changed. */
    d = run_tool(f->ws, "edit_file", "{\"path\": \"hello.txt\", \"edits\": []}");
    char *want = diff_text(f->ws, "hello.txt", "");
    assert_ok(&d, want);
    xfree(want);
    done_release(&d);

    /* Over 8 MiB: refused. */
    char *big = at(f->ws, "big.bin");
    int fd = open(big, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_int_equal(ftruncate(fd, 8 * MIB + 1), 0);
    close(fd);
    d = run_edit(f->ws, "big.bin", "a", "b", 0);
    msg = xasprintf("File too large: %s is over 8388608 bytes", big);
    assert_err(&d, msg);
    done_release(&d);
    xfree(msg), xfree(big);
}

/* ---------------------------------------------------------------- create, move, info, allowed */

static void test_create_directory(void **state)
{
    struct fx *f = *state;
    struct done d = run_path(f->ws, "create_directory", "a/b/c", NULL);
    char *want = xasprintf("Successfully created directory %s/a/b/c", f->ws);
    assert_ok(&d, want);
    xfree(want);
    done_release(&d);
    char *p = at(f->ws, "a/b/c");
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    xfree(p);
    d = run_path(f->ws, "create_directory", "a/b", NULL); /* exists: fine */
    assert_null(d.error);
    done_release(&d);

    char *msg = xasprintf("EEXIST: file already exists, mkdir '%s/hello.txt'", f->ws);
    d = run_path(f->ws, "create_directory", "hello.txt", NULL);
    assert_err(&d, msg);
    done_release(&d);
    xfree(msg);
    msg = xasprintf("ENOTDIR: not a directory, lstat '%s/hello.txt'", f->ws);
    d = run_path(f->ws, "create_directory", "hello.txt/x", NULL);
    assert_err(&d, msg);
    done_release(&d);
    xfree(msg);
    d = run_path(f->ws, "create_directory", "../made", NULL);
    assert_err_prefix(&d, "Access denied - path outside allowed directories: ");
    done_release(&d);
    d = run_path(f->ws, "create_directory", "link_out/made", NULL);
    assert_err_prefix(&d, "Access denied - symlink target outside allowed directories: ");
    done_release(&d);
    p = at(f->out, "made");
    assert_int_equal(access(p, F_OK), -1);
    xfree(p);
}

static void test_move_file(void **state)
{
    struct fx *f = *state;
    struct done d =
        run_args(f->ws, "move_file",
                 json_pack("{s:s, s:s}", "source", "hello.txt", "destination", "moved.txt"));
    char *want = xasprintf("Successfully moved %s/hello.txt to %s/moved.txt", f->ws, f->ws);
    assert_ok(&d, want);
    xfree(want);
    done_release(&d);
    assert_file(f->ws, "moved.txt", "hello\n");

    /* The destination must not exist (the original checks; we also make it atomic). */
    char *p = at(f->ws, "other.txt");
    put_bytes(p, "other", 5);
    xfree(p);
    d = run_args(f->ws, "move_file",
                 json_pack("{s:s, s:s}", "source", "moved.txt", "destination", "other.txt"));
    want = xasprintf("Destination already exists: %s/other.txt", f->ws);
    assert_err(&d, want);
    xfree(want);
    done_release(&d);
    assert_file(f->ws, "other.txt", "other");

    d = run_args(f->ws, "move_file", json_pack("{s:s, s:s}", "source", "nope", "destination", "x"));
    want = xasprintf("ENOENT: no such file or directory, rename '%s/nope' -> '%s/x'", f->ws, f->ws);
    assert_err(&d, want);
    xfree(want);
    done_release(&d);

    d = run_args(f->ws, "move_file",
                 json_pack("{s:s, s:s}", "source", "moved.txt", "destination", "../out/m.txt"));
    assert_err_prefix(&d, "Access denied - path outside allowed directories: ");
    done_release(&d);
    d = run_args(f->ws, "move_file",
                 json_pack("{s:s, s:s}", "source", "link_out/secret", "destination", "s.txt"));
    assert_err_prefix(&d, "Access denied - symlink target outside allowed directories: ");
    done_release(&d);
    assert_file(f->out, "secret", "secret");

    /* A directory into a subdirectory of the workspace. */
    p = at(f->ws, "d1");
    assert_int_equal(mkdir(p, 0755), 0);
    xfree(p);
    d = run_args(f->ws, "move_file",
                 json_pack("{s:s, s:s}", "source", "moved.txt", "destination", "d1/m.txt"));
    assert_null(d.error);
    done_release(&d);
    assert_file(f->ws, "d1/m.txt", "hello\n");
    d = run_tool(f->ws, "move_file", "{\"source\": \"x\"}");
    assert_err(&d, "Invalid arguments for move_file: destination must be a string");
    done_release(&d);
}

static bool matches(const char *re, const char *text)
{
    regex_t r;
    assert_int_equal(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
    bool ok = regexec(&r, text, 0, NULL, 0) == 0;
    regfree(&r);
    return ok;
}

static void test_get_file_info(void **state)
{
    struct fx *f = *state;
    char *p = at(f->ws, "hello.txt");
    assert_int_equal(chmod(p, 0640), 0);
    xfree(p);
    struct done d = run_path(f->ws, "get_file_info", "hello.txt", NULL);
    assert_null(d.error);
    /* Dates as JavaScript's Date.toString() prints them. */
    const char *date = "[A-Z][a-z]{2} [A-Z][a-z]{2} [0-9]{2} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} "
                       "GMT[+-][0-9]{4} \\([^)]+\\)";
    char *re = xasprintf("^size: 6\ncreated: %s\nmodified: %s\naccessed: %s\nisDirectory: false\n"
                         "isFile: true\npermissions: 640$",
                         date, date, date);
    if (!matches(re, d.content))
        fail_msg("unexpected info:\n%s", d.content);
    xfree(re);
    done_release(&d);

    d = run_path(f->ws, "get_file_info", ".", NULL);
    assert_non_null(strstr(d.content, "\nisDirectory: true\nisFile: false\npermissions: "));
    done_release(&d);

    char *msg = xasprintf("ENOENT: no such file or directory, stat '%s/nope'", f->ws);
    d = run_path(f->ws, "get_file_info", "nope", NULL);
    assert_err(&d, msg);
    done_release(&d);
    xfree(msg);
    d = run_path(f->ws, "get_file_info", "/etc/passwd", NULL);
    assert_err_prefix(&d, "Access denied - path outside allowed directories: ");
    done_release(&d);
}

static void test_list_allowed_directories(void **state)
{
    struct fx *f = *state;
    char *want = xasprintf("Allowed directories:\n%s", f->ws);
    struct done d = run_tool(f->ws, "list_allowed_directories", "{}");
    assert_ok(&d, want);
    done_release(&d);
    d = run_tool(f->ws, "list_allowed_directories", NULL);
    assert_ok(&d, want);
    done_release(&d);
    xfree(want);
}

/* ---------------------------------------------------------------- directory_tree, search_files */

/* ws/ hello.txt link_out@ app.log src/{main.c, lib/{util.c, deep/x.txt}}
 *     node_modules/pkg/{index.js, a.txt} .git/HEAD */
static void make_tree(const struct fx *f)
{
    static const char *dirs[] = {"src",          "src/lib",          "src/lib/deep",
                                 "node_modules", "node_modules/pkg", ".git"};
    static const char *files[] = {"app.log",
                                  "src/main.c",
                                  "src/lib/util.c",
                                  "src/lib/deep/x.txt",
                                  "node_modules/pkg/index.js",
                                  "node_modules/pkg/a.txt",
                                  ".git/HEAD"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        char *p = at(f->ws, dirs[i]);
        assert_int_equal(mkdir(p, 0755), 0);
        xfree(p);
    }
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char *p = at(f->ws, files[i]);
        put_bytes(p, "x", 1);
        xfree(p);
    }
}

static void test_directory_tree(void **state)
{
    struct fx *f = *state;
    make_tree(f);
    struct done d = run_path(f->ws, "directory_tree", ".", NULL);
    json_t *tree = json_pack(
        "[{s:s, s:s}, {s:s, s:s}, {s:s, s:s, s:[{s:s, s:s, s:[{s:s, s:s, s:[]}, {s:s, s:s}]},"
        " {s:s, s:s}]}]",
        "name", "hello.txt", "type", "file", "name", "link_out", "type", "file", "name", "src",
        "type", "directory", "children", "name", "lib", "type", "directory", "children", "name",
        "deep", "type", "directory", "children", "name", "util.c", "type", "file", "name", "main.c",
        "type", "file");
    char *dump = json_dumps(tree, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    char *want = xasprintf("Directory tree for %s (max depth: 3, files included: 7/1000)\n\n%s",
                           f->ws, dump);
    assert_ok(&d, want);
    /* The layout of JSON.stringify(tree, null, 2). */
    assert_non_null(strstr(d.content, "\n\n[\n  {\n    \"name\": \"hello.txt\",\n    \"type\": "
                                      "\"file\"\n  },\n"));
    assert_non_null(strstr(d.content, "\"name\": \"deep\",\n            \"type\": \"directory\","
                                      "\n            \"children\": []\n"));
    xfree(want), xfree(dump);
    json_decref(tree);
    done_release(&d);

    d = run_tool(f->ws, "directory_tree", "{\"path\": \"src\", \"maxDepth\": 1}");
    want = xasprintf("Directory tree for %s/src (max depth: 1, files included: 2/1000)\n\n[\n"
                     "  {\n    \"name\": \"lib\",\n    \"type\": \"directory\",\n"
                     "    \"children\": []\n  },\n  {\n    \"name\": \"main.c\",\n"
                     "    \"type\": \"file\"\n  }\n]",
                     f->ws);
    assert_ok(&d, want);
    xfree(want);
    done_release(&d);

    d = run_tool(f->ws, "directory_tree", "{\"path\": \".\", \"maxFiles\": 2}");
    assert_non_null(strstr(d.content, "(max depth: 3, files included: 2/2)"));
    assert_null(strstr(d.content, "src"));
    done_release(&d);

    /* Patterns replace the defaults: node_modules and .git show; a glob ignores case. */
    d = run_tool(f->ws, "directory_tree",
                 "{\"path\": \".\", \"maxDepth\": 2, \"excludePatterns\": [\"src\", \"*.LOG\"]}");
    assert_non_null(strstr(d.content, "files included: 6/1000"));
    assert_non_null(strstr(d.content, "\"name\": \".git\""));
    assert_non_null(strstr(d.content, "\"name\": \"pkg\""));
    assert_null(strstr(d.content, "app.log"));
    assert_null(strstr(d.content, "index.js")); /* depth 2 stops above it */
    done_release(&d);

    d = run_path(f->ws, "directory_tree", "../out", NULL);
    assert_err_prefix(&d, "Access denied - path outside allowed directories: ");
    done_release(&d);
    d = run_path(f->ws, "directory_tree", "link_out", NULL);
    assert_err_prefix(&d, "Access denied - symlink target outside allowed directories: ");
    done_release(&d);
    char *msg = xasprintf("ENOTDIR: not a directory, scandir '%s/hello.txt'", f->ws);
    d = run_path(f->ws, "directory_tree", "hello.txt", NULL);
    assert_err(&d, msg);
    done_release(&d);
    xfree(msg);
    d = run_tool(f->ws, "directory_tree", "{\"path\": \".\", \"maxDepth\": \"3\"}");
    assert_err(&d, "Invalid arguments for directory_tree: maxDepth must be a number");
    done_release(&d);
    d = run_tool(f->ws, "directory_tree", "{\"path\": \".\", \"excludePatterns\": [1]}");
    assert_err(&d, "Invalid arguments for directory_tree: excludePatterns must be an array of "
                   "strings");
    done_release(&d);
}

static void search_expect(const struct fx *f, const char *args, const char *want_fmt)
{
    struct done d = run_tool(f->ws, "search_files", args);
    char *want = xasprintf(want_fmt, f->ws, f->ws, f->ws);
    assert_ok(&d, want);
    xfree(want);
    done_release(&d);
}

static void test_search_files(void **state)
{
    struct fx *f = *state;
    make_tree(f);
    search_expect(f, "{\"path\": \".\", \"pattern\": \"UTIL\"}", "%s/src/lib/util.c");
    /* node_modules and .git are not searched, but their own names can match. */
    search_expect(f, "{\"path\": \".\", \"pattern\": \".txt\"}",
                  "%s/hello.txt\n%s/src/lib/deep/x.txt");
    search_expect(f, "{\"path\": \".\", \"pattern\": \"head\"}", "No matches found");
    search_expect(f, "{\"path\": \".\", \"pattern\": \"node\"}", "%s/node_modules");
    /* Depth-first, names in order: a directory comes before what it holds. */
    search_expect(f, "{\"path\": \"src\", \"pattern\": \"i\"}",
                  "%s/src/lib\n%s/src/lib/util.c\n%s/src/main.c");
    /* A plain exclude names a folder anywhere; a glob is matched against the relative path. */
    search_expect(f, "{\"path\": \".\", \"pattern\": \".txt\", \"excludePatterns\": [\"lib\"]}",
                  "%s/hello.txt");
    search_expect(f, "{\"path\": \".\", \"pattern\": \".txt\", \"excludePatterns\": [\"*.txt\"]}",
                  "%s/src/lib/deep/x.txt");
    search_expect(f,
                  "{\"path\": \".\", \"pattern\": \".txt\", \"excludePatterns\": "
                  "[\"**/deep/*.txt\"]}",
                  "%s/hello.txt");

    struct done d = run_tool(f->ws, "search_files", "{\"path\": \"../out\", \"pattern\": \"s\"}");
    assert_err_prefix(&d, "Access denied - path outside allowed directories: ");
    done_release(&d);
    d = run_tool(f->ws, "search_files", "{\"path\": \"link_out\", \"pattern\": \"s\"}");
    assert_err_prefix(&d, "Access denied - symlink target outside allowed directories: ");
    done_release(&d);
    d = run_tool(f->ws, "search_files", "{\"path\": \".\"}");
    assert_err(&d, "Invalid arguments for search_files: pattern must be a string");
    done_release(&d);
    d = run_tool(f->ws, "search_files",
                 "{\"path\": \".\", \"pattern\": \"x\", \"excludePatterns\": \"lib\"}");
    assert_err(&d, "Invalid arguments for search_files: excludePatterns must be an array of "
                   "strings");
    done_release(&d);
}

static void test_search_files_capped(void **state)
{
    struct fx *f = *state;
    char *dir = at(f->ws, "many");
    assert_int_equal(mkdir(dir, 0755), 0);
    for (int i = 0; i < 1005; i++) {
        char *p = xasprintf("%s/m%04d", dir, i);
        put_bytes(p, "", 0);
        xfree(p);
    }
    struct done d = run_tool(f->ws, "search_files", "{\"path\": \"many\", \"pattern\": \"M\"}");
    assert_null(d.error);
    size_t lines = 1;
    for (const char *c = d.content; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 1001);
    char *tail = xasprintf("%s/m0999\n[truncated: more than 1000 matches, showing the first "
                           "1000]",
                           dir);
    assert_string_equal(d.content + d.content_len - strlen(tail), tail);
    xfree(tail), xfree(dir);
    done_release(&d);
}

/* ---------------------------------------------------------------- filters */

static void init_config(const char *config_json)
{
    json_t *cfg = json_loads(config_json, 0, NULL);
    assert_non_null(cfg);
    char *err = NULL;
    if (tools_init(NULL, cfg, &err) != 0)
        fail_msg("tools_init: %s", err);
    json_decref(cfg);
}

static void test_filters(void **state)
{
    struct fx *f = *state;
    /* include first (any of them), then exclude (none of them), by name substring. */
    init_config("{\"tool\": {\"include\": [\"file\"], \"exclude\": \"write,multiple\"}}");
    char *names = schema_names();
    assert_string_equal(names, "read_file,edit_file,move_file,search_files,get_file_info");
    xfree(names);
    assert_null(tools_describe("write_file"));
    assert_non_null(tools_describe("read_file"));
    struct done d = run_path(f->ws, "write_file", "x.txt", "x");
    assert_err(&d, "Tool \"write_file\" not found");
    done_release(&d);
    char *p = at(f->ws, "x.txt");
    assert_int_equal(access(p, F_OK), -1);
    xfree(p);
    d = run_path(f->ws, "read_file", "hello.txt", NULL);
    assert_ok(&d, "hello\n");
    done_release(&d);

    init_config("{\"tool\": {\"include\": \"list, run_\"}}");
    names = schema_names();
    assert_string_equal(names, "list_directory,list_allowed_directories,run_command,run_script");
    xfree(names);

    init_config("{\"tool\": {\"exclude\": [\"_\"]}}");
    assert_int_equal(json_array_size(tools_openai_schema()), 0);

    init_config("{\"tool\": {\"include\": [], \"exclude\": []}}");
    assert_int_equal(json_array_size(tools_openai_schema()), N_BUILTINS);
}

/* ---------------------------------------------------------------- MCP tools */

static void test_mcp_merge(void **state)
{
    struct fx *f = *state;
    stub_calls = stub_aborts = 0;

    const json_t *builtins = tools_openai_schema();
    stub_set(json_pack("[o, o]", stub_tool_new("mcp_echo"), stub_tool_new("read_file")));
    const json_t *all = tools_openai_schema();
    /* Built-ins first, one shadowed by the MCP tool of the same name, then the MCP tools. */
    assert_int_equal(json_array_size(all), N_BUILTINS + 1);
    char *names = schema_names();
    assert_string_equal(names, "read_multiple_files,write_file,edit_file,create_directory,"
                               "list_directory,move_file,search_files,get_file_info,"
                               "list_allowed_directories,directory_tree,run_command,run_script,"
                               "mcp_echo,read_file");
    xfree(names);
    assert_true(json_equal(json_array_get(all, N_BUILTINS - 1), json_array_get(stub_tools, 0)));
    assert_ptr_equal(tools_openai_schema(), all); /* cached while MCP's array is the same */
    assert_ptr_equal(tools_describe("mcp_echo"), json_object_get(stub_descs, "mcp_echo"));
    assert_string_equal(json_get_str(tools_describe("read_file"), "description"),
                        "[srv] read_file from MCP");
    assert_string_equal(json_get_str(tools_describe("write_file"), "name"), "write_file");

    /* MCP tools run through mcp_call_start; so does the shadowed name. */
    struct done d = run_tool(f->ws, "mcp_echo", "{\"a\": 1}");
    assert_null(d.error);
    done_release(&d);
    assert_int_equal(stub_calls, 1);
    d = run_tool(f->ws, "read_file", "{\"path\": \"hello.txt\"}");
    assert_null(d.error);
    done_release(&d);
    assert_int_equal(stub_calls, 2);

    /* A new array from the MCP client is picked up. */
    stub_set(json_pack("[o]", stub_tool_new("other_tool")));
    names = schema_names();
    assert_string_equal(names + strlen(names) - strlen("run_script,other_tool"),
                        "run_script,other_tool");
    xfree(names);
    assert_int_equal(json_array_size(tools_openai_schema()), N_BUILTINS + 1);
    assert_null(tools_describe("mcp_echo"));

    /* No MCP tools: the built-in array itself. */
    stub_set(NULL);
    assert_ptr_equal(tools_openai_schema(), builtins);

    /* The filters apply to MCP tools too. */
    stub_set(json_pack("[o, o]", stub_tool_new("mcp_echo"), stub_tool_new("mcp_keep")));
    init_config("{\"tool\": {\"exclude\": \"echo\"}}");
    names = schema_names();
    assert_string_equal(names + strlen(names) - strlen("run_script,mcp_keep"),
                        "run_script,mcp_keep");
    xfree(names);
    assert_null(tools_describe("mcp_echo"));
    d = run_tool(f->ws, "mcp_echo", "{}");
    assert_err(&d, "Tool \"mcp_echo\" not found");
    done_release(&d);
    assert_int_equal(stub_calls, 2);
}

/* The result and the abort of an MCP call, on the loop the fake MCP client uses. */
static void test_mcp_call(void **state)
{
    struct fx *f = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    stub_loop = &loop;
    stub_calls = stub_aborts = 0;
    stub_set(json_pack("[o]", stub_tool_new("mcp_echo")));

    struct done d = {0};
    json_t *args = json_pack("{s:i}", "a", 1);
    assert_int_equal(tool_run_start(&loop, f->ws, "mcp_echo", args, on_done, &d, NULL), 0);
    assert_int_equal(d.calls, 0);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(d.calls, 1);
    assert_null(d.error);
    assert_null(d.content); /* an array of content parts, passed through */
    done_release(&d);

    d = (struct done){0};
    struct tool_run *run;
    assert_int_equal(tool_run_start(&loop, f->ws, "mcp_echo", args, on_done, &d, &run), 0);
    tool_run_abort(run);
    tool_run_abort(run); /* once is enough for the MCP client */
    assert_int_equal(stub_aborts, 1);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(d.calls, 1);
    assert_err(&d, "aborted");
    done_release(&d);
    json_decref(args);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_schemas),
        T(test_read_file),
        T(test_read_file_errors),
        T(test_read_file_truncated),
        T(test_read_file_invalid_utf8),
        T(test_write_file),
        T(test_write_file_errors),
        T(test_list_directory),
        T(test_list_directory_capped),
        T(test_unknown_tool),
        T(test_bad_args),
        T(test_start_refused),
        T(test_concurrent_and_abort),
        T(test_read_multiple_files),
        T(test_read_multiple_files_capped),
        T(test_edit_file),
        T(test_edit_file_errors),
        T(test_create_directory),
        T(test_move_file),
        T(test_get_file_info),
        T(test_list_allowed_directories),
        T(test_directory_tree),
        T(test_search_files),
        T(test_search_files_capped),
        T(test_filters),
        T(test_mcp_merge),
        T(test_mcp_call),
    };
#undef T
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    stub_set(NULL);
    json_decref(stub_descs);
    return rc;
}
