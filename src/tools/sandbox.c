/* SPDX-License-Identifier: MIT */
/* sandbox.c -- what a command (run_command, run_script, a sandboxed stdio MCP server) is started
 * with: an allow-listed environment, and with "command.sandbox" bwrap the bubblewrap argv that
 * confines it to the system read-only, a private /tmp, its own PID/IPC/UTS namespaces and its
 * workspace as the one writable place, with the server's database, config files and home hidden.
 * The two builders, tool__env_build and tool__bwrap_argv, are pure (unit-tested); the rest
 * gathers their inputs from the config tree and the file system. See docs/internals/TOOLS.md
 * and the README's "Command sandbox". */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/util.h"
#include "core/xalloc.h"
#include "tools.h"
#include "tools_int.h"

extern char **environ;

#define MAX_SYS_DIRS 24
#define MAX_ETC_MASKS 256 /* /etc/shadow and friends; a normal system has about ten */
#define MAX_ETC_DEPTH 4

static struct {
    enum tool_sandbox mode;
    char *bwrap;                              /* the bwrap program (absolute) when mode is bwrap */
    bool network;                             /* command.network */
    json_t *env;                              /* command.env: name -> string */
    char **pass;                              /* command.passEnv names, NULL-terminated */
    char **hidden;                            /* tools_set_hidden_paths, NULL-terminated */
    char *ws_base;                            /* the configured workspace (real path) */
    char *ws_cfg;                             /* the configured workspace, resolved */
    bool isolate;                             /* workspace.isolateSessions */
    char *home;                               /* the server's $HOME (real path) */
    struct tool_sysdir sys[MAX_SYS_DIRS + 1]; /* the read-only system trees */
    size_t nsys;
    char **etc_files, **etc_dirs; /* root-only parts of /etc, masked when we run as root */
    size_t netc_files, netc_dirs;
} sb;

void tool__strv_free(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        xfree(v[i]);
    xfree(v);
}

/* ---------------------------------------------------------------- the environment (pure) */

/* The variables a command may inherit from the server: what a shell and common tools need to
 * behave (PATH, locale, terminal, time zone, user name), nothing that could hold a credential.
 * HOME and PWD are set by us. */
static bool allowed_name(const char *s, size_t n)
{
    static const char *const names[] = {"PATH", "LANG", "TERM", "TZ", "USER", "SHELL", "TMPDIR"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == n && memcmp(names[i], s, n) == 0)
            return true;
    return n > 3 && memcmp(s, "LC_", 3) == 0;
}

static void env_put(json_t *vars, const char *name, size_t name_len, const char *value)
{
    char *key = xstrndup(name, name_len);
    json_object_set_new(vars, key, json_string_lossy(value, strlen(value)));
    xfree(key);
}

/* The lookup of a name in an environment array. */
static const char *env_find(char *const *env, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
        if (strncmp(env[i], name, n) == 0 && env[i][n] == '=')
            return env[i] + n + 1;
    return NULL;
}

char **tool__env_build(const struct tool_env_spec *s)
{
    json_t *vars = json_object(); /* keeps insertion order; a later set replaces in place */
    for (size_t i = 0; s->environ != NULL && s->environ[i] != NULL; i++) {
        const char *e = s->environ[i], *eq = strchr(e, '=');
        if (eq != NULL && allowed_name(e, (size_t)(eq - e)))
            env_put(vars, e, (size_t)(eq - e), eq + 1);
    }
    if (s->tmpdir != NULL)
        env_put(vars, "TMPDIR", 6, s->tmpdir);
    for (size_t i = 0; s->pass != NULL && s->pass[i] != NULL; i++) {
        const char *v = env_find(s->environ, s->pass[i]);
        if (v != NULL)
            env_put(vars, s->pass[i], strlen(s->pass[i]), v);
    }
    if (s->home != NULL)
        env_put(vars, "HOME", 4, s->home);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)s->set, k, v)
    {
        if (json_is_string(v))
            env_put(vars, k, strlen(k), json_string_value(v));
    }
    if (s->pwd != NULL)
        env_put(vars, "PWD", 3, s->pwd);
    char **out = xcalloc(json_object_size(vars) + 1, sizeof(char *));
    size_t n = 0;
    json_object_foreach(vars, k, v) out[n++] = xasprintf("%s=%s", k, json_string_value(v));
    json_decref(vars);
    return out;
}

