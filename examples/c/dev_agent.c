/*
 * dev_agent: runs the consulnative-dev-agent binary as a child process and drives it over plain HTTP/1.1 on
 * loopback. See dev_agent.h for the contract. C11 + POSIX (pipe2/SOCK_CLOEXEC/MSG_NOSIGNAL where available).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2, SOCK_CLOEXEC on glibc; harmless elsewhere */
#endif

#include "dev_agent.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_NAME "consulnative-dev-agent"
#define READY_PREFIX "consulnative-dev-agent listening on http://"
#define DEFAULT_READY_TIMEOUT_MS 10000
#define STOP_EOF_WAIT_MS 5000  /* after closing its stdin */
#define STOP_TERM_WAIT_MS 2000 /* after SIGTERM, before SIGKILL */
#define REQUEST_TIMEOUT_MS 10000
#define MAX_RESPONSE (1024 * 1024)

struct dev_agent {
    pid_t pid;
    int stdin_fd;  /* write end of the agent's stdin: closing it makes the agent exit */
    int stdout_fd; /* read end of its stdout, kept open so a later write of the agent never fails */
    char *binary;
    char *token; /* NULL: no ACL token */
    char address[80];
    struct sockaddr_storage sa;
    socklen_t sa_len;
};

/* ---- errors ---------------------------------------------------------------------------------------------------- */

static _Thread_local char last_error[1024];

static dev_agent_result fail(dev_agent_result rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return rc;
}

const char *dev_agent_last_error(void) { return last_error; }

const char *dev_agent_result_name(dev_agent_result result) {
    switch (result) {
    case DEV_AGENT_OK: return "ok";
    case DEV_AGENT_ERR_ARGUMENT: return "invalid argument";
    case DEV_AGENT_ERR_NOT_FOUND: return "binary not found";
    case DEV_AGENT_ERR_SPAWN: return "spawn failed";
    case DEV_AGENT_ERR_NOT_READY: return "not ready";
    case DEV_AGENT_ERR_CONNECT: return "cannot connect";
    case DEV_AGENT_ERR_HTTP: return "HTTP error";
    case DEV_AGENT_ERR_BAD_RESPONSE: return "bad response";
    case DEV_AGENT_ERR_TIMEOUT: return "timeout";
    case DEV_AGENT_ERR_STOP: return "unclean stop";
    }
    return "unknown result";
}

/* ---- time ------------------------------------------------------------------------------------------------------ */

static int64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Milliseconds left until `deadline` (a now_ms() value), at least 0. */
static int ms_left(int64_t deadline) {
    int64_t left = deadline - now_ms();
    return left < 0 ? 0 : left > INT32_MAX ? INT32_MAX : (int)left;
}

static void sleep_ms(int ms) {
    struct timespec t = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {}
}

/* ---- file descriptors ------------------------------------------------------------------------------------------ */

