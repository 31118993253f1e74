/* SPDX-License-Identifier: MIT */
/* files.c -- the workspace routes (anchor-api.md F11-F13). They stat and list directories on the
 * loop thread: bounded (entries, depth, results), like any other short syscall we make there. */
#include <dirent.h>
#include <stdio.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include "../core/util.h"
#include "../core/xalloc.h"
#include "../tools/tools.h"
#include "api_int.h"

#define MAX_LIST_ENTRIES 5000
#define SEARCH_MAX_DEPTH 5
#define SEARCH_MAX_VISITS 20000
#define SEARCH_RESULTS 20

static void iso_time(time_t t, char out[32])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

static bool skipped_name(const char *name)
{
    return name[0] == '.' || strcmp(name, "node_modules") == 0;
}

static int cmp_entries(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    bool dx = json_is_true(json_object_get(x, "isDirectory"));
    bool dy = json_is_true(json_object_get(y, "isDirectory"));
    if (dx != dy)
        return dx ? -1 : 1;
    return strcasecmp(json_get_str(x, "name"), json_get_str(y, "name"));
}

/* File names are bytes; JSON strings are UTF-8. A name that is not valid UTF-8 (from unzip, git
 * or the model) is shown with each invalid byte replaced by U+FFFD, in names and paths alike:
 * the entry is listed and found, but that path does not open it (issue 11: json_pack used to
 * return NULL on such a name, and the sort read it). */
static json_t *lossy(const char *s)
{
    return json_string_lossy(s, strlen(s));
}

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a);
    return xasprintf("%s%s%s", a, n && a[n - 1] == '/' ? "" : "/", b);
}

static json_t *list_dir(const char *abs, const char *reqpath)
{
    DIR *d = opendir(abs);
    if (d == NULL)
        return NULL;
    json_t **items = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < MAX_LIST_ENTRIES) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char *full = join(abs, de->d_name);
        struct stat st;
        if (stat(full, &st) == 0) {
            char when[32];
            iso_time(st.st_mtime, when);
            char *p = join(reqpath, de->d_name);
            if (n == cap)
                items = xrealloc(items, (cap = cap ? cap * 2 : 32) * sizeof(*items));
            items[n++] = json_pack("{s:o, s:b, s:I, s:s, s:o}", "name", lossy(de->d_name),
                                   "isDirectory", S_ISDIR(st.st_mode), "size",
                                   (json_int_t)st.st_size, "modified", when, "path", lossy(p));
            xfree(p);
        }
        xfree(full);
    }
    closedir(d);
    if (n > 0)
        qsort(items, n, sizeof(*items), cmp_entries);
    json_t *files = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(files, items[i]);
    xfree(items);
    return files;
}

/* Resolves a request path ("/sub/dir") inside the session's workspace. Answers the error itself
 * and returns NULL when it cannot. */
static char *resolve(struct http_req *req, struct agent_session *s, const char *reqpath)
{
    const char *rel = reqpath;
    while (*rel == '/')
        rel++;
    char *abs = NULL, *err = NULL;
    int rc = workspace_resolve(agent_session_workspace(s), *rel ? rel : ".", &abs, &err);
    if (rc < 0) {
        if (rc == -EACCES)
            http_respond_error(req, 403, "Access denied");
        else
            http_respond_error(req, 404, "Path not found");
        xfree(err);
        return NULL;
    }
    return abs;
}

/* Beyond the original: ?content=true adds the file's text (the first MAX_CONTENT_BYTES, invalid
 * UTF-8 replaced) so that a client can show it, with "truncated" when it was cut. */
#define MAX_CONTENT_BYTES (1 << 20)

static void add_content(struct http_req *req, json_t *j, const char *abs, size_t size)
{
    char *want = http_req_query_param(req, "content");
    bool on = want && (strcmp(want, "true") == 0 || strcmp(want, "1") == 0);
    xfree(want);
    if (!on)
        return;
    FILE *f = fopen(abs, "rb");
    if (f == NULL)
        return;
    size_t n = size < MAX_CONTENT_BYTES ? size : MAX_CONTENT_BYTES;
    char *data = xmalloc(n + 1);
    n = fread(data, 1, n, f);
    fclose(f);
    json_object_set_new(j, "content", json_string_lossy(data, n));
    json_object_set_new(j, "truncated", json_boolean(n < size));
    xfree(data);
}

/* F11 */
void api__workspace_files(struct http_req *req, struct agent_session *s)
{
    char *p = http_req_query_param(req, "path");
    const char *reqpath = p && *p ? p : "/";
    char *abs = resolve(req, s, reqpath);
    struct stat st;
    if (abs == NULL) {
        /* answered */
    } else if (stat(abs, &st) < 0) {
        http_respond_error(req, 404, "Path not found");
    } else if (S_ISREG(st.st_mode)) {
        char when[32];
        iso_time(st.st_mtime, when);
        const char *base = strrchr(abs, '/');
        json_t *j = json_pack("{s:s, s:o, s:I, s:s, s:o}", "type", "file", "name",
                              lossy(base ? base + 1 : abs), "size", (json_int_t)st.st_size,
                              "modified", when, "path", lossy(reqpath));
        add_content(req, j, abs, (size_t)st.st_size);
        http_respond_json(req, 200, j);
        json_decref(j);
    } else if (S_ISDIR(st.st_mode)) {
        json_t *files = list_dir(abs, reqpath);
        if (files == NULL) {
            api__error2(req, 500, "Failed to access workspace files", strerror(errno));
        } else {
            json_t *j = json_pack("{s:s, s:o, s:o}", "type", "directory", "path", lossy(reqpath),
                                  "files", files);
            http_respond_json(req, 200, j);
            json_decref(j);
        }
    } else {
        http_respond_error(req, 400, "Invalid path type");
    }
    xfree(abs);
    xfree(p);
}

