/* SPDX-License-Identifier: MIT */
/* upload.c -- POST /api/v1/files/upload (upstream PR #1942): multipart/form-data, field
 * `files`, at most UPLOAD_MAX_FILES files of UPLOAD_MAX_FILE_BYTES each, stored in the session's
 * workspace as uploads/<sanitized stem>-<10-char id><ext>. The session comes from ?sessionId= or
 * a `sessionId` field sent before the first file.
 *
 * The body is streamed (http_req_read_body): multipart.c cuts it into parts, file contents are
 * written with uv_fs_write, one write in flight, and reading pauses while more than
 * UPLOAD_HIGH_WATER bytes wait for the disk, so memory stays bounded whatever the upload's size.
 * Directory and file creation (openat, O_NOFOLLOW, O_EXCL) are single quick syscalls on the
 * loop; a symlink planted at uploads/ or at the file's name is never followed. On any failure
 * the files of this request are removed and an error answered; a client that goes away
 * mid-upload leaves nothing behind either. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "api_int.h"
#include "multipart.h"

#define UPLOAD_MAX_FILES 10
#define UPLOAD_MAX_FILE_BYTES (20u * 1024 * 1024)
#define UPLOAD_MAX_PARTS 32 /* files and other fields */
#define UPLOAD_MAX_FIELD 1024
#define UPLOAD_HIGH_WATER (1024 * 1024)
#define STEM_MAX 120
#define EXT_MAX 20

/* One file on its way to the disk: its bytes not yet written, and whether it has ended. */
struct job {
    int fd;
    struct buf data;
    bool ended;
};

struct upload {
    struct http_req *req; /* NULL once answered or gone */
    struct multipart mp;
    char *sid;     /* from the query or the sessionId field (owned) */
    int dir_fd;    /* <workspace>/uploads, or -1 */
    json_t *files; /* the answer's list, an entry per file from its start (removed on failure) */
    json_t *entry; /* the current file's entry (borrowed from files), or NULL */
    uint64_t size; /* the current file's bytes so far */
    /* the field being received (not a file) */
    bool in_field;
    char field_name[32];
    char field[UPLOAD_MAX_FIELD + 1];
    size_t field_len;
    /* disk writes: jobs[head..tail) in order, one write in flight, for jobs[head] */
    struct job jobs[UPLOAD_MAX_FILES];
    unsigned head, tail;
    size_t pending;  /* bytes in the jobs' buffers */
    struct buf wbuf; /* the write in flight */
    uv_fs_t wreq;
    bool writing;
    bool body_end; /* the whole body arrived */
    bool paused;
    bool in_body;   /* inside on_body */
    unsigned holds; /* callers up the stack that still use u (see on_written) */
};

static void close_jobs(struct upload *u)
{
    for (unsigned i = u->head; i < u->tail; i++) {
        close(u->jobs[i].fd);
        buf_release(&u->jobs[i].data);
    }
    u->head = u->tail = 0;
    u->pending = 0;
}

static void up_free(struct upload *u)
{
    close_jobs(u);
    if (u->dir_fd >= 0)
        close(u->dir_fd);
    json_decref(u->files);
    xfree(u->sid);
    buf_release(&u->wbuf);
    xfree(u);
}

/* Removes every file this request stored or was storing. */
static void remove_files(struct upload *u)
{
    close_jobs(u);
    size_t i;
    json_t *f;
    json_array_foreach(u->files, i, f)
    {
        const char *name = json_get_str(f, "storedName");
        if (name && u->dir_fd >= 0)
            unlinkat(u->dir_fd, name, 0);
    }
    json_array_clear(u->files);
    u->entry = NULL;
}

/* Frees u when nothing refers to it any more: answered (or gone) and no write in flight. */
static void maybe_free(struct upload *u)
{
    if (u->req == NULL && !u->writing && u->holds == 0)
        up_free(u);
}

static void answer(struct upload *u, int status, const json_t *j)
{
    struct http_req *req = u->req;
    u->req = NULL;
    http_req_on_close(req, NULL, NULL);
    http_respond_json(req, status, j);
}

