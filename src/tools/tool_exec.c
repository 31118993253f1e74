/* SPDX-License-Identifier: MIT */
/* tool_exec.c -- run_command and run_script as the original's commands server offers them
 * (agent-tools-llm.md §2.1, §3.3): `/bin/sh -c <command>` (for run_script, the interpreter
 * command with the script piped to its stdin), spawned with uv_spawn on the loop in the
 * workspace, in a bubblewrap sandbox (sandbox.c) or under the command helper (helper.c), with an
 * allow-listed environment, capped stdout/stderr, and every process of the command killed on
 * timeout, abort and shutdown. The result is the commands server's content array: an ERROR part
 * when the command failed, then STDOUT and STDERR parts. See docs/internals/TOOLS.md. */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "core/xalloc.h"
#include "tools.h"
#include "tools_int.h"

#define EXEC_TIMEOUT_MS 60000         /* default of "command": {"timeoutMs"} */
#define EXEC_MAX_OUTPUT (1024 * 1024) /* default of "command": {"maxOutputBytes"}, per stream */
#define EXEC_GRACE_MS 1000            /* after the shell exits, wait this long for its pipes */
#define EXEC_READ_CHUNK (64 * 1024)
#define EXEC_HELPER_GRACE_MS 3000     /* the helper's kill sweep normally takes milliseconds */

enum exec_phase {
    PH_RUNNING, /* the shell runs; the timer is the timeout */
    PH_KILLED,  /* the group got SIGKILL; waiting for the shell's exit */
    PH_EXITED,  /* the shell exited; the timer is the grace period for the pipes */
    PH_CLOSING, /* handles are closing; the result follows the last close */
};

enum exec_kill { KILL_NONE, KILL_TIMEOUT, KILL_ABORT };

struct capture {
    struct buf buf; /* what the command printed, capped at maxOutputBytes */
    size_t dropped; /* bytes over the cap */
    bool eof;
};

struct exec_job {
    struct tool_call *call;
    uv_process_t proc;
    uv_pipe_t pipes[3]; /* stdin (run_script only), stdout, stderr */
    uv_timer_t timer;
    uv_write_t write_req;
    struct capture cap[2]; /* stdout, stderr */
    char *shown;           /* the command (or interpreter) for messages; heap */
    char *script;          /* run_script: the text for stdin; heap */
    size_t script_len;
    enum exec_phase phase;
    enum exec_kill killed;
    bool spawned;
    bool helper;                  /* run under the command helper (no sandbox) */
    bool no_proc;                 /* no pipes, so no uv_spawn: proc is not a handle */
    bool term_sent;               /* the helper got SIGTERM; the timer is its grace period */
    bool helper_killed;           /* the helper outlived its grace period: group SIGKILL */
    bool stdin_open;              /* pipes[0] is initialized and not closed yet */
    int64_t exit_status;          /* valid once the shell exited */
    int term_signal;              /* 0 unless the shell died of a signal */
    int open_handles;             /* handles initialized and not yet closed */
    struct exec_job *prev, *next; /* running jobs, for tools_shutdown */
    char scratch[EXEC_READ_CHUNK];
};

static struct {
    uint64_t timeout_ms;
    size_t max_output;
    struct exec_job *jobs;
    char *helper; /* the command helper program (heap), or NULL for TOOL_HELPER_EXE */
} ex = {EXEC_TIMEOUT_MS, EXEC_MAX_OUTPUT, NULL, NULL};

/* ---------------------------------------------------------------- config */

/* agent-tars-command-helper next to our binary (it starts faster than the server binary, see
 * src/command_helper.c), or NULL: then the server binary is the helper. */
static char *find_helper(void)
{
    char exe[PATH_MAX];
    size_t n = sizeof(exe);
    if (uv_exepath(exe, &n) < 0 || strrchr(exe, '/') == NULL)
        return NULL;
    *strrchr(exe, '/') = '\0';
    char *p = xasprintf("%s/%s", exe, TOOL_HELPER_NAME);
    if (access(p, X_OK) == 0)
        return p;
    xfree(p);
    return NULL;
}

int tool__exec_init(const json_t *root, char **err)
{
    ex.timeout_ms = EXEC_TIMEOUT_MS;
    ex.max_output = EXEC_MAX_OUTPUT;
    const json_t *cmd = json_object_get(root, "command");
    if (cmd != NULL && !json_is_null(cmd) && !json_is_object(cmd)) {
        *err = xstrdup("'command' must be an object");
        return -EINVAL;
    }
    long long timeout = EXEC_TIMEOUT_MS, max = EXEC_MAX_OUTPUT;
    if (tool__cfg_int(cmd, "command", "timeoutMs", 1, 7LL * 24 * 3600 * 1000, &timeout, err) < 0 ||
        tool__cfg_int(cmd, "command", "maxOutputBytes", 1, 256LL * 1024 * 1024, &max, err) < 0)
        return -EINVAL;
    ex.timeout_ms = (uint64_t)timeout;
    ex.max_output = (size_t)max;
    ex.helper = find_helper();
    return tool__sandbox_init(root, err);
}

