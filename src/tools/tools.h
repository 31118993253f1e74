/* SPDX-License-Identifier: MIT */
/* tools.h -- the agent's built-in tools (names and argument schemas as the original Agent TARS,
 * agent-tools-llm.md §2.1) and workspace path confinement. Tool bodies run off the loop thread on
 * libuv's threadpool (uv_queue_work): file I/O is the one blocking thing they do; results come
 * back on the loop thread. */
#ifndef TOOLS_TOOLS_H
#define TOOLS_TOOLS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* Resolves `path` (relative to root, or absolute) inside the workspace `root` (an absolute,
 * existing directory). Refuses anything that leaves root: "..", absolute paths elsewhere, and
 * symlinks (of any existing prefix of the path) that lead out. The target itself need not exist
 * (write_file creates it) but its existing ancestors are resolved with realpath.
 * Returns 0 and a heap path in *out, or <0 with a heap message in *err such as
 * "Access denied - path outside allowed directories: /etc/passwd not in /ws". */
int workspace_resolve(const char *root, const char *path, char **out, char **err);

/* Resolves a configured workspace directory as the original (anchor-api.md §1.3): empty ->
 * <cwd>/agent-tars-workspace; leading "~" -> $HOME; absolute as is; relative against cwd;
 * when isolate && session_id, "/<session_id>" appended. Does not touch the file system.
 * Caller owns the result. */
char *workspace_path(const char *configured, const char *session_id, bool isolate);
/* mkdir -p. Returns 0 or -errno. */
int workspace_mkdirs(const char *path);

/* Reads the tool settings of the config tree (borrowed; kept): "tool": {include, exclude}
 * (name-substring filters as the original), "search": {provider, apiKey, baseURL, count},
 * "command": {timeoutMs, maxOutputBytes, sandbox, network, env, passEnv}. Returns 0 or <0 with
 * a heap message in *err. Without a call, defaults apply, and commands run without a sandbox
 * (the sandbox is chosen here: "auto" looks for bubblewrap). */
int tools_init(uv_loop_t *loop, const json_t *config_root, char **err);
void tools_shutdown(void);

/* The OpenAI "tools" array of every built-in tool: [{"type":"function","function":{name,
 * description, parameters}}]. Borrowed, lives for the process. */
const json_t *tools_openai_schema(void);
/* The {name, description, schema} object for tool_call events, or NULL if unknown. Borrowed. */
const json_t *tools_describe(const char *name);

struct tool_result {
    json_t *content;  /* what the tool returned: a string (or an array of content parts) */
    char *error;      /* NULL on success; the message on failure (content then "Error: <msg>") */
};

/* on_done fires exactly once, on the loop thread, unless tool_run returned <0. res is borrowed
 * for the duration of the callback (steal res->content with json_incref if needed). */
typedef void (*tool_done_cb)(void *data, const struct tool_result *res);

struct tool_run;
/* Runs tool `name` with parsed `args` (borrowed; copied before return) in workspace `root`.
 * An unknown tool or invalid arguments still complete through on_done with an error result.
 * Returns 0, or <0 only if nothing could be queued. */
int tool_run_start(uv_loop_t *loop, const char *root, const char *name, const json_t *args,
                   tool_done_cb on_done, void *data, struct tool_run **out);
/* Asks a running tool to stop (kills child processes for command tools); on_done still fires.
 * A file tool already on the threadpool finishes normally. */
void tool_run_abort(struct tool_run *run);

/* The OpenAI content parts the original makes of ANY tool result before it goes to the model
 * (agent-tools-llm.md §2.4, utils/multimodal.ts): a string becomes one text part; in an array,
 * objects carrying base64 image data become image_url parts (data URIs) and everything else is
 * JSON.stringify(items, null, 2)-ed into one text part after them; an object is stringified
 * unless it carries image data; null, numbers and booleans become their String() text.
 * Pure (tool_content.c); returns a new array
 * [{type:"text",text} | {type:"image_url",image_url:{url}}]. */
json_t *mcp_content_to_parts(const json_t *content);

/* Files no command may read: the database and the config files. The sandbox covers each (and
 * a database's -wal, -shm and -journal) when a bound tree would show it. Copied; call before
 * tools_init. */
void tools_set_hidden_paths(const char *const *paths);

/* The command helper: without a sandbox, a command runs under the server binary started again
 * as `agent-tars-server --command-helper CMD...`. main() hands such a call to
 * tools_command_helper_main, which becomes a subreaper, closes every descriptor above 2, runs
 * CMD in a session of its own and, when CMD exits or the helper gets SIGTERM (timeout, abort,
 * shutdown, the server's death), kills every process CMD left, setsid and double forks
 * included. Returns CMD's exit status (or dies of its signal). */
#define TOOLS_HELPER_FLAG "--command-helper"
int tools_command_helper_main(int argc, char **argv);

#endif
