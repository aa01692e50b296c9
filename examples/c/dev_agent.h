/*
 * dev_agent: run the `consulnative-dev-agent` binary (a Consul-compatible dev agent: Connect CA, intentions,
 * catalog) as a child process, for demos and tests of C programs. C11 + POSIX, no other dependency: copy
 * dev_agent.h and dev_agent.c into your project.
 *
 *   dev_agent *agent;
 *   dev_agent_options opts = {.default_deny = true};
 *   if (dev_agent_start(&opts, &agent) != DEV_AGENT_OK) { fprintf(stderr, "%s\n", dev_agent_last_error()); ... }
 *   setenv("CONSUL_HTTP_ADDR", dev_agent_address(agent), 1);   // or the client config key `address`
 *   dev_agent_set_intention(agent, "web", "db", true);
 *   ...
 *   dev_agent_stop(agent);
 *
 * Which binary runs (the first location that is given wins; a given location that holds no executable is an
 * error, never a reason to run some other binary):
 *   1. the environment variable CONSULNATIVE_DEV_AGENT,
 *   2. dev_agent_options.binary,
 *   3. `consulnative-dev-agent` in the directories of PATH.
 * A location without a '/' is looked up in PATH.
 *
 * The agent listens on 127.0.0.1 on a free port. It runs with --exit-on-stdin-eof and its stdin is a pipe only we
 * hold, so it exits when we stop it and also when this process dies without stopping it. It runs in its own
 * process group, so a Ctrl-C meant for us does not take it away while we clean up. Its stderr is ours (its error
 * messages show up there); its stdout carries its ready line.
 *
 * Errors: every function returns a dev_agent_result; dev_agent_last_error() gives the message of the last failure
 * on the calling thread (which binary, which request, what the agent answered).
 *
 * Threads: functions may be called from any thread; the control functions (intentions, CA rotation, trust
 * domain) may run concurrently on one agent; dev_agent_stop must not race with them.
 *
 * Child processes: the agent is reaped with waitpid(). Do not set SIGCHLD to SIG_IGN and do not reap unknown
 * children with waitpid(-1, ...) while an agent runs, or dev_agent_stop cannot collect it.
 */
#ifndef CONSULNATIVE_EXAMPLES_DEV_AGENT_H
#define CONSULNATIVE_EXAMPLES_DEV_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum dev_agent_result {
    DEV_AGENT_OK = 0,
    DEV_AGENT_ERR_ARGUMENT = 1,     /* a NULL or invalid argument (e.g. a token containing a line break) */
    DEV_AGENT_ERR_NOT_FOUND = 2,    /* no executable consulnative-dev-agent where we looked */
    DEV_AGENT_ERR_SPAWN = 3,        /* pipe, posix_spawn or memory failure */
    DEV_AGENT_ERR_NOT_READY = 4,    /* no ready line: the agent exited, printed something else, or timed out */
    DEV_AGENT_ERR_CONNECT = 5,      /* the agent's HTTP port could not be reached */
    DEV_AGENT_ERR_HTTP = 6,         /* the agent answered with a non-2xx status (the message holds the body) */
    DEV_AGENT_ERR_BAD_RESPONSE = 7, /* an answer that is not HTTP/1.x, too large, truncated or lacking a field */
    DEV_AGENT_ERR_TIMEOUT = 8,      /* a request did not complete in time */
    DEV_AGENT_ERR_STOP = 9,         /* the agent did not exit cleanly when stopped (it has been reaped anyway) */
} dev_agent_result;

typedef struct dev_agent_options {
    /* Where the binary is, used when CONSULNATIVE_DEV_AGENT is unset or empty. NULL: search PATH. */
    const char *binary;
    /* ACL token the agent will require (passed in its environment as CONSUL_DEV_AGENT_TOKEN, never on its command
     * line); our own requests send it. NULL or "": no ACLs (an inherited CONSUL_DEV_AGENT_TOKEN is removed). */
    const char *acl_token;
    /* true: --default-policy deny (connections no intention matches are refused). false: the agent's default,
     * allow. */
    bool default_deny;
    /* --leaf-ttl as a Go duration ("30s", "5m", "72h"). NULL: the agent's default (72h). */
    const char *leaf_ttl;
    /* How long to wait for the ready line. 0: 10000 ms. */
    int ready_timeout_ms;
} dev_agent_options;

typedef struct dev_agent dev_agent;

/* Starts an agent and waits for its ready line. `options` may be NULL (all defaults). On success *out is a
 * running agent, to be stopped with dev_agent_stop; on failure *out is left untouched and no process remains. */
dev_agent_result dev_agent_start(const dev_agent_options *options, dev_agent **out);

/* The agent's HTTP address, "127.0.0.1:PORT": the client config key `address`, or CONSUL_HTTP_ADDR. Valid until
 * dev_agent_stop. */
const char *dev_agent_address(const dev_agent *agent);

/* The path of the binary that runs. Valid until dev_agent_stop. */
const char *dev_agent_binary(const dev_agent *agent);

/* The agent's process id. */
pid_t dev_agent_pid(const dev_agent *agent);

/* Creates or replaces the intention source => destination ("*" allowed for either) as allow or deny. */
dev_agent_result dev_agent_set_intention(const dev_agent *agent, const char *source, const char *destination,
                                         bool allow);

/* Deletes the intention source => destination (no error if there is none). */
dev_agent_result dev_agent_delete_intention(const dev_agent *agent, const char *source, const char *destination);

/* Rotates the CA: a new active root, the old one still trusted, every leaf reissued. */
dev_agent_result dev_agent_rotate_ca(const dev_agent *agent);

/* Writes the CA's trust domain ("<uuid>.consul") into buf (NUL-terminated). A short buffer is
 * DEV_AGENT_ERR_ARGUMENT. */
dev_agent_result dev_agent_trust_domain(const dev_agent *agent, char *buf, size_t len);

/* Stops the agent and frees the handle: closes its stdin (it exits on EOF), sends SIGTERM to its process group if
 * it has not exited within 5 s, SIGKILL 2 s later, and reaps it. Returns DEV_AGENT_OK only if it exited by itself with status 0;
 * the handle is freed and the process gone in every case. NULL is a no-op. */
dev_agent_result dev_agent_stop(dev_agent *agent);

/* The message of the last failed dev_agent_* call on this thread ("" if none). */
const char *dev_agent_last_error(void);

/* A short name for a result ("not ready"). */
const char *dev_agent_result_name(dev_agent_result result);

#ifdef __cplusplus
}
#endif

#endif /* CONSULNATIVE_EXAMPLES_DEV_AGENT_H */
