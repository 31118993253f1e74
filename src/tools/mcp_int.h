/* SPDX-License-Identifier: MIT */
/* mcp_int.h -- internals of mcp.c that the unit tests reach: the JSON.stringify(v, null, 2)
 * emulation behind the tool-result text the original sends to the model. Not for use outside
 * src/tools and tests. */
#ifndef TOOLS_MCP_INT_H
#define TOOLS_MCP_INT_H

#include <jansson.h>

#include "../core/buf.h"

/* Appends v as JavaScript's JSON.stringify(v, null, indent) writes it: keys in insertion order,
 * ", " never used, "key": value, empty containers as [] and {}, numbers in the shortest
 * round-trip form of Number.prototype.toString, strings with only ", \, and control characters
 * escaped (\b \f \n \r \t, else \u00xx in lower-case hex). indent 0 gives the compact form.
 * Returns 0 or BUF_ERR_TOOBIG. */
int mcp__js_stringify(struct buf *b, const json_t *v, int indent);

#endif
