/* SPDX-License-Identifier: MIT */
/* tool_fs.c -- the simple file tools of the original's filesystem MCP server (read_file,
 * read_multiple_files, write_file, create_directory, list_directory, move_file, get_file_info,
 * list_allowed_directories) with its names, argument schemas and result texts
 * (agent-tools-llm.md §2.1), plus the read/write helpers edit_file shares. Bodies run on a
 * threadpool thread; every path goes through workspace_resolve first. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/util.h"
#include "core/xalloc.h"
#include "tools.h"
#include "tools_int.h"

#define READ_MAX_BYTES (1024 * 1024)      /* read_file shows at most this much of a file */
#define MULTI_MAX_PATHS 100               /* read_multiple_files takes at most this many */
#define MULTI_MAX_BYTES (4 * 1024 * 1024) /* and shows at most this much in all */
#define LIST_MAX_ENTRIES 1000             /* list_directory shows at most this many entries */
#define LIST_SCAN_MAX 100000              /* and sorts at most this many (the rest are counted) */

/* ---------------------------------------------------------------- schemas */

static json_t *schema_object_new(json_t *props, json_t *required)
{
    return json_pack("{s:s, s:o, s:o, s:b}", "type", "object", "properties", props, "required",
                     required, "additionalProperties", 0);
}

static json_t *schema_path_new(void)
{
    return schema_object_new(json_pack("{s:{s:s}}", "path", "type", "string"),
                             json_pack("[s]", "path"));
}

static json_t *schema_write_new(void)
{
    return schema_object_new(
        json_pack("{s:{s:s}, s:{s:s}}", "path", "type", "string", "content", "type", "string"),
        json_pack("[s, s]", "path", "content"));
}

static json_t *schema_paths_new(void)
{
    return schema_object_new(
        json_pack("{s:{s:s, s:{s:s}}}", "paths", "type", "array", "items", "type", "string"),
        json_pack("[s]", "paths"));
}

static json_t *schema_move_new(void)
{
    return schema_object_new(json_pack("{s:{s:s}, s:{s:s}}", "source", "type", "string",
                                       "destination", "type", "string"),
                             json_pack("[s, s]", "source", "destination"));
}

static json_t *schema_empty_new(void)
{
    return schema_object_new(json_object(), json_array());
}

/* ---------------------------------------------------------------- shared read/write */

/* Reads at most max bytes of fd into a heap buffer; *more says whether the file goes on. */
static int read_capped(int fd, size_t max, size_t hint, char **data, size_t *len, bool *more)
{
    size_t cap = hint < max ? hint + 1 : max, n = 0;
    char *p = xmalloc(cap + 1);
    int rc = 0;
    *more = false;
    for (;;) {
        if (n == cap && cap < max) {
            cap = cap * 2 < max ? cap * 2 : max;
            p = xrealloc(p, cap + 1);
        }
        char probe;
        ssize_t got = n < cap ? read(fd, p + n, cap - n) : read(fd, &probe, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            rc = -errno;
            break;
        }
        if (got == 0 || n == cap) {
            *more = got > 0;
            break;
        }
        n += (size_t)got;
    }
    p[n] = '\0';
    *data = p;
    *len = n;
    return rc;
}

/* Opens a confined path for reading. O_NONBLOCK keeps a FIFO from hanging the worker;
 * O_NOFOLLOW refuses a symlink that appeared after the path was checked. */
static int open_regular(const char *real, struct stat *st, char **err)
{
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (fd < 0 || fstat(fd, st) < 0) {
        *err = tool__errno_msg(-errno, "open", real);
    } else if (S_ISDIR(st->st_mode)) {
        *err = tool__errno_msg(-EISDIR, "read", NULL);
    } else if (!S_ISREG(st->st_mode)) {
        *err = xasprintf("Not a regular file: %s", real);
    } else {
        return fd;
    }
    if (fd >= 0)
        close(fd);
    return -1;
}

