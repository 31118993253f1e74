/* SPDX-License-Identifier: MIT */
/* workspace.c -- where the workspace directory is (anchor-api.md §1.3) and the confinement of
 * tool paths to it. Confinement follows the original filesystem server: a lexical check of the
 * normalized absolute path first, then the physical path (symlinks followed one component at a
 * time, so dangling links and missing tails are judged too) must still be inside the root. */
#include "tools.h"

#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/xalloc.h"
#include "tools_int.h"

/* Linux's own limit on symlinks followed while resolving one path (MAXSYMLINKS). */
#define WS_MAX_LINKS 40

/* ---------------------------------------------------------------- lexical paths */

char *tool__path_resolve(const char *base, const char *path)
{
    char *joined = path[0] == '/' ? xstrdup(path) : xasprintf("%s/%s", base, path);
    char *out = xmalloc(strlen(joined) + 2);
    size_t len = 0;
    const char *p = joined;
    while (*p != '\0') {
        while (*p == '/')
            p++;
        const char *s = p;
        while (*p != '\0' && *p != '/')
            p++;
        size_t n = (size_t)(p - s);
        if (n == 0 || (n == 1 && s[0] == '.'))
            continue;
        if (n == 2 && s[0] == '.' && s[1] == '.') {
            while (len > 0 && out[len - 1] != '/')
                len--;
            if (len > 0)
                len--; /* the slash before the popped component */
            continue;
        }
        out[len++] = '/';
        memcpy(out + len, s, n);
        len += n;
    }
    if (len == 0)
        out[len++] = '/';
    out[len] = '\0';
    xfree(joined);
    return out;
}

/* True if `path` is `dir` or below it. Both are normalized; comparing whole components keeps
 * "/ws-other" out of "/ws". */
static bool path_within(const char *dir, const char *path)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return path[0] == '/';
    return strncmp(dir, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* ---------------------------------------------------------------- workspace_path */

static char *current_dir(void)
{
    char buf[PATH_MAX];
    if (getcwd(buf, sizeof(buf)) != NULL)
        return xstrdup(buf);
    /* The cwd was deleted or is too deep. Node's process.cwd() would throw; we keep going
     * somewhere harmless rather than refuse to start. */
    const char *pwd = getenv("PWD");
    log_warn("cannot get the current directory: %s", strerror(errno));
    return xstrdup(pwd != NULL && pwd[0] == '/' ? pwd : "/tmp");
}

/* $HOME first, then the password database, as Node's os.homedir(). */
static char *home_dir(void)
{
    const char *home = getenv("HOME");
    if (home != NULL && home[0] != '\0')
        return xstrdup(home);
    char buf[4096];
    struct passwd pw, *res = NULL;
    if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) == 0 && res != NULL)
        return xstrdup(pw.pw_dir);
    return xstrdup("/");
}

char *workspace_path(const char *configured, const char *session_id, bool isolate)
{
    char *base;
    if (configured == NULL || configured[0] == '\0') {
        char *cwd = current_dir();
        base = tool__path_resolve(cwd, "agent-tars-workspace");
        xfree(cwd);
    } else if (configured[0] == '~') {
        /* Plain string replacement of the leading "~" only: "~x" becomes "<home>x". */
        char *home = home_dir();
        base = xasprintf("%s%s", home, configured + 1);
        xfree(home);
    } else if (configured[0] == '/') {
        base = xstrdup(configured);
    } else {
        char *cwd = current_dir();
        base = tool__path_resolve(cwd, configured);
        xfree(cwd);
    }
    if (!isolate || session_id == NULL || session_id[0] == '\0')
        return base;
    size_t n = strlen(base);
    char *full = xasprintf("%s%s%s", base, n > 0 && base[n - 1] == '/' ? "" : "/", session_id);
    xfree(base);
    return full;
}

