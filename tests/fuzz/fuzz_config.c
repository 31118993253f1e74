/* SPDX-License-Identifier: MIT */
/* fuzz_config.c -- command line and config file parsing (src/config.c). The input is a config
 * file's text, then NUL-separated arguments; the file (a memfd, opened by its /proc path) is
 * given as the first --config. Arguments that would name other files (--config, -c) or print the
 * usage are dropped. Property: config_load succeeds, prints help, or fails with a message, and a
 * loaded config has its host set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fuzz.h"

static char file_path[64];
static int file_fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    file_fd = memfd_create("fuzz-config.json", 0);
    if (file_fd < 0)
        abort();
    snprintf(file_path, sizeof(file_path), "/proc/self/fd/%d", file_fd);
    unsetenv("OPENAI_API_KEY");
    unsetenv("OPENAI_BASE_URL");
    return 0;
}

static bool dropped(const char *a)
{
    while (*a == '-')
        a++;
    size_t n = strcspn(a, "=");
    return (n == 6 && strncmp(a, "config", 6) == 0) || (n == 1 && (*a == 'c' || *a == 'h')) ||
           (n == 4 && strncmp(a, "help", 4) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_init();
    const char *p = (const char *)data, *end = p + size;
    const char *nul = memchr(p, '\0', size);
    size_t flen = nul ? (size_t)(nul - p) : size;
    if (ftruncate(file_fd, 0) != 0 || pwrite(file_fd, p, flen, 0) != (ssize_t)flen)
        abort();
    char *argv[40];
    int argc = 0;
    argv[argc++] = xstrdup("agent-tars-server");
    argv[argc++] = xstrdup("--config");
    argv[argc++] = xstrdup(file_path);
    for (const char *s = nul ? nul + 1 : end; s < end && argc < 39;) {
        const char *z = memchr(s, '\0', (size_t)(end - s));
        size_t n = z ? (size_t)(z - s) : (size_t)(end - s);
        char *a = xstrndup(s, n);
        if (dropped(a))
            xfree(a);
        else
            argv[argc++] = a;
        s += n + 1;
    }
    argv[argc] = NULL;
    struct config c;
    char *err = NULL;
    int rc = config_load(&c, argc, argv, &err);
    if (rc < 0 && !err)
        abort(); /* a failure always says why */
    if (rc == 0 && (!c.host || !c.root))
        abort();
    xfree(err);
    config_release(&c);
    for (int i = 0; i < argc; i++)
        xfree(argv[i]);
    return 0;
}