static void close_fd(int *fd) {
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

#if !defined(__linux__) || !defined(SOCK_CLOEXEC) /* where descriptors cannot be created close-on-exec */
static int set_cloexec(int fd) {
    int flags = fcntl(fd, F_GETFD);
    return flags < 0 ? -1 : fcntl(fd, F_SETFD, flags | FD_CLOEXEC);
}
#endif

/* A pipe whose ends are close-on-exec (so no other child inherits them) and not 0, 1 or 2 (so dup2 onto the
 * child's stdin/stdout always makes a fresh, inheritable descriptor). */
static int make_pipe(int fds[2]) {
#ifdef __linux__
    if (pipe2(fds, O_CLOEXEC) != 0) return -1;
#else
    if (pipe(fds) != 0) return -1;
    if (set_cloexec(fds[0]) != 0 || set_cloexec(fds[1]) != 0) goto fail;
#endif
    for (int i = 0; i < 2; i++) {
        if (fds[i] > 2) continue;
        int moved = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
        if (moved < 0) goto fail;
        close(fds[i]);
        fds[i] = moved;
    }
    return 0;
fail:;
    int saved = errno;
    close(fds[0]);
    close(fds[1]);
    errno = saved;
    return -1;
}

/* ---- child processes ------------------------------------------------------------------------------------------- */

/* Waits up to timeout_ms (< 0: without limit) for `pid` to exit. 1: reaped (*status set), 0: still running,
 * -1: waitpid failed (errno set; ECHILD if someone else reaped it). */
static int reap(pid_t pid, int *status, int timeout_ms) {
    int64_t deadline = now_ms() + (timeout_ms < 0 ? 0 : timeout_ms);
    int pause = 1;
    for (;;) {
        pid_t r = waitpid(pid, status, timeout_ms < 0 ? 0 : WNOHANG);
        if (r == pid) return 1;
        if (r < 0 && errno != EINTR) return -1;
        if (r == 0) {
            int left = ms_left(deadline);
            if (left == 0) return 0;
            sleep_ms(pause < left ? pause : left);
            if (pause < 20) pause *= 2;
        }
    }
}

/* "exited with status 2", "was killed by signal 9 (Killed)". */
static const char *describe_status(int status, char *buf, size_t len) {
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "was killed by signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "ended with wait status %#x", (unsigned)status);
    return buf;
}

/* Ends the agent: closes its stdin, then SIGTERM and SIGKILL after the given waits. Always reaps it (unless
 * waitpid fails) and closes both pipes. Returns 1 if it exited by itself with status 0. `how` gets a sentence. */
static int terminate(struct dev_agent *a, int eof_wait_ms, char *how, size_t how_len) {
    int status = 0, r, clean = 0;
    char st[96];
    close_fd(&a->stdin_fd);
    if (a->pid <= 0) { /* never started: waitpid(-1) would reap someone else's child */
        close_fd(&a->stdout_fd);
        snprintf(how, how_len, "was not running");
        return 0;
    }
    r = reap(a->pid, &status, eof_wait_ms);
    if (r == 1) {
        clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        snprintf(how, how_len, "%s", describe_status(status, st, sizeof st));
    } else if (r == 0) {
        kill(-a->pid, SIGTERM); /* its process group: anything it started goes too */
        r = reap(a->pid, &status, STOP_TERM_WAIT_MS);
        if (r == 0) {
            kill(-a->pid, SIGKILL);
            r = reap(a->pid, &status, -1);
            if (r == 1)
                snprintf(how, how_len, "did not exit within %d ms of stdin EOF nor %d ms of SIGTERM; SIGKILL: %s",
                         eof_wait_ms, STOP_TERM_WAIT_MS, describe_status(status, st, sizeof st));
        } else if (r == 1) {
            snprintf(how, how_len, "did not exit within %d ms of stdin EOF; after SIGTERM it %s", eof_wait_ms,
                     describe_status(status, st, sizeof st));
        }
    }
    if (r < 0)
        snprintf(how, how_len, "could not be reaped: waitpid: %s%s", strerror(errno),
                 errno == ECHILD ? " (SIGCHLD ignored, or another waitpid collected it)" : "");
    close_fd(&a->stdout_fd);
    a->pid = -1;
    return clean;
}

static void agent_free(struct dev_agent *a) {
    if (!a) return;
    free(a->binary);
    if (a->token) {
        memset(a->token, 0, strlen(a->token));
        free(a->token);
    }
    free(a);
}

/* ---- finding the binary ---------------------------------------------------------------------------------------- */

/* NULL if path is an executable regular file, else why not. */
static const char *not_executable(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) return strerror(errno);
    if (!S_ISREG(sb.st_mode)) return "not a regular file";
    if (access(path, X_OK) != 0) return strerror(errno);
    return NULL;
}

