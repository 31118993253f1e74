/* SPDX-License-Identifier: MIT */
/* static.c -- webui.staticPath: another web UI (the original's, from npm's
 * @tarko/agent-ui-builder) served from a folder instead of the embedded one, the original CLI's
 * way: index.html for "/" and for extension-less paths (client-side routes), with
 * window.AGENT_BASE_URL and window.AGENT_WEB_UI_CONFIG (the `webui` config) injected before
 * </head>, and webui.base as a prefix string or, when it holds regex metacharacters, a POSIX
 * extended regular expression whose match in the request is the prefix.
 *
 * The folder is read once at start (regular files only, no symlinks, no dot files, bounded
 * count and size) into memory: serving never touches the disk, so it never blocks the loop and
 * no request path can name anything outside the folder. Restart to pick up a rebuilt UI.
 *
 * CSP: the index page's inline scripts, the injected one included, are allowed by their SHA-256
 * hashes; inline styles, Google Fonts and the Monaco editor from jsDelivr (which that UI loads
 * for code views) are allowed by name; images from data:, blob: and https: (the configured and
 * default logos live on CDNs); API calls to the page's own origin only. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <regex.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/buf.h"
#include "../core/log.h"
#include "../core/util.h"
#include "../core/xalloc.h"
#include "ui.h"

#define MAX_FILES 4096
#define MAX_TOTAL_BYTES (256u * 1024 * 1024)
#define MAX_DEPTH 16

#define CSP_HEAD                                                                                   \
    "Cache-Control: no-cache\r\n"                                                                  \
    "Content-Security-Policy: default-src 'self'; script-src 'self' https://cdn.jsdelivr.net"
#define CSP_TAIL                                                                                   \
    "; style-src 'self' 'unsafe-inline' https://fonts.googleapis.com https://cdn.jsdelivr.net; "   \
    "font-src 'self' data: https://fonts.gstatic.com https://cdn.jsdelivr.net; "                   \
    "img-src 'self' data: blob: https:; connect-src 'self'; worker-src 'self' blob:; "             \
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'; object-src 'none'\r\n"

struct sfile {
    char *path; /* "/static/js/x.js" */
    const char *type;
    char *data;
    size_t len;
    char etag[24];
};

static struct {
    bool on;
    struct sfile *files;
    size_t nfiles, total;
    char *index; /* index.html as read, with the 0.3.0 build-time base undone */
    size_t index_len;
    char index_etag[24];
    char *script_hashes; /* " 'sha256-...'" for each inline script of index.html */
    char *config_json;   /* the webui object, staticPath left out */
    char *base;          /* literal webui.base (normalized), or NULL */
    regex_t re;          /* webui.base as a pattern */
    bool has_re;
    /* the page last built, for one prefix (a literal base has only one) */
    char *page_prefix, *page, *page_headers;
    size_t page_len;
} st;

static const struct {
    const char *ext, *type;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".map", "application/json"},
    {".webmanifest", "application/manifest+json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".jpg", "image/jpeg"},
    {".jpeg", "image/jpeg"},
    {".gif", "image/gif"},
    {".webp", "image/webp"},
    {".ico", "image/x-icon"},
    {".woff", "font/woff"},
    {".woff2", "font/woff2"},
    {".ttf", "font/ttf"},
    {".otf", "font/otf"},
    {".wasm", "application/wasm"},
    {".txt", "text/plain; charset=utf-8"},
    {".xml", "application/xml"},
};

static const char *type_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcasecmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}

/* " 'sha256-<base64>'" of p[0..len) appended to b. */
static void append_hash(struct buf *b, const char *p, size_t len)
{
    unsigned char d[32];
    unsigned int n = 0;
    EVP_Digest(p, len, d, &n, EVP_sha256(), NULL);
    unsigned char b64[48];
    int m = EVP_EncodeBlock(b64, d, 32);
    buf_appends(b, " 'sha256-");
    buf_append(b, (const char *)b64, (size_t)m);
    buf_appends(b, "'");
}

/* ---- reading the folder ---- */

static int read_fd(int fd, size_t size, char **out)
{
    char *p = xmalloc(size + 1);
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, p + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    if (got != size) {
        xfree(p);
        return -1;
    }
    p[size] = '\0';
    *out = p;
    return 0;
}

static void walk(int dfd, const char *rel, int depth)
{
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* ".", "..", and dot files */
        struct stat sb;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        char *path = xasprintf("%s/%s", rel, e->d_name);
        if (S_ISDIR(sb.st_mode) && depth < MAX_DEPTH) {
            int sub = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0)
                walk(sub, path, depth + 1);
        } else if (S_ISREG(sb.st_mode)) {
            size_t size = (size_t)sb.st_size;
            int fd = -1;
            if (st.nfiles >= MAX_FILES || st.total + size > MAX_TOTAL_BYTES) {
                log_warn("webui.staticPath: skipping %s (over %d files or %u MiB)", path, MAX_FILES,
                         MAX_TOTAL_BYTES >> 20);
            } else if ((fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) >= 0) {
                char *data;
                if (read_fd(fd, size, &data) == 0) {
                    st.files = xrealloc(st.files, (st.nfiles + 1) * sizeof(*st.files));
                    struct sfile *f = &st.files[st.nfiles++];
                    f->path = path;
                    path = NULL;
                    f->type = type_of(e->d_name);
                    f->data = data;
                    f->len = size;
                    ui__etag(data, size, f->etag);
                    st.total += size;
                }
                close(fd);
            }
        }
        xfree(path);
    }
    closedir(d);
}

