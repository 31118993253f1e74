/* SPDX-License-Identifier: MIT */
/* tool_walk.c -- the tools that walk a directory tree: directory_tree (Agent TARS's own "safe"
 * version, {path, maxDepth=3, maxFiles=1000, excludePatterns}, anchor-api.md §6.1) and
 * search_files (the filesystem server's case-insensitive name search). Both skip dependency and
 * build folders and cap depth and output, since a huge tree is what made users of the original
 * hit "prompt too long". Directories are opened with openat(O_NOFOLLOW) below the confined
 * root, so the walk never follows a symlink. Runs on a threadpool thread. */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/util.h"
#include "core/xalloc.h"
#include "tools.h"
#include "tools_int.h"

#define TREE_MAX_DEPTH 20        /* maxDepth is clamped to this */
#define TREE_MAX_FILES 5000      /* and maxFiles to this */
#define WALK_SCAN_MAX 100000     /* entries read and sorted per directory */
#define SEARCH_MAX_DEPTH 32      /* search_files goes at most this deep */
#define SEARCH_MAX_RESULTS 1000  /* and lists at most this many matches */
#define SEARCH_MAX_VISITS 200000 /* and looks at at most this many entries */

/* Agent TARS's default exclusions for directory_tree. */
static const char *const tree_excludes[] = {
    "node_modules", ".git",   "dist", "build", ".next", ".nuxt",     "coverage",  ".nyc_output",
    "logs",         ".cache", "tmp",  "temp",  "*.log", ".DS_Store", "Thumbs.db",
};

/* Folders search_files does not descend into (they are still matched by name). */
static const char *const search_skips[] = {
    "node_modules", ".git",     ".hg",         ".svn",   ".next",       ".nuxt", "dist",
    "build",        "coverage", ".nyc_output", ".cache", "__pycache__", ".venv",
};

static bool in_list(const char *const *list, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0)
            return true;
    return false;
}