/* Looks `name` (no '/') up in PATH. Returns a malloc'd path, or NULL with errno ENOMEM or ENOENT. */
static char *search_path(const char *name) {
    const char *path = getenv("PATH");
    if (!path || !*path) path = "/usr/local/bin:/usr/bin:/bin";
    size_t name_len = strlen(name);
    for (const char *dir = path;; dir++) {
        const char *end = strchr(dir, ':');
        size_t dir_len = end ? (size_t)(end - dir) : strlen(dir);
        char *candidate = malloc(dir_len + name_len + 3);
        if (!candidate) {
            errno = ENOMEM;
            return NULL;
        }
        if (dir_len == 0) /* an empty PATH entry means the current directory */
            snprintf(candidate, name_len + 3, "./%s", name);
        else
            snprintf(candidate, dir_len + name_len + 2, "%.*s/%s", (int)dir_len, dir, name);
        if (!not_executable(candidate)) return candidate;
        free(candidate);
        if (!end) break;
        dir = end;
    }
    errno = ENOENT;
    return NULL;
}

static dev_agent_result find_binary(const char *given, char **out) {
    const char *env = getenv("CONSULNATIVE_DEV_AGENT");
    const char *name = DEFAULT_NAME, *origin = "the default name";
    if (env && *env) {
        name = env;
        origin = "CONSULNATIVE_DEV_AGENT";
    } else if (given && *given) {
        name = given;
        origin = "the caller's path";
    }
    if (strchr(name, '/')) {
        const char *why = not_executable(name);
        if (why) return fail(DEV_AGENT_ERR_NOT_FOUND, "dev agent binary %s (from %s): %s", name, origin, why);
        *out = strdup(name);
        return *out ? DEV_AGENT_OK : fail(DEV_AGENT_ERR_SPAWN, "out of memory");
    }
    *out = search_path(name);
    if (*out) return DEV_AGENT_OK;
    if (errno == ENOMEM) return fail(DEV_AGENT_ERR_SPAWN, "out of memory");
    return fail(DEV_AGENT_ERR_NOT_FOUND,
                "dev agent binary `%s` (from %s) not found in PATH; set CONSULNATIVE_DEV_AGENT to its path "
                "(cargo builds it as target/<profile>/consulnative-dev-agent)",
                name, origin);
}

/* ---- starting ---------------------------------------------------------------------------------------------------- */

static const char TOKEN_VAR[] = "CONSUL_DEV_AGENT_TOKEN=";

/* Our environment without CONSUL_DEV_AGENT_TOKEN, plus CONSUL_DEV_AGENT_TOKEN=token if token is set. The array
 * and *token_entry (the one string we allocate) are the caller's to free. */
static char **child_environment(const char *token, char **token_entry) {
    size_t n = 0, k = 0;
    while (environ && environ[n]) n++;
    char **env = calloc(n + 2, sizeof *env);
    if (!env) return NULL;
    for (size_t i = 0; i < n; i++)
        if (strncmp(environ[i], TOKEN_VAR, sizeof TOKEN_VAR - 1) != 0) env[k++] = environ[i];
    *token_entry = NULL;
    if (token) {
        size_t len = sizeof TOKEN_VAR + strlen(token);
        if (!(*token_entry = malloc(len))) {
            free(env);
            return NULL;
        }
        snprintf(*token_entry, len, "%s%s", TOKEN_VAR, token);
        env[k++] = *token_entry;
    }
    env[k] = NULL;
    return env;
}

static bool has_control_chars(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return true;
    return false;
}

/* Parses "host:port" / "[v6]:port" (numeric) into a->sa. */
static bool parse_address(struct dev_agent *a) {
    char host[64];
    const char *colon = strrchr(a->address, ':');
    if (!colon || colon == a->address) return false;
    const char *h = a->address, *h_end = colon;
    if (*h == '[' && h_end[-1] == ']') {
        h++;
        h_end--;
    }
    if ((size_t)(h_end - h) >= sizeof host || h_end <= h) return false;
    memcpy(host, h, (size_t)(h_end - h));
    host[h_end - h] = '\0';
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res) return false;
    bool fits = res->ai_addrlen <= sizeof a->sa;
    if (fits) {
        memcpy(&a->sa, res->ai_addr, res->ai_addrlen);
        a->sa_len = res->ai_addrlen;
    }
    freeaddrinfo(res);
    return fits;
}