static void exec_abort(void *handle);

void tool__exec_shutdown(void)
{
    for (struct exec_job *j = ex.jobs; j != NULL; j = j->next)
        exec_abort(j);
    tool__sandbox_shutdown();
    xfree(ex.helper);
    ex.helper = NULL;
    ex.timeout_ms = EXEC_TIMEOUT_MS;
    ex.max_output = EXEC_MAX_OUTPUT;
}

/* ---------------------------------------------------------------- the result */

static void append_capture(struct buf *b, const struct capture *c, const char *what)
{
    size_t len = c->dropped ? tool__utf8_trim(buf_str(&c->buf), c->buf.len) : c->buf.len;
    buf_append(b, buf_str(&c->buf), len);
    if (c->dropped)
        buf_appendf(b, "\n[truncated: %s went over %zu bytes; %zu more bytes were dropped]", what,
                    ex.max_output, c->dropped);
}

static json_t *text_part_new(const struct buf *b, const char *name)
{
    return json_pack("{s:s, s:o, s:s}", "type", "text", "text",
                     json_string_lossy(buf_str(b), b->len), "name", name);
}

/* The ERROR part: Node's exec error text ("Command failed: <cmd>\n<stderr>"), or ours for a
 * timeout or an abort, with the exit code (null after a signal) and the signal name. */
static json_t *error_part_new(const struct exec_job *job)
{
    struct buf b;
    buf_init(&b, (size_t)-1);
    if (job->killed == KILL_TIMEOUT)
        buf_appendf(&b, "Command timed out after %llu ms: %s\n", (unsigned long long)ex.timeout_ms,
                    job->shown);
    else if (job->killed == KILL_ABORT)
        buf_appendf(&b, "Command aborted: %s\n", job->shown);
    else
        buf_appendf(&b, "Command failed: %s\n", job->shown);
    append_capture(&b, &job->cap[1], "stderr");
    json_t *part = text_part_new(&b, "ERROR");
    buf_release(&b);
    json_object_set_new(part, "exitCode",
                        job->term_signal ? json_null() : json_integer(job->exit_status));
    if (job->term_signal) {
        const char *abbrev = sigabbrev_np(job->term_signal);
        char *sig = abbrev ? xasprintf("SIG%s", abbrev) : xasprintf("%d", job->term_signal);
        json_object_set_new(part, "signal", json_string(sig));
        xfree(sig);
    }
    return part;
}

static json_t *result_new(const struct exec_job *job)
{
    json_t *parts = json_array();
    if (job->killed != KILL_NONE || job->exit_status != 0 || job->term_signal != 0)
        json_array_append_new(parts, error_part_new(job));
    static const char *const names[] = {"STDOUT", "STDERR"}, *const what[] = {"stdout", "stderr"};
    for (int i = 0; i < 2; i++) {
        if (job->cap[i].buf.len == 0 && job->cap[i].dropped == 0)
            continue;
        struct buf b;
        buf_init(&b, (size_t)-1);
        append_capture(&b, &job->cap[i], what[i]);
        json_array_append_new(parts, text_part_new(&b, names[i]));
        buf_release(&b);
    }
    return parts;
}

/* ---------------------------------------------------------------- lifecycle */

static void job_free(struct exec_job *job)
{
    buf_release(&job->cap[0].buf);
    buf_release(&job->cap[1].buf);
    xfree(job->shown);
    xfree(job->script);
    xfree(job);
}

static void on_closed(uv_handle_t *h)
{
    struct exec_job *job = h->data;
    if (--job->open_handles > 0)
        return;
    struct tool_call *call = job->call;
    if (call->error == NULL)
        call->content = result_new(job);
    job_free(job);
    tool__loop_done(call);
}

static void on_timer(uv_timer_t *t);

/* Ends the command and everything it started. Under bubblewrap, SIGKILL to bwrap's group ends
 * bwrap; --die-with-parent then kills the sandbox's first process (the PID namespace's init,
 * which left the group with --new-session), and with it gone the kernel kills every process of
 * the namespace. Without a sandbox, the helper (helper.c) gets SIGTERM and
 * kills the command's whole tree itself; should it not be gone after EXEC_HELPER_GRACE_MS, its
 * group gets SIGKILL all the same. */