/* ---- F12 search ---- */

struct hit {
    json_t *item;
    int score;
};

struct search {
    const char *q;      /* lowercased */
    const char *type;   /* "file", "directory" or "all" */
    const char *root;
    struct hit *hits;
    size_t n, cap, visits;
};

static int score_of(const char *name, const char *rel, const char *q, int depth)
{
    char *ln = xstrdup(name), *lr = xstrdup(rel);
    for (char *c = ln; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    for (char *c = lr; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    int score = 0;
    size_t nl = strlen(ln), ql = strlen(q);
    if (strcmp(ln, q) == 0)
        score = 1000;
    else if (strncmp(ln, q, ql) == 0)
        score = 800;
    else if (nl >= ql && strcmp(ln + nl - ql, q) == 0)
        score = 600;
    else if (strstr(ln, q))
        score = 400;
    else if (strstr(lr, q))
        score = 200;
    xfree(ln);
    xfree(lr);
    return score ? score - depth * 10 : 0;
}

static void add_hit(struct search *se, const char *name, const char *abs, const char *rel,
                    bool dir, int score)
{
    if (se->n == se->cap)
        se->hits = xrealloc(se->hits, (se->cap = se->cap ? se->cap * 2 : 64) * sizeof(*se->hits));
    se->hits[se->n].item = json_pack("{s:o, s:o, s:s, s:o}", "name", lossy(name), "path",
                                     lossy(abs), "type", dir ? "directory" : "file",
                                     "relativePath", lossy(rel));
    se->hits[se->n].score = score + (dir ? 1 : 0);
    se->n++;
}

static void walk(struct search *se, const char *abs, const char *rel, int depth)
{
    DIR *d = opendir(abs);
    if (d == NULL)
        return;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && se->visits < SEARCH_MAX_VISITS) {
        if (skipped_name(de->d_name))
            continue;
        se->visits++;
        char *full = join(abs, de->d_name);
        char *r = *rel ? join(rel, de->d_name) : xstrdup(de->d_name);
        struct stat st;
        if (lstat(full, &st) == 0) {
            bool dir = S_ISDIR(st.st_mode);
            bool wanted = strcmp(se->type, "all") == 0 ||
                          (dir ? strcmp(se->type, "directory") == 0 : strcmp(se->type, "file") == 0);
            int score = *se->q ? score_of(de->d_name, r, se->q, depth) : 1;
            if (wanted && score > 0)
                add_hit(se, de->d_name, full, r, dir, score);
            if (dir && *se->q && depth < SEARCH_MAX_DEPTH)
                walk(se, full, r, depth + 1);
        }
        xfree(full);
        xfree(r);
    }
    closedir(d);
}

static int cmp_hits(const void *a, const void *b)
{
    const struct hit *x = a, *y = b;
    if (x->score != y->score)
        return y->score - x->score;
    return strcasecmp(json_get_str(x->item, "name"), json_get_str(y->item, "name"));
}

void api__workspace_search(struct http_req *req, struct agent_session *s)
{
    char *q = http_req_query_param(req, "q");
    char *type = http_req_query_param(req, "type");
    if (q == NULL) {
        http_respond_error(req, 400, "Search query parameter is required");
        xfree(type);
        return;
    }
    for (char *c = q; *c; c++)
        *c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    struct search se = {.q = q, .type = type && *type ? type : "all",
                        .root = agent_session_workspace(s)};
    walk(&se, se.root, "", 0);
    if (se.n > 0)
        qsort(se.hits, se.n, sizeof(*se.hits), cmp_hits);
    json_t *items = json_array();
    for (size_t i = 0; i < se.n; i++) {
        if (i < SEARCH_RESULTS)
            json_array_append(items, se.hits[i].item);
        json_decref(se.hits[i].item);
    }
    xfree(se.hits);
    json_t *j = json_pack("{s:o}", "items", items);
    http_respond_json(req, 200, j);
    json_decref(j);
    xfree(q);
    xfree(type);
}

/* F13 */
void api__workspace_validate(struct http_req *req, struct agent_session *s, const json_t *body)
{
    const json_t *paths = json_object_get(body, "paths");
    if (!json_is_array(paths)) {
        http_respond_error(req, 400, "Paths array is required");
        return;
    }
    json_t *results = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(paths, i, p)
    {
        const char *path = json_string_value(p);
        if (path == NULL)
            continue;
        char *abs = NULL, *err = NULL;
        const char *rel = path;
        while (*rel == '/')
            rel++;
        int rc = workspace_resolve(agent_session_workspace(s), *rel ? rel : ".", &abs, &err);
        struct stat st;
        json_t *r = json_pack("{s:s}", "path", path);
        if (rc == -EACCES) {
            json_object_set_new(r, "exists", json_false());
            json_object_set_new(r, "error", json_string("Path outside workspace"));
        } else if (rc < 0 || stat(abs, &st) < 0) {
            json_object_set_new(r, "exists", json_false());
        } else {
            json_object_set_new(r, "exists", json_true());
            json_object_set_new(r, "type", json_string(S_ISDIR(st.st_mode) ? "directory" : "file"));
        }
        json_array_append_new(results, r);
        xfree(abs);
        xfree(err);
    }
    json_t *j = json_pack("{s:o}", "results", results);
    http_respond_json(req, 200, j);
    json_decref(j);
}
