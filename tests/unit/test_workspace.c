/* SPDX-License-Identifier: MIT */
/* test_workspace.c -- workspace_resolve confinement against a real directory tree with symlinks
 * in and out of the root, workspace_path's rules (anchor-api.md §1.3) and workspace_mkdirs. */
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

struct fx {
    char tmp[PATH_MAX - 8]; /* canonical temp dir */
    char ws[PATH_MAX];      /* tmp/ws, the workspace root */
};

static void put_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static char *at(const char *dir, const char *rel)
{
    return xasprintf("%s/%s", dir, rel);
}

static void put_link(const char *dir, const char *name, const char *target)
{
    char *p = at(dir, name);
    assert_int_equal(symlink(target, p), 0);
    xfree(p);
}

/* Layout:
 *   ws/file.txt  ws/..foo  ws/sub/file2  ws/sub/up -> ../file.txt
 *   ws/link_out -> <tmp>/out        ws/link_in -> <ws>/sub     ws/rel_out -> ../out
 *   ws/dangling_out -> <tmp>/out/missing     ws/dangling_in -> newfile
 *   ws/back_in -> ../ws/sub         ws/loop1 <-> ws/loop2
 *   ws/dotdot_missing -> missing/../../out/secret
 *   out/secret   ws-other/x   wslink -> ws */
static int setup(void **state)
{
    struct fx *f = xcalloc(1, sizeof(*f));
    char tmpl[] = "/tmp/test_ws-XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    char real[PATH_MAX];
    assert_non_null(realpath(tmpl, real));
    assert_true(strlen(real) < sizeof(f->tmp));
    memcpy(f->tmp, real, strlen(real) + 1);
    snprintf(f->ws, sizeof(f->ws), "%s/ws", f->tmp);
    char *out = at(f->tmp, "out"), *other = at(f->tmp, "ws-other"), *sub = at(f->ws, "sub");
    assert_int_equal(mkdir(f->ws, 0755), 0);
    assert_int_equal(mkdir(out, 0755), 0);
    assert_int_equal(mkdir(other, 0755), 0);
    assert_int_equal(mkdir(sub, 0755), 0);
    char *p;
    put_file(p = at(f->ws, "file.txt"), "hello"), xfree(p);
    put_file(p = at(f->ws, "..foo"), "dots"), xfree(p);
    put_file(p = at(sub, "file2"), "two"), xfree(p);
    put_file(p = at(out, "secret"), "secret"), xfree(p);
    put_file(p = at(other, "x"), "x"), xfree(p);
    put_link(sub, "up", "../file.txt");
    put_link(f->ws, "link_out", out);
    put_link(f->ws, "link_in", sub);
    put_link(f->ws, "rel_out", "../out");
    put_link(f->ws, "dangling_out", p = at(out, "missing")), xfree(p);
    put_link(f->ws, "dangling_in", "newfile");
    put_link(f->ws, "back_in", "../ws/sub");
    put_link(f->ws, "loop1", "loop2");
    put_link(f->ws, "loop2", "loop1");
    put_link(f->ws, "dotdot_missing", "missing/../../out/secret");
    put_link(f->tmp, "wslink", f->ws);
    xfree(out), xfree(other), xfree(sub);
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
    xfree(f);
    return 0;
}

/* Checks one resolution: on success *out must be <ws><want>, on failure *out stays NULL and
 * there is a message. */
static void check_resolve(const char *root, const char *ws, const char *path, int want_rc,
                          const char *want)
{
    char *out = (char *)"sentinel", *err = (char *)"sentinel";
    int rc = workspace_resolve(root, path, &out, &err);
    if (rc != want_rc)
        fail_msg("path '%s': rc %d, want %d (err %s)", path, rc, want_rc, err ? err : "-");
    if (rc == 0) {
        assert_null(err);
        char *full = xasprintf("%s%s", ws, want);
        if (strcmp(out, full) != 0)
            fail_msg("path '%s': got '%s', want '%s'", path, out, full);
        xfree(full);
        xfree(out);
    } else {
        assert_null(out);
        assert_non_null(err);
        assert_true(strlen(err) > 0);
        xfree(err);
    }
}

