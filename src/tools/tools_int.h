/* SPDX-License-Identifier: MIT */
/* tools_int.h -- what the files of src/tools share: tool.c (registry, filters, runner),
 * tool_fs.c / tool_edit.c / tool_walk.c (file tools on the threadpool), tool_exec.c (commands on
 * the loop), tool_search.c (web_search over curl_uv) and workspace.c (path confinement).
 * Not for use outside src/tools. */
#ifndef TOOLS_TOOLS_INT_H
#define TOOLS_TOOLS_INT_H

#include <dirent.h>
#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

/* One call as a tool body sees it. A threadpool body runs on a worker thread: everything here
 * is private to this call, so building jansson values in it is safe (jansson 2.14 refcounts are
 * atomic and nothing here is shared with the loop thread until the after-work callback). A loop
 * tool (commands, web_search) only ever touches it on the loop thread. */
struct tool_call {
    const char *name;     /* tool name, for messages */
    const char *root;     /* workspace root as configured (absolute) */
    const json_t *args;   /* a private deep copy of the arguments (an object or NULL) */
    atomic_bool *aborted; /* set by tool_run_abort; short tools may ignore it */
    json_t *content;      /* out: the success result, a new reference */
    char *error;          /* out: heap message on failure (content then left NULL) */
};

/* A built-in tool: exactly one of `run` and `start` is set.
 * - `run` is a threadpool body: called on a worker thread, it sets exactly one of
 *   call->content or call->error.
 * - `start` is a loop tool: called on the loop thread, it returns a handle and later calls
 *   tool__loop_done(call) exactly once on the loop thread, never from inside `start`. If it
 *   cannot start at all it sets call->error and returns NULL (the runner then completes the
 *   call). `abort` (on the loop thread, at most while the call is running) makes it end early;
 *   tool__loop_done still follows. */
struct tool_ops {
    const char *name;
    const char *description;     /* with the "[filesystem] " style prefix of the original */
    json_t *(*schema_new)(void); /* JSON schema of the arguments; new reference */
    void (*run)(struct tool_call *call);
    void *(*start)(uv_loop_t *loop, struct tool_call *call);
    void (*abort)(void *handle);
};

/* The tables, in the order the original registers them (anchor-api.md §6.1). */
extern const struct tool_ops tool__fs_ops[];
extern const size_t tool__fs_count;
extern const struct tool_ops tool__exec_ops[];
extern const size_t tool__exec_count;
extern const struct tool_ops tool__search_ops; /* web_search */

/* Bodies and schemas of the file tools that live in their own files (tool_edit.c, tool_walk.c). */
void tool__edit_file_run(struct tool_call *call);
json_t *tool__edit_file_schema_new(void);
void tool__directory_tree_run(struct tool_call *call);
json_t *tool__directory_tree_schema_new(void);
void tool__search_files_run(struct tool_call *call);
json_t *tool__search_files_schema_new(void);

/* Completes a loop tool's call: its result goes to the caller and the run is freed. */
void tool__loop_done(struct tool_call *call);

/* Module settings from the config tree (tools_init). Each returns 0 or <0 with *err. */
int tool__exec_init(const json_t *root, char **err);
/* Kills the process group of every command still running (they then complete as aborted). */
void tool__exec_shutdown(void);
int tool__search_init(uv_loop_t *loop, const json_t *root, char **err);
/* Whether a usable search provider is configured (web_search is only offered then). */
bool tool__search_enabled(void);
/* Aborts the searches in flight and closes the curl_uv instance (the loop must run after). */
void tool__search_shutdown(void);

/* ---------------------------------------------------------------- helpers for tool bodies */

/* Sets call->error to "Invalid arguments for <tool>: <key> must be a string" unless
 * args[key] is a string; returns that string (borrowed from call->args) or NULL. */
const char *tool__arg_str(struct tool_call *call, const char *key);
/* args[key] as a string when present; NULL when absent or null. Sets call->error (and returns
 * NULL) when it is present with another type; check call->error. */
const char *tool__arg_opt_str(struct tool_call *call, const char *key);
/* Node-style error text, as the original's fs calls throw it:
 * "ENOENT: no such file or directory, open '/ws/x'". err is a negative errno; path may be
 * NULL (then the text ends after the syscall name). Caller owns the result. */
char *tool__errno_msg(int err, const char *syscall, const char *path);

/* path made absolute against `base` and normalized lexically like Node's path.resolve:
 * "." and empty components dropped, ".." pops one component (never above "/"), no trailing
 * slash. `path` may be absolute (then base is ignored). Caller owns the result. */
char *tool__path_resolve(const char *base, const char *path);

/* Length of data[0..len) without a UTF-8 sequence cut off at the end, so text cut at a cap
 * does not end in a replacement character. */
size_t tool__utf8_trim(const char *data, size_t len);

/* Reads the regular file `real` (already confined) as a tool shows text: at most max_bytes,
 * with a "[truncated: ...]" note when the file goes on; invalid UTF-8 becomes U+FFFD. Returns a
 * new JSON string, or NULL with a heap message in *err. */
