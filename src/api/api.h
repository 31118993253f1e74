/* SPDX-License-Identifier: MIT */
/* api.h -- the HTTP routes of the original (anchor-api.md §1.4, §3.3) on top of the agent. */
#ifndef API_API_H
#define API_API_H

#include <jansson.h>
#include <stdbool.h>

#include "../http/http.h"
#include "../llm/llm.h"

struct auth;
struct store;

struct api_options {
    struct store *store;
    struct llm_ctx *llm;
    const struct llm_config *llm_cfg;
    const json_t *config;        /* the merged config tree (models, share, runtimeSettings...) */
    const char *workspace;       /* the configured workspace */
    bool exclusive;              /* server.exclusive */
    struct auth *auth;           /* access rules (Host, Origin, token, CSRF) */
};

/* Keeps opts (borrowed for the process lifetime). */
void api_init(const struct api_options *opts);
/* The http_handler_cb of the server. */
void api_handle(struct http_req *req, void *data);
/* The server's stream_body choice (http.h): the upload route reads its body as it arrives. */
bool api_stream_body(const struct http_req *req, void *data);

#endif