int workspace_mkdirs(const char *path)
{
    if (path == NULL || path[0] == '\0')
        return -EINVAL;
    size_t n = strlen(path);
    if (n >= PATH_MAX)
        return -ENAMETOOLONG;
    char tmp[PATH_MAX];
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (p[-1] != '/' && mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return -errno;
        *p = c;
        if (c == '\0')
            break;
    }
    struct stat st;
    if (stat(path, &st) < 0)
        return -errno;
    return S_ISDIR(st.st_mode) ? 0 : -EEXIST; /* Node's mkdir -p on a file says EEXIST */
}

/* ---------------------------------------------------------------- workspace_resolve */

/* State of one physical resolution: `cur` is the resolved prefix (always a real path of
 * existing directories, except once `missing` is set); `rest` is what is left to walk. */
struct walk {
    char cur[PATH_MAX];
    size_t len;
    char *rest;   /* heap; replaced when a symlink is expanded */
    size_t pos;   /* offset of the next component in rest */
    int links;    /* symlinks followed so far */
    bool missing; /* a component did not exist: the rest is appended lexically */
};

static void walk_pop(struct walk *w)
{
    while (w->len > 1 && w->cur[w->len - 1] != '/')
        w->len--;
    if (w->len > 1)
        w->len--;
    w->cur[w->len] = '\0';
}

static int walk_push(struct walk *w, const char *s, size_t n)
{
    size_t slash = w->len == 1 && w->cur[0] == '/' ? 0 : 1;
    if (w->len + slash + n >= sizeof(w->cur))
        return -ENAMETOOLONG;
    if (slash)
        w->cur[w->len++] = '/';
    memcpy(w->cur + w->len, s, n);
    w->len += n;
    w->cur[w->len] = '\0';
    return 0;
}

/* Replaces the symlink just pushed (cur[mark..]) by its target, which is walked next. */
static int walk_follow(struct walk *w, size_t mark, char **err)
{
    char target[PATH_MAX];
    if (++w->links > WS_MAX_LINKS) {
        *err = tool__errno_msg(-ELOOP, "lstat", w->cur);
        return -ELOOP;
    }
    ssize_t n = readlink(w->cur, target, sizeof(target));
    if (n < 0 || (size_t)n >= sizeof(target)) {
        int rc = n < 0 ? -errno : -ENAMETOOLONG;
        *err = tool__errno_msg(rc, "readlink", w->cur);
        return rc;
    }
    target[n] = '\0';
    const char *tail = w->rest + w->pos;
    char *rest = tail[0] == '\0' ? xstrdup(target) : xasprintf("%s/%s", target, tail);
    if (strlen(rest) >= 2 * PATH_MAX) {
        xfree(rest);
        *err = tool__errno_msg(-ENAMETOOLONG, "readlink", w->cur);
        return -ENAMETOOLONG;
    }
    xfree(w->rest);
    w->rest = rest;
    w->pos = 0;
    w->len = target[0] == '/' ? 1 : mark;
    w->cur[w->len] = '\0';
    return 0;
}

/* Walks one component of w->rest. Returns 0 or <0 with *err set. */
static int walk_step(struct walk *w, const char *s, size_t n, char **err)
{
    if (n == 2 && s[0] == '.' && s[1] == '.') {
        if (w->missing) { /* the kernel could not go through the missing directory either */
            *err = tool__errno_msg(-ENOENT, "lstat", w->cur);
            return -ENOENT;
        }
        walk_pop(w);
        return 0;
    }
    size_t mark = w->len;
    if (walk_push(w, s, n) < 0) {
        *err = tool__errno_msg(-ENAMETOOLONG, NULL, NULL);
        return -ENAMETOOLONG;
    }
    if (w->missing)
        return 0;
    struct stat st;
    if (lstat(w->cur, &st) < 0) {
        if (errno == ENOENT) {
            w->missing = true;
            return 0;
        }
        int rc = -errno;
        *err = tool__errno_msg(rc, "lstat", w->cur);
        return rc;
    }
    if (S_ISLNK(st.st_mode))
        return walk_follow(w, mark, err);
    if (!S_ISDIR(st.st_mode) && w->rest[w->pos] != '\0') {
        *err = tool__errno_msg(-ENOTDIR, "lstat", w->cur);
        return -ENOTDIR;
    }
    return 0;
}