/* Reads the agent's ready line within timeout_ms. DEV_AGENT_OK with a->address set, or an error (agent still to be
 * terminated by the caller); *exited is set when the agent closed its stdout (it has exited or is exiting). */
static dev_agent_result read_ready_line(struct dev_agent *a, int timeout_ms, bool *exited) {
    char line[512];
    size_t used = 0;
    int64_t deadline = now_ms() + timeout_ms;
    char *nl = NULL;
    *exited = false;
    while (!nl) {
        struct pollfd p = {.fd = a->stdout_fd, .events = POLLIN};
        int left = ms_left(deadline);
        int r = left > 0 ? poll(&p, 1, left) : 0;
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return fail(DEV_AGENT_ERR_NOT_READY, "poll on the dev agent's stdout: %s", strerror(errno));
        if (r == 0)
            return fail(DEV_AGENT_ERR_NOT_READY, "dev agent %s (pid %ld) printed no ready line within %d ms", a->binary,
                        (long)a->pid, timeout_ms);
        ssize_t got = read(a->stdout_fd, line + used, sizeof line - 1 - used);
        if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        if (got < 0) return fail(DEV_AGENT_ERR_NOT_READY, "reading the dev agent's stdout: %s", strerror(errno));
        if (got == 0) {
            *exited = true;
            return DEV_AGENT_ERR_NOT_READY; /* the caller says how it ended */
        }
        used += (size_t)got;
        line[used] = '\0';
        nl = memchr(line, '\n', used);
        if (!nl && used == sizeof line - 1) break;
    }
    if (!nl || strncmp(line, READY_PREFIX, strlen(READY_PREFIX)) != 0)
        return fail(DEV_AGENT_ERR_NOT_READY, "dev agent %s printed \"%.*s\" instead of its ready line \"%sADDR\"",
                    a->binary, (int)strcspn(line, "\r\n"), line, READY_PREFIX);
    const char *addr = line + strlen(READY_PREFIX);
    size_t len = strcspn(addr, "\r\n");
    if (len == 0 || len >= sizeof a->address)
        return fail(DEV_AGENT_ERR_NOT_READY, "dev agent printed an unusable address in \"%.*s\"",
                    (int)strcspn(line, "\r\n"), line);
    memcpy(a->address, addr, len);
    a->address[len] = '\0';
    if (!parse_address(a))
        return fail(DEV_AGENT_ERR_NOT_READY, "dev agent printed an address that is not ip:port: \"%s\"", a->address);
    return DEV_AGENT_OK;
}