static void kill_command(struct exec_job *job)
{
    if (!job->spawned || job->proc.pid <= 0)
        return;
    bool helper = job->helper && !job->helper_killed;
    if (helper && job->phase == PH_KILLED && !job->term_sent) {
        job->term_sent = true;
        uv_timer_stop(&job->timer);
        uv_timer_start(&job->timer, on_timer, EXEC_HELPER_GRACE_MS, 0);
    }
    int sig = helper ? SIGTERM : SIGKILL;
    pid_t target = helper ? job->proc.pid : -job->proc.pid;
    if (kill(target, sig) < 0 && errno != ESRCH)
        log_warn("cannot kill command %d: %s", job->proc.pid, strerror(errno));
}

static void close_handle(struct exec_job *job, uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, on_closed);
}

/* Closes every handle; the result is delivered from the last close callback. */
static void finish(struct exec_job *job)
{
    if (job->phase == PH_CLOSING)
        return;
    job->phase = PH_CLOSING;
    if (job->spawned) {
        if (job->prev != NULL)
            job->prev->next = job->next;
        else
            ex.jobs = job->next;
        if (job->next != NULL)
            job->next->prev = job->prev;
    }
    job->stdin_open = false;
    close_handle(job, (uv_handle_t *)&job->timer);
    if (!job->no_proc)
        close_handle(job, (uv_handle_t *)&job->proc);
    for (int i = 0; i < 3; i++)
        if (job->pipes[i].loop != NULL)
            close_handle(job, (uv_handle_t *)&job->pipes[i]);
}

static void maybe_finish(struct exec_job *job)
{
    if (job->phase == PH_EXITED && job->cap[0].eof && job->cap[1].eof)
        finish(job);
}

static void on_timer(uv_timer_t *t)
{
    struct exec_job *job = t->data;
    if (job->phase == PH_RUNNING) {
        job->killed = KILL_TIMEOUT;
        job->phase = PH_KILLED;
        kill_command(job);
    } else if (job->phase == PH_KILLED && job->helper && !job->helper_killed) {
        log_warn("command helper %d ignored SIGTERM; killing its group", job->proc.pid);
        job->helper_killed = true;
        kill_command(job);
    } else if (job->phase == PH_EXITED) {
        /* Something that left the group (or ignored the kill) still holds the pipes: the
         * command is over all the same. */
        finish(job);
    }
}

static void on_proc_exit(uv_process_t *p, int64_t exit_status, int term_signal)
{
    struct exec_job *job = p->data;
    job->exit_status = exit_status;
    job->term_signal = term_signal;
    if (job->phase != PH_RUNNING && job->phase != PH_KILLED)
        return;
    job->phase = PH_EXITED;
    /* Background children that keep stdout/stderr open are waited for only briefly; the
     * output they write later is lost. */
    uv_timer_stop(&job->timer);
    uv_timer_start(&job->timer, on_timer, EXEC_GRACE_MS, 0);
    maybe_finish(job);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct exec_job *job = h->data;
    *buf = uv_buf_init(job->scratch, sizeof(job->scratch));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct exec_job *job = s->data;
    struct capture *c = &job->cap[s == (uv_stream_t *)&job->pipes[1] ? 0 : 1];
    if (nread > 0) {
        size_t room = ex.max_output - c->buf.len, n = (size_t)nread;
        size_t take = n < room ? n : room;
        buf_append(&c->buf, buf->base, take);
        c->dropped += n - take; /* read on and drop, so the command never blocks on a pipe */
    } else if (nread < 0) {
        c->eof = true; /* UV_EOF, or a read error: either way nothing more comes */
        uv_read_stop(s);
        maybe_finish(job);
    }
}

static void on_written(uv_write_t *req, int status)
{
    struct exec_job *job = req->data;
    /* The script is written (or the interpreter stopped reading: EPIPE): closing our end is
     * the end of its input. */
    if (job->stdin_open) {
        job->stdin_open = false;
        close_handle(job, (uv_handle_t *)&job->pipes[0]);
    }
}

/* ---------------------------------------------------------------- spawning */

/* The working directory: cwd (confined) or the workspace. NULL with call->error on failure. */
static char *resolve_cwd(struct tool_call *call, const char *cwd)
{
    char *real = NULL;
    if (workspace_resolve(call->root, cwd != NULL && cwd[0] != '\0' ? cwd : ".", &real,
                          &call->error) < 0)
        return NULL;
    struct stat st;
    int rc = stat(real, &st) < 0 ? -errno : S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
    if (rc == 0)
        return real;
    call->error = tool__errno_msg(rc, "chdir", real);
    xfree(real);
    return NULL;
}