/* ---------------------------------------------------------------- the bwrap argv (pure) */

static void argv_add(char ***v, size_t *n, size_t *cap, const char *s)
{
    if (*n + 2 > *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *v = xrealloc(*v, *cap * sizeof(char *));
    }
    (*v)[(*n)++] = xstrdup(s);
    (*v)[*n] = NULL;
}

#define ADD(...)                                                                                   \
    do {                                                                                           \
        const char *const add_[] = {__VA_ARGS__};                                                  \
        for (size_t i_ = 0; i_ < sizeof(add_) / sizeof(add_[0]); i_++)                             \
            argv_add(&v, &n, &cap, add_[i_]);                                                      \
    } while (0)

char **tool__bwrap_argv(const struct tool_bwrap_spec *s)
{
    char **v = NULL;
    size_t n = 0, cap = 0;
    ADD(s->bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-uts");
    if (!s->network)
        ADD("--unshare-net");
    /* --die-with-parent: the sandbox ends with the server; --new-session: no way to push
     * input into a terminal of ours (TIOCSTI); --cap-drop ALL matters when we run as root. */
    ADD("--die-with-parent", "--new-session", "--cap-drop", "ALL");
    for (size_t i = 0; i < s->nsys; i++) {
        if (s->sys[i].link != NULL)
            ADD("--symlink", s->sys[i].link, s->sys[i].path);
        else
            ADD("--ro-bind-try", s->sys[i].path, s->sys[i].path);
    }
    ADD("--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp");
    /* Directories covered with an empty tmpfs (the server's home, the folder of the other
     * sessions) come before the workspace, which may lie below one of them. */
    for (size_t i = 0; s->mask_dirs != NULL && s->mask_dirs[i] != NULL; i++)
        ADD("--tmpfs", s->mask_dirs[i]);
    if (s->workspace != NULL)
        ADD("--bind", s->workspace, s->workspace);
    if (s->workspace != NULL && s->workspace_alias != NULL)
        ADD("--bind", s->workspace, s->workspace_alias);
    /* Files a bound tree would show (the database, config files): /dev/null on top, last so
     * that nothing bound later uncovers them. */
    for (size_t i = 0; s->mask_files != NULL && s->mask_files[i] != NULL; i++)
        ADD("--ro-bind", "/dev/null", s->mask_files[i]);
    /* The sandbox's own root (a tmpfs bwrap builds the tree in) read-only too: outside the
     * workspace, only the private /tmp (and /dev/shm) take writes. */
    ADD("--remount-ro", "/");
    if (s->chdir != NULL)
        ADD("--chdir", s->chdir);
    ADD("--");
    for (size_t i = 0; s->cmd != NULL && s->cmd[i] != NULL; i++)
        ADD(s->cmd[i]);
    return v;
}

#undef ADD

/* ---------------------------------------------------------------- facts from the machine */

static bool path_within(const char *dir, const char *path)
{
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/')
        return path[0] == '/';
    return strncmp(dir, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static char *real_or_null(const char *path)
{
    char buf[PATH_MAX];
    return path != NULL && realpath(path, buf) != NULL ? xstrdup(buf) : NULL;
}

static void sys_add(const char *path)
{
    struct stat st;
    if (sb.nsys >= MAX_SYS_DIRS || lstat(path, &st) < 0)
        return;
    for (size_t i = 0; i < sb.nsys; i++)
        if (strcmp(sb.sys[i].path, path) == 0)
            return;
    char target[PATH_MAX];
    ssize_t len = S_ISLNK(st.st_mode) ? readlink(path, target, sizeof(target) - 1) : -1;
    if (S_ISLNK(st.st_mode) && len <= 0)
        return;
    if (!S_ISLNK(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
        return;
    sb.sys[sb.nsys].path = xstrdup(path);
    sb.sys[sb.nsys].link = len > 0 ? xstrndup(target, (size_t)len) : NULL;
    sb.nsys++;
}

/* /usr, /bin, /sbin, every /lib*, /etc and /opt, as they are on this machine (merged-/usr
 * symlinks stay symlinks); plus the target of /etc/resolv.conf when it lives elsewhere (under
 * /run with systemd-resolved), or name resolution would break. */
static void find_sys_dirs(void)
{
    sys_add("/usr");
    sys_add("/bin");
    sys_add("/sbin");
    DIR *d = opendir("/");
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL)
        if (strncmp(de->d_name, "lib", 3) == 0) {
            char *p = xasprintf("/%s", de->d_name);
            sys_add(p);
            xfree(p);
        }
    if (d != NULL)
        closedir(d);
    sys_add("/etc");
    sys_add("/opt");
    char *resolv = real_or_null("/etc/resolv.conf");
    if (resolv != NULL && !path_within("/etc", resolv) && !path_within("/usr", resolv))
        sys_add(resolv);
    xfree(resolv);
}

static void strv_push(char ***v, size_t *n, char *s /* taken */);

/* Without capabilities a sandboxed command that runs as root still owns root's files, so
 * /etc/shadow (0640), /etc/ssl/private (0700) and the like would be readable: when we run as
 * root, every file of /etc that others cannot read is covered with /dev/null and every such
 * directory with an empty tmpfs, as for any other user. */
static void find_private_etc(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d != NULL && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
            sb.netc_files + sb.netc_dirs >= MAX_ETC_MASKS)
            continue;
        char *p = xasprintf("%s/%s", dir, de->d_name);
        struct stat st;
        bool ok = lstat(p, &st) == 0;
        if (ok && S_ISDIR(st.st_mode) && !(st.st_mode & S_IXOTH))
            strv_push(&sb.etc_dirs, &sb.netc_dirs, p);
        else if (ok && S_ISREG(st.st_mode) && !(st.st_mode & S_IROTH))
            strv_push(&sb.etc_files, &sb.netc_files, p);
        else {
            if (ok && S_ISDIR(st.st_mode) && depth < MAX_ETC_DEPTH)
                find_private_etc(p, depth + 1);
            xfree(p);
        }
    }
    if (d != NULL)
        closedir(d);
}

/* Whether the sandbox would show `real` through a read-only tree or the workspace. */
static bool visible_in(const char *real, const char *ws)
{
    if (ws != NULL && path_within(ws, real))
        return true;
    for (size_t i = 0; i < sb.nsys; i++)
        if (sb.sys[i].link == NULL && path_within(sb.sys[i].path, real))
            return true;
    return false;
}

static bool is_sys_root(const char *real)
{
    for (size_t i = 0; i < sb.nsys; i++)
        if (strcmp(sb.sys[i].path, real) == 0)
            return true;
    return false;
}

static void strv_push(char ***v, size_t *n, char *s /* taken */)
{
    *v = xrealloc(*v, (*n + 2) * sizeof(char *));
    (*v)[(*n)++] = s;
    (*v)[*n] = NULL;
}

/* The hidden files (and SQLite's companions of each) that exist now and that the sandbox of
 * workspace `ws` would show: they get /dev/null on top. */
static char **mask_files(const char *ws)
{
    char **out = NULL;
    size_t n = 0;
    for (size_t i = 0; i < sb.netc_files; i++)
        strv_push(&out, &n, xstrdup(sb.etc_files[i]));
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; sb.hidden != NULL && sb.hidden[i] != NULL; i++)
        for (size_t k = 0; k < sizeof(suffixes) / sizeof(suffixes[0]); k++) {
            char *p = xasprintf("%s%s", sb.hidden[i], suffixes[k]);
            char *real = real_or_null(p);
            struct stat st;
            if (real != NULL && stat(real, &st) == 0 && !S_ISDIR(st.st_mode) &&
                visible_in(real, ws))
                strv_push(&out, &n, real);
            else
                xfree(real);
            xfree(p);
        }
    return out;
}

/* The server's home, when a bound tree would show it and the workspace is not inside it; the
 * folder of all sessions, when sessions are isolated and a bound tree would show it. */
static char **mask_dirs(const char *ws)
{
    char **out = NULL;
    size_t n = 0;
    for (size_t i = 0; i < sb.netc_dirs; i++)
        if (!path_within(sb.etc_dirs[i], ws))
            strv_push(&out, &n, xstrdup(sb.etc_dirs[i]));
    if (sb.home != NULL && visible_in(sb.home, NULL) && !is_sys_root(sb.home) &&
        !path_within(sb.home, ws))
        strv_push(&out, &n, xstrdup(sb.home));
    if (sb.isolate && sb.ws_base != NULL && strcmp(sb.ws_base, ws) != 0 &&
        path_within(sb.ws_base, ws) && visible_in(sb.ws_base, NULL) && !is_sys_root(sb.ws_base))
        strv_push(&out, &n, xstrdup(sb.ws_base));
    return out;
}

enum tool_sandbox tool__sandbox_mode(void)
{
    return sb.mode;
}

char **tool__sandbox_argv(const char *ws, const char *cwd, char *const *cmd, bool network)
{
    char *real_ws = real_or_null(ws);
    char **files = mask_files(real_ws ? real_ws : ws);
    char **dirs = mask_dirs(real_ws ? real_ws : ws);
    /* The workspace at its real path (where cwd, resolved with realpath, points) and, when the
     * configured path goes through a symlink, at that path too (HOME and PWD show it). */
    struct tool_bwrap_spec spec = {
        .bwrap = sb.bwrap,
        .sys = sb.sys,
        .nsys = sb.nsys,
        .workspace = real_ws ? real_ws : ws,
        .workspace_alias = real_ws && strcmp(real_ws, ws) != 0 ? ws : NULL,
        .mask_dirs = (const char *const *)dirs,
        .mask_files = (const char *const *)files,
        .network = network,
        .chdir = cwd,
        .cmd = (const char *const *)cmd,
    };
    char **argv = tool__bwrap_argv(&spec);
    tool__strv_free(files);
    tool__strv_free(dirs);
    xfree(real_ws);
    return argv;
}

char **tool__command_env(const char *home, const char *pwd)
{
    struct tool_env_spec spec = {
        .environ = environ,
        .pass = (const char *const *)sb.pass,
        .set = sb.env,
        .home = home,
        .pwd = pwd,
        .tmpdir = sb.mode == TOOL_SANDBOX_BWRAP ? "/tmp" : NULL, /* the private one */
    };
    return tool__env_build(&spec);
}

const char *tool__sandbox_workspace(void)
{
    return sb.ws_cfg;
}

bool tool__sandbox_network(void)
{
    return sb.network;
}

/* ---------------------------------------------------------------- config */

void tools_set_hidden_paths(const char *const *paths)
{
    tool__strv_free(sb.hidden);
    sb.hidden = NULL;
    size_t n = 0;
    for (size_t i = 0; paths != NULL && paths[i] != NULL; i++)
        strv_push(&sb.hidden, &n, xstrdup(paths[i]));
}

/* bwrap on PATH (the server's), or NULL. */
static char *find_bwrap(void)
{
    const char *path = getenv("PATH");
    struct buf b;
    buf_init(&b, (size_t)-1);
    buf_appends(&b, path && *path ? path : "/usr/bin:/bin");
    char *list = buf_detach(&b, NULL), *found = NULL;
    for (char *dir = list, *next; dir != NULL && found == NULL; dir = next) {
        next = strchr(dir, ':');
        if (next != NULL)
            *next++ = '\0';
        if (dir[0] != '/')
            continue;
        char *p = xasprintf("%s/bwrap", dir);
        if (access(p, X_OK) == 0)
            found = p;
        else
            xfree(p);
    }
    xfree(list);
    return found;
}

static int read_pass_env(const json_t *v, char **err)
{
    size_t n = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (json_is_string(v)) { /* --command.passEnv A,B */
        char *list = xstrdup(json_string_value(v));
        for (char *p = list, *next; p != NULL; p = next) {
            next = strchr(p, ',');
            if (next != NULL)
                *next++ = '\0';
            if (*p != '\0')
                strv_push(&sb.pass, &n, xstrdup(p));
        }
        xfree(list);
        return 0;
    }
    size_t i;
    const json_t *item;
    json_array_foreach(v, i, item)
    {
        const char *s = json_string_value(item);
        if (s == NULL || *s == '\0' || strchr(s, '=') != NULL)
            break;
        strv_push(&sb.pass, &n, xstrdup(s));
    }
    if (json_is_array(v) && i == json_array_size(v))
        return 0;
    *err = xstrdup("'command.passEnv' must be an array of variable names");
    return -EINVAL;
}

static int read_env(const json_t *v, char **err)
{
    sb.env = json_object();
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_object(v)) {
        *err = xstrdup("'command.env' must be an object of strings");
        return -EINVAL;
    }
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)v, k, val)
    {
        char *s = NULL;
        if (*k == '\0' || strchr(k, '=') != NULL || tool__cfg_str(v, "command.env", k, &s, err) < 0)
            break;
        json_object_set_new(sb.env, k, s ? json_string_lossy(s, strlen(s)) : json_string(""));
        xfree(s);
    }
    if (k == NULL)
        return 0;
    xfree(*err);
    *err = xasprintf("'command.env.%s' must be a string", k);
    return -EINVAL;
}

