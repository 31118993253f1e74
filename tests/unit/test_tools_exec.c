/* SPDX-License-Identifier: MIT */
/* test_tools_exec.c -- run_command and run_script through tool_run_start on a real libuv loop:
 * result parts, exit codes and signals, cwd confinement, the scrubbed environment, output caps,
 * stdin scripts, and the timeout and abort paths, which must leave no process of the command's
 * group alive. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

struct fx {
    char *tmp; /* canonical temp dir */
    char *ws;  /* tmp/ws, the workspace root */
};

struct done {
    int calls;
    json_t *content; /* a reference to what on_done saw */
    char *error;
    uint64_t at_ms; /* when on_done fired */
};

/* ---------------------------------------------------------------- helpers */

static char *at(const char *dir, const char *rel)
{
    return xasprintf("%s/%s", dir, rel);
}

static void put_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void init_config(const char *config_json);

static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    char tmpl[] = "/tmp/test_exec-XXXXXX", real[PATH_MAX];
    assert_non_null(mkdtemp(tmpl));
    assert_non_null(realpath(tmpl, real));
    f->tmp = xstrdup(real);
    f->ws = at(f->tmp, "ws");
    assert_int_equal(mkdir(f->ws, 0755), 0);
    char *p = at(f->ws, "sub");
    assert_int_equal(mkdir(p, 0755), 0);
    xfree(p);
    p = at(f->ws, "hello.txt");
    put_text(p, "hello\n");
    xfree(p);
    p = at(f->tmp, "out");
    assert_int_equal(mkdir(p, 0755), 0);
    xfree(p);
    *state = f;
    init_config("{}");
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
    nftw(f->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    xfree(f->tmp), xfree(f->ws);
    xfree(f);
    return 0;
}

static void on_done(void *data, const struct tool_result *res)
{
    struct done *d = data;
    d->calls++;
    d->at_ms = mono_ms();
    assert_non_null(res->content);
    d->content = json_incref(res->content);
    d->error = res->error ? xstrdup(res->error) : NULL;
}

static void done_release(struct done *d)
{
    json_decref(d->content);
    xfree(d->error);
}

/* tools_init with config_json; "command.sandbox" is none unless the config says otherwise: these
 * tests look at the command's processes from outside, as the helper runs them (the sandbox has
 * its own integration tests). */
static void init_config(const char *config_json)
{
    json_t *cfg = json_loads(config_json, 0, NULL);
    assert_non_null(cfg);
    json_t *cmd = json_object_get(cfg, "command");
    if (cmd == NULL) {
        cmd = json_object();
        json_object_set_new(cfg, "command", cmd);
    }
    if (json_object_get(cmd, "sandbox") == NULL)
        json_object_set_new(cmd, "sandbox", json_string("none"));
    char *err = NULL;
    int rc = tools_init(NULL, cfg, &err);
    if (rc != 0)
        fail_msg("tools_init: %s", err);
    json_decref(cfg);
}

static void run_loop_closed(uv_loop_t *loop)
{
    assert_int_equal(uv_run(loop, UV_RUN_DEFAULT), 0);
    assert_int_equal(uv_loop_close(loop), 0);
}

/* Runs one tool on a fresh loop until on_done. */
static struct done run_tool(const char *root, const char *name, json_t *args)
{
    struct done d = {0};
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct tool_run *run = NULL;
    assert_int_equal(tool_run_start(&loop, root, name, args, on_done, &d, &run), 0);
    assert_non_null(run);
    json_decref(args);
    assert_int_equal(d.calls, 0); /* never inside tool_run_start */
    run_loop_closed(&loop);
    assert_int_equal(d.calls, 1);
    return d;
}

static struct done run_cmd(const char *root, const char *command)
{
    return run_tool(root, "run_command", json_pack("{s:s}", "command", command));
}

static void assert_err(const struct done *d, const char *msg)
{
    assert_non_null(d->error);
    assert_string_equal(d->error, msg);
    char *want = xasprintf("Error: %s", msg);
    assert_string_equal(json_string_value(d->content), want);
    xfree(want);
}