json_t *tool__read_text(const char *real, size_t max_bytes, char **err);
/* Reads all of the regular file `real`, refusing files over max_bytes. Returns 0 with a heap
 * buffer (NUL-terminated) in *data, or <0 with a heap message in *err. */
int tool__read_all(const char *real, size_t max_bytes, char **data, size_t *len, char **err);
/* Replaces the regular file `real` with data[0..len) (created 0666 less the umask). Returns 0 or
 * <0 with a heap message in *err. */
int tool__write_file(const char *real, const char *data, size_t len, char **err);

/* One directory entry; symlinks count as files, as readdir's Dirent.isDirectory() says in the
 * original. */
struct tool_dirent {
    char *name; /* heap */
    bool dir;
};
/* Reads the entries of d (then closes it) except "." and "..", sorted bytewise. At most
 * max_entries are kept; *total counts them all. Returns the count kept; *out is a heap array
 * (NULL when empty) to free with tool__dirents_free. */
size_t tool__read_dir(DIR *d, size_t max_entries, struct tool_dirent **out, size_t *total);
void tool__dirents_free(struct tool_dirent *ents, size_t n);

/* Config helpers. obj[key] as a heap string in *out (caller owns it): numbers are written out,
 * as a CLI flag such as --search.apiKey 1234 arrives as a number; NULL when absent or null.
 * Returns 0, or <0 with *err when it has another type. `where` names obj in messages. */
int tool__cfg_str(const json_t *obj, const char *where, const char *key, char **out, char **err);
/* obj[key] as an integer in [min, max]; *out untouched when absent or null. */
int tool__cfg_int(const json_t *obj, const char *where, const char *key, long long min,
                  long long max, long long *out, char **err);

/* ---------------------------------------------------------------- commands: sandbox.c, helper.c */

enum tool_sandbox { TOOL_SANDBOX_NONE, TOOL_SANDBOX_BWRAP };

/* Reads "command": {sandbox, network, env, passEnv} and the workspace keys; with sandbox auto or
 * bwrap, looks for bwrap and tries it once (tool__sandbox_probe). Returns 0 or <0 with *err
 * (sandbox bwrap on a machine where it cannot work, a malformed key). */
int tool__sandbox_init(const json_t *root, char **err);
void tool__sandbox_shutdown(void);
enum tool_sandbox tool__sandbox_mode(void);
bool tool__sandbox_network(void); /* command.network */
/* The configured workspace (not per session), for sandboxed MCP servers. */
const char *tool__sandbox_workspace(void);
int tool__sandbox_probe(const char *bwrap, char **why);

/* The environment of a command: the allow-list (PATH, LANG, LC_*, TERM, TZ, USER, SHELL,
 * TMPDIR) of the server's, command.passEnv, HOME = home, command.env, PWD = pwd. Heap array of
 * heap strings (tool__strv_free). */
char **tool__command_env(const char *home, const char *pwd);
/* The bwrap argv that runs cmd in a sandbox with workspace ws bound read-write, in cwd (inside
 * ws). Only in TOOL_SANDBOX_BWRAP mode. Heap array (tool__strv_free). */
char **tool__sandbox_argv(const char *ws, const char *cwd, char *const *cmd, bool network);
void tool__strv_free(char **v);

/* The pure builders behind the two above (unit-tested). */
struct tool_env_spec {
    char *const *environ;     /* the server's environment */
    const char *const *pass;  /* command.passEnv: names copied from environ; may be NULL */
    const json_t *set;        /* command.env: name -> string; may be NULL */
    const char *home, *pwd;   /* HOME and PWD; NULL leaves them out */
    const char *tmpdir;       /* TMPDIR to set, or NULL to keep the server's */
};
char **tool__env_build(const struct tool_env_spec *s);

struct tool_sysdir {
    const char *path; /* an absolute path of the host, bound read-only at the same place */
    const char *link; /* or, when the host has a symlink there, its target (recreated) */
};
struct tool_bwrap_spec {
    const char *bwrap;
    const struct tool_sysdir *sys; /* the read-only system trees */
    size_t nsys;
    const char *workspace;         /* bound read-write at the same path; NULL for none */
    const char *workspace_alias;   /* NULL, or another path the workspace is bound at too */
    const char *const *mask_dirs;  /* covered with an empty tmpfs; NULL-terminated or NULL */
    const char *const *mask_files; /* covered with /dev/null; NULL-terminated or NULL */
    bool network;                  /* false: a network namespace of its own (no 127.0.0.1) */
    const char *chdir;             /* NULL: bwrap's default */
    const char *const *cmd;        /* the command, NULL-terminated */
};
char **tool__bwrap_argv(const struct tool_bwrap_spec *s);

/* helper.c: run_command without a sandbox goes through the command helper (TOOLS_HELPER_FLAG,
 * see tools.h): the program TOOL_HELPER_NAME next to the server binary when it is there
 * (src/command_helper.c, libc only), else the server binary itself. */
#define TOOL_HELPER_NAME "agent-tars-command-helper"
#define TOOL_HELPER_EXE "/proc/self/exe"

#endif
