/* SPDX-License-Identifier: MIT */
/* test_sandbox.c -- the pure pieces of the command sandbox (src/tools/sandbox.c): the
 * allow-listed environment and the bubblewrap argv, as tables of input -> expected output; then
 * the "command" config keys through tools_init, errors included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/xalloc.h"
#include "tools/mcp.h"
#include "tools/tools.h"
#include "tools/tools_int.h"

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

/* v joined with '|' (NULL-terminated v), for one comparison per case. */
static char *joined(char **v)
{
    size_t len = 1;
    for (size_t i = 0; v[i] != NULL; i++)
        len += strlen(v[i]) + 1;
    char *s = xcalloc(len, 1), *p = s;
    for (size_t i = 0; v[i] != NULL; i++) {
        size_t n = strlen(v[i]);
        if (i > 0)
            *p++ = '|';
        memcpy(p, v[i], n);
        p += n;
    }
    return s;
}

static void assert_strv(char **v, const char *want)
{
    char *got = joined(v);
    if (strcmp(got, want) != 0)
        fail_msg("got  %s\nwant %s", got, want);
    xfree(got);
    tool__strv_free(v);
}

/* ---------------------------------------------------------------- the environment */

static void test_env_allow_list(void **state)
{
    char *server_env[] = {
        "PATH=/usr/bin:/bin",
        "OPENAI_API_KEY=sk-1",
        "HOME=/root",
        "SECRET_KEY=s",
        "LANG=C.UTF-8",
        "DATABASE_URL=postgres://u:p@h/d",
        "LC_ALL=C",
        "LC_=odd",
        "LCX=no",
        "TERM=xterm",
        "TZ=UTC",
        "USER=root",
        "SHELL=/bin/bash",
        "TMPDIR=/var/tmp",
        "PWD=/srv",
        "GITHUB_TOKEN=ghp",
        "SSH_AUTH_SOCK=/run/agent",
        "noequals",
        NULL,
    };
    json_t *set = json_pack("{s:s, s:s}", "FROM_CFG", "v", "TERM", "dumb");
    const char *const pass[] = {"GITHUB_TOKEN", "MISSING", NULL};
    const struct {
        const char *const *pass;
        bool set, home, tmp;
        const char *want;
    } cases[] = {
        /* the allow-list alone: PATH LANG LC_* TERM TZ USER SHELL TMPDIR; HOME and PWD ours */
        {NULL, false, true, false,
         "PATH=/usr/bin:/bin|LANG=C.UTF-8|LC_ALL=C|TERM=xterm|TZ=UTC|USER=root|SHELL=/bin/bash|"
         "TMPDIR=/var/tmp|HOME=/ws|PWD=/ws/sub"},
        /* passEnv copies a named variable (any name); an unset one is skipped; env sets and
         * overrides in place; the sandbox's TMPDIR */
        {pass, true, true, true,
         "PATH=/usr/bin:/bin|LANG=C.UTF-8|LC_ALL=C|TERM=dumb|TZ=UTC|USER=root|SHELL=/bin/bash|"
         "TMPDIR=/tmp|GITHUB_TOKEN=ghp|HOME=/ws|FROM_CFG=v|PWD=/ws/sub"},
        /* no HOME given: none (never the server's) */
        {NULL, false, false, false,
         "PATH=/usr/bin:/bin|LANG=C.UTF-8|LC_ALL=C|TERM=xterm|TZ=UTC|USER=root|SHELL=/bin/bash|"
         "TMPDIR=/var/tmp|PWD=/ws/sub"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tool_env_spec spec = {
            .environ = server_env,
            .pass = cases[i].pass,
            .set = cases[i].set ? set : NULL,
            .home = cases[i].home ? "/ws" : NULL,
            .pwd = "/ws/sub",
            .tmpdir = cases[i].tmp ? "/tmp" : NULL,
        };
        assert_strv(tool__env_build(&spec), cases[i].want);
    }
    json_decref(set);
    /* command.env may set HOME too: the config wins */
    set = json_pack("{s:s}", "HOME", "/elsewhere");
    char *one[] = {"PATH=/bin", NULL};
    struct tool_env_spec spec = {.environ = one, .set = set, .home = "/ws", .pwd = "/ws"};
    assert_strv(tool__env_build(&spec), "PATH=/bin|HOME=/elsewhere|PWD=/ws");
    json_decref(set);
}

/* ---------------------------------------------------------------- the bwrap argv */

#define PREFIX "/usr/bin/bwrap|--unshare-pid|--unshare-ipc|--unshare-uts"
#define COMMON "--die-with-parent|--new-session|--cap-drop|ALL"
#define SYS                                                                                        \
    "--ro-bind-try|/usr|/usr|--symlink|usr/bin|/bin|--symlink|usr/lib|/lib|--ro-bind-try|/etc|/etc|" \
    "--proc|/proc|--dev|/dev|--tmpfs|/tmp"

static void test_bwrap_argv(void **state)
{
    static const struct tool_sysdir sys[] = {
        {"/usr", NULL}, {"/bin", "usr/bin"}, {"/lib", "usr/lib"}, {"/etc", NULL}};
    const char *const cmd[] = {"/bin/sh", "-c", "echo hi", NULL};
    const char *const dirs[] = {"/root", "/opt/ws", NULL};
    const char *const files[] = {"/etc/tars/config.json", "/opt/ws/s1/agent-tars.db", NULL};
    static const struct {
        bool network, masks, ws;
        const char *want;
    } cases[] = {
        {true, false, true,
         PREFIX "|" COMMON "|" SYS
                "|--bind|/opt/ws/s1|/opt/ws/s1|--remount-ro|/|--chdir|/opt/ws/s1/sub|--|/bin/sh|-c|"
                "echo hi"},
        /* network off; masked directories before the workspace, masked files after it */
        {false, true, true,
         PREFIX "|--unshare-net|" COMMON "|" SYS
                "|--tmpfs|/root|--tmpfs|/opt/ws|--bind|/opt/ws/s1|/opt/ws/s1|"
                "--ro-bind|/dev/null|/etc/tars/config.json|--ro-bind|/dev/null|"
                "/opt/ws/s1/agent-tars.db|--remount-ro|/|--chdir|/opt/ws/s1/sub|--|/bin/sh|-c|"
                "echo hi"},
        /* no workspace (the start-up probe) */
        {true, false, false,
         PREFIX "|" COMMON "|" SYS "|--remount-ro|/|--chdir|/opt/ws/s1/sub|--|/bin/sh|-c|echo hi"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tool_bwrap_spec spec = {
            .bwrap = "/usr/bin/bwrap",
            .sys = sys,
            .nsys = 4,
            .workspace = cases[i].ws ? "/opt/ws/s1" : NULL,
            .mask_dirs = cases[i].masks ? dirs : NULL,
            .mask_files = cases[i].masks ? files : NULL,
            .network = cases[i].network,
            .chdir = "/opt/ws/s1/sub",
            .cmd = cmd,
        };
        assert_strv(tool__bwrap_argv(&spec), cases[i].want);
    }
}

/* ---------------------------------------------------------------- config */

static int init_json(const char *text, char **err)
{
    json_t *cfg = json_loads(text, 0, NULL);
    assert_non_null(cfg);
    *err = NULL;
    int rc = tools_init(NULL, cfg, err);
    json_decref(cfg);
    return rc;
}

static void test_config(void **state)
{
    static const struct {
        const char *config;
        const char *error; /* NULL: accepted */
    } cases[] = {
        {"{\"command\": {\"sandbox\": \"none\"}}", NULL},
        {"{\"command\": {\"sandbox\": \"none\", \"network\": false, \"env\": {\"A\": \"1\", "
         "\"N\": 2}, \"passEnv\": [\"X\", \"Y\"]}}",
         NULL},
        {"{\"command\": {\"sandbox\": \"none\", \"passEnv\": \"X,Y\"}}", NULL},
        {"{\"command\": {\"sandbox\": \"docker\"}}",
         "unknown command.sandbox 'docker' (use auto, bwrap or none)"},
        {"{\"command\": {\"network\": \"off\"}}", "'command.network' must be true or false"},
        {"{\"command\": {\"env\": [1]}}", "'command.env' must be an object of strings"},
        {"{\"command\": {\"env\": {\"A\": {}}}}", "'command.env.A' must be a string"},
        {"{\"command\": {\"env\": {\"A=B\": \"x\"}}}", "'command.env.A=B' must be a string"},
        {"{\"command\": {\"passEnv\": [1]}}",
         "'command.passEnv' must be an array of variable names"},
        {"{\"command\": {\"passEnv\": 5}}", "'command.passEnv' must be an array of variable names"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *err = NULL;
        int rc = init_json(cases[i].config, &err);
        if (cases[i].error == NULL) {
            if (rc != 0)
                fail_msg("%s: %s", cases[i].config, err);
            assert_int_equal(tool__sandbox_mode(), TOOL_SANDBOX_NONE);
        } else {
            assert_true(rc < 0);
            assert_non_null(err);
            assert_string_equal(err, cases[i].error);
        }
        xfree(err);
    }
    tools_shutdown();
}

/* sandbox bwrap where there is no bwrap: an error that says what to install; auto: none. */
static void test_no_bwrap(void **state)
{
    char *path = getenv("PATH") ? xstrdup(getenv("PATH")) : NULL;
    setenv("PATH", "/nonexistent", 1);
    char *err = NULL;
    assert_true(init_json("{\"command\": {\"sandbox\": \"bwrap\"}}", &err) < 0);
    assert_string_equal(err, "command.sandbox is bwrap but bubblewrap (bwrap) is not installed; "
                             "apt-get install bubblewrap");
    xfree(err);
    assert_int_equal(init_json("{}", &err), 0);
    assert_int_equal(tool__sandbox_mode(), TOOL_SANDBOX_NONE);
    tools_shutdown();
    if (path != NULL)
        setenv("PATH", path, 1);
    xfree(path);
}

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_allow_list),
        cmocka_unit_test(test_bwrap_argv),
        cmocka_unit_test(test_config),
        cmocka_unit_test(test_no_bwrap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