/* The part named `name` of a command result, or NULL. */
static const json_t *part(const struct done *d, const char *name)
{
    size_t i;
    const json_t *p;
    assert_true(json_is_array(d->content));
    json_array_foreach(d->content, i, p)
    {
        assert_string_equal(json_get_str(p, "type"), "text");
        if (strcmp(json_get_str(p, "name"), name) == 0)
            return p;
    }
    return NULL;
}

static const char *part_text(const struct done *d, const char *name)
{
    const json_t *p = part(d, name);
    return p ? json_get_str(p, "text") : NULL;
}

/* Processes of group pgid that are still alive (zombies do not count: they are dead, and
 * whether anyone reaps them depends on the container's init). */
static int group_alive(pid_t pgid)
{
    DIR *d = opendir("/proc");
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (!isdigit((unsigned char)de->d_name[0]))
            continue;
        char path[300], buf[512];
        snprintf(path, sizeof(path), "/proc/%s/stat", de->d_name);
        FILE *f = fopen(path, "r");
        if (f == NULL)
            continue;
        size_t len = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[len] = '\0';
        char *rp = strrchr(buf, ')');
        char state;
        int ppid, pgrp;
        if (rp != NULL && sscanf(rp + 2, "%c %d %d", &state, &ppid, &pgrp) == 3 && pgrp == pgid &&
            state != 'Z' && state != 'X')
            n++;
    }
    closedir(d);
    return n;
}

/* Waits (up to 3 s) for every process of the group to be gone. */
static void assert_group_gone(pid_t pgid)
{
    for (int i = 0; i < 300 && group_alive(pgid) > 0; i++)
        usleep(10000);
    assert_int_equal(group_alive(pgid), 0);
}

static pid_t read_pid_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    int pid = 0;
    if (fscanf(f, "%d", &pid) != 1)
        pid = 0;
    fclose(f);
    return pid;
}

/* ---------------------------------------------------------------- results */

static void test_schemas(void **state)
{
    const json_t *d = tools_describe("run_command");
    assert_non_null(d);
    assert_true(strncmp(json_get_str(d, "description"), "[commands] ", 11) == 0);
    const json_t *props = json_object_get(json_object_get(d, "schema"), "properties");
    assert_string_equal(json_get_str(json_object_get(props, "command"), "type"), "string");
    assert_string_equal(json_get_str(json_object_get(props, "cwd"), "type"), "string");
    d = tools_describe("run_script");
    assert_non_null(d);
    props = json_object_get(json_object_get(d, "schema"), "properties");
    assert_non_null(json_object_get(props, "interpreter"));
    assert_non_null(json_object_get(props, "script"));
    json_t *req = json_pack("[s]", "script");
    assert_true(json_equal(json_object_get(json_object_get(d, "schema"), "required"), req));
    json_decref(req);
}

static void test_success(void **state)
{
    struct fx *f = *state;
    struct done d = run_cmd(f->ws, "echo hello");
    assert_null(d.error);
    json_t *want =
        json_pack("[{s:s, s:s, s:s}]", "type", "text", "text", "hello\n", "name", "STDOUT");
    assert_true(json_equal(d.content, want));
    json_decref(want);
    done_release(&d);

    d = run_cmd(f->ws, "echo out; echo err >&2");
    assert_null(d.error);
    assert_int_equal(json_array_size(d.content), 2);
    assert_string_equal(part_text(&d, "STDOUT"), "out\n");
    assert_string_equal(part_text(&d, "STDERR"), "err\n");
    assert_string_equal(json_get_str(json_array_get(d.content, 0), "name"), "STDOUT");
    done_release(&d);

    /* No output: an empty list, as the original's messagesFor gives. */
    d = run_cmd(f->ws, "true");
    assert_null(d.error);
    assert_int_equal(json_array_size(d.content), 0);
    done_release(&d);

    /* The workspace is the working directory, and stdin is /dev/null (no hang). */
    d = run_cmd(f->ws, "pwd; cat");
    char *want_pwd = xasprintf("%s\n", f->ws);
    assert_string_equal(part_text(&d, "STDOUT"), want_pwd);
    xfree(want_pwd);
    done_release(&d);
}

