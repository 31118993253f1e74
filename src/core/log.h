/* SPDX-License-Identifier: MIT */
/* log.h -- leveled logging to stderr. The level is checked before formatting. Secrets never
 * reach the log: use log_redact() on anything that could hold a key. */
#ifndef CORE_LOG_H
#define CORE_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

extern int log_level;

void log_set_level(int level);
/* Parses "error|warn|info|debug|silent"; returns -1 if unknown. */
int log_level_parse(const char *s);
void log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Line format: text (default) or one JSON object per line {time, level, msg, requestId,
 * sessionId} (--log.format json). */
void log_set_json(bool on);
/* The request id every line carries until it is set to NULL (copied). */
void log_set_request_id(const char *id);
const char *log_request_id(void); /* "" when none */
/* Registers a secret (an API key); every later log line has it replaced by "***". */
void log_add_secret(const char *secret);

#define log_error(...)                                                                         \
    do {                                                                                       \
        if (log_level >= LOG_ERROR)                                                            \
            log_write(LOG_ERROR, __VA_ARGS__);                                                 \
    } while (0)
#define log_warn(...)                                                                          \
    do {                                                                                       \
        if (log_level >= LOG_WARN)                                                             \
            log_write(LOG_WARN, __VA_ARGS__);                                                  \
    } while (0)
#define log_info(...)                                                                          \
    do {                                                                                       \
        if (log_level >= LOG_INFO)                                                             \
            log_write(LOG_INFO, __VA_ARGS__);                                                  \
    } while (0)
#define log_debug(...)                                                                         \
    do {                                                                                       \
        if (log_level >= LOG_DEBUG)                                                            \
            log_write(LOG_DEBUG, __VA_ARGS__);                                                 \
    } while (0)

#endif
