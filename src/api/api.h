/* SPDX-License-Identifier: MIT */
/* api.h -- the HTTP routes of the original (anchor-api.md §1.4, §3.3) on top of the agent. */
#ifndef API_API_H
#define API_API_H

#include "../http/http.h"

/* The http_handler_cb of the server. */
void api_handle(struct http_req *req, void *data);

#endif
