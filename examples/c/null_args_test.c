/*
 * null_args_test: calls every exported function with NULL and invalid arguments (NULL handles, NULL out-params,
 * NULL strings, invalid UTF-8, short buffers, unknown keys and kinds) and checks that each returns the documented
 * result code, with a message naming the argument, and never crashes. Run under valgrind by scripts/test-c.sh.
 * Prints `null_args_test: N passed, M failed`; exits non-zero on any failure.
 *
 *   null_args_test [PATH-TO-consulnative-dev-agent]   ($CONSULNATIVE_DEV_AGENT wins; else PATH)
 */
#include <consulnative.h>

#include "dev_agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed = 0, failed = 0;
static const char BAD[] = "\xff\xfe not UTF-8 \xc3\x28";

static const char *last_error(void) {
    static char msg[4096];
    size_t n;
    if (consulnative_last_error(msg, sizeof msg, &n) != CONSULNATIVE_RESULT_OK) snprintf(msg, sizeof msg, "?");
    return msg;
}

/* rc must be `want`; if `needle` is given, the thread's last error message must contain it. */
static void expect(int line, const char *call, uint32_t rc, uint32_t want, const char *needle) {
    const char *msg = rc ? last_error() : "";
    if (rc == want && (needle == NULL || strstr(msg, needle) != NULL)) {
        passed++;
        return;
    }
    failed++;
    printf("FAIL line %d: %s\n  returned %u (%s), expected %u (%s)%s%s\n  message: %s\n", line, call, rc,
           consulnative_result_name(rc), want, consulnative_result_name(want), needle ? ", message containing " : "",
           needle ? needle : "", msg);
}
#define EXPECT(call, want, needle) expect(__LINE__, #call, (call), (want), (needle))

#define EXPECT_TRUE(cond) expect(__LINE__, #cond, (cond) ? 0 : 1, 0, NULL)

#define NUL CONSULNATIVE_RESULT_NULL_ARGUMENT
#define INV CONSULNATIVE_RESULT_INVALID_ARGUMENT
#define SMALL CONSULNATIVE_RESULT_BUFFER_TOO_SMALL

static int drops = 0;
static void count_drop(void *userdata) { (void)userdata; drops++; }
static void on_event(void *userdata, uint32_t event) { (void)userdata; (void)event; }
static void on_refused(void *u, uint32_t r, const char *a, const char *p, const char *m) { (void)u; (void)r; (void)a; (void)p; (void)m; }
static int32_t peer_check(void *u, const char *uri, const char *svc) { (void)u; (void)uri; (void)svc; return 0; }