static int read_mode(const json_t *cmd, char **err)
{
    char *mode = NULL;
    if (tool__cfg_str(cmd, "command", "sandbox", &mode, err) < 0)
        return -EINVAL;
    int rc = 0;
    bool want_auto = mode == NULL || strcmp(mode, "auto") == 0;
    sb.mode = TOOL_SANDBOX_NONE;
    if (mode != NULL && strcmp(mode, "none") == 0) {
        log_warn("command.sandbox is none: commands run with the server's view of the machine");
    } else if (want_auto || strcmp(mode, "bwrap") == 0) {
        char *why = NULL;
        sb.bwrap = find_bwrap();
        if (sb.bwrap == NULL)
            why = xstrdup("bubblewrap (bwrap) is not installed; apt-get install bubblewrap");
        else if (tool__sandbox_probe(sb.bwrap, &why) == 0)
            sb.mode = TOOL_SANDBOX_BWRAP;
        if (why != NULL && want_auto)
            log_warn("commands run without a sandbox: %s", why);
        else if (why != NULL) {
            *err = xasprintf("command.sandbox is bwrap but %s", why);
            rc = -EINVAL;
        }
        xfree(why);
    } else {
        *err = xasprintf("unknown command.sandbox '%s' (use auto, bwrap or none)", mode);
        rc = -EINVAL;
    }
    xfree(mode);
    return rc;
}