static void test_failure(void **state)
{
    struct fx *f = *state;
    /* Failures are results, not errors: the original drops isError. */
    struct done d = run_cmd(f->ws, "echo out; echo err >&2; exit 3");
    assert_null(d.error);
    assert_int_equal(json_array_size(d.content), 3);
    const json_t *e = json_array_get(d.content, 0);
    assert_string_equal(json_get_str(e, "name"), "ERROR");
    assert_string_equal(json_get_str(e, "text"),
                        "Command failed: echo out; echo err >&2; exit 3\nerr\n");
    assert_int_equal(json_integer_value(json_object_get(e, "exitCode")), 3);
    assert_null(json_object_get(e, "signal"));
    assert_string_equal(part_text(&d, "STDOUT"), "out\n");
    assert_string_equal(part_text(&d, "STDERR"), "err\n");
    done_release(&d);

    d = run_cmd(f->ws, "exit 3");
    json_t *want = json_pack("[{s:s, s:s, s:s, s:i}]", "type", "text", "text",
                             "Command failed: exit 3\n", "name", "ERROR", "exitCode", 3);
    assert_true(json_equal(d.content, want));
    json_decref(want);
    done_release(&d);

    d = run_cmd(f->ws, "kill -TERM $$");
    e = part(&d, "ERROR");
    assert_non_null(e);
    assert_true(json_is_null(json_object_get(e, "exitCode")));
    assert_string_equal(json_get_str(e, "signal"), "SIGTERM");
    done_release(&d);

    d = run_cmd(f->ws, "no-such-command-xyz");
    e = part(&d, "ERROR");
    assert_int_equal(json_integer_value(json_object_get(e, "exitCode")), 127);
    assert_non_null(strstr(part_text(&d, "STDERR"), "not found"));
    done_release(&d);
}

static void test_cwd(void **state)
{
    struct fx *f = *state;
    struct done d =
        run_tool(f->ws, "run_command", json_pack("{s:s, s:s}", "command", "pwd", "cwd", "sub"));
    char *want = xasprintf("%s/sub\n", f->ws);
    assert_string_equal(part_text(&d, "STDOUT"), want);
    xfree(want);
    done_release(&d);

    d = run_tool(f->ws, "run_command", json_pack("{s:s, s:s}", "command", "pwd", "cwd", ""));
    want = xasprintf("%s\n", f->ws);
    assert_string_equal(part_text(&d, "STDOUT"), want);
    xfree(want);
    done_release(&d);

    d = run_tool(f->ws, "run_command", json_pack("{s:s, s:s}", "command", "pwd", "cwd", "../out"));
    want = xasprintf("Access denied - path outside allowed directories: %s/out not in %s", f->tmp,
                     f->ws);
    assert_err(&d, want);
    xfree(want);
    done_release(&d);

    d = run_tool(f->ws, "run_command", json_pack("{s:s, s:s}", "command", "pwd", "cwd", "/etc"));
    assert_non_null(d.error);
    assert_true(strncmp(d.error, "Access denied", 13) == 0);
    done_release(&d);

    d = run_tool(f->ws, "run_command", json_pack("{s:s, s:s}", "command", "pwd", "cwd", "nope"));
    want = xasprintf("ENOENT: no such file or directory, chdir '%s/nope'", f->ws);
    assert_err(&d, want);
    xfree(want);
    done_release(&d);

    d = run_tool(f->ws, "run_command",
                 json_pack("{s:s, s:s}", "command", "pwd", "cwd", "hello.txt"));
    want = xasprintf("ENOTDIR: not a directory, chdir '%s/hello.txt'", f->ws);
    assert_err(&d, want);
    xfree(want);
    done_release(&d);
}