static void test_resolve_table(void **state)
{
    struct fx *f = *state;
    static const struct {
        const char *path;
        int rc;
        const char *want; /* appended to the root */
    } cases[] = {
        {"", -EINVAL, NULL},
        {".", 0, ""},
        {"./", 0, ""},
        {"file.txt", 0, "/file.txt"},
        {"a/../b", 0, "/b"},
        {"sub/./file2//", 0, "/sub/file2"},
        {"../x", -EACCES, NULL},
        {"..", -EACCES, NULL},
        {"/etc/passwd", -EACCES, NULL},
        {"/", -EACCES, NULL},
        {"sub/../../x", -EACCES, NULL},
        {"sub/../../ws/file.txt", 0, "/file.txt"}, /* leaves lexically, lands back inside */
        {"..foo", 0, "/..foo"},
        {"...", 0, "/..."},
        {"~/x", 0, "/~/x"},                       /* no home expansion inside the workspace */
        {"newdir/newfile", 0, "/newdir/newfile"}, /* a missing tail is fine */
        {"file.txt/x", -ENOTDIR, NULL},
        {"link_out", -EACCES, NULL},
        {"link_out/secret", -EACCES, NULL},
        {"link_out/new.txt", -EACCES, NULL},
        {"rel_out/secret", -EACCES, NULL},
        {"dangling_out", -EACCES, NULL},
        {"dotdot_missing", -ENOENT, NULL},
        {"link_in", 0, "/sub"},
        {"link_in/file2", 0, "/sub/file2"},
        {"back_in/file2", 0, "/sub/file2"},
        {"sub/up", 0, "/file.txt"},
        {"dangling_in", 0, "/newfile"},
        {"loop1", -ELOOP, NULL},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_resolve(f->ws, f->ws, cases[i].path, cases[i].rc, cases[i].want);
}

static void test_resolve_absolute(void **state)
{
    struct fx *f = *state;
    char *p;
    check_resolve(f->ws, f->ws, f->ws, 0, "");
    check_resolve(f->ws, f->ws, p = at(f->ws, "sub/file2"), 0, "/sub/file2"), xfree(p);
    check_resolve(f->ws, f->ws, p = at(f->ws, "sub/../file.txt"), 0, "/file.txt"), xfree(p);
    /* A sibling whose name starts with the root's name is outside. */
    check_resolve(f->ws, f->ws, p = at(f->tmp, "ws-other/x"), -EACCES, NULL), xfree(p);
    check_resolve(f->ws, f->ws, p = at(f->tmp, "out/secret"), -EACCES, NULL), xfree(p);
    /* Through a link to the root from outside: refused, like the original's lexical check. */
    check_resolve(f->ws, f->ws, p = at(f->tmp, "wslink/file.txt"), -EACCES, NULL), xfree(p);
}

/* The root given through a symlink: absolute paths in either spelling are accepted and the
 * result is the canonical path. */
static void test_resolve_noncanonical_root(void **state)
{
    struct fx *f = *state;
    char *root = at(f->tmp, "wslink"), *p;
    check_resolve(root, f->ws, "file.txt", 0, "/file.txt");
    check_resolve(root, f->ws, p = at(root, "sub/file2"), 0, "/sub/file2"), xfree(p);
    check_resolve(root, f->ws, p = at(f->ws, "sub/file2"), 0, "/sub/file2"), xfree(p);
    check_resolve(root, f->ws, "../out/secret", -EACCES, NULL);
    check_resolve(root, f->ws, "link_out/secret", -EACCES, NULL);
    xfree(root);
}

static void test_resolve_messages(void **state)
{
    struct fx *f = *state;
    char *out = NULL, *err = NULL, *want;
    assert_int_equal(workspace_resolve(f->ws, "/etc/passwd", &out, &err), -EACCES);
    want =
        xasprintf("Access denied - path outside allowed directories: /etc/passwd not in %s", f->ws);
    assert_string_equal(err, want);
    xfree(want), xfree(err);

    assert_int_equal(workspace_resolve(f->ws, "sub/../../x", &out, &err), -EACCES);
    want = xasprintf("Access denied - path outside allowed directories: %s/x not in %s", f->tmp,
                     f->ws);
    assert_string_equal(err, want);
    xfree(want), xfree(err);

    assert_int_equal(workspace_resolve(f->ws, "link_out/secret", &out, &err), -EACCES);
    want = xasprintf("Access denied - symlink target outside allowed directories: "
                     "%s/out/secret not in %s",
                     f->tmp, f->ws);
    assert_string_equal(err, want);
    xfree(want), xfree(err);

    assert_int_equal(workspace_resolve(f->ws, "file.txt/x", &out, &err), -ENOTDIR);
    want = xasprintf("ENOTDIR: not a directory, lstat '%s/file.txt'", f->ws);
    assert_string_equal(err, want);
    xfree(want), xfree(err);

    char *missing = at(f->tmp, "no-such-root");
    assert_int_equal(workspace_resolve(missing, "x", &out, &err), -ENOENT);
    assert_null(out);
    assert_true(strncmp(err, "Workspace unavailable: ENOENT", 29) == 0);
    xfree(err), xfree(missing);
}

static void test_resolve_long_paths(void **state)
{
    struct fx *f = *state;
    char *out = NULL, *err = NULL;
    /* Longer than PATH_MAX by itself. */
    char *p = xmalloc(PATH_MAX + 10);
    for (size_t i = 0; i < PATH_MAX + 8; i += 2)
        p[i] = 'a', p[i + 1] = '/';
    p[PATH_MAX + 8] = '\0';
    assert_int_equal(workspace_resolve(f->ws, p, &out, &err), -ENAMETOOLONG);
    assert_string_equal(err, "ENAMETOOLONG: name too long");
    xfree(err);
    /* Short enough alone, too long once joined to the root. */
    p[PATH_MAX - 4] = '\0';
    assert_int_equal(workspace_resolve(f->ws, p, &out, &err), -ENAMETOOLONG);
    assert_null(out);
    xfree(err);
    /* One component longer than NAME_MAX. */
    memset(p, 'b', NAME_MAX + 1);
    p[NAME_MAX + 1] = '\0';
    assert_int_equal(workspace_resolve(f->ws, p, &out, &err), -ENAMETOOLONG);
    xfree(err);
    /* Long but legal: many short components of a missing tail. */
    for (size_t i = 0; i < 2000; i += 2)
        p[i] = 'c', p[i + 1] = '/';
    p[1999] = '\0';
    assert_int_equal(workspace_resolve(f->ws, p, &out, &err), 0);
    assert_int_equal(strlen(out), strlen(f->ws) + 1 + 1999);
    xfree(out);
    xfree(p);
}

/* ---------------------------------------------------------------- workspace_path */

static void test_path_rules(void **state)
{
    struct fx *f = *state;
    char old[PATH_MAX];
    assert_non_null(getcwd(old, sizeof(old)));
    assert_int_equal(chdir(f->ws), 0);
    char *saved_home = getenv("HOME") ? xstrdup(getenv("HOME")) : NULL;
    setenv("HOME", "/home/tester", 1);

    char *parent = xstrdup(f->tmp);
    static const struct {
        const char *configured, *session;
        bool isolate;
        int base; /* 0: want is absolute, 1: relative to cwd, 2: to cwd's parent */
        const char *want;
    } cases[] = {
        {NULL, NULL, false, 1, "/agent-tars-workspace"},
        {"", NULL, false, 1, "/agent-tars-workspace"},
        {"", "s1", true, 1, "/agent-tars-workspace/s1"},
        {NULL, "s1", false, 1, "/agent-tars-workspace"},
        {"~", NULL, false, 0, "/home/tester"},
        {"~/ws", NULL, false, 0, "/home/tester/ws"},
        {"~x", NULL, false, 0, "/home/testerx"},
        {"~/ws", "s1", true, 0, "/home/tester/ws/s1"},
        {"/abs/ws", NULL, false, 0, "/abs/ws"},
        {"/abs/ws", "s1", true, 0, "/abs/ws/s1"},
        {"/abs/ws/", "s1", true, 0, "/abs/ws/s1"},
        {"/abs/ws", "s1", false, 0, "/abs/ws"},
        {"/abs/ws", NULL, true, 0, "/abs/ws"},
        {"/abs/ws", "", true, 0, "/abs/ws"},
        {"/abs/./x/", NULL, false, 0, "/abs/./x/"}, /* absolute: used as is */
        {"rel", NULL, false, 1, "/rel"},
        {"./rel/", NULL, false, 1, "/rel"},
        {"a/../b", NULL, false, 1, "/b"},
        {"rel", "s1", true, 1, "/rel/s1"},
        {"../up", NULL, false, 2, "/up"},
        {"../../../../../../../../x", NULL, false, 0, "/x"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *got = workspace_path(cases[i].configured, cases[i].session, cases[i].isolate);
        const char *base = cases[i].base == 1 ? f->ws : cases[i].base == 2 ? parent : "";
        char *want = xasprintf("%s%s", base, cases[i].want);
        if (strcmp(got, want) != 0)
            fail_msg("case %zu: got '%s', want '%s'", i, got, want);
        xfree(got), xfree(want);
    }
    /* Without HOME, the password database gives some absolute home. */
    unsetenv("HOME");
    char *got = workspace_path("~/w", NULL, false);
    assert_true(got[0] == '/');
    assert_true(strlen(got) > 2 && strcmp(got + strlen(got) - 2, "/w") == 0);
    xfree(got);

    if (saved_home != NULL)
        setenv("HOME", saved_home, 1);
    xfree(saved_home), xfree(parent);
    assert_int_equal(chdir(old), 0);
}

static void test_mkdirs(void **state)
{
    struct fx *f = *state;
    char *p = at(f->tmp, "made/a/b//c");
    assert_int_equal(workspace_mkdirs(p), 0);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    mode_t mask = umask(0);
    umask(mask);
    assert_int_equal(st.st_mode & 0777, 0755 & ~mask);
    assert_int_equal(workspace_mkdirs(p), 0); /* again: already there */
    xfree(p);

    p = at(f->ws, "file.txt");
    assert_int_equal(workspace_mkdirs(p), -EEXIST);
    xfree(p);
    p = at(f->ws, "file.txt/below");
    assert_int_equal(workspace_mkdirs(p), -ENOTDIR);
    xfree(p);
    assert_int_equal(workspace_mkdirs(""), -EINVAL);
    assert_int_equal(workspace_mkdirs(NULL), -EINVAL);
    assert_int_equal(workspace_mkdirs("/"), 0);
}

int main(void)
{
    json_set_alloc_funcs(xmalloc, xfree);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_resolve_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_absolute, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_noncanonical_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_long_paths, setup, teardown),
        cmocka_unit_test_setup_teardown(test_path_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mkdirs, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