static void read_workspace(const json_t *root)
{
    const json_t *ws = json_object_get(root, "workspace");
    const char *configured =
        json_string_value(json_is_object(ws) ? json_object_get(ws, "workingDirectory") : ws);
    sb.ws_cfg = workspace_path(configured, NULL, false);
    sb.ws_base = real_or_null(sb.ws_cfg);
    sb.isolate = json_is_object(ws) && json_is_true(json_object_get(ws, "isolateSessions"));
    sb.home = real_or_null(getenv("HOME"));
}

int tool__sandbox_init(const json_t *root, char **err)
{
    tool__sandbox_shutdown();
    const json_t *cmd = json_object_get(root, "command");
    if (!json_is_object(cmd))
        cmd = NULL;
    const json_t *net = json_object_get(cmd, "network");
    if (net != NULL && !json_is_boolean(net) && !json_is_null(net)) {
        *err = xstrdup("'command.network' must be true or false");
        return -EINVAL;
    }
    sb.network = !json_is_false(net);
    int rc = read_env(json_object_get(cmd, "env"), err);
    if (rc == 0)
        rc = read_pass_env(json_object_get(cmd, "passEnv"), err);
    if (rc == 0) {
        find_sys_dirs();
        if (geteuid() == 0)
            find_private_etc("/etc", 1);
        read_workspace(root);
        rc = read_mode(cmd, err);
    }
    if (rc == 0 && sb.mode == TOOL_SANDBOX_BWRAP)
        log_info("commands run in a bubblewrap sandbox (%s; network %s)", sb.bwrap,
                 sb.network ? "on" : "off");
    return rc;
}