dev_agent_result dev_agent_start(const dev_agent_options *options, dev_agent **out) {
    static const dev_agent_options defaults = {0};
    if (!out) return fail(DEV_AGENT_ERR_ARGUMENT, "dev_agent_start: `out` is NULL");
    if (!options) options = &defaults;
    const char *token = options->acl_token && *options->acl_token ? options->acl_token : NULL;
    if (token && has_control_chars(token))
        return fail(DEV_AGENT_ERR_ARGUMENT, "dev_agent_start: the ACL token contains control characters");
    if (options->leaf_ttl && (!*options->leaf_ttl || options->leaf_ttl[0] == '-'))
        return fail(DEV_AGENT_ERR_ARGUMENT, "dev_agent_start: leaf_ttl \"%s\" is not a Go duration such as \"30s\"",
                    options->leaf_ttl);
    if (options->ready_timeout_ms < 0)
        return fail(DEV_AGENT_ERR_ARGUMENT, "dev_agent_start: ready_timeout_ms is negative");
    int timeout_ms = options->ready_timeout_ms ? options->ready_timeout_ms : DEFAULT_READY_TIMEOUT_MS;

    struct dev_agent *a = calloc(1, sizeof *a);
    if (!a) return fail(DEV_AGENT_ERR_SPAWN, "out of memory");
    a->pid = -1;
    a->stdin_fd = a->stdout_fd = -1;
    dev_agent_result rc = find_binary(options->binary, &a->binary);
    if (rc != DEV_AGENT_OK) goto error;
    if (token && !(a->token = strdup(token))) {
        rc = fail(DEV_AGENT_ERR_SPAWN, "out of memory");
        goto error;
    }

    char *argv[10];
    int argc = 0;
    argv[argc++] = a->binary;
    argv[argc++] = (char *)"--http-addr";
    argv[argc++] = (char *)"127.0.0.1:0";
    argv[argc++] = (char *)"--exit-on-stdin-eof";
    if (options->default_deny) {
        argv[argc++] = (char *)"--default-policy";
        argv[argc++] = (char *)"deny";
    }
    if (options->leaf_ttl) {
        argv[argc++] = (char *)"--leaf-ttl";
        argv[argc++] = (char *)options->leaf_ttl;
    }
    argv[argc] = NULL;

    int in[2] = {-1, -1}, outp[2] = {-1, -1};
    if (make_pipe(in) != 0 || make_pipe(outp) != 0) {
        rc = fail(DEV_AGENT_ERR_SPAWN, "pipe: %s", strerror(errno));
        close_fd(&in[0]);
        close_fd(&in[1]);
        goto error;
    }
    char *token_entry = NULL;
    char **envp = child_environment(a->token, &token_entry);
    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    int err = envp ? 0 : ENOMEM;
    bool have_actions = false, have_attr = false;
    if (!err) have_actions = (err = posix_spawn_file_actions_init(&actions)) == 0;
    if (!err) err = posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
    if (!err) err = posix_spawn_file_actions_adddup2(&actions, outp[1], STDOUT_FILENO);
    if (!err) have_attr = (err = posix_spawnattr_init(&attr)) == 0;
    /* Default signal handling and no blocked signals, whatever this thread has; and its own process group, so a
     * Ctrl-C meant for us does not kill the agent while we still clean up (it exits when we close its stdin). */
    if (!err) err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                                        POSIX_SPAWN_SETPGROUP);
    if (!err) err = posix_spawnattr_setsigmask(&attr, &none);
    if (!err) err = posix_spawnattr_setsigdefault(&attr, &all);
    if (!err) err = posix_spawnattr_setpgroup(&attr, 0);
    if (!err) err = posix_spawn(&a->pid, a->binary, &actions, &attr, argv, envp);
    if (have_attr) posix_spawnattr_destroy(&attr);
    if (have_actions) posix_spawn_file_actions_destroy(&actions);
    if (token_entry) {
        memset(token_entry, 0, strlen(token_entry));
        free(token_entry);
    }
    free(envp);
    close_fd(&in[0]);
    close_fd(&outp[1]);
    a->stdin_fd = in[1];
    a->stdout_fd = outp[0];
    if (err) {
        a->pid = -1;
        rc = fail(DEV_AGENT_ERR_SPAWN, "cannot start dev agent %s: %s", a->binary, strerror(err));
        goto error;
    }

    bool exited = false;
    rc = read_ready_line(a, timeout_ms, &exited);
    if (rc != DEV_AGENT_OK) {
        char how[256];
        terminate(a, exited ? STOP_TERM_WAIT_MS : 0, how, sizeof how);
        if (exited)
            fail(rc, "dev agent %s %s before printing its ready line (its stderr says why)", a->binary, how);
        goto error;
    }
    *out = a;
    return DEV_AGENT_OK;

error:
    if (a->pid > 0) {
        char how[256];
        terminate(a, 0, how, sizeof how);
    }
    close_fd(&a->stdin_fd);
    close_fd(&a->stdout_fd);
    agent_free(a);
    return rc;
}

const char *dev_agent_address(const dev_agent *agent) { return agent ? agent->address : ""; }
const char *dev_agent_binary(const dev_agent *agent) { return agent ? agent->binary : ""; }
pid_t dev_agent_pid(const dev_agent *agent) { return agent ? agent->pid : -1; }