static void test_bad_args(void **state)
{
    struct fx *f = *state;
    struct done d = run_tool(f->ws, "run_command", json_object());
    assert_err(&d, "Invalid arguments for run_command: command must be a string");
    done_release(&d);
    d = run_tool(f->ws, "run_command", json_pack("{s:i}", "command", 1));
    assert_err(&d, "Invalid arguments for run_command: command must be a string");
    done_release(&d);
    d = run_tool(f->ws, "run_command", json_pack("{s:s}", "command", " \n"));
    assert_err(&d, "Command is required");
    done_release(&d);
    d = run_tool(f->ws, "run_command", json_pack("{s:s, s:i}", "command", "pwd", "cwd", 5));
    assert_err(&d, "Invalid arguments for run_command: cwd must be a string");
    done_release(&d);
    d = run_tool(f->ws, "run_script", NULL);
    assert_err(&d, "Invalid arguments for run_script: script must be a string");
    done_release(&d);
    d = run_tool(f->ws, "run_script", json_pack("{s:s}", "script", ""));
    assert_err(&d, "Script is required");
    done_release(&d);
    d = run_tool(f->ws, "run_script", json_pack("{s:s, s:b}", "script", "x", "interpreter", 1));
    assert_err(&d, "Invalid arguments for run_script: interpreter must be a string");
    done_release(&d);
}

/* ---------------------------------------------------------------- run_script */

static void test_script(void **state)
{
    struct fx *f = *state;
    struct done d =
        run_tool(f->ws, "run_script",
                 json_pack("{s:s, s:s}", "interpreter", "sh", "script", "echo from-script\npwd\n"));
    char *want = xasprintf("from-script\n%s\n", f->ws);
    assert_string_equal(part_text(&d, "STDOUT"), want);
    xfree(want);
    done_release(&d);

    /* The script really is stdin: cat gives it back unchanged. */
    d = run_tool(f->ws, "run_script",
                 json_pack("{s:s, s:s}", "interpreter", "cat", "script", "line 1\nno newline"));
    assert_string_equal(part_text(&d, "STDOUT"), "line 1\nno newline");
    done_release(&d);

    /* An interpreter with arguments, in cwd. */
    d = run_tool(f->ws, "run_script",
                 json_pack("{s:s, s:s, s:s}", "interpreter", "sh -s arg1", "script", "echo $1; pwd",
                           "cwd", "sub"));
    want = xasprintf("arg1\n%s/sub\n", f->ws);
    assert_string_equal(part_text(&d, "STDOUT"), want);
    xfree(want);
    done_release(&d);

    /* Without an interpreter: bash. */
    d = run_tool(f->ws, "run_script", json_pack("{s:s}", "script", "echo ${BASH_VERSION:+bash}"));
    assert_string_equal(part_text(&d, "STDOUT"), "bash\n");
    done_release(&d);

    /* A script larger than a pipe buffer is written in pieces. */
    size_t n = 300000;
    char *big = xmalloc(n + 1);
    memset(big, 'x', n);
    big[n] = '\0';
    d = run_tool(f->ws, "run_script",
                 json_pack("{s:s, s:s}", "interpreter", "wc -c", "script", big));
    assert_string_equal(part_text(&d, "STDOUT"), "300000\n");
    done_release(&d);
    xfree(big);

    /* An interpreter that stops reading at once: EPIPE on our side is harmless. */
    d = run_tool(f->ws, "run_script",
                 json_pack("{s:s, s:s}", "interpreter", "false", "script", "never read"));
    const json_t *e = part(&d, "ERROR");
    assert_string_equal(json_get_str(e, "text"), "Command failed: false\n");
    assert_int_equal(json_integer_value(json_object_get(e, "exitCode")), 1);
    done_release(&d);
}

/* ---------------------------------------------------------------- environment and caps */

/* The allow-list: the server's secrets (any name), its ordinary variables too, never reach a
 * command; PATH, LANG, LC_*, TERM, TZ, USER, SHELL, TMPDIR do; HOME is the workspace; passEnv
 * copies a named variable, env sets one. */