static void fail(struct upload *u, int status, const char *error, const char *code)
{
    if (u->req == NULL)
        return;
    remove_files(u);
    json_t *j = json_pack("{s:s}", "error", error);
    if (code)
        json_object_set_new(j, "code", json_string(code));
    answer(u, status, j);
    json_decref(j);
}

static void on_gone(struct http_req *req, void *data)
{
    struct upload *u = data;
    log_info("conn %llu: upload cut off; its files are removed",
             (unsigned long long)http_req_conn_id(req));
    remove_files(u);
    u->req = NULL;
    maybe_free(u);
}

/* ---- names ---- */

static bool safe_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-';
}

/* <stem ≤120>-<10-char id><ext ≤20> from a client's file name: only its last path component,
 * bytes other than A-Z a-z 0-9 . _ - replaced by '_', no leading dot, so the result can never
 * name another directory or a hidden file. */
static char *stored_name(const char *filename)
{
    const char *base = filename;
    for (const char *s = filename; *s; s++)
        if (*s == '/' || *s == '\\')
            base = s + 1;
    size_t n = strlen(base);
    const char *dot = strrchr(base, '.');
    size_t stem_len = dot && dot != base ? (size_t)(dot - base) : n;
    char ext[EXT_MAX + 1] = "";
    size_t el = 0;
    for (size_t i = stem_len; i < n && el < EXT_MAX; i++) {
        unsigned char c = (unsigned char)base[i];
        if (safe_char(c) && (c != '.' || i == stem_len))
            ext[el++] = (char)c;
    }
    ext[el] = '\0';
    if (el == 1)
        ext[0] = '\0'; /* a lone "." */
    char stem[STEM_MAX + 1];
    size_t sl = 0;
    for (size_t i = 0; i < stem_len && sl < STEM_MAX; i++) {
        unsigned char c = (unsigned char)base[i];
        if (sl == 0 && c == '.')
            continue;
        stem[sl++] = safe_char(c) ? (char)c : '_';
    }
    stem[sl] = '\0';
    char id[11];
    char raw[22];
    nanoid(raw);
    memcpy(id, raw, 10);
    id[10] = '\0';
    return xasprintf("%s-%s%s", sl ? stem : "file", id, ext);
}

/* ---- disk ---- */

static void pump(struct upload *u);

static void on_written(uv_fs_t *w)
{
    struct upload *u = w->data;
    ssize_t rc = w->result;
    uv_fs_req_cleanup(w);
    u->writing = false;
    if (u->req == NULL) {
        maybe_free(u);
        return;
    }
    if (rc < 0 || (size_t)rc != u->wbuf.len) {
        log_warn("upload: cannot write a file: %s", rc < 0 ? uv_strerror((int)rc) : "short write");
        fail(u, 500, "Failed to store the uploaded file", NULL);
        maybe_free(u);
        return;
    }
    buf_reset(&u->wbuf);
    u->holds++; /* resuming the body may run on_body, which may answer and let go of u */
    pump(u);
    u->holds--;
    maybe_free(u);
}

static void finish(struct upload *u)
{
    if (json_array_size(u->files) == 0) {
        fail(u, 400, "No files uploaded", NULL);
        return;
    }
    log_info("upload: %zu file(s) stored for session %s", json_array_size(u->files), u->sid);
    json_t *j = json_pack("{s:O}", "files", u->files);
    answer(u, 200, j);
    json_decref(j);
}

/* Moves the upload on (never from inside the body callback's parser run: see on_body): the
 * next write, ended files closed once written, the answer at the end, reading resumed below
 * the high-water mark. */