json_t *tool__read_text(const char *real, size_t max_bytes, char **err)
{
    struct stat st;
    int fd = open_regular(real, &st, err);
    if (fd < 0)
        return NULL;
    char *data = NULL;
    size_t len;
    bool more;
    json_t *out = NULL;
    int rc = read_capped(fd, max_bytes, (size_t)st.st_size, &data, &len, &more);
    if (rc < 0) {
        *err = tool__errno_msg(rc, "read", real);
    } else if (!more) {
        out = json_string_lossy(data, len);
    } else {
        struct buf b;
        buf_init(&b, max_bytes + 128);
        buf_append(&b, data, tool__utf8_trim(data, len));
        long long total = fstat(fd, &st) == 0 && st.st_size > (off_t)len ? (long long)st.st_size
                                                                         : (long long)len + 1;
        buf_appendf(&b, "\n[truncated: file is %lld bytes, showing the first %zu]", total,
                    max_bytes);
        out = json_string_lossy(buf_str(&b), b.len);
        buf_release(&b);
    }
    close(fd);
    xfree(data);
    return out;
}

int tool__read_all(const char *real, size_t max_bytes, char **data, size_t *len, char **err)
{
    struct stat st;
    int fd = open_regular(real, &st, err);
    if (fd < 0)
        return -EINVAL;
    bool more;
    int rc = read_capped(fd, max_bytes, (size_t)st.st_size, data, len, &more);
    close(fd);
    if (rc < 0)
        *err = tool__errno_msg(rc, "read", real);
    else if (more)
        *err = xasprintf("File too large: %s is over %zu bytes", real, max_bytes);
    if (rc == 0 && more)
        rc = -EFBIG;
    if (rc < 0) {
        xfree(*data);
        *data = NULL;
    }
    return rc;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int tool__write_file(const char *real, const char *data, size_t len, char **err)
{
    /* Like Node's writeFile: create or truncate, 0666 less the umask, parents must exist. */
    int fd = open(real, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0666);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int rc = -errno;
        *err = tool__errno_msg(rc, "open", real);
        if (fd >= 0)
            close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        *err = xasprintf("Not a regular file: %s", real);
        close(fd);
        return -EINVAL;
    }
    int rc = write_all(fd, data, len);
    if (close(fd) < 0 && rc == 0)
        rc = -errno; /* e.g. EIO or EDQUOT surfacing only at close */
    if (rc < 0)
        *err = tool__errno_msg(rc, "write", real);
    return rc;
}

/* Sets the content to a text built with xasprintf-style arguments, made valid UTF-8. */
static void set_text(struct tool_call *call, char *text)
{
    call->content = json_string_lossy(text, strlen(text));
    xfree(text);
}

/* ---------------------------------------------------------------- read_file, read_multiple_files
 */

static void read_file_run(struct tool_call *call)
{
    const char *path = tool__arg_str(call, "path");
    char *real = NULL;
    if (path == NULL || workspace_resolve(call->root, path, &real, &call->error) < 0)
        return;
    call->content = tool__read_text(real, READ_MAX_BYTES, &call->error);
    xfree(real);
}

/* One section of read_multiple_files: "<path>:\n<text>\n" or "<path>: Error - <msg>". The path
 * is shown as Agent TARS passes it, made absolute against the workspace (anchor-api.md §6.4). */
static void read_one(struct tool_call *call, const char *path, size_t budget, struct buf *b)
{
    char *shown = tool__path_resolve(call->root, path);
    char *real = NULL, *err = NULL;
    json_t *text = NULL;
    if (budget == 0)
        err = xasprintf("skipped: the combined output limit of %d bytes was reached",
                        MULTI_MAX_BYTES);
    else if (workspace_resolve(call->root, path, &real, &err) == 0)
        text = tool__read_text(real, budget < READ_MAX_BYTES ? budget : READ_MAX_BYTES, &err);
    if (text != NULL) {
        buf_appendf(b, "%s:\n", shown);
        buf_append(b, json_string_value(text), json_string_length(text));
        buf_append_lit(b, "\n");
    } else {
        buf_appendf(b, "%s: Error - %s", shown, err);
    }
    json_decref(text);
    xfree(err);
    xfree(real);
    xfree(shown);
}