static void test_env_allow_list(void **state)
{
    struct fx *f = *state;
    static const char *const set[][2] = {
        {"OPENAI_API_KEY", "sk-openai"},  {"GITHUB_TOKEN", "ghp"},
        {"SECRET_KEY", "django-secret"},  {"DATABASE_URL", "postgres://u:pw@db/x"},
        {"STRIPE_KEY", "sk_live_stripe"}, {"HARMLESS_VAR", "not-passed"},
        {"PASSED_VAR", "passed-value"},   {"LC_TIME", "C"},
        {"TZ", "UTC"},                    {"PWD", "/somewhere/else"},
    };
    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
        setenv(set[i][0], set[i][1], 1);
    init_config("{\"command\": {\"passEnv\": [\"PASSED_VAR\", \"NOT_SET_ANYWHERE\"], "
                "\"env\": {\"FROM_CONFIG\": \"cfg-value\", \"NUM\": 7}}}");
    struct done d = run_cmd(f->ws, "env");
    const char *out = part_text(&d, "STDOUT");
    assert_non_null(out);
    static const char *const want[] = {"PASSED_VAR=passed-value\n", "FROM_CONFIG=cfg-value\n",
                                       "NUM=7\n", "LC_TIME=C\n", "TZ=UTC\n", "PATH="};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (strstr(out, want[i]) == NULL)
            fail_msg("'%s' is missing from the command's environment:\n%s", want[i], out);
    char *home = xasprintf("HOME=%s\n", f->ws), *pwd = xasprintf("PWD=%s\n", f->ws);
    assert_non_null(strstr(out, home));
    assert_non_null(strstr(out, pwd));
    xfree(home);
    xfree(pwd);
    static const char *const gone[] = {"OPENAI_API_KEY", "sk-openai",      "GITHUB_TOKEN",
                                       "SECRET_KEY",     "django-secret",  "DATABASE_URL",
                                       "STRIPE_KEY",     "sk_live_stripe", "HARMLESS_VAR",
                                       "NOT_SET",        "/somewhere/else"};
    for (size_t i = 0; i < sizeof(gone) / sizeof(gone[0]); i++)
        if (strstr(out, gone[i]) != NULL)
            fail_msg("'%s' reached the command's environment", gone[i]);
    done_release(&d);
    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
        unsetenv(set[i][0]);
}

/* A command starts with descriptors 0, 1 and 2 only, whatever the server has open. */
static void test_fds_closed(void **state)
{
    struct fx *f = *state;
    int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC: the helper must close it */
    assert_true(leak > 2);
    /* ls execed by the shell: its own directory descriptor comes next, as 3 */
    struct done d = run_cmd(f->ws, "exec ls -l /proc/self/fd");
    const char *out = part_text(&d, "STDOUT");
    assert_non_null(strstr(out, " 0 -> "));
    assert_non_null(strstr(out, " 1 -> pipe:"));
    assert_non_null(strstr(out, " 2 -> pipe:"));
    assert_non_null(strstr(out, " 3 -> /proc/"));
    assert_null(strstr(out, " 4 -> "));
    assert_null(strstr(out, "socket:"));
    done_release(&d);
    close(leak);
}

static void test_output_capped(void **state)
{
    struct fx *f = *state;
    init_config("{\"command\": {\"maxOutputBytes\": 1000}}");
    struct done d = run_cmd(f->ws, "head -c 5000 /dev/zero | tr '\\0' a; head -c 1500 /dev/zero "
                                   "| tr '\\0' e >&2; exit 2");
    const char *out = part_text(&d, "STDOUT");
    const char *note = "\n[truncated: stdout went over 1000 bytes; 4000 more bytes were dropped]";
    assert_int_equal(strlen(out), 1000 + strlen(note));
    for (int i = 0; i < 1000; i++)
        assert_int_equal(out[i], 'a');
    assert_string_equal(out + 1000, note);
    const char *err = part_text(&d, "STDERR");
    assert_string_equal(err + 1000,
                        "\n[truncated: stderr went over 1000 bytes; 500 more bytes were dropped]");
    /* The ERROR part quotes the (capped) stderr too, as Node's message does. */
    const char *e = part_text(&d, "ERROR");
    assert_true(strncmp(e, "Command failed: head", 20) == 0);
    assert_non_null(strstr(e, "stderr went over 1000 bytes"));
    done_release(&d);

    /* A cap inside a UTF-8 sequence drops the partial character. */
    init_config("{\"command\": {\"maxOutputBytes\": 5}}");
    d = run_cmd(f->ws, "printf '\\303\\251\\303\\251\\303\\251'");
    assert_string_equal(part_text(&d, "STDOUT"),
                        "\xc3\xa9\xc3\xa9\n[truncated: stdout went over 5 bytes; 1 more bytes "
                        "were dropped]");
    done_release(&d);
}