static const struct sfile *find_file(const char *path)
{
    for (size_t i = 0; i < st.nfiles; i++)
        if (strcmp(st.files[i].path, path) == 0)
            return &st.files[i];
    return NULL;
}

/* The inline scripts' hashes, and the 0.3.0 bundle's build-time AGENT_BASE_URL:"" turned back
 * into undefined so that the injected window.AGENT_BASE_URL is honoured (that build reads
 * `v.AGENT_BASE_URL ?? window.AGENT_BASE_URL`); left alone unless found exactly once. */
static void prepare_index(const struct sfile *f)
{
    static const char baked[] = "AGENT_BASE_URL:\"\",AGENT_WEBUI_CONFIG:void 0}";
    static const char fixed[] = "AGENT_BASE_URL:void 0,AGENT_WEBUI_CONFIG:void 0}";
    const char *hit = memmem(f->data, f->len, baked, sizeof(baked) - 1);
    if (hit && !memmem(hit + 1, f->len - (size_t)(hit + 1 - f->data), baked, sizeof(baked) - 1)) {
        size_t at = (size_t)(hit - f->data);
        st.index = xasprintf("%.*s%s%s", (int)at, f->data, fixed, hit + sizeof(baked) - 1);
    } else {
        st.index = xstrndup(f->data, f->len);
    }
    st.index_len = strlen(st.index);
    ui__etag(st.index, st.index_len, st.index_etag);
    struct buf h;
    buf_init(&h, SIZE_MAX / 2);
    const char *s = st.index, *end = st.index + st.index_len;
    while ((s = strstr(s, "<script")) != NULL) {
        const char *gt = strchr(s, '>');
        if (gt == NULL)
            break;
        const char *close = strstr(gt + 1, "</script>");
        if (close == NULL)
            break;
        bool has_src = memmem(s, (size_t)(gt - s), " src=", 5) != NULL;
        if (!has_src)
            append_hash(&h, gt + 1, (size_t)(close - gt - 1));
        s = close + 9;
        if (s >= end)
            break;
    }
    st.script_hashes = xstrndup(h.data ? h.data : "", h.len);
    buf_release(&h);
}

static bool regex_meta(const char *s)
{
    return strpbrk(s, "^$*+?()[]{}|\\") != NULL;
}

void ui__static_init(const json_t *config)
{
    ui__static_release();
    const json_t *webui = json_object_get(config, "webui");
    const char *dir = json_get_str(webui, "staticPath");
    if (dir == NULL || *dir == '\0')
        return;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        log_error("webui.staticPath '%s': %s; serving the built-in UI", dir, strerror(errno));
        return;
    }
    walk(dfd, "", 0);
    const struct sfile *idx = find_file("/index.html");
    if (idx == NULL) {
        log_error("webui.staticPath '%s' has no index.html; serving the built-in UI", dir);
        ui__static_release();
        return;
    }
    prepare_index(idx);
    json_t *cfg = json_is_object(webui) ? json_deep_copy(webui) : json_object();
    json_object_del(cfg, "staticPath");
    st.config_json = json_dumps(cfg, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ESCAPE_SLASH);
    json_decref(cfg);
    const char *base = json_get_str(webui, "base");
    if (base && *base && regex_meta(base)) {
        char *pat = xasprintf("^(%s)", base[0] == '^' ? base + 1 : base);
        int rc = regcomp(&st.re, pat, REG_EXTENDED);
        xfree(pat);
        if (rc != 0) {
            log_error("webui.base '%s' is not a valid regular expression; ignored", base);
        } else {
            st.has_re = true;
        }
    } else if (base && *base) {
        char norm[UI_MAX_BASE_BYTES];
        if (ui_normalize_base(base, norm) < 0)
            log_error("webui.base '%s': use letters, digits, '-', '.', '_', '~' and '/'", base);
        else if (norm[0])
            st.base = xstrdup(norm);
    }
    st.on = true;
    log_info("web UI from %s (%zu files, %zu KiB)%s%s", dir, st.nfiles, st.total / 1024,
             st.base || st.has_re ? " under webui.base " : "", st.base || st.has_re ? base : "");
}

void ui__static_release(void)
{
    for (size_t i = 0; i < st.nfiles; i++) {
        xfree(st.files[i].path);
        xfree(st.files[i].data);
    }
    xfree(st.files);
    xfree(st.index);
    xfree(st.script_hashes);
    xfree(st.config_json);
    xfree(st.base);
    if (st.has_re)
        regfree(&st.re);
    xfree(st.page_prefix);
    xfree(st.page);
    xfree(st.page_headers);
    memset(&st, 0, sizeof(st));
}