static void init_handles(uv_loop_t *loop, struct exec_job *job)
{
    uv_timer_init(loop, &job->timer);
    job->timer.data = job;
    job->open_handles++;
    for (int i = job->script ? 0 : 1; i < 3; i++) {
        uv_pipe_init(loop, &job->pipes[i], 0);
        job->pipes[i].data = job;
        job->open_handles++;
    }
    job->stdin_open = job->script != NULL;
    job->proc.data = job;
    job->open_handles++; /* uv_spawn initializes the process handle even when it fails */
}

/* Spawns `/bin/sh -c <shown>` in dir: under bubblewrap, or under the command helper. Either
 * way with the allow-listed environment (HOME is the workspace) and no descriptor but the
 * three pipes (the sweep, then the helper's close_range or bwrap's exec of a CLOEXEC world). */
static int spawn_shell(uv_loop_t *loop, struct exec_job *job, const char *root, const char *dir)
{
    char *sh[] = {"/bin/sh", "-c", job->shown, NULL};
    char **env = tool__command_env(root, dir);
    char **argv = NULL;
    const char *file;
    if (tool__sandbox_mode() == TOOL_SANDBOX_BWRAP) {
        argv = tool__sandbox_argv(root, dir, sh, tool__sandbox_network());
        file = argv[0];
    } else {
        static char name[] = TOOL_HELPER_NAME, flag[] = TOOLS_HELPER_FLAG;
        char *wrapped[] = {name, flag, sh[0], sh[1], sh[2], NULL};
        argv = xmalloc(sizeof(wrapped));
        for (size_t i = 0; i < sizeof(wrapped) / sizeof(wrapped[0]); i++)
            argv[i] = wrapped[i] ? xstrdup(wrapped[i]) : NULL;
        file = ex.helper ? ex.helper : TOOL_HELPER_EXE;
        job->helper = true;
    }
    /* Real pipes (pipe2, close-on-exec), not the socketpairs UV_CREATE_PIPE makes: a command
     * holds no socket at all, and sees its output as the pipe it is. [i][0] reads, [i][1]
     * writes; the child gets stdin's read end and the write ends of stdout and stderr. */
    uv_file fds[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
    uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE}};
    int rc = 0;
    for (int i = job->script ? 0 : 1; i < 3 && rc == 0; i++) {
        rc = uv_pipe(fds[i], 0, 0);
        stdio[i] = (uv_stdio_container_t){.flags = UV_INHERIT_FD, .data.fd = fds[i][i == 0 ? 0 : 1]};
    }
    uv_process_options_t opts = {
        .exit_cb = on_proc_exit,
        .file = file,
        .args = argv,
        .env = env,
        .cwd = dir,
        .flags = UV_PROCESS_DETACHED, /* setsid: a group of its own, killed as one */
        .stdio_count = 3,
        .stdio = stdio,
    };
    fd_cloexec_all(); /* on the loop thread, where every library opens its descriptors */
    if (rc == 0) {
        rc = uv_spawn(loop, &job->proc, &opts);
    } else {
        job->no_proc = true; /* the process handle was never initialized: nothing to close */
        job->open_handles--;
    }
    for (int i = 0; i < 3; i++) {
        int mine = fds[i][i == 0 ? 1 : 0], theirs = fds[i][i == 0 ? 0 : 1];
        if (theirs >= 0)
            close(theirs);
        if (mine >= 0 && (rc < 0 || uv_pipe_open(&job->pipes[i], mine) < 0))
            close(mine);
    }
    tool__strv_free(env);
    tool__strv_free(argv);
    return rc;
}