static void test_config_errors(void **state)
{
    static const char *bad[] = {
        "{\"command\": 5}",
        "{\"command\": {\"timeoutMs\": 0}}",
        "{\"command\": {\"timeoutMs\": \"soon\"}}",
        "{\"command\": {\"maxOutputBytes\": -1}}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *cfg = json_loads(bad[i], 0, NULL);
        char *err = NULL;
        assert_true(tools_init(NULL, cfg, &err) < 0);
        assert_non_null(err);
        xfree(err);
        json_decref(cfg);
    }
}

/* ---------------------------------------------------------------- timeout, abort, no orphans */

/* A command whose group holds several long sleeps, nested ones included; it writes the
 * shell's pid (= the group id) to pid.txt first. */
static const char *SPAWNER = "echo $$ > pid.txt; echo started; sleep 1000 & sleep 1000 & "
                             "sh -c 'sleep 1000 & sleep 1000' & (sleep 1000 &); wait";

static void test_timeout_kills_group(void **state)
{
    struct fx *f = *state;
    init_config("{\"command\": {\"timeoutMs\": 500}}");
    uint64_t t0 = mono_ms();
    struct done d = run_cmd(f->ws, SPAWNER);
    uint64_t took = mono_ms() - t0;
    assert_true(took >= 450 && took < 5000);
    assert_null(d.error);
    const json_t *e = part(&d, "ERROR");
    assert_non_null(e);
    char *want = xasprintf("Command timed out after 500 ms: %s\n", SPAWNER);
    assert_string_equal(json_get_str(e, "text"), want);
    xfree(want);
    assert_string_equal(json_get_str(e, "signal"), "SIGKILL");
    assert_string_equal(part_text(&d, "STDOUT"), "started\n");
    done_release(&d);
    char *pidfile = at(f->ws, "pid.txt");
    pid_t pgid = read_pid_file(pidfile);
    xfree(pidfile);
    assert_true(pgid > 1);
    assert_group_gone(pgid);
}

struct abort_ctx {
    struct tool_run *run;
    char *pidfile;
    pid_t pgid;
    int alive_before;
};

/* Polls until the command's group is up (5 processes or more), then aborts the run. */
static void on_poll(uv_timer_t *t)
{
    struct abort_ctx *a = t->data;
    if (a->pgid == 0)
        a->pgid = read_pid_file(a->pidfile);
    int alive = a->pgid > 0 ? group_alive(a->pgid) : 0;
    if (alive < 5)
        return;
    a->alive_before = alive;
    tool_run_abort(a->run);
    tool_run_abort(a->run); /* twice is harmless */
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, NULL);
}

static void test_abort_kills_group(void **state)
{
    struct fx *f = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct done d = {0};
    struct abort_ctx a = {.pidfile = at(f->ws, "pid.txt")};
    json_t *args = json_pack("{s:s}", "command", SPAWNER);
    assert_int_equal(tool_run_start(&loop, f->ws, "run_command", args, on_done, &d, &a.run), 0);
    json_decref(args);
    uv_timer_t poll;
    uv_timer_init(&loop, &poll);
    poll.data = &a;
    uv_timer_start(&poll, on_poll, 20, 20);
    uint64_t t0 = mono_ms();
    run_loop_closed(&loop);
    assert_int_equal(d.calls, 1);
    assert_true(a.alive_before >= 5);
    assert_true(d.at_ms - t0 < 5000);
    assert_null(d.error);
    const json_t *e = part(&d, "ERROR");
    char *want = xasprintf("Command aborted: %s\n", SPAWNER);
    assert_string_equal(json_get_str(e, "text"), want);
    xfree(want);
    assert_string_equal(json_get_str(e, "signal"), "SIGKILL");
    done_release(&d);
    assert_group_gone(a.pgid);
    xfree(a.pidfile);
}

