/* SPDX-License-Identifier: MIT */
/* helper.c -- the command helper: without a sandbox, a command runs under the server binary
 * started again as `agent-tars-server --command-helper /bin/sh -c CMD` (tools.h). The helper is
 * a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so every process the command orphans,
 * through setsid and double forks included, is re-parented to it and not to init; when the
 * command's first process exits, or when the server asks (SIGTERM on timeout, abort and
 * shutdown; PR_SET_PDEATHSIG when the server dies), it stops and kills all of them and reaps
 * them. That is what a PID namespace gives the bubblewrap sandbox for free.
 *
 * Why a process of its own, and not the server as the subreaper: libuv's SIGCHLD handler only
 * waits for the pids it spawned, so orphans adopted by the server would stay zombies unless we
 * reaped them, and a waitpid(-1) of ours would steal libuv's children; nor could the server
 * tell which command an adopted orphan came from. The helper's children are the command's
 * processes and nothing else, so it may reap with waitpid(-1). It runs no event loop and
 * allocates nothing: it is a few syscalls between fork and exec. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools.h"

#define MAX_DEPTH 64   /* deeper processes are caught by a later round, once re-parented */
#define MAX_ROUNDS 200 /* a fork bomb outrunning us; each round kills what it sees */

/* Every descriptor above 2: a command starts with its stdin, stdout and stderr only. */
static void close_fds(void)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, 3U, ~0U, 0U) == 0)
        return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    for (long fd = 3; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
        close((int)fd);
}

typedef void (*pid_fn)(pid_t pid, int depth);

/* Calls fn for each child of pid (of any of its threads), from /proc/<pid>/task/<tid>/children.
 * Returns how many there were. */
static int for_children(pid_t pid, pid_fn fn, int depth)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    int count = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char file[128];
        snprintf(file, sizeof(file), "/proc/%d/task/%.20s/children", (int)pid, de->d_name);
        FILE *f = fopen(file, "re");
        if (f == NULL)
            continue;
        int child;
        while (fscanf(f, "%d", &child) == 1) {
            count++;
            fn((pid_t)child, depth + 1);
        }
        fclose(f);
    }
    closedir(d);
    return count;
}

/* Stops pid first so that it cannot fork while we look at its children, then kills them all
 * below it and finally pid itself. */
static void kill_tree(pid_t pid, int depth)
{
    if (kill(pid, SIGSTOP) < 0)
        return;
    if (depth < MAX_DEPTH)
        for_children(pid, kill_tree, depth);
    kill(pid, SIGKILL);
}

static void reap_nohang(void)
{
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
}

/* Kills every descendant. Orphans of a killed process come to us (we are their subreaper), so
 * the rounds go on until we have no child left. */
static void kill_all(void)
{
    for (int round = 0; round < MAX_ROUNDS; round++) {
        int n = for_children(getpid(), kill_tree, 0);
        if (n > 0 && waitpid(-1, NULL, 0) < 0 && errno == ECHILD)
            return;
        reap_nohang();
        if (n == 0 && waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD)
            return;
        if (n == 0)
            usleep(1000); /* only zombies-to-be are left: let them die */
    }
}

/* Ends like the command: its exit code, or its signal (raised at ourselves). */
static int end_like(int status)
{
    if (WIFEXITED(status))
        _exit(WEXITSTATUS(status));
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : SIGKILL;
    struct rlimit none = {0, 0};
    setrlimit(RLIMIT_CORE, &none); /* the command already dumped core if it wanted to */
    signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    raise(sig);
    _exit(128 + sig);
}

int tools_command_helper_main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s %s PROGRAM [ARG...]\n", argv[0], TOOLS_HELPER_FLAG);
        return 127;
    }
    close_fds();
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &old);
    pid_t parent = getppid();
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) /* the server died before PDEATHSIG was armed */
        return 128 + SIGTERM;
    pid_t child = fork();
    if (child < 0) {
        fprintf(stderr, "%s: cannot fork: %s\n", argv[2], strerror(errno));
        return 126;
    }
    if (child == 0) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        prctl(PR_SET_PDEATHSIG, 0);
        setsid(); /* the command leads a session and group of its own, as under bwrap */
        execvp(argv[2], argv + 2);
        fprintf(stderr, "%s: %s\n", argv[2], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    int status = 0;
    for (;;) {
        siginfo_t info;
        int sig = sigwaitinfo(&set, &info);
        if (sig < 0)
            continue; /* EINTR */
        if (sig != SIGCHLD) {
            kill_all();
            /* A wait status meaning "killed by SIGKILL": the server reports the command as
             * killed, as it did when it killed a process group. */
            end_like(SIGKILL);
        }
        pid_t p;
        bool done = false;
        while ((p = waitpid(-1, &status, WNOHANG)) > 0)
            if (p == child) {
                done = true;
                break;
            }
        if (done)
            break;
    }
    kill_all(); /* what the command left running in the background ends with it */
    return end_like(status);
}