dev_agent_result dev_agent_stop(dev_agent *agent) {
    if (!agent) return DEV_AGENT_OK;
    char how[256] = "";
    pid_t pid = agent->pid;
    int clean = terminate(agent, STOP_EOF_WAIT_MS, how, sizeof how);
    dev_agent_result rc = clean ? DEV_AGENT_OK
                                : fail(DEV_AGENT_ERR_STOP, "dev agent %s (pid %ld) %s", agent->binary, (long)pid, how);
    agent_free(agent);
    return rc;
}

/* ---- HTTP -------------------------------------------------------------------------------------------------------- */

/* Appends s percent-encoded (everything but RFC 3986 unreserved characters) to buf at *pos. */
static void percent_encode(char *buf, size_t len, size_t *pos, const char *s) {
    static const char hex[] = "0123456789ABCDEF";
    for (; *s && *pos + 4 < len; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            buf[(*pos)++] = (char)c;
        } else {
            buf[(*pos)++] = '%';
            buf[(*pos)++] = hex[c >> 4];
            buf[(*pos)++] = hex[c & 15];
        }
    }
    buf[*pos] = '\0';
}

/* Waits until fd is ready for `events` or the deadline passes. 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline) {
    for (;;) {
        struct pollfd p = {.fd = fd, .events = events};
        int left = ms_left(deadline);
        int r = left > 0 ? poll(&p, 1, left) : 0;
        if (r < 0 && errno == EINTR) continue;
        return r > 0 ? 1 : r;
    }
}

/* Finds header `name` (case-insensitive) in the header block [headers, end); returns its value or NULL. */
static const char *find_header(const char *headers, const char *end, const char *name, size_t *value_len) {
    size_t name_len = strlen(name);
    for (const char *line = headers; line < end;) {
        const char *eol = strstr(line, "\r\n");
        if (!eol || eol > end) eol = end;
        if ((size_t)(eol - line) > name_len && line[name_len] == ':' && strncasecmp(line, name, name_len) == 0) {
            const char *v = line + name_len + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            *value_len = (size_t)(eol - v);
            return v;
        }
        line = eol + 2;
    }
    return NULL;
}

/* One request over a fresh connection (Connection: close). On DEV_AGENT_OK, if out_body is not NULL, *out_body is
 * the malloc'd, NUL-terminated body (the caller frees it). A non-2xx status is DEV_AGENT_ERR_HTTP. */