static void pump(struct upload *u)
{
    while (!u->writing && u->req && u->head < u->tail) {
        struct job *jb = &u->jobs[u->head];
        if (jb->data.len > 0) {
            struct buf t = u->wbuf;
            u->wbuf = jb->data;
            jb->data = t;
            u->pending -= u->wbuf.len;
            uv_buf_t b = uv_buf_init(u->wbuf.data, (unsigned)u->wbuf.len);
            u->wreq.data = u;
            if (uv_fs_write(uv_default_loop(), &u->wreq, jb->fd, &b, 1, -1, on_written) < 0) {
                fail(u, 500, "Failed to store the uploaded file", NULL);
                return;
            }
            u->writing = true;
            return;
        }
        if (!jb->ended)
            break; /* the file still receives bytes */
        close(jb->fd);
        buf_release(&jb->data);
        u->head++;
    }
    if (u->req == NULL || u->writing)
        return;
    if (u->body_end && u->head == u->tail) {
        finish(u);
        return;
    }
    if (u->paused && !u->in_body && u->pending < UPLOAD_HIGH_WATER / 2) {
        u->paused = false;
        http_req_resume_body(u->req);
    }
}

/* ---- multipart callbacks ---- */

static int open_dir(struct upload *u)
{
    if (u->dir_fd >= 0)
        return 0;
    if (u->sid == NULL || u->sid[0] == '\0') {
        fail(u, 400, "Session ID is required", NULL);
        return -1;
    }
    char *err = NULL;
    struct agent_session *s = agent_session_load(u->sid, &err);
    if (s == NULL) {
        fail(u, err ? 500 : 404, err ? "Internal server error" : "Session not found", NULL);
        xfree(err);
        return -1;
    }
    const char *ws = agent_session_workspace(s);
    int wfd = open(ws, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (wfd >= 0 && mkdirat(wfd, "uploads", 0755) < 0 && errno != EEXIST) {
        close(wfd);
        wfd = -1;
    }
    if (wfd >= 0) {
        u->dir_fd = openat(wfd, "uploads", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        close(wfd);
    }
    if (u->dir_fd < 0) {
        log_warn("upload: cannot open %s/uploads: %s", ws, strerror(errno));
        fail(u, 500, "Failed to store the uploaded file", NULL);
        return -1;
    }
    return 0;
}

static int on_part(void *data, const struct multipart_part *p)
{
    struct upload *u = data;
    u->entry = NULL;
    if (p->filename == NULL) {
        u->in_field = true;
        u->field_len = 0;
        snprintf(u->field_name, sizeof(u->field_name), "%s", p->name);
        return 0;
    }
    u->in_field = false;
    if (strcmp(p->name, "files") != 0) {
        fail(u, 400, "Unexpected field", "LIMIT_UNEXPECTED_FILE");
        return -1;
    }
    if (u->tail >= UPLOAD_MAX_FILES) {
        fail(u, 413, "Too many files", "LIMIT_FILE_COUNT");
        return -1;
    }
    if (open_dir(u) < 0)
        return -1;
    char *stored = NULL;
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 8; tries++) {
        xfree(stored);
        stored = stored_name(p->filename);
        fd = openat(u->dir_fd, stored, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd < 0 && errno != EEXIST)
            break;
    }
    if (fd < 0) {
        log_warn("upload: cannot create uploads/%s: %s", stored, strerror(errno));
        xfree(stored);
        fail(u, 500, "Failed to store the uploaded file", NULL);
        return -1;
    }
    struct job *jb = &u->jobs[u->tail++];
    jb->fd = fd;
    jb->ended = false;
    buf_init(&jb->data, SIZE_MAX / 2);
    u->size = 0;
    char *rel = xasprintf("uploads/%s", stored);
    const char *type = p->content_type[0] ? p->content_type : "application/octet-stream";
    u->entry = json_pack("{s:o, s:s, s:s, s:I, s:o}", "name",
                         json_string_lossy(p->filename, strlen(p->filename)), "storedName", stored,
                         "relativePath", rel, "size", (json_int_t)0, "mimeType",
                         json_string_lossy(type, strlen(type)));
    json_array_append_new(u->files, u->entry); /* u->entry stays a borrowed pointer */
    xfree(rel);
    xfree(stored);
    return 0;
}

static int on_data(void *data, const char *p, size_t len)
{
    struct upload *u = data;
    if (u->in_field) {
        if (u->field_len + len > UPLOAD_MAX_FIELD) {
            fail(u, 413, "Field value too long", "LIMIT_FIELD_VALUE");
            return -1;
        }
        memcpy(u->field + u->field_len, p, len);
        u->field_len += len;
        return 0;
    }
    if (u->entry == NULL)
        return 0;
    if (u->size + len > UPLOAD_MAX_FILE_BYTES) {
        fail(u, 413, "Each file must be 20MB or smaller", "LIMIT_FILE_SIZE");
        return -1;
    }
    u->size += len;
    buf_append(&u->jobs[u->tail - 1].data, p, len);
    u->pending += len;
    return 0;
}

static int on_part_end(void *data)
{
    struct upload *u = data;
    if (u->in_field) {
        u->in_field = false;
        u->field[u->field_len] = '\0';
        if (strcmp(u->field_name, "sessionId") == 0 && u->sid == NULL)
            u->sid = xstrndup(u->field, u->field_len);
        return 0;
    }
    if (u->entry) {
        json_object_set_new(u->entry, "size", json_integer((json_int_t)u->size));
        u->jobs[u->tail - 1].ended = true;
        u->entry = NULL;
    }
    return 0;
}

static const struct multipart_cbs cbs = {on_part, on_data, on_part_end};

/* The body, as it arrives (p NULL at its end). Writes start here, but reading resumes only from
 * the write callbacks: never from inside the HTTP parser's run that called us. */
static void on_body(struct http_req *req, void *data, const char *p, size_t len)
{
    struct upload *u = data;
    if (u->req == NULL)
        return; /* answered: the rest of the body is dropped */
    if (p == NULL) {
        if (multipart_finish(&u->mp) != MULTIPART_OK) {
            fail(u, 400, "Malformed multipart body", "MALFORMED_MULTIPART");
            maybe_free(u);
            return;
        }
        u->body_end = true;
    } else {
        int rc = multipart_feed(&u->mp, p, len, &cbs, u);
        if (rc == MULTIPART_E_HEAD)
            fail(u, 431, "Part headers too large", "LIMIT_PART_HEADERS");
        else if (rc == MULTIPART_E_PARTS)
            fail(u, 413, "Too many parts", "LIMIT_PART_COUNT");
        else if (rc < 0 && rc != MULTIPART_E_STOPPED)
            fail(u, 400, "Malformed multipart body", "MALFORMED_MULTIPART");
        if (u->req == NULL) {
            maybe_free(u);
            return;
        }
    }
    if (!u->body_end && !u->paused && u->pending >= UPLOAD_HIGH_WATER) {
        u->paused = true;
        http_req_pause_body(req);
    }
    u->in_body = true; /* pump must not resume reading from here */
    pump(u);
    u->in_body = false;
    if (u->req == NULL)
        maybe_free(u);
}

bool api__upload_route(const struct http_req *req)
{
    const char *path = http_req_path(req);
    size_t n = strlen(path), k = strlen("/api/v1/files/upload");
    /* the path is seen before server.basePath is taken off: compare the end */
    return strcmp(http_req_method(req), "POST") == 0 && n >= k &&
           strcmp(path + n - k, "/api/v1/files/upload") == 0;
}

void api__files_upload(struct http_req *req)
{
    if (!http_req_body_streamed(req)) {
        http_respond_error(req, 400, "No files uploaded");
        return;
    }
    char boundary[MULTIPART_MAX_BOUNDARY + 1];
    if (multipart_boundary(http_req_header(req, "content-type"), boundary) < 0) {
        api__error2(req, 400, "No files uploaded",
                    "Send multipart/form-data with a boundary and the files in field 'files'.");
        return;
    }
    struct upload *u = xcalloc(1, sizeof(*u));
    u->req = req;
    u->dir_fd = -1;
    u->files = json_array();
    buf_init(&u->wbuf, SIZE_MAX / 2);
    char *sid = http_req_query_param(req, "sessionId");
    if (sid && *sid)
        u->sid = sid;
    else
        xfree(sid);
    multipart_init(&u->mp, boundary, UPLOAD_MAX_PARTS);
    http_req_on_close(req, on_gone, u);
    http_req_read_body(req, on_body, u);
}
