/* SPDX-License-Identifier: MIT */
/* tool_fs.c -- read_file, write_file and list_directory with the names, argument schemas and
 * result texts of the original's filesystem MCP server (agent-tools-llm.md §2.1). Bodies run on
 * a threadpool thread; every path goes through workspace_resolve first. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/util.h"
#include "core/xalloc.h"
#include "tools.h"
#include "tools_int.h"

#define READ_MAX_BYTES (1024 * 1024) /* read_file shows at most this much of a file */
#define LIST_MAX_ENTRIES 1000        /* list_directory shows at most this many entries */
#define LIST_SCAN_MAX 100000         /* and sorts at most this many (the rest are counted) */

/* ---------------------------------------------------------------- schemas */

static json_t *schema_path_new(void)
{
    return json_pack("{s:s, s:{s:{s:s}}, s:[s], s:b}", "type", "object", "properties", "path",
                     "type", "string", "required", "path", "additionalProperties", 0);
}

static json_t *schema_write_new(void)
{
    return json_pack("{s:s, s:{s:{s:s}, s:{s:s}}, s:[s, s], s:b}", "type", "object", "properties",
                     "path", "type", "string", "content", "type", "string", "required", "path",
                     "content", "additionalProperties", 0);
}

/* ---------------------------------------------------------------- read_file */

/* Length of data[0..len) without a UTF-8 sequence cut off at the end, so a truncated file
 * does not end in a replacement character. */
static size_t utf8_trim(const char *data, size_t len)
{
    for (size_t back = 1; back <= 3 && back <= len; back++) {
        unsigned char c = (unsigned char)data[len - back];
        if ((c & 0xc0) == 0x80)
            continue; /* continuation byte: keep looking for the lead byte */
        size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
        return need > back ? len - back : len;
    }
    return len;
}

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

static void read_file_run(struct tool_call *call)
{
    const char *path = tool__arg_str(call, "path");
    char *real = NULL, *data = NULL;
    if (path == NULL || workspace_resolve(call->root, path, &real, &call->error) < 0)
        return;
    /* O_NONBLOCK keeps a FIFO from hanging the worker; O_NOFOLLOW refuses a symlink that
     * appeared after the path was checked. */
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        call->error = tool__errno_msg(-errno, "open", real);
        goto out;
    }
    if (S_ISDIR(st.st_mode)) {
        call->error = tool__errno_msg(-EISDIR, "read", NULL);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        call->error = xasprintf("Not a regular file: %s", real);
        goto out;
    }
    size_t len;
    bool more;
    int rc = read_capped(fd, READ_MAX_BYTES, (size_t)st.st_size, &data, &len, &more);
    if (rc < 0) {
        call->error = tool__errno_msg(rc, "read", real);
        goto out;
    }
    if (!more) {
        call->content = json_string_lossy(data, len);
        goto out;
    }
    struct buf b;
    buf_init(&b, READ_MAX_BYTES + 128);
    buf_append(&b, data, utf8_trim(data, len));
    long long total =
        fstat(fd, &st) == 0 && st.st_size > (off_t)len ? (long long)st.st_size : (long long)len + 1;
    buf_appendf(&b, "\n[truncated: file is %lld bytes, showing the first %d]", total,
                READ_MAX_BYTES);
    call->content = json_string_lossy(buf_str(&b), b.len);
    buf_release(&b);
out:
    if (fd >= 0)
        close(fd);
    xfree(data);
    xfree(real);
}

/* ---------------------------------------------------------------- write_file */

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

static void write_file_run(struct tool_call *call)
{
    const char *path = tool__arg_str(call, "path");
    const char *text = tool__arg_str(call, "content");
    char *real = NULL;
    if (path == NULL || text == NULL ||
        workspace_resolve(call->root, path, &real, &call->error) < 0)
        return;
    size_t len = json_string_length(json_object_get(call->args, "content"));
    /* Like Node's writeFile: create or truncate, 0666 less the umask, parents must exist. */
    int fd = open(real, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0666);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        call->error = tool__errno_msg(-errno, "open", real);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        call->error = xasprintf("Not a regular file: %s", real);
        goto out;
    }
    int rc = write_all(fd, text, len);
    int closed = close(fd);
    fd = -1;
    if (rc == 0 && closed < 0)
        rc = -errno; /* e.g. EIO or EDQUOT surfacing only at close */
    if (rc < 0) {
        call->error = tool__errno_msg(rc, "write", real);
        goto out;
    }
    /* The original echoes the path it was given, which Agent TARS has already made absolute
     * against the workspace (anchor-api.md §6.4). */
    char *shown = tool__path_resolve(call->root, path);
    char *msg = xasprintf("Successfully wrote to %s", shown);
    call->content = json_string_lossy(msg, strlen(msg));
    xfree(msg);
    xfree(shown);
out:
    if (fd >= 0)
        close(fd);
    xfree(real);
}

/* ---------------------------------------------------------------- list_directory */

struct dir_entry {
    char *name;
    bool dir;
};

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const struct dir_entry *)a)->name, ((const struct dir_entry *)b)->name);
}

/* Symlinks count as files, as readdir's Dirent.isDirectory() says in the original. */
static bool entry_is_dir(DIR *d, const struct dirent *de)
{
    if (de->d_type != DT_UNKNOWN)
        return de->d_type == DT_DIR;
    struct stat st;
    return fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

static void format_listing(struct tool_call *call, struct dir_entry *ents, size_t n, size_t total)
{
    if (n > 1)
        qsort(ents, n, sizeof(*ents), entry_cmp);
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
    struct dir_entry *ents = NULL;
    size_t n = 0, cap = 0, total = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        total++;
        if (n == LIST_SCAN_MAX)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            ents = xrealloc(ents, cap * sizeof(*ents));
        }
        ents[n].name = xstrdup(de->d_name);
        ents[n++].dir = entry_is_dir(d, de);
    }
    closedir(d);
    format_listing(call, ents, n, total);
    for (size_t i = 0; i < n; i++)
        xfree(ents[i].name);
    xfree(ents);
    xfree(real);
}

/* ---------------------------------------------------------------- the table */

/* Descriptions are ours; the "[filesystem] " prefix is how Agent TARS labels the tools of its
 * filesystem MCP server (anchor-api.md §6.1). */
const struct tool_ops tool__fs_ops[] = {
    {"read_file",
     "[filesystem] Read the whole text of one file (UTF-8). Files over 1 MiB are cut off with a "
     "note. Relative paths are taken from the workspace; only paths inside it are allowed.",
     schema_path_new, read_file_run},
    {"write_file",
     "[filesystem] Create a file, or replace an existing one, with the given text. The parent "
     "directory must already exist. Existing content is overwritten without warning. Only paths "
     "inside the workspace are allowed.",
     schema_write_new, write_file_run},
    {"list_directory",
     "[filesystem] List what a directory contains, one entry per line, each marked [FILE] or "
     "[DIR]. Only paths inside the workspace are allowed.",
     schema_path_new, list_directory_run},
};
const size_t tool__fs_count = sizeof(tool__fs_ops) / sizeof(tool__fs_ops[0]);