int main(int argc, char **argv) {
    dev_agent *agent = NULL;
    consulnative_config *cfg = NULL;
    consulnative_client *client = NULL;
    consulnative_service *svc = NULL;
    consulnative_listener *listener = NULL;
    consulnative_conn *conn = NULL, *server_conn = NULL;
    char buf[8192], addr[128];
    size_t n = 0;
    uint64_t id = 0, a = 0, r = 0;
    int32_t fd = -1;

    /* ---- library-wide ---- */
    EXPECT_TRUE(consulnative_version() != NULL && strlen(consulnative_version()) > 0);
    for (uint32_t code = 0; code <= 20; code++)
        EXPECT_TRUE(strcmp(consulnative_result_name(code), "unknown result") != 0 && consulnative_result_name(code)[0]);
    EXPECT_TRUE(strcmp(consulnative_result_name(21), "unknown result") == 0);
    EXPECT_TRUE(strcmp(consulnative_result_name(UINT32_MAX), "unknown result") == 0);
    EXPECT(consulnative_set_logger(NULL, NULL, CONSULNATIVE_LOG_LEVEL_INFO), 0, NULL);

    /* ---- a dev agent (the binary, through the dev_agent helper), so the handles below are real ---- */
    dev_agent_options agent_options = {.binary = argc > 1 ? argv[1] : NULL};
    if (dev_agent_start(&agent_options, &agent) != DEV_AGENT_OK) {
        printf("null_args_test: cannot start the dev agent: %s\n", dev_agent_last_error());
        return 1;
    }
    snprintf(addr, sizeof addr, "%s", dev_agent_address(agent));

    /* ---- last_error: a short buffer reports the length and keeps the message ---- */
    EXPECT(consulnative_service_wait_ready(NULL, 0), NUL, "`service`");
    n = 0;
    EXPECT(consulnative_last_error(NULL, 0, &n), SMALL, NULL);
    EXPECT_TRUE(n == strlen("argument `service` is NULL"));
    EXPECT(consulnative_last_error(buf, 4, &n), SMALL, NULL);
    EXPECT(consulnative_last_error(buf, sizeof buf, NULL), NUL, NULL);
    EXPECT(consulnative_last_error(buf, sizeof buf, &n), 0, NULL);
    EXPECT_TRUE(strcmp(buf, "argument `service` is NULL") == 0);

    /* ---- config ---- */
    EXPECT(consulnative_config_new(NULL), NUL, "`out`");
    EXPECT(consulnative_config_new(&cfg), 0, NULL);
    EXPECT(consulnative_config_set(NULL, "address", addr), NUL, "`config`");
    EXPECT(consulnative_config_set(cfg, NULL, addr), NUL, "`key`");
    EXPECT(consulnative_config_set(cfg, BAD, addr), INV, "`key`");
    EXPECT(consulnative_config_set(cfg, "address", BAD), INV, "`value`");
    EXPECT(consulnative_config_set(cfg, "no_such_key", "1"), INV, "no_such_key");
    EXPECT(consulnative_config_set(cfg, "request_timeout_ms", "soon"), INV, "request_timeout_ms");
    EXPECT(consulnative_config_set(cfg, "request_timeout_ms", NULL), INV, "request_timeout_ms");
    EXPECT(consulnative_config_set(cfg, "tls_verify", "maybe"), INV, "tls_verify");
    EXPECT(consulnative_config_set(cfg, "token", NULL), 0, NULL); /* NULL clears an optional key */
    EXPECT(consulnative_config_set(cfg, "address", addr), 0, NULL);
    EXPECT(consulnative_config_set(cfg, "handshake_timeout_ms", "30000"), 0, NULL);
    consulnative_config_free(NULL);

    /* ---- client ---- */
    EXPECT(consulnative_client_new(cfg, NULL), NUL, "`out`");
    EXPECT(consulnative_client_new(cfg, &client), 0, NULL);
    EXPECT(consulnative_client_register(NULL, "web", NULL, NULL, 1, NULL, NULL), NUL, "`client`");
    EXPECT(consulnative_client_register(client, NULL, NULL, NULL, 1, NULL, NULL), NUL, "`name`");
    EXPECT(consulnative_client_register(client, BAD, NULL, NULL, 1, NULL, NULL), INV, "`name`");
    EXPECT(consulnative_client_register(client, "web", BAD, NULL, 1, NULL, NULL), INV, "`id`");
    EXPECT(consulnative_client_register(client, "web", NULL, BAD, 1, NULL, NULL), INV, "`address`");
    EXPECT(consulnative_client_register(client, "web", NULL, NULL, 1, BAD, NULL), INV, "`tags`");
    EXPECT(consulnative_client_register(client, "web", NULL, NULL, 1, NULL, BAD), INV, "`check`");
    EXPECT(consulnative_client_register(client, "web", NULL, NULL, 1, NULL, "http"), INV, "http");
    EXPECT(consulnative_client_register(client, "web", NULL, NULL, 1, NULL, "ttl"), INV, "ttl");
    EXPECT(consulnative_client_register(client, "web", NULL, NULL, 1, NULL, "tcp:often"), INV, "tcp:often");
    EXPECT(consulnative_client_deregister(NULL, "web"), NUL, "`client`");
    EXPECT(consulnative_client_deregister(client, NULL), NUL, "`service_id`");
    EXPECT(consulnative_client_deregister(client, BAD), INV, "`service_id`");
    EXPECT(consulnative_client_pass_ttl(NULL, "service:web", NULL), NUL, "`client`");
    EXPECT(consulnative_client_pass_ttl(client, NULL, NULL), NUL, "`check_id`");
    EXPECT(consulnative_client_pass_ttl(client, BAD, NULL), INV, "`check_id`");
    EXPECT(consulnative_client_pass_ttl(client, "service:web", BAD), INV, "`note`");
    consulnative_client_free(NULL);

    /* ---- service ---- */
    EXPECT(consulnative_service_new(NULL, "web", &svc), NUL, "`client`");
    EXPECT(consulnative_service_new(client, NULL, &svc), NUL, "`name`");
    EXPECT(consulnative_service_new(client, BAD, &svc), INV, "`name`");
    EXPECT(consulnative_service_new(client, "web", NULL), NUL, "`out`");
    EXPECT_TRUE(svc == NULL);
    EXPECT(consulnative_service_new(client, "web", &svc), 0, NULL);
    EXPECT(consulnative_service_wait_ready(NULL, 0), NUL, "`service`");
    EXPECT(consulnative_service_wait_ready(svc, 60000), 0, NULL);
    EXPECT(consulnative_service_status(NULL, buf, sizeof buf, &n), NUL, "`service`");
    EXPECT(consulnative_service_status(svc, buf, sizeof buf, NULL), NUL, "`out_n`");
    n = 0;
    EXPECT(consulnative_service_status(svc, NULL, 0, &n), SMALL, NULL);
    EXPECT_TRUE(n > 0);
    EXPECT(consulnative_service_pem(NULL, CONSULNATIVE_PEM_KIND_ROOTS, buf, sizeof buf, &n), NUL, "`service`");
    EXPECT(consulnative_service_pem(svc, 0, buf, sizeof buf, &n), INV, "PEM kind");
    EXPECT(consulnative_service_pem(svc, 99, buf, sizeof buf, &n), INV, "PEM kind");
    EXPECT(consulnative_service_pem(svc, CONSULNATIVE_PEM_KIND_LEAF_KEY, buf, sizeof buf, NULL), NUL, "`out_n`");
    EXPECT(consulnative_service_pem(svc, CONSULNATIVE_PEM_KIND_LEAF_CHAIN, buf, 10, &n), SMALL, NULL);
    EXPECT(consulnative_service_add_callback(NULL, on_event, NULL, NULL, &id), NUL, "`service`");
    EXPECT(consulnative_service_add_callback(svc, NULL, NULL, NULL, &id), NUL, "`callback`");
    EXPECT(consulnative_service_add_callback(svc, on_event, NULL, NULL, NULL), NUL, "`out_id`");
    EXPECT(consulnative_service_add_callback(svc, on_event, NULL, count_drop, &id), 0, NULL);
    EXPECT(consulnative_service_remove_callback(NULL, id), NUL, "`service`");
    EXPECT(consulnative_service_remove_callback(svc, id), 0, NULL);
    EXPECT_TRUE(drops == 1); /* removing a callback runs its drop once */
    EXPECT(consulnative_service_add_callback(svc, on_event, NULL, count_drop, &id), 0, NULL); /* dropped by free */

    /* ---- listener ---- */
    EXPECT(consulnative_service_listen(NULL, "127.0.0.1:0", NULL, &listener), NUL, "`service`");
    EXPECT(consulnative_service_listen(svc, NULL, NULL, &listener), NUL, "`address`");
    EXPECT(consulnative_service_listen(svc, BAD, NULL, &listener), INV, "`address`");
    EXPECT(consulnative_service_listen(svc, "not an address", NULL, &listener), INV, "not an address");
    EXPECT(consulnative_service_listen(svc, "127.0.0.1:99999", NULL, &listener), INV, "99999");
    EXPECT(consulnative_service_listen(svc, "127.0.0.1:0", BAD, &listener), INV, "`alpn`");
    EXPECT(consulnative_service_listen(svc, "127.0.0.1:0", NULL, NULL), NUL, "`out`");
    EXPECT(consulnative_service_listen(svc, "127.0.0.1:0", NULL, &listener), 0, NULL);
    EXPECT(consulnative_listener_address(NULL, buf, sizeof buf, &n), NUL, "`listener`");
    EXPECT(consulnative_listener_address(listener, buf, sizeof buf, NULL), NUL, "`out_n`");
    EXPECT(consulnative_listener_address(listener, buf, 2, &n), SMALL, NULL);
    EXPECT(consulnative_listener_address(listener, buf, sizeof buf, &n), 0, NULL);
    snprintf(addr, sizeof addr, "%.127s", buf);
    EXPECT(consulnative_listener_accept(NULL, 0, &server_conn), NUL, "`listener`");
    EXPECT(consulnative_listener_accept(listener, 0, NULL), NUL, "`out`");
    EXPECT(consulnative_listener_accept(listener, 0, &server_conn), CONSULNATIVE_RESULT_TIMEOUT, NULL);
    EXPECT(consulnative_listener_on_refused(NULL, on_refused, NULL, NULL), NUL, "`listener`");
    drops = 0;
    EXPECT(consulnative_listener_on_refused(listener, on_refused, NULL, count_drop), 0, NULL);
    EXPECT(consulnative_listener_on_refused(listener, NULL, NULL, NULL), 0, NULL);
    EXPECT_TRUE(drops == 1); /* replacing a callback runs the previous drop */
    EXPECT(consulnative_listener_set_peer_check(NULL, peer_check, NULL, NULL), NUL, "`listener`");
    EXPECT(consulnative_listener_set_peer_check(listener, peer_check, NULL, count_drop), 0, NULL);
    EXPECT(consulnative_listener_set_peer_check(listener, NULL, NULL, NULL), 0, NULL);
    EXPECT_TRUE(drops == 2);
    EXPECT(consulnative_listener_counts(NULL, &a, &r), NUL, "`listener`");
    EXPECT(consulnative_listener_counts(listener, NULL, &r), NUL, "`out_accepted`");
    EXPECT(consulnative_listener_counts(listener, &a, NULL), NUL, "`out_refused`");
    consulnative_listener_close(NULL);
    consulnative_listener_free(NULL);

    /* ---- dialing ---- */
    EXPECT(consulnative_service_dial(NULL, "web", NULL, NULL, 1000, &conn), NUL, "`service`");
    EXPECT(consulnative_service_dial(svc, NULL, NULL, NULL, 1000, &conn), NUL, "`target`");
    EXPECT(consulnative_service_dial(svc, BAD, NULL, NULL, 1000, &conn), INV, "`target`");
    EXPECT(consulnative_service_dial(svc, "web", BAD, NULL, 1000, &conn), INV, "`datacenter`");
    EXPECT(consulnative_service_dial(svc, "web", NULL, BAD, 1000, &conn), INV, "`alpn`");
    EXPECT(consulnative_service_dial(svc, "web", NULL, NULL, 1000, NULL), NUL, "`out`");
    EXPECT(consulnative_service_dial_address(NULL, addr, "web", NULL, 1000, &conn), NUL, "`service`");
    EXPECT(consulnative_service_dial_address(svc, NULL, "web", NULL, 1000, &conn), NUL, "`address`");
    EXPECT(consulnative_service_dial_address(svc, addr, NULL, NULL, 1000, &conn), NUL, "`expected`");
    EXPECT(consulnative_service_dial_address(svc, BAD, "web", NULL, 1000, &conn), INV, "`address`");
    EXPECT(consulnative_service_dial_address(svc, addr, BAD, NULL, 1000, &conn), INV, "`expected`");
    EXPECT(consulnative_service_dial_address(svc, addr, "web", BAD, 1000, &conn), INV, "`alpn`");
    EXPECT(consulnative_service_dial_address(svc, addr, "web", NULL, 1000, NULL), NUL, "`out`");
    EXPECT(consulnative_service_dial_address(svc, "no port here", "web", NULL, 1000, &conn), INV, "not a dial address");
    EXPECT(consulnative_service_dial_address(svc, addr, "spiffe://not a uri", NULL, 1000, &conn), INV, "spiffe://not a uri");
    EXPECT_TRUE(conn == NULL);

    /* ---- connection (web dials itself: the dev agent allows by default) ---- */
    EXPECT(consulnative_service_dial_address(svc, addr, "web", NULL, 60000, &conn), 0, NULL);
    EXPECT(consulnative_listener_accept(listener, 60000, &server_conn), 0, NULL);
    EXPECT(consulnative_conn_read(NULL, (uint8_t *)buf, sizeof buf, 0, &n), NUL, "`conn`");
    EXPECT(consulnative_conn_read(conn, NULL, 10, 0, &n), NUL, "`buf`");
    EXPECT(consulnative_conn_read(conn, (uint8_t *)buf, sizeof buf, 0, NULL), NUL, "`out_n`");
    EXPECT(consulnative_conn_read(conn, (uint8_t *)buf, sizeof buf, 0, &n), CONSULNATIVE_RESULT_TIMEOUT, NULL);
    EXPECT(consulnative_conn_write(NULL, (const uint8_t *)"x", 1, 1000, &n), NUL, "`conn`");
    EXPECT(consulnative_conn_write(conn, NULL, 1, 1000, &n), NUL, "`buf`");
    EXPECT(consulnative_conn_write(conn, (const uint8_t *)"x", 1, 1000, NULL), NUL, "`out_n`");
    EXPECT(consulnative_conn_write(conn, NULL, 0, 1000, &n), 0, NULL); /* zero bytes: any pointer */
    EXPECT(consulnative_conn_shutdown(NULL, 1000), NUL, "`conn`");
    EXPECT(consulnative_conn_info(NULL, buf, sizeof buf, &n), NUL, "`conn`");
    EXPECT(consulnative_conn_info(conn, buf, sizeof buf, NULL), NUL, "`out_n`");
    n = 0;
    EXPECT(consulnative_conn_info(conn, NULL, 0, &n), SMALL, NULL);
    EXPECT_TRUE(n > 0);
    EXPECT(consulnative_conn_info(conn, buf, n + 1, &n), 0, NULL);
    EXPECT(consulnative_conn_handoff(NULL, &fd), NUL, "`conn`");
    EXPECT(consulnative_conn_handoff(conn, NULL), NUL, "`out_fd`");
    EXPECT_TRUE(fd == -1);

    /* ---- conn_close: NULL is rejected; closing twice is fine; a closed connection reads and writes CLOSED ---- */
    EXPECT(consulnative_conn_close(NULL, 1000), NUL, "`conn`");
    EXPECT(consulnative_conn_close(conn, 1000), 0, NULL);
    EXPECT(consulnative_conn_close(conn, 1000), 0, NULL);
    EXPECT(consulnative_conn_close(conn, 0), 0, NULL);
    EXPECT(consulnative_conn_read(conn, (uint8_t *)buf, sizeof buf, 1000, &n), CONSULNATIVE_RESULT_CLOSED, NULL);
    EXPECT(consulnative_conn_write(conn, (const uint8_t *)"x", 1, 1000, &n), CONSULNATIVE_RESULT_CLOSED, NULL);
    EXPECT(consulnative_conn_info(conn, buf, sizeof buf, &n), 0, NULL); /* the handle stays valid until free */
    n = 1;
    EXPECT(consulnative_conn_read(server_conn, (uint8_t *)buf, sizeof buf, 60000, &n), 0, NULL);
    EXPECT_TRUE(n == 0); /* the peer saw close_notify: a clean end of stream */
    consulnative_conn_free(NULL);

    consulnative_conn_free(conn);
    consulnative_conn_free(server_conn);
    consulnative_listener_free(listener);
    drops = 0;
    consulnative_service_free(svc);
    EXPECT_TRUE(drops == 1); /* freeing a service runs its remaining callbacks' drops */
    consulnative_client_free(client);
    consulnative_config_free(cfg);
    if (dev_agent_stop(agent) != DEV_AGENT_OK) {
        failed++;
        printf("FAIL: stopping the dev agent: %s\n", dev_agent_last_error());
    }

    printf("null_args_test: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