static dev_agent_result request(const dev_agent *a, const char *method, const char *target, const char *body,
                                char **out_body) {
    size_t body_len = body ? strlen(body) : 0;
    size_t cap = strlen(method) + strlen(target) + strlen(a->address) + (a->token ? strlen(a->token) : 0) + body_len +
                 256;
    char *req = malloc(cap), *resp = NULL;
    size_t resp_len = 0, resp_cap = 0;
    int fd = -1;
    dev_agent_result rc = DEV_AGENT_OK;
    if (!req) return fail(DEV_AGENT_ERR_SPAWN, "out of memory");
    int req_len = snprintf(req, cap,
                           "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nContent-Type: application/json\r\n"
                           "Content-Length: %zu\r\n%s%s%s\r\n%s",
                           method, target, a->address, body_len, a->token ? "X-Consul-Token: " : "",
                           a->token ? a->token : "", a->token ? "\r\n" : "", body ? body : "");
    int64_t deadline = now_ms() + REQUEST_TIMEOUT_MS;
    if (req_len < 0 || (size_t)req_len >= cap) {
        rc = fail(DEV_AGENT_ERR_ARGUMENT, "%s %s: request does not fit its buffer", method, target);
        goto done;
    }

#ifdef SOCK_CLOEXEC
    fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
#else
    fd = socket(a->sa.ss_family, SOCK_STREAM, 0);
    if (fd >= 0) set_cloexec(fd);
#endif
    if (fd < 0) {
        rc = fail(DEV_AGENT_ERR_CONNECT, "%s %s: socket: %s", method, target, strerror(errno));
        goto done;
    }
    /* Loopback: connect completes or is refused at once. */
    while (connect(fd, (const struct sockaddr *)&a->sa, a->sa_len) != 0) {
        if (errno == EINTR) continue;
        rc = fail(DEV_AGENT_ERR_CONNECT, "%s %s: cannot connect to the dev agent at %s: %s (has it exited?)", method,
                  target, a->address, strerror(errno));
        goto done;
    }
#ifdef MSG_NOSIGNAL
    const int send_flags = MSG_NOSIGNAL; /* a closed socket must not kill us with SIGPIPE */
#else
    const int send_flags = 0;
#endif
    for (int sent = 0; sent < req_len;) {
        int w = wait_fd(fd, POLLOUT, deadline);
        if (w == 0) {
            rc = fail(DEV_AGENT_ERR_TIMEOUT, "%s %s: sending to the dev agent timed out", method, target);
            goto done;
        }
        ssize_t n = w > 0 ? send(fd, req + sent, (size_t)(req_len - sent), send_flags) : -1;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = fail(DEV_AGENT_ERR_CONNECT, "%s %s: sending to the dev agent: %s", method, target, strerror(errno));
            goto done;
        }
        sent += (int)n;
    }
    for (;;) {
        if (resp_cap - resp_len < 2) {
            if (resp_cap >= MAX_RESPONSE) {
                rc = fail(DEV_AGENT_ERR_BAD_RESPONSE, "%s %s: answer larger than %d bytes", method, target,
                          MAX_RESPONSE);
                goto done;
            }
            size_t new_cap = resp_cap ? resp_cap * 2 : 4096;
            char *grown = realloc(resp, new_cap);
            if (!grown) {
                rc = fail(DEV_AGENT_ERR_SPAWN, "out of memory");
                goto done;
            }
            resp = grown;
            resp_cap = new_cap;
        }
        int w = wait_fd(fd, POLLIN, deadline);
        if (w == 0) {
            rc = fail(DEV_AGENT_ERR_TIMEOUT, "%s %s: the dev agent did not answer within %d ms", method, target,
                      REQUEST_TIMEOUT_MS);
            goto done;
        }
        ssize_t n = w > 0 ? recv(fd, resp + resp_len, resp_cap - resp_len - 1, 0) : -1;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = fail(DEV_AGENT_ERR_CONNECT, "%s %s: reading the answer: %s", method, target, strerror(errno));
            goto done;
        }
        if (n == 0) break;
        resp_len += (size_t)n;
    }
    if (resp) resp[resp_len] = '\0';

    /* Status line "HTTP/1.x NNN reason", headers, blank line, body. */
    int status = 0;
    if (!resp || strncmp(resp, "HTTP/1.", 7) != 0 || resp_len < 12 || resp[8] != ' ' ||
        sscanf(resp + 9, "%3d", &status) != 1 || status < 100) {
        rc = fail(DEV_AGENT_ERR_BAD_RESPONSE, "%s %s: not an HTTP/1.x answer: \"%.60s\"", method, target,
                  resp ? resp : "");
        goto done;
    }
    char *headers_end = strstr(resp, "\r\n\r\n");
    if (!headers_end) {
        rc = fail(DEV_AGENT_ERR_BAD_RESPONSE, "%s %s: answer ends inside its headers", method, target);
        goto done;
    }
    char *answer = headers_end + 4;
    size_t answer_len = resp_len - (size_t)(answer - resp), value_len = 0;
    const char *te = find_header(resp, headers_end + 2, "Transfer-Encoding", &value_len);
    if (te && !(value_len == 8 && strncasecmp(te, "identity", 8) == 0)) {
        rc = fail(DEV_AGENT_ERR_BAD_RESPONSE, "%s %s: Transfer-Encoding %.*s is not supported", method, target,
                  (int)value_len, te);
        goto done;
    }
    const char *cl = find_header(resp, headers_end + 2, "Content-Length", &value_len);
    if (cl && strtoull(cl, NULL, 10) != answer_len) {
        rc = fail(DEV_AGENT_ERR_BAD_RESPONSE, "%s %s: answer truncated: Content-Length %.*s, got %zu bytes", method,
                  target, (int)value_len, cl, answer_len);
        goto done;
    }
    if (status < 200 || status > 299) {
        int shown = (int)strcspn(answer, "\r\n");
        rc = fail(DEV_AGENT_ERR_HTTP, "%s %s: the dev agent answered %d: %.*s", method, target, status,
                  shown > 300 ? 300 : shown, answer);
        goto done;
    }
    if (out_body) {
        memmove(resp, answer, answer_len + 1);
        *out_body = resp;
        resp = NULL;
    }