/* tools_shutdown kills what is still running; those runs complete as aborted. */
static void test_shutdown_kills(void **state)
{
    struct fx *f = *state;
    init_config("{}");
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct done d = {0};
    json_t *args = json_pack("{s:s}", "command", "echo $$ > pid.txt; exec sleep 1000");
    assert_int_equal(tool_run_start(&loop, f->ws, "run_command", args, on_done, &d, NULL), 0);
    json_decref(args);
    char *pidfile = at(f->ws, "pid.txt");
    pid_t pgid = 0;
    for (int i = 0; i < 500 && (pgid == 0 || group_alive(pgid) == 0); i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(5000);
        pgid = read_pid_file(pidfile);
    }
    assert_true(pgid > 1);
    tools_shutdown();
    run_loop_closed(&loop);
    assert_int_equal(d.calls, 1);
    assert_non_null(strstr(part_text(&d, "ERROR"), "Command aborted: "));
    done_release(&d);
    assert_group_gone(pgid);
    xfree(pidfile);
}

/* A background child (in a session of its own, even) ends with the command: the helper kills
 * what the shell left behind when the shell exits, so the result comes at once. */
static void test_background_child(void **state)
{
    struct fx *f = *state;
    uint64_t t0 = mono_ms();
    struct done d = run_cmd(f->ws, "echo $$; setsid sleep 1000 & sleep 1000 & echo done");
    uint64_t took = mono_ms() - t0;
    assert_true(took < 900);
    assert_null(d.error);
    const char *out = part_text(&d, "STDOUT");
    int pid = 0;
    assert_int_equal(sscanf(out, "%d", &pid), 1);
    assert_non_null(strstr(out, "\ndone\n"));
    assert_null(part(&d, "ERROR"));
    done_release(&d);
    assert_group_gone(pid);
}

static void test_concurrent(void **state)
{
    struct fx *f = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    enum { N = 6 };
    struct done d[N] = {{0}};
    for (int i = 0; i < N; i++) {
        char *cmd = xasprintf("sleep 0.2; echo %d", i);
        json_t *args = json_pack("{s:s}", "command", cmd);
        assert_int_equal(tool_run_start(&loop, f->ws, "run_command", args, on_done, &d[i], NULL),
                         0);
        json_decref(args);
        xfree(cmd);
    }
    uint64_t t0 = mono_ms();
    run_loop_closed(&loop);
    assert_true(mono_ms() - t0 < 2000); /* they ran side by side */
    for (int i = 0; i < N; i++) {
        assert_int_equal(d[i].calls, 1);
        char want[16];
        snprintf(want, sizeof(want), "%d\n", i);
        assert_string_equal(part_text(&d[i], "STDOUT"), want);
        done_release(&d[i]);
    }
}

int main(int argc, char **argv)
{
    /* Commands without a sandbox run under this binary as their helper, as under the server. */
    if (argc > 1 && strcmp(argv[1], TOOLS_HELPER_FLAG) == 0)
        return tools_command_helper_main(argc, argv);
    json_set_alloc_funcs(xmalloc, xfree);
    signal(SIGPIPE, SIG_IGN); /* as main.c does */
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schemas),
        T(test_success),
        T(test_failure),
        T(test_cwd),
        T(test_bad_args),
        T(test_script),
        T(test_env_allow_list),
        T(test_fds_closed),
        T(test_output_capped),
        T(test_config_errors),
        T(test_timeout_kills_group),
        T(test_abort_kills_group),
        T(test_shutdown_kills),
        T(test_background_child),
        T(test_concurrent),
    };
#undef T
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    tools_shutdown();
    return rc;
}
