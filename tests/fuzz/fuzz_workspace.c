/* SPDX-License-Identifier: MIT */
/* fuzz_workspace.c -- workspace path confinement (src/tools/workspace.c). A fixed tree is made
 * once: <tmp>/outside, and <tmp>/ws with a/b, a symlink in (in -> a), symlinks out (out ->
 * ../outside, abs -> /), a dangling link, a link loop and a chain. Properties: a resolved path
 * is the real root or below it, by whole components; the lexical resolver's result is absolute
 * and normalized (no empty, "." or ".." components). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "tools/tools.h"
#include "tools/tools_int.h"

static char root[PATH_MAX], real_root[PATH_MAX];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char base[64];
    snprintf(base, sizeof(base), "/tmp/fuzz-ws-%d", (int)getpid());
    snprintf(root, sizeof(root), "%s/ws", base);
    char p[PATH_MAX + 64];
    mkdir(base, 0700);
    mkdir(root, 0700);
    snprintf(p, sizeof(p), "%s/outside", base), mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/a", root), mkdir(p, 0700);
    snprintf(p, sizeof(p), "%s/a/b", root), mkdir(p, 0700);
    static const char *const links[][2] = {
        {"in", "a"},          {"out", "../outside"}, {"abs", "/"},         {"dangling", "nope/x"},
        {"loop", "loop"},     {"chain", "in/b"},     {"up", "a/../../ws"}, {"a/b/back", "../.."},
        {"a/esc", "../../outside"},
    };
    for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", root, links[i][0]);
        if (symlink(links[i][1], p) != 0 && access(p, F_OK) != 0)
            ; /* already there from an earlier run */
    }
    if (!realpath(root, real_root))
        abort();
    return 0;
}

static void check_lexical(const char *base, const char *path)
{
    char *r = tool__path_resolve(base, path);
    if (r[0] != '/' || strstr(r, "//") || strstr(r, "/./") || strstr(r, "/../"))
        abort();
    size_t n = strlen(r);
    if ((n > 1 && r[n - 1] == '/') || (n >= 2 && strcmp(r + n - 2, "/.") == 0) ||
        (n >= 3 && strcmp(r + n - 3, "/..") == 0))
        abort();
    xfree(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    if (size > 1024)
        return 0;
    char *path = xstrndup((const char *)data, size); /* stops at the first NUL, as C callers */
    check_lexical(root, path);
    check_lexical("/", path);
    char *out = NULL, *err = NULL;
    int rc = workspace_resolve(root, path, &out, &err);
    if (rc == 0) {
        size_t n = strlen(real_root);
        if (!out || strncmp(out, real_root, n) != 0 || (out[n] != '\0' && out[n] != '/'))
            abort(); /* escaped the workspace */
    } else if (!err) {
        abort();
    }
    xfree(out);
    xfree(err);
    xfree(path);
    return 0;
}
