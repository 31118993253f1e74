/* SPDX-License-Identifier: MIT */
/* config.h -- command line and config file. Precedence (low to high): built-in defaults <
 * --config FILE (JSON, the original's keys) < command-line flags. Any dotted flag
 * (--model.id x, --server.port=1) sets the same key of the merged tree. */
#ifndef CONFIG_H
#define CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "llm/llm.h"

struct config {
    json_t *root;            /* the merged tree; owns every string below unless noted */
    char *host;
    int port;
    char *workspace;         /* as configured (resolved per session by tools/workspace_path) */
    bool isolate_sessions;
    struct llm_config llm;   /* strings point into owned copies below */
    char *provider, *model_id, *base_url, *api_key;
    char *model_error;       /* non-NULL: why no model is configured (queries fail with it) */
    int max_iterations;
    char *instructions;      /* NULL if none */
    size_t max_body_bytes;
    unsigned header_timeout_ms, idle_timeout_ms, max_conns;
    int log_level;
    char *storage_path;      /* SQLite file, or NULL for the memory store */
    bool exclusive;          /* server.exclusive */
    unsigned max_concurrent_runs, max_queued_runs;
    size_t max_images, max_tool_result_bytes; /* context.maxImagesCount, .maxToolResultBytes */
    char **config_files;     /* the --config files read, NULL-terminated (commands must not see them) */
    char **key_env;          /* environment variables an API key was read from, NULL-terminated */
    struct llm_catalog catalog; /* the selectable models, llm first (installed by config_load) */
};

/* Parses argv. Returns 0 to run, 1 if --help was printed (exit 0), or -1 with a heap message in
 * *err (exit 2). */
int config_load(struct config *c, int argc, char **argv, char **err);
void config_release(struct config *c);
/* Keeps the secrets the server was started with from its children and from /proc (issue 10):
 * removes the variables API keys were read from (key_env) from the environment, moves the
 * environment off the initial stack block and zeroes that block (so /proc/<pid>/environ shows
 * nothing), and overwrites the values of secret-looking flags (--model.apiKey and any flag
 * whose name contains key, token, secret or password) in argv with '*' (/proc/<pid>/cmdline).
 * Call once, right after config_load, with main's argc and argv. */
void config_hide_secrets(struct config *c, int argc, char **argv);
/* Default base URL of a provider name (anchor-api.md §7.2), or NULL if it has none. */
const char *config_provider_base_url(const char *provider);

#endif
