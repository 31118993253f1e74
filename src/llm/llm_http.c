/* SPDX-License-Identifier: MIT */
/* llm_http.c -- POST and forget, on the loop through curl_uv (see llm_http.h). */
#include "llm_http.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../core/xalloc.h"
#include "curl_uv.h"

#define POST_TIMEOUT_MS 5000L

struct post {
    llm_http_done_cb cb;
    void *data;
    int status;
    struct post *prev, *next; /* H.posts: in flight, freed by llm_http_close if still there */
};

static struct {
    uv_loop_t *loop;
    struct curl_uv *cu;
    struct post *posts;
} H;

static void unlink_post(struct post *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        H.posts = p->next;
    if (p->next)
        p->next->prev = p->prev;
}

void llm_http_init(uv_loop_t *loop)
{
    H.loop = loop;
}

static int on_header(void *data, const char *line, size_t len)
{
    struct post *p = data;
    /* "HTTP/1.1 200 OK": the last status line wins (100 Continue, redirects). */
    if (len > 12 && strncmp(line, "HTTP/", 5) == 0) {
        const char *sp = memchr(line, ' ', len);
        if (sp)
            p->status = (int)strtol(sp + 1, NULL, 10);
    }
    return 0;
}

static int on_body(void *data, const char *b, size_t len)
{
    return 0;
}

static void on_done(void *data, CURLcode rc, const char *errmsg)
{
    struct post *p = data;
    unlink_post(p);
    p->cb(p->data, rc == CURLE_OK ? p->status : -1);
    xfree(p);
}

static const struct curl_uv_cbs post_cbs = {on_header, on_body, on_done};

int llm_http_post(const char *url, const char *const *headers, const char *body, size_t len,
                  llm_http_done_cb cb, void *data)
{
    if (H.loop == NULL)
        return -EINVAL;
    if (H.cu == NULL && curl_uv_new(H.loop, &H.cu) < 0) {
        H.cu = NULL;
        return -EIO;
    }
    CURL *easy = curl_easy_init();
    if (easy == NULL)
        return -ENOMEM;
    struct curl_slist *h = NULL;
    for (size_t i = 0; headers && headers[i]; i++)
        h = curl_slist_append(h, headers[i]);
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(easy, CURLOPT_URL, url);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(easy, CURLOPT_COPYPOSTFIELDS, body);
    curl_easy_setopt(easy, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_NOPROXY, "127.0.0.1,localhost,::1");
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, POST_TIMEOUT_MS);
    struct post *p = xcalloc(1, sizeof(*p));
    p->cb = cb;
    p->data = data;
    if (curl_uv_add(H.cu, easy, h, &post_cbs, p) == NULL) {
        xfree(p);
        return -EIO;
    }
    p->next = H.posts;
    if (H.posts)
        H.posts->prev = p;
    H.posts = p;
    return 0;
}

void llm_http_close(void)
{
    if (H.cu)
        curl_uv_close(H.cu, NULL, NULL); /* cancels every transfer: no on_done */
    while (H.posts) {
        struct post *p = H.posts;
        H.posts = p->next;
        xfree(p);
    }
    H.cu = NULL;
    H.loop = NULL;
}
