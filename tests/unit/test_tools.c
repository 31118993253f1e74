/* SPDX-License-Identifier: MIT */
/* test_tools.c -- the built-in file tools run through tool_run_start on a real libuv loop:
 * results, Node-style errors, confinement, caps, schemas, unknown tools and bad arguments. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/xalloc.h"
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

static void test_schemas(void **state)
{
    const json_t *tools = tools_openai_schema();
    assert_true(json_is_array(tools));
    assert_int_equal(json_array_size(tools), 3);
    static const char *names[] = {"read_file", "write_file", "list_directory"};
    for (size_t i = 0; i < 3; i++) {
        const json_t *t = json_array_get(tools, i);
        assert_string_equal(json_string_value(json_object_get(t, "type")), "function");
        const json_t *fn = json_object_get(t, "function");
        assert_string_equal(json_string_value(json_object_get(fn, "name")), names[i]);
        const char *desc = json_string_value(json_object_get(fn, "description"));
        assert_true(strncmp(desc, "[filesystem] ", 13) == 0);
        const json_t *params = json_object_get(fn, "parameters");
        assert_string_equal(json_string_value(json_object_get(params, "type")), "object");
        const json_t *path = json_object_get(json_object_get(params, "properties"), "path");
        assert_string_equal(json_string_value(json_object_get(path, "type")), "string");
        assert_string_equal(
            json_string_value(json_array_get(json_object_get(params, "required"), 0)), "path");
        assert_true(json_is_false(json_object_get(params, "additionalProperties")));

        const json_t *d = tools_describe(names[i]);
        assert_non_null(d);
        assert_string_equal(json_string_value(json_object_get(d, "name")), names[i]);
        assert_string_equal(json_string_value(json_object_get(d, "description")), desc);
        assert_true(json_equal((json_t *)json_object_get(d, "schema"), (json_t *)params));
    }
    const json_t *w =
        json_object_get(json_object_get(json_array_get(tools, 1), "function"), "parameters");
    json_t *req = json_pack("[s, s]", "path", "content");
    assert_true(json_equal(json_object_get(w, "required"), req));
    json_decref(req);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(w, "properties"), "content"), "type")),
                        "string");
    assert_ptr_equal(tools_openai_schema(), tools); /* built once */
    assert_null(tools_describe("nope"));
    assert_null(tools_describe(NULL));
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

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schemas),
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
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
