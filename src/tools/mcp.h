/* SPDX-License-Identifier: MIT */
/* mcp.h -- Model Context Protocol client: stdio servers (spawned with libuv, newline-delimited
 * JSON-RPC 2.0) and Streamable HTTP servers (libcurl on the loop), configured as the original:
 * config "mcpServers": { NAME: { command, args, env } | { url, headers } }, filtered by
 * "mcpServer": { include: [..], exclude: [..] } (name substrings). agent-tools-llm.md §3. */
#ifndef TOOLS_MCP_H
#define TOOLS_MCP_H

#include <jansson.h>
#include <stdbool.h>
#include <uv.h>

#include "tools.h"

/* Reads the config and starts every server (handshake + tools/list) in the background. Returns 0
 * or <0 with a heap message in *err for a malformed config. */
int mcp_init(uv_loop_t *loop, const json_t *config_root, char **err);
/* True once every configured server finished its handshake or failed (or none configured). */
bool mcp_ready(void);
/* Stops every server (kills their process groups) and closes handles; the loop must run after
 * it for the handles to close. */
void mcp_shutdown(void);

/* The OpenAI "tools" array of every tool of every ready server, under the names the original
 * uses (borrowed; changes when servers (re)start). */
const json_t *mcp_tools_schema(void);
/* {name, description, schema} for a tool, or NULL if no server has it (borrowed). */
const json_t *mcp_tool_describe(const char *name);

struct mcp_call;
/* Calls tool `name` (args borrowed). on_done fires exactly once (never inside this call) with the
 * result content as the original turns it into a tool result, unless this returns <0 (no such
 * tool). A server that died is restarted here; a call past its timeout or on a dead server ends
 * with an error result. */
int mcp_call_start(const char *name, const json_t *args, tool_done_cb on_done, void *data,
                   struct mcp_call **out);
/* Sends notifications/cancelled and ends the call at once with an error result "aborted"
 * (on_done fires from the loop, not inside this call). */
void mcp_call_abort(struct mcp_call *call);

#endif