static void read_multiple_files_run(struct tool_call *call)
{
    const json_t *paths = json_object_get(call->args, "paths");
    size_t i;
    const json_t *p;
    bool ok = json_is_array(paths);
    json_array_foreach(paths, i, p) ok = ok && json_is_string(p);
    if (!ok) {
        call->error = xstrdup("Invalid arguments for read_multiple_files: paths must be an array "
                              "of strings");
        return;
    }
    if (json_array_size(paths) > MULTI_MAX_PATHS) {
        call->error = xasprintf("Invalid arguments for read_multiple_files: at most %d paths at "
                                "once",
                                MULTI_MAX_PATHS);
        return;
    }
    struct buf b;
    buf_init(&b, (size_t)MULTI_MAX_BYTES + MULTI_MAX_PATHS * (PATH_MAX + 256));
    size_t used = 0;
    json_array_foreach(paths, i, p)
    {
        if (i > 0)
            buf_append_lit(&b, "\n---\n");
        size_t before = b.len;
        read_one(call, json_string_value(p), MULTI_MAX_BYTES - used, &b);
        size_t grew = b.len - before;
        used = used + grew > MULTI_MAX_BYTES ? MULTI_MAX_BYTES : used + grew;
    }
    call->content = json_string_lossy(buf_str(&b), b.len);
    buf_release(&b);
}

/* ---------------------------------------------------------------- write_file, create_directory */

static void write_file_run(struct tool_call *call)
{
    const char *path = tool__arg_str(call, "path");
    const char *text = tool__arg_str(call, "content");
    char *real = NULL;
    if (path == NULL || text == NULL ||
        workspace_resolve(call->root, path, &real, &call->error) < 0)
        return;
    size_t len = json_string_length(json_object_get(call->args, "content"));
    if (tool__write_file(real, text, len, &call->error) == 0) {
        /* The original echoes the path it was given, which Agent TARS has already made
         * absolute against the workspace (anchor-api.md §6.4). */
        char *shown = tool__path_resolve(call->root, path);
        set_text(call, xasprintf("Successfully wrote to %s", shown));
        xfree(shown);
    }
    xfree(real);
}

static void create_directory_run(struct tool_call *call)
{
    const char *path = tool__arg_str(call, "path");
    char *real = NULL;
    if (path == NULL || workspace_resolve(call->root, path, &real, &call->error) < 0)
        return;
    /* mkdir -p, which succeeds silently on an existing directory, as the original's
     * fs.mkdir(path, {recursive: true}). */
    int rc = workspace_mkdirs(real);
    if (rc < 0) {
        call->error = tool__errno_msg(rc, "mkdir", real);
    } else {
        char *shown = tool__path_resolve(call->root, path);
        set_text(call, xasprintf("Successfully created directory %s", shown));
        xfree(shown);
    }
    xfree(real);
}

/* ---------------------------------------------------------------- list_directory */

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct tool_dirent *)a)->name, ((const struct tool_dirent *)b)->name);
}

static bool entry_is_dir(DIR *d, const struct dirent *de)
{
    if (de->d_type != DT_UNKNOWN)
        return de->d_type == DT_DIR;
    struct stat st;
    return fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

size_t tool__read_dir(DIR *d, size_t max_entries, struct tool_dirent **out, size_t *total)
{
    struct tool_dirent *ents = NULL;
    size_t n = 0, cap = 0;
    struct dirent *de;
    *total = 0;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        ++*total;
        if (n == max_entries)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            ents = xrealloc(ents, cap * sizeof(*ents));
        }
        ents[n].name = xstrdup(de->d_name);
        ents[n++].dir = entry_is_dir(d, de);
    }
    closedir(d);
    if (n > 1)
        qsort(ents, n, sizeof(*ents), entry_cmp);
    *out = ents;
    return n;
}

void tool__dirents_free(struct tool_dirent *ents, size_t n)
{
    for (size_t i = 0; i < n; i++)
        xfree(ents[i].name);
    xfree(ents);
}