/* Starts `/bin/sh -c shown` in cwd, with script (if any) on its stdin. */
static void *exec_start(uv_loop_t *loop, struct tool_call *call, const char *shown,
                        const char *script, size_t script_len, const char *cwd)
{
    char *dir = resolve_cwd(call, cwd);
    if (dir == NULL)
        return NULL;
    struct exec_job *job = xcalloc(1, sizeof(*job));
    job->call = call;
    job->shown = xstrdup(shown);
    job->script = script ? xstrndup(script, script_len) : NULL;
    job->script_len = script_len;
    buf_init(&job->cap[0].buf, ex.max_output);
    buf_init(&job->cap[1].buf, ex.max_output);
    init_handles(loop, job);
    int rc = spawn_shell(loop, job, call->root, dir);
    if (rc < 0) {
        char *why = tool__errno_msg(rc, "spawn", "/bin/sh");
        call->error = xasprintf("Cannot run the command: %s", why);
        xfree(why);
        xfree(dir);
        finish(job); /* the error is delivered once the handles have closed */
        return job;
    }
    xfree(dir);
    job->spawned = true;
    job->next = ex.jobs;
    if (ex.jobs != NULL)
        ex.jobs->prev = job;
    ex.jobs = job;
    uv_read_start((uv_stream_t *)&job->pipes[1], on_alloc, on_read);
    uv_read_start((uv_stream_t *)&job->pipes[2], on_alloc, on_read);
    if (job->script != NULL) {
        uv_buf_t b = uv_buf_init(job->script, (unsigned int)job->script_len);
        job->write_req.data = job;
        if (uv_write(&job->write_req, (uv_stream_t *)&job->pipes[0], &b, 1, on_written) < 0)
            on_written(&job->write_req, -EPIPE);
    }
    uv_timer_start(&job->timer, on_timer, ex.timeout_ms, 0);
    return job;
}

static void exec_abort(void *handle)
{
    struct exec_job *job = handle;
    if (job->phase == PH_CLOSING)
        return;
    if (job->killed == KILL_NONE)
        job->killed = KILL_ABORT;
    if (job->phase == PH_RUNNING)
        job->phase = PH_KILLED;
    kill_command(job);
}

/* ---------------------------------------------------------------- the tools */

static bool blank(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return *s == '\0';
}

static void *run_command_start(uv_loop_t *loop, struct tool_call *call)
{
    const char *cmd = tool__arg_str(call, "command");
    const char *cwd = cmd ? tool__arg_opt_str(call, "cwd") : NULL;
    if (call->error != NULL)
        return NULL;
    if (blank(cmd)) {
        call->error = xstrdup("Command is required");
        return NULL;
    }
    return exec_start(loop, call, cmd, NULL, 0, cwd);
}

static void *run_script_start(uv_loop_t *loop, struct tool_call *call)
{
    const char *script = tool__arg_str(call, "script");
    const char *interp = script ? tool__arg_opt_str(call, "interpreter") : NULL;
    const char *cwd = script ? tool__arg_opt_str(call, "cwd") : NULL;
    if (call->error != NULL)
        return NULL;
    if (blank(script)) {
        call->error = xstrdup("Script is required");
        return NULL;
    }
    /* The original insists on an interpreter although its schema makes it optional; we
     * default to bash, the usual choice of models, or sh where there is no bash. */
    if (interp == NULL || blank(interp))
        interp = access("/bin/bash", X_OK) == 0 ? "bash" : "sh";
    size_t len = json_string_length(json_object_get(call->args, "script"));
    return exec_start(loop, call, interp, script, len, cwd);
}

static json_t *schema_command_new(void)
{
    return json_pack("{s:s, s:{s:{s:s, s:s}, s:{s:s, s:s}}, s:[s], s:b}", "type", "object",
                     "properties", "command", "type", "string", "description",
                     "The command line, run with /bin/sh -c", "cwd", "type", "string",
                     "description",
                     "Working directory inside the workspace; leave empty in most "
                     "cases",
                     "required", "command", "additionalProperties", 0);
}

static json_t *schema_script_new(void)
{
    return json_pack(
        "{s:s, s:{s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}}, s:[s], s:b}", "type", "object",
        "properties", "interpreter", "type", "string", "description",
        "The command that reads the script from stdin, with its arguments: bash, python3, "
        "node, bash --norc... (default bash)",
        "script", "type", "string", "description", "The script text", "cwd", "type", "string",
        "description", "Working directory inside the workspace; leave empty in most cases",
        "required", "script", "additionalProperties", 0);
}

/* Descriptions are ours; "[commands] " is how Agent TARS labels the commands server's tools. */
const struct tool_ops tool__exec_ops[] = {
    {"run_command",
     "[commands] Run a shell command on this Linux machine, in the workspace (or in cwd inside "
     "it). Returns what it printed, as STDOUT and STDERR parts, and an ERROR part with the exit "
     "code when it fails. Commands that run too long are killed.",
     schema_command_new, NULL, run_command_start, exec_abort},
    {"run_script",
     "[commands] Run a script on this Linux machine: the script is piped to the standard input "
     "of the interpreter (bash when none is given), in the workspace (or in cwd inside it). "
     "Returns STDOUT, STDERR and ERROR parts like run_command.",
     schema_script_new, NULL, run_script_start, exec_abort},
};
const size_t tool__exec_count = sizeof(tool__exec_ops) / sizeof(tool__exec_ops[0]);
