/* SPDX-License-Identifier: MIT */
/* tools_int.h -- what tool.c (registry and threadpool runner), tool_fs.c (file tools) and
 * workspace.c (path confinement) share. Not for use outside src/tools. */
#ifndef TOOLS_TOOLS_INT_H
#define TOOLS_TOOLS_INT_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* One call as a tool body sees it. The body runs on a threadpool thread: everything here is
 * private to this call, so building jansson values in it is safe (jansson 2.14 refcounts are
 * atomic and nothing here is shared with the loop thread until the after-work callback). */
struct tool_call {
    const char *name;     /* tool name, for messages */
    const char *root;     /* workspace root as configured (absolute) */
    const json_t *args;   /* a private deep copy of the arguments (an object or NULL) */
    atomic_bool *aborted; /* set by tool_run_abort; short tools may ignore it */
    json_t *content;      /* out: the success result, a new reference */
    char *error;          /* out: heap message on failure (content then left NULL) */
};

/* A built-in tool. `run` is called on a threadpool thread and must set exactly one of
 * call->content or call->error. */
struct tool_ops {
    const char *name;
    const char *description;     /* with the "[filesystem] " style prefix of the original */
    json_t *(*schema_new)(void); /* JSON schema of the arguments; new reference */
    void (*run)(struct tool_call *call);
};

extern const struct tool_ops tool__fs_ops[];
extern const size_t tool__fs_count;

/* Sets call->error to "Invalid arguments for <tool>: <key> must be a string" unless
 * args[key] is a string; returns that string (borrowed from call->args) or NULL. */
const char *tool__arg_str(struct tool_call *call, const char *key);
/* Node-style error text, as the original's fs calls throw it:
 * "ENOENT: no such file or directory, open '/ws/x'". err is a negative errno; path may be
 * NULL (then the text ends after the syscall name). Caller owns the result. */
char *tool__errno_msg(int err, const char *syscall, const char *path);

/* path made absolute against `base` and normalized lexically like Node's path.resolve:
 * "." and empty components dropped, ".." pops one component (never above "/"), no trailing
 * slash. `path` may be absolute (then base is ignored). Caller owns the result. */
char *tool__path_resolve(const char *base, const char *path);

#endif