void tool__sandbox_shutdown(void)
{
    xfree(sb.bwrap);
    json_decref(sb.env);
    tool__strv_free(sb.pass);
    xfree(sb.ws_base);
    xfree(sb.ws_cfg);
    xfree(sb.home);
    for (size_t i = 0; i < sb.nsys; i++) {
        xfree((char *)sb.sys[i].path);
        xfree((char *)sb.sys[i].link);
    }
    tool__strv_free(sb.etc_files);
    tool__strv_free(sb.etc_dirs);
    char **hidden = sb.hidden; /* set by main, survives a re-init */
    memset(&sb, 0, sizeof(sb));
    sb.hidden = hidden;
    sb.network = true;
}

/* ---------------------------------------------------------------- the start-up probe */

struct probe {
    uv_process_t proc;
    uv_pipe_t err;
    uv_timer_t timer;
    struct buf out; /* what bwrap said on stderr */
    int64_t status;
    int signal;
    bool exited;
    char scratch[1024];
};

static void on_probe_exit(uv_process_t *p, int64_t status, int signal)
{
    struct probe *pr = p->data;
    pr->status = status;
    pr->signal = signal;
    pr->exited = true;
    uv_timer_stop(&pr->timer);
}

static void on_probe_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
    struct probe *pr = h->data;
    *b = uv_buf_init(pr->scratch, sizeof(pr->scratch));
}