bool ui__static_on(void)
{
    return st.on;
}

/* Length of the webui.base prefix of path (0: no base configured), or -1 if path is outside
 * it. A prefix ends at a segment boundary. */
long ui__static_base_match(const char *path)
{
    if (!st.on || (!st.base && !st.has_re))
        return 0;
    size_t n;
    if (st.base) {
        n = strlen(st.base);
        if (strncmp(path, st.base, n) != 0)
            return -1;
    } else {
        regmatch_t m[1];
        if (regexec(&st.re, path, 1, m, 0) != 0 || m[0].rm_so != 0 || m[0].rm_eo <= 0)
            return -1;
        n = (size_t)m[0].rm_eo;
        while (n > 0 && path[n - 1] == '/')
            n--;
    }
    return path[n] == '\0' || path[n] == '/' ? (long)n : -1;
}

/* ---- serving ---- */

/* The index page for an AGENT_BASE_URL: the original's injected script before </head>, and
 * the CSP naming its hash. Cached for the last prefix. */
static void build_page(const char *prefix)
{
    if (st.page && strcmp(st.page_prefix, prefix) == 0)
        return;
    xfree(st.page_prefix);
    xfree(st.page);
    xfree(st.page_headers);
    json_t *js = json_string(prefix);
    /* JSON in a script: "\/" so that no "</script>" in a value can close it */
    char *base_json = json_dumps(js, JSON_ENCODE_ANY | JSON_ENSURE_ASCII | JSON_ESCAPE_SLASH);
    json_decref(js);
    char *script = xasprintf("\n      window.AGENT_BASE_URL = %s;\n"
                             "      window.AGENT_WEB_UI_CONFIG = %s;\n"
                             "      console.log(\"Agent: Using API baseURL:\", "
                             "window.AGENT_BASE_URL);\n    ",
                             base_json, st.config_json);
    xfree(base_json);
    const char *head_end = strstr(st.index, "</head>");
    size_t at = head_end ? (size_t)(head_end - st.index) : 0;
    size_t slen = strlen(script);
    static const char open_tag[] = "<script>", close_tag[] = "</script>\n";
    st.page_len = st.index_len + slen + sizeof(open_tag) - 1 + sizeof(close_tag) - 1;
    st.page = xmalloc(st.page_len + 1);
    char *o = st.page;
    memcpy(o, st.index, at), o += at;
    memcpy(o, open_tag, sizeof(open_tag) - 1), o += sizeof(open_tag) - 1;
    memcpy(o, script, slen), o += slen;
    memcpy(o, close_tag, sizeof(close_tag) - 1), o += sizeof(close_tag) - 1;
    memcpy(o, st.index + at, st.index_len - at + 1);
    struct buf h;
    buf_init(&h, SIZE_MAX / 2);
    buf_appends(&h, CSP_HEAD);
    buf_appends(&h, st.script_hashes);
    append_hash(&h, script, strlen(script));
    buf_appends(&h, CSP_TAIL);
    /* the page is the index (hashed once at start) plus the script: hash just those two */
    char etag[24];
    char *key = xasprintf("%s|%s", st.index_etag, script);
    ui__etag(key, strlen(key), etag);
    xfree(key);
    buf_appends(&h, "ETag: ");
    buf_appends(&h, etag);
    buf_appends(&h, "\r\n");
    st.page_headers = xstrndup(h.data, h.len);
    buf_release(&h);
    st.page_prefix = xstrdup(prefix);
    xfree(script);
}

static void respond(struct http_req *req, const char *type, const char *body, size_t len,
                    const char *headers, const char *etag)
{
    const char *inm = http_req_header(req, "if-none-match");
    if (inm && strstr(inm, etag))
        http_respond_headers(req, 304, NULL, headers, NULL, 0);
    else
        http_respond_headers(req, 200, type, headers, body, len);
}

bool ui__static_serve(struct http_req *req, const char *path)
{
    long n = ui__static_base_match(path);
    if (n < 0)
        return false;
    const char *rest = path[n] ? path + n : "/";
    const struct sfile *f = strcmp(rest, "/index.html") == 0 ? NULL : find_file(rest);
    if (f) {
        char *headers = xasprintf(CSP_HEAD CSP_TAIL "ETag: %s\r\n", f->etag);
        respond(req, f->type, f->data, f->len, headers, f->etag);
        xfree(headers);
        return true;
    }
    const char *last = strrchr(rest, '/');
    if (strcmp(rest, "/index.html") != 0 && strchr(last ? last : rest, '.'))
        return false; /* a missing asset: 404, not the page */
    char *prefix = xasprintf("%s%.*s", ui_base_path(), (int)n, path);
    build_page(prefix);
    xfree(prefix);
    const char *etag = strstr(st.page_headers, "ETag: ") + 6;
    char tag[24];
    snprintf(tag, sizeof(tag), "%.*s", (int)strcspn(etag, "\r"), etag);
    respond(req, "text/html; charset=utf-8", st.page, st.page_len, st.page_headers, tag);
    return true;
}
