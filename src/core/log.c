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
static bool json_lines;
static char request_id[72]; /* of the request being handled, "" when none */

void log_set_json(bool on)
{
    json_lines = on;
}

void log_set_request_id(const char *id)
{
    snprintf(request_id, sizeof(request_id), "%s", id ? id : "");
}

const char *log_request_id(void)
{
    return request_id;
}

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

/* JSON string escaping (RFC 8259 §7) of an already redacted line. */
static void put_json_string(FILE *f, const char *s, size_t n)
{
    fputc('"', f);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c < 0x20)
            fprintf(f, "\\u%04x", c);
        else
            fputc(c, f);
    }
    fputc('"', f);
}

/* {"time","level","msg"[,"requestId"][,"sessionId"]}: the session id is taken from the
 * house prefix of the message, "sess <id>: ...". */
static void write_json(const struct tm *tm, const struct timespec *ts, const char *tag,
                       const char *line)
{
    char head[96];
    snprintf(head, sizeof(head), "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
             "\"msg\":", tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday, tm->tm_hour,
             tm->tm_min, tm->tm_sec, ts->tv_nsec / 1000000, tag);
    flockfile(stderr);
    fputs(head, stderr);
    put_json_string(stderr, line, strlen(line));
    if (request_id[0]) {
        fputs(",\"requestId\":", stderr);
        put_json_string(stderr, request_id, strlen(request_id));
    }
    if (strncmp(line, "sess ", 5) == 0) {
        size_t n = strcspn(line + 5, ": ");
        if (n > 0 && n < 128) {
            fputs(",\"sessionId\":", stderr);
            put_json_string(stderr, line + 5, n);
        }
    }
    fputs("}\n", stderr);
    funlockfile(stderr);
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
    if (json_lines) {
        write_json(&tm, &ts, tags[level < 0 ? 0 : level > 3 ? 3 : level], line);
        return;
    }
    if (request_id[0]) {
        fprintf(stderr, "%02d:%02d:%02d.%03ld %s: %s (req %s)\n", tm.tm_hour, tm.tm_min,
                tm.tm_sec, ts.tv_nsec / 1000000, tags[level < 0 ? 0 : level > 3 ? 3 : level],
                line, request_id);
        return;
    }
    fprintf(stderr, "%02d:%02d:%02d.%03ld %s: %s\n", tm.tm_hour, tm.tm_min, tm.tm_sec,
            ts.tv_nsec / 1000000, tags[level < 0 ? 0 : level > 3 ? 3 : level], line);
}