static void on_probe_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
    struct probe *pr = s->data;
    if (n > 0)
        buf_append(&pr->out, b->base, (size_t)n);
    else if (n < 0)
        uv_read_stop(s);
}

static void on_probe_timeout(uv_timer_t *t)
{
    struct probe *pr = t->data;
    uv_process_kill(&pr->proc, SIGKILL);
}

/* Runs `true` in a sandbox like the commands' once, on a private loop, so that a machine where
 * bwrap cannot create namespaces (a container without user namespaces) is known at start and
 * not at the first command. Returns 0, or <0 with the reason in *why. */
int tool__sandbox_probe(const char *bwrap, char **why)
{
    const char *const cmd[] = {"true", NULL};
    struct tool_bwrap_spec spec = {
        .bwrap = bwrap, .sys = sb.sys, .nsys = sb.nsys, .network = sb.network, .cmd = cmd};
    char **argv = tool__bwrap_argv(&spec);
    char *env[] = {"PATH=/usr/bin:/bin", NULL};
    uv_loop_t loop;
    struct probe pr = {.status = -1};
    uv_loop_init(&loop);
    buf_init(&pr.out, 4096);
    uv_pipe_init(&loop, &pr.err, 0);
    uv_timer_init(&loop, &pr.timer);
    pr.proc.data = pr.err.data = pr.timer.data = &pr;
    uv_stdio_container_t stdio[3] = {
        {.flags = UV_IGNORE},
        {.flags = UV_IGNORE},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&pr.err},
    };
    uv_process_options_t opts = {.exit_cb = on_probe_exit,
                                 .file = argv[0],
                                 .args = argv,
                                 .env = env,
                                 .stdio_count = 3,
                                 .stdio = stdio};
    int rc = uv_spawn(&loop, &pr.proc, &opts);
    if (rc == 0) {
        uv_read_start((uv_stream_t *)&pr.err, on_probe_alloc, on_probe_read);
        uv_timer_start(&pr.timer, on_probe_timeout, 5000, 0);
        while (!pr.exited && uv_run(&loop, UV_RUN_ONCE) != 0) {
        }
    }
    uv_close((uv_handle_t *)&pr.proc, NULL);
    uv_close((uv_handle_t *)&pr.err, NULL);
    uv_close((uv_handle_t *)&pr.timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    tool__strv_free(argv);
    if (rc == 0 && pr.exited && pr.status == 0 && pr.signal == 0) {
        buf_release(&pr.out);
        return 0;
    }
    size_t len = pr.out.len;
    while (len > 0 && (buf_str(&pr.out)[len - 1] == '\n' || buf_str(&pr.out)[len - 1] == '\r'))
        len--;
    if (rc < 0)
        *why = xasprintf("cannot run '%s': %s", bwrap, uv_strerror(rc));
    else
        *why = xasprintf("'%s' does not work here (%.*s)", bwrap, (int)len,
                         len ? buf_str(&pr.out) : "no namespaces?");
    buf_release(&pr.out);
    return -EPERM;
}