/* Resolves `rel` physically below the real directory `start`. */
static int walk_path(const char *start, const char *rel, char **out, char **err)
{
    struct walk w = {.rest = xstrdup(rel)};
    w.len = strlen(start);
    memcpy(w.cur, start, w.len + 1); /* start is a realpath result: < PATH_MAX */
    int rc = 0;
    while (rc == 0 && w.rest[w.pos] != '\0') {
        while (w.rest[w.pos] == '/')
            w.pos++;
        const char *s = w.rest + w.pos;
        size_t n = strcspn(s, "/");
        w.pos += n;
        if (n == 0 || (n == 1 && s[0] == '.'))
            continue;
        char comp[NAME_MAX + 1];
        if (n > NAME_MAX) {
            *err = tool__errno_msg(-ENAMETOOLONG, NULL, NULL);
            rc = -ENAMETOOLONG;
            break;
        }
        memcpy(comp, s, n); /* walk_step may replace w.rest under s */
        rc = walk_step(&w, comp, n, err);
    }
    if (rc == 0)
        *out = xstrndup(w.cur, w.len);
    xfree(w.rest);
    return rc;
}

/* The lexical half: the absolute normalized form of path, which must lie inside the root as
 * configured or as canonicalized; the result is re-based on the canonical root. */
static int lexical_check(const char *root, const char *real_root, const char *path, char **abs_out,
                         char **err)
{
    char *abs = tool__path_resolve(real_root, path);
    char *norm_root = tool__path_resolve("/", root);
    int rc = 0;
    if (!path_within(real_root, abs) && path_within(norm_root, abs)) {
        char *rebased = xasprintf("%s%s", real_root, abs + strlen(norm_root));
        xfree(abs);
        abs = rebased;
    }
    if (!path_within(real_root, abs)) {
        *err = xasprintf("Access denied - path outside allowed directories: %s not in %s", abs,
                         real_root);
        rc = -EACCES;
    } else if (strlen(abs) >= PATH_MAX) {
        *err = tool__errno_msg(-ENAMETOOLONG, NULL, NULL);
        rc = -ENAMETOOLONG;
    }
    xfree(norm_root);
    if (rc < 0)
        xfree(abs);
    else
        *abs_out = abs;
    return rc;
}

int workspace_resolve(const char *root, const char *path, char **out, char **err)
{
    *out = NULL;
    *err = NULL;
    if (path == NULL || path[0] == '\0') {
        *err = xstrdup("Invalid path: the path is empty");
        return -EINVAL;
    }
    if (strlen(path) >= PATH_MAX) {
        *err = tool__errno_msg(-ENAMETOOLONG, NULL, NULL);
        return -ENAMETOOLONG;
    }
    char real_root[PATH_MAX];
    if (root == NULL || realpath(root, real_root) == NULL) {
        int rc = root == NULL ? -EINVAL : -errno;
        char *why = tool__errno_msg(rc, "realpath", root ? root : "(null)");
        *err = xasprintf("Workspace unavailable: %s", why);
        xfree(why);
        return rc;
    }
    char *abs = NULL;
    int rc = lexical_check(root, real_root, path, &abs, err);
    if (rc < 0)
        return rc;
    char *phys = NULL;
    rc = walk_path(real_root, abs + strlen(real_root), &phys, err);
    xfree(abs);
    if (rc < 0)
        return rc;
    if (!path_within(real_root, phys)) {
        *err = xasprintf("Access denied - symlink target outside allowed directories: %s not in %s",
                         phys, real_root);
        xfree(phys);
        return -EACCES;
    }
    *out = phys;
    return 0;
}