static void list_directory_run(struct tool_call *call)
{
    const char *path = tool__arg_str(call, "path");
    char *real = NULL;
    if (path == NULL || workspace_resolve(call->root, path, &real, &call->error) < 0)
        return;
    DIR *d = opendir(real);
    if (d == NULL) {
        call->error = tool__errno_msg(-errno, "scandir", real);
        xfree(real);
        return;
    }
    struct tool_dirent *ents;
    size_t total, n = tool__read_dir(d, LIST_SCAN_MAX, &ents, &total);
    struct buf b;
    buf_init(&b, (size_t)LIST_MAX_ENTRIES * (NAME_MAX + 8) + 128);
    size_t shown = n < LIST_MAX_ENTRIES ? n : LIST_MAX_ENTRIES;
    for (size_t i = 0; i < shown; i++)
        buf_appendf(&b, "%s%s %s", i ? "\n" : "", ents[i].dir ? "[DIR]" : "[FILE]", ents[i].name);
    if (total > shown)
        buf_appendf(&b, "\n[truncated: directory has %zu entries, showing the first %zu]", total,
                    shown);
    call->content = json_string_lossy(buf_str(&b), b.len);
    buf_release(&b);
    tool__dirents_free(ents, n);
    xfree(real);
}

/* ---------------------------------------------------------------- move_file */

/* Renames without replacing an existing destination (the original checks with lstat first;
 * RENAME_NOREPLACE makes that atomic where the file system supports it). */
static int rename_noreplace(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return -errno;
    struct stat st;
    if (lstat(to, &st) == 0)
        return -EEXIST;
    return rename(from, to) == 0 ? 0 : -errno;
}

static void move_file_run(struct tool_call *call)
{
    const char *src = tool__arg_str(call, "source");
    const char *dst = tool__arg_str(call, "destination");
    char *real_src = NULL, *real_dst = NULL;
    if (src == NULL || dst == NULL ||
        workspace_resolve(call->root, src, &real_src, &call->error) < 0 ||
        workspace_resolve(call->root, dst, &real_dst, &call->error) < 0)
        goto out;
    char *shown_src = tool__path_resolve(call->root, src);
    char *shown_dst = tool__path_resolve(call->root, dst);
    int rc = rename_noreplace(real_src, real_dst);
    if (rc == -EEXIST) {
        call->error = xasprintf("Destination already exists: %s", shown_dst);
    } else if (rc < 0) {
        char *why = tool__errno_msg(rc, "rename", real_src);
        call->error = xasprintf("%s -> '%s'", why, real_dst); /* Node's two-path form */
        xfree(why);
    } else {
        set_text(call, xasprintf("Successfully moved %s to %s", shown_src, shown_dst));
    }
    xfree(shown_src);
    xfree(shown_dst);
out:
    xfree(real_src);
    xfree(real_dst);
}

/* ---------------------------------------------------------------- get_file_info */

/* A time as JavaScript's Date.prototype.toString() writes it, which is how the original's
 * template string shows the Date objects of fs.stat:
 * "Wed Nov 25 2026 10:00:00 GMT+0000 (Coordinated Universal Time)". */
static char *js_date(struct statx_timestamp ts)
{
    time_t t = (time_t)ts.tv_sec;
    struct tm tm;
    char when[64], off[16];
    if (localtime_r(&t, &tm) == NULL)
        return xstrdup("Invalid Date");
    strftime(when, sizeof(when), "%a %b %d %Y %H:%M:%S", &tm);
    strftime(off, sizeof(off), "%z", &tm);
    const char *zone = tm.tm_zone != NULL ? tm.tm_zone : "";
    /* Node prints ICU's long zone names; UTC, by far the usual case on servers, is mapped. */
    if (tm.tm_gmtoff == 0 && (strcmp(zone, "UTC") == 0 || strcmp(zone, "GMT") == 0))
        zone = "Coordinated Universal Time";
    return xasprintf("%s GMT%s (%s)", when, off, zone);
}

static void get_file_info_run(struct tool_call *call)
{
    const char *path = tool__arg_str(call, "path");
    char *real = NULL;
    if (path == NULL || workspace_resolve(call->root, path, &real, &call->error) < 0)
        return;
    struct statx sx;
    if (statx(AT_FDCWD, real, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_BTIME, &sx) < 0) {
        call->error = tool__errno_msg(-errno, "stat", real);
        xfree(real);
        return;
    }
    /* Without a birth time (some file systems), the change time stands in for it. */
    char *created = js_date((sx.stx_mask & STATX_BTIME) ? sx.stx_btime : sx.stx_ctime);
    char *modified = js_date(sx.stx_mtime);
    char *accessed = js_date(sx.stx_atime);
    set_text(call, xasprintf("size: %llu\ncreated: %s\nmodified: %s\naccessed: %s\n"
                             "isDirectory: %s\nisFile: %s\npermissions: %03o",
                             (unsigned long long)sx.stx_size, created, modified, accessed,
                             S_ISDIR(sx.stx_mode) ? "true" : "false",
                             S_ISREG(sx.stx_mode) ? "true" : "false", sx.stx_mode & 0777));
    xfree(created);
    xfree(modified);
    xfree(accessed);
    xfree(real);
}