/* Opens the directory `name` below the open directory fd without following a symlink. */
static int open_subdir(int fd, const char *name)
{
    return openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* The sorted entries of the open directory fd (which stays open). */
static size_t read_entries(int fd, struct tool_dirent **ents)
{
    size_t total;
    int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (d == NULL) {
        if (dfd >= 0)
            close(dfd);
        *ents = NULL;
        return 0;
    }
    return tool__read_dir(d, WALK_SCAN_MAX, ents, &total);
}

/* Optional array-of-strings argument; sets call->error when it has another type. */
static const json_t *arg_strings(struct tool_call *call, const char *key)
{
    const json_t *v = json_object_get(call->args, key);
    if (v == NULL || json_is_null(v))
        return NULL;
    bool ok = json_is_array(v);
    size_t i;
    const json_t *s;
    json_array_foreach(v, i, s) ok = ok && json_is_string(s);
    if (!ok)
        call->error =
            xasprintf("Invalid arguments for %s: %s must be an array of strings", call->name, key);
    return v;
}

/* Optional number argument, floored and clamped to [0, max]; def when absent. */
static long arg_count(struct tool_call *call, const char *key, long def, long max)
{
    const json_t *v = json_object_get(call->args, key);
    if (v == NULL || json_is_null(v))
        return def;
    if (!json_is_number(v)) {
        if (call->error == NULL)
            call->error =
                xasprintf("Invalid arguments for %s: %s must be a number", call->name, key);
        return def;
    }
    double d = json_number_value(v);
    return d <= 0 ? 0 : d >= (double)max ? max : (long)d;
}

/* ---------------------------------------------------------------- directory_tree */

json_t *tool__directory_tree_schema_new(void)
{
    json_t *defaults = json_array();
    for (size_t i = 0; i < sizeof(tree_excludes) / sizeof(tree_excludes[0]); i++)
        json_array_append_new(defaults, json_string(tree_excludes[i]));
    return json_pack(
        "{s:s, s:{s:{s:s, s:s}, s:{s:s, s:i, s:s}, s:{s:s, s:i, s:s}, s:{s:s, s:{s:s}, s:o, s:s}},"
        " s:[s]}",
        "type", "object", "properties", "path", "type", "string", "description",
        "The directory to show", "maxDepth", "type", "number", "default", 3, "description",
        "How many levels to go down (default 3)", "maxFiles", "type", "number", "default", 1000,
        "description", "How many entries to show at most (default 1000)", "excludePatterns", "type",
        "array", "items", "type", "string", "default", defaults, "description",
        "Names to leave out; a pattern with * is a glob", "required", "path");
}

struct tree_walk {
    struct tool_call *call;
    const json_t *excludes; /* array of strings, or NULL for the defaults */
    long max_depth;
    long max_files;
    long count; /* entries included so far */
};

/* The original's rule: a pattern with '*' is a (case-insensitive) glob, otherwise the name must
 * be equal. */
static bool tree_excluded(const struct tree_walk *w, const char *name)
{
    size_t n = w->excludes ? json_array_size(w->excludes)
                           : sizeof(tree_excludes) / sizeof(tree_excludes[0]);
    for (size_t i = 0; i < n; i++) {
        const char *p =
            w->excludes ? json_string_value(json_array_get(w->excludes, i)) : tree_excludes[i];
        if (strchr(p, '*') ? fnmatch(p, name, FNM_CASEFOLD) == 0 : strcmp(p, name) == 0)
            return true;
    }
    return false;
}

/* The entries of the open directory fd (closed here) at `depth`, as [{name, type, children}].
 * As in the original, an entry counts once its children are done, and a directory that cannot
 * be read is shown empty. */
static json_t *tree_level(struct tree_walk *w, int fd, long depth)
{
    json_t *out = json_array();
    if (depth >= w->max_depth || w->count >= w->max_files || atomic_load(w->call->aborted)) {
        close(fd);
        return out;
    }
    struct tool_dirent *ents;
    size_t n = read_entries(fd, &ents);
    for (size_t i = 0; i < n && w->count < w->max_files; i++) {
        if (tree_excluded(w, ents[i].name))
            continue;
        json_t *e =
            json_pack("{s:o, s:s}", "name", json_string_lossy(ents[i].name, strlen(ents[i].name)),
                      "type", ents[i].dir ? "directory" : "file");
        if (ents[i].dir) {
            int cfd = depth + 1 < w->max_depth ? open_subdir(fd, ents[i].name) : -1;
            json_object_set_new(e, "children",
                                cfd >= 0 ? tree_level(w, cfd, depth + 1) : json_array());
        }
        json_array_append_new(out, e);
        w->count++;
    }
    tool__dirents_free(ents, n);
    close(fd);
    return out;
}

void tool__directory_tree_run(struct tool_call *call)
{
    const char *path = tool__arg_str(call, "path");
    struct tree_walk w = {.call = call};
    w.max_depth = arg_count(call, "maxDepth", 3, TREE_MAX_DEPTH);
    w.max_files = arg_count(call, "maxFiles", 1000, TREE_MAX_FILES);
    w.excludes = arg_strings(call, "excludePatterns");
    char *real = NULL;
    if (call->error != NULL || workspace_resolve(call->root, path, &real, &call->error) < 0)
        return;
    int fd = open(real, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        call->error = tool__errno_msg(-errno, "scandir", real);
        xfree(real);
        return;
    }
    json_t *tree = tree_level(&w, fd, 0);
    char *dump = json_dumps(tree, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    char *shown = tool__path_resolve(call->root, path);
    char *text = xasprintf("Directory tree for %s (max depth: %ld, files included: %ld/%ld)\n\n%s",
                           shown, w.max_depth, w.count, w.max_files, dump);
    call->content = json_string_lossy(text, strlen(text));
    xfree(text);
    xfree(shown);
    xfree(dump);
    json_decref(tree);
    xfree(real);
}

/* ---------------------------------------------------------------- search_files */

json_t *tool__search_files_schema_new(void)
{
    return json_pack("{s:s, s:{s:{s:s}, s:{s:s, s:s}, s:{s:s, s:{s:s}, s:[], s:s}}, s:[s, s],"
                     " s:b}",
                     "type", "object", "properties", "path", "type", "string", "pattern", "type",
                     "string", "description", "Text the names must contain (any case)",
                     "excludePatterns", "type", "array", "items", "type", "string", "default",
                     "description", "Glob patterns of paths to leave out", "required", "path",
                     "pattern", "additionalProperties", 0);
}

/* Splits a '/'-separated path into its non-empty segments (pointers into the copy *buf). */
static size_t split_segs(const char *path, char **buf, char ***segs)
{
    *buf = xstrdup(path);
    size_t n = 0;
    *segs = xmalloc((strlen(path) / 2 + 2) * sizeof(**segs));
    for (char *p = *buf; *p != '\0';) {
        while (*p == '/')
            *p++ = '\0';
        if (*p == '\0')
            break;
        (*segs)[n++] = p;
        while (*p != '\0' && *p != '/')
            p++;
    }
    return n;
}

/* minimatch-style matching of segments: "**" takes any number of segments, others are fnmatch
 * globs; dot files are matched like any others ({dot: true} in the original). */
static bool glob_segs(char **pat, size_t np, char **seg, size_t ns)
{
    if (np == 0)
        return ns == 0;
    if (strcmp(pat[0], "**") == 0) {
        for (size_t k = 0; k <= ns; k++)
            if (glob_segs(pat + 1, np - 1, seg + k, ns - k))
                return true;
        return false;
    }
    return ns > 0 && fnmatch(pat[0], seg[0], 0) == 0 && glob_segs(pat + 1, np - 1, seg + 1, ns - 1);
}

/* The original's rule: a pattern with '*' is a glob of the path relative to the search root; a
 * plain name P excludes anything at or below a folder P (the original turns it into a globstar
 * pattern around P). */
static bool search_excluded(const json_t *excludes, const char *rel)
{
    size_t i;
    const json_t *v;
    bool hit = false;
    char *pbuf, *sbuf, **pat, **seg;
    size_t ns = split_segs(rel, &sbuf, &seg);
    json_array_foreach(excludes, i, v)
    {
        const char *p = json_string_value(v);
        char *glob = strchr(p, '*') ? xstrdup(p) : xasprintf("**/%s/**", p);
        size_t np = split_segs(glob, &pbuf, &pat);
        hit = np > 0 && glob_segs(pat, np, seg, ns);
        xfree(pat), xfree(pbuf), xfree(glob);
        if (hit)
            break;
    }
    xfree(seg), xfree(sbuf);
    return hit;
}

struct search_walk {
    struct tool_call *call;
    const char *root;       /* the real path searched */
    const char *pattern;    /* borrowed */
    const json_t *excludes; /* borrowed, may be NULL */
    struct buf out;
    size_t found;
    size_t visited;
    bool more_results; /* stopped at SEARCH_MAX_RESULTS */
    bool more_entries; /* stopped at SEARCH_MAX_VISITS */
};

static bool search_stop(struct search_walk *w)
{
    return w->more_results || w->more_entries || atomic_load(w->call->aborted);
}

static void search_match(struct search_walk *w, const char *rel)
{
    if (w->found == SEARCH_MAX_RESULTS) {
        w->more_results = true;
        return;
    }
    const char *root = strcmp(w->root, "/") == 0 ? "" : w->root;
    buf_appendf(&w->out, "%s%s/%s", w->found ? "\n" : "", root, rel);
    w->found++;
}

/* Depth-first, each directory's entries in name order; fd is closed here. */
static void search_dir(struct search_walk *w, int fd, const char *prefix, int depth)
{
    struct tool_dirent *ents;
    size_t n = read_entries(fd, &ents);
    for (size_t i = 0; i < n && !search_stop(w); i++) {
        if (++w->visited > SEARCH_MAX_VISITS) {
            w->more_entries = true;
            break;
        }
        char *rel = prefix ? xasprintf("%s/%s", prefix, ents[i].name) : xstrdup(ents[i].name);
        if (w->excludes == NULL || !search_excluded(w->excludes, rel)) {
            if (strcasestr(ents[i].name, w->pattern) != NULL)
                search_match(w, rel);
            int cfd = -1;
            if (ents[i].dir && depth + 1 < SEARCH_MAX_DEPTH &&
                !in_list(search_skips, sizeof(search_skips) / sizeof(search_skips[0]),
                         ents[i].name))
                cfd = open_subdir(fd, ents[i].name);
            if (cfd >= 0)
                search_dir(w, cfd, rel, depth + 1);
        }
        xfree(rel);
    }
    tool__dirents_free(ents, n);
    close(fd);
}

void tool__search_files_run(struct tool_call *call)
{
    const char *path = tool__arg_str(call, "path");
    const char *pattern = path ? tool__arg_str(call, "pattern") : NULL;
    struct search_walk w = {.call = call, .pattern = pattern};
    if (pattern != NULL)
        w.excludes = arg_strings(call, "excludePatterns");
    char *real = NULL;
    if (call->error != NULL || workspace_resolve(call->root, path, &real, &call->error) < 0)
        return;
    int fd = open(real, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        call->error = tool__errno_msg(-errno, "scandir", real);
        xfree(real);
        return;
    }
    w.root = real;
    buf_init(&w.out, (size_t)-1);
    search_dir(&w, fd, NULL, 0);
    if (w.found == 0)
        buf_append_lit(&w.out, "No matches found");
    if (w.more_results)
        buf_appendf(&w.out, "\n[truncated: more than %d matches, showing the first %d]",
                    SEARCH_MAX_RESULTS, SEARCH_MAX_RESULTS);
    if (w.more_entries)
        buf_appendf(&w.out, "\n[search stopped after looking at %d entries]", SEARCH_MAX_VISITS);
    call->content = json_string_lossy(buf_str(&w.out), w.out.len);
    buf_release(&w.out);
    xfree(real);
}