done:
    if (fd >= 0) close(fd);
    if (req) {
        memset(req, 0, cap); /* it may hold the token */
        free(req);
    }
    free(resp);
    return rc;
}

static dev_agent_result intention(const dev_agent *agent, const char *method, const char *source,
                                  const char *destination, const char *body) {
    if (!agent || !source || !destination || !*source || !*destination)
        return fail(DEV_AGENT_ERR_ARGUMENT, "intention %s: NULL agent or empty source/destination", method);
    size_t cap = 64 + 3 * (strlen(source) + strlen(destination)), pos = 0;
    char *target = malloc(cap);
    if (!target) return fail(DEV_AGENT_ERR_SPAWN, "out of memory");
    pos = (size_t)snprintf(target, cap, "/v1/connect/intentions/exact?source=");
    percent_encode(target, cap, &pos, source);
    pos += (size_t)snprintf(target + pos, cap - pos, "&destination=");
    percent_encode(target, cap, &pos, destination);
    dev_agent_result rc = request(agent, method, target, body, NULL);
    free(target);
    return rc;
}

dev_agent_result dev_agent_set_intention(const dev_agent *agent, const char *source, const char *destination,
                                         bool allow) {
    return intention(agent, "PUT", source, destination, allow ? "{\"Action\":\"allow\"}" : "{\"Action\":\"deny\"}");
}

dev_agent_result dev_agent_delete_intention(const dev_agent *agent, const char *source, const char *destination) {
    return intention(agent, "DELETE", source, destination, NULL);
}

dev_agent_result dev_agent_rotate_ca(const dev_agent *agent) {
    if (!agent) return fail(DEV_AGENT_ERR_ARGUMENT, "dev_agent_rotate_ca: `agent` is NULL");
    return request(agent, "PUT", "/_devagent/rotate-ca", NULL, NULL);
}

dev_agent_result dev_agent_trust_domain(const dev_agent *agent, char *buf, size_t len) {
    static const char key[] = "\"TrustDomain\":\"";
    if (!agent || !buf || len == 0) return fail(DEV_AGENT_ERR_ARGUMENT, "dev_agent_trust_domain: NULL argument");
    char *body = NULL;
    dev_agent_result rc = request(agent, "GET", "/v1/agent/connect/ca/roots", NULL, &body);
    if (rc != DEV_AGENT_OK) return rc;
    /* The agent writes compact JSON and a trust domain has no escapes: a string search is enough here. */
    const char *start = strstr(body, key);
    const char *end = start ? strchr(start + sizeof key - 1, '"') : NULL;
    if (!end) {
        rc = fail(DEV_AGENT_ERR_BAD_RESPONSE, "GET /v1/agent/connect/ca/roots: no \"TrustDomain\" in the answer");
    } else {
        start += sizeof key - 1;
        size_t n = (size_t)(end - start);
        if (n >= len) {
            rc = fail(DEV_AGENT_ERR_ARGUMENT, "dev_agent_trust_domain: buffer of %zu bytes, %zu needed", len, n + 1);
        } else {
            memcpy(buf, start, n);
            buf[n] = '\0';
        }
    }
    free(body);
    return rc;
}