/* ---------------------------------------------------------------- list_allowed_directories */

static void list_allowed_directories_run(struct tool_call *call)
{
    char *root = tool__path_resolve("/", call->root);
    set_text(call, xasprintf("Allowed directories:\n%s", root));
    xfree(root);
}

/* ---------------------------------------------------------------- the table */

/* Descriptions are ours; the "[filesystem] " prefix is how Agent TARS labels the tools of its
 * filesystem MCP server (anchor-api.md §6.1). The order is the original's: the MCP server's
 * tools, then Agent TARS's own directory_tree. */
const struct tool_ops tool__fs_ops[] = {
    {"read_file",
     "[filesystem] Read the whole text of one file (UTF-8). Files over 1 MiB are cut off with a "
     "note. Relative paths are taken from the workspace; only paths inside it are allowed.",
     schema_path_new, read_file_run, NULL, NULL},
    {"read_multiple_files",
     "[filesystem] Read several files in one call. Each file's text comes after its path, and "
     "the files are separated by '---' lines. A file that cannot be read gets an error line "
     "instead; the others are still returned. Only paths inside the workspace are allowed.",
     schema_paths_new, read_multiple_files_run, NULL, NULL},
    {"write_file",
     "[filesystem] Create a file, or replace an existing one, with the given text. The parent "
     "directory must already exist. Existing content is overwritten without warning. Only paths "
     "inside the workspace are allowed.",
     schema_write_new, write_file_run, NULL, NULL},
    {"edit_file",
     "[filesystem] Change parts of a text file: each edit replaces the first occurrence of "
     "oldText with newText (lines that match apart from indentation are accepted too). Returns "
     "the change as a unified diff; with dryRun the file is left as it is. Only paths inside "
     "the workspace are allowed.",
     tool__edit_file_schema_new, tool__edit_file_run, NULL, NULL},
    {"create_directory",
     "[filesystem] Create a directory, with any missing parents. An existing directory is not "
     "an error. Only paths inside the workspace are allowed.",
     schema_path_new, create_directory_run, NULL, NULL},
    {"list_directory",
     "[filesystem] List what a directory contains, one entry per line, each marked [FILE] or "
     "[DIR]. Only paths inside the workspace are allowed.",
     schema_path_new, list_directory_run, NULL, NULL},
    {"move_file",
     "[filesystem] Move or rename a file or directory. Fails if the destination already "
     "exists. Both paths must be inside the workspace.",
     schema_move_new, move_file_run, NULL, NULL},
    {"search_files",
     "[filesystem] Find files and directories whose name contains the pattern (case does not "
     "matter), below a directory. Returns one full path per line. Dependency and build folders "
     "such as node_modules and .git are not searched; excludePatterns are globs for more.",
     tool__search_files_schema_new, tool__search_files_run, NULL, NULL},
    {"get_file_info",
     "[filesystem] Show the size, times, type and permissions of a file or directory without "
     "reading it. Only paths inside the workspace are allowed.",
     schema_path_new, get_file_info_run, NULL, NULL},
    {"list_allowed_directories",
     "[filesystem] Show the directories the file tools may use (the workspace).", schema_empty_new,
     list_allowed_directories_run, NULL, NULL},
    {"directory_tree",
     "[filesystem] Show the files and folders below a directory as a JSON tree, limited in "
     "depth and size so it stays readable. Folders such as node_modules, .git, dist and build "
     "are left out.",
     tool__directory_tree_schema_new, tool__directory_tree_run, NULL, NULL},
};
const size_t tool__fs_count = sizeof(tool__fs_ops) / sizeof(tool__fs_ops[0]);
