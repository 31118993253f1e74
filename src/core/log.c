/* SPDX-License-Identifier: MIT */
/* log.c -- stderr logger with secret redaction in one place. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "xalloc.h"

#define LOG_MAX_SECRETS 8

int log_level = LOG_INFO;
static char *secrets[LOG_MAX_SECRETS];
static size_t nsecrets;

void log_set_level(int level)
{
    log_level = level;
}

int log_level_parse(const char *s)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, names[i]) == 0)
            return i;
    if (strcasecmp(s, "silent") == 0)
        return -1000;
    return -1;
}

void log_add_secret(const char *secret)
{
    if (secret == NULL || strlen(secret) < 4 || nsecrets == LOG_MAX_SECRETS)
        return;
    secrets[nsecrets++] = xstrdup(secret);
}

static void redact(char *line)
{
    for (size_t i = 0; i < nsecrets; i++) {
        size_t n = strlen(secrets[i]);
        char *p;
        while ((p = strstr(line, secrets[i])) != NULL) {
            memmove(p + 3, p + n, strlen(p + n) + 1);
            memcpy(p, "***", 3);
        }
    }
}

void log_write(int level, const char *fmt, ...)
{
    static const char *tags[] = {"error", "warn", "info", "debug"};
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    redact(line);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    fprintf(stderr, "%02d:%02d:%02d.%03ld %s: %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
            ts.tv_nsec / 1000000, tags[level < 0 ? 0 : level > 3 ? 3 : level], line);
}
