/*
 * echo_server: a Connect-native echo service in C.
 *
 *   CONSUL_HTTP_ADDR=127.0.0.1:8500 echo_server NAME [LISTEN_ADDR] [PORT_FILE]
 *
 * Gets NAME's certificate from the agent, listens on LISTEN_ADDR (default 127.0.0.1:0), registers the instance in
 * the catalog (so clients can dial NAME by name), and echoes every connection the agent's intentions allow, one
 * thread per connection. Refused connections are printed with the reason. SIGINT/SIGTERM deregister and exit.
 * If PORT_FILE is given, the bound address is written there once the server is ready.
 */
#include <consulnative.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stopping = 0;
static void on_signal(int sig) { (void)sig; stopping = 1; }

/* Prints what failed, the result name and the library's message (which service, which certificate, ...). */
static void report(const char *what, uint32_t rc) {
    char msg[1024];
    size_t n = 0;
    if (consulnative_last_error(msg, sizeof msg, &n) != CONSULNATIVE_RESULT_OK) msg[0] = '\0'; /* longer: skip */
    fprintf(stderr, "echo_server: %s: %s: %s\n", what, consulnative_result_name(rc), msg);
}

/* Copies the string value of "key" out of the library's compact JSON (enough for conn_info). */
static void json_string(const char *json, const char *key, char *out, size_t len) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    const char *p = strstr(json, pattern);
    const char *end = p ? strchr(p + strlen(pattern), '"') : NULL;
    size_t n = end ? (size_t)(end - (p + strlen(pattern))) : 0;
    if (n >= len) n = len - 1;
    memcpy(out, p ? p + strlen(pattern) : "", n);
    out[n] = '\0';
}

/* Called by the library (on its own thread) for each connection it refused: bad certificate, denied intention... */
static void on_refused(void *userdata, uint32_t result, const char *peer_address, const char *peer_uri,
                       const char *message) {
    (void)userdata;
    printf("refused %s (%s): %s: %s\n", peer_address, peer_uri ? peer_uri : "no identity",
           consulnative_result_name(result), message);
    fflush(stdout);
}

static void *echo(void *arg) {
    consulnative_conn *conn = arg;
    char info[2048], peer[256] = "?", addr[128] = "?";
    size_t n;
    if (consulnative_conn_info(conn, info, sizeof info, &n) == CONSULNATIVE_RESULT_OK) {
        json_string(info, "service", peer, sizeof peer);
        json_string(info, "peer_address", addr, sizeof addr);
    }
    printf("connection from service %s at %s\n", peer, addr);
    fflush(stdout);

    uint8_t buf[16384];
    uint32_t rc;
    for (;;) {
        rc = consulnative_conn_read(conn, buf, sizeof buf, -1, &n);
        if (rc != CONSULNATIVE_RESULT_OK || n == 0) break; /* error, or the peer finished sending (EOF) */
        rc = consulnative_conn_write(conn, buf, n, 10000, &n);
        if (rc != CONSULNATIVE_RESULT_OK) break;
    }
    if (rc != CONSULNATIVE_RESULT_OK) report("connection", rc);
    consulnative_conn_shutdown(conn, 1000);
    consulnative_conn_free(conn);
    printf("connection from service %s closed\n", peer);
    fflush(stdout);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s NAME [LISTEN_ADDR] [PORT_FILE]   (agent address from CONSUL_HTTP_ADDR)\n", argv[0]);
        return 2;
    }
    const char *name = argv[1];
    const char *listen_addr = argc > 2 ? argv[2] : "127.0.0.1:0";
    int status = 1;
    uint32_t rc;
    consulnative_client *client = NULL;
    consulnative_service *service = NULL;
    consulnative_listener *listener = NULL;
    bool registered = false;
    char addr[128], id[256], check_id[300];
    size_t n;

    struct sigaction sa = {0};
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    /* NULL config: everything from the CONSUL_* environment variables. */
    if ((rc = consulnative_client_new(NULL, &client))) { report("client", rc); goto out; }
    if ((rc = consulnative_service_new(client, name, &service))) { report("service", rc); goto out; }
    if ((rc = consulnative_service_wait_ready(service, 30000))) { report("certificates", rc); goto out; }
    if ((rc = consulnative_service_listen(service, listen_addr, NULL, &listener))) { report("listen", rc); goto out; }
    consulnative_listener_on_refused(listener, on_refused, NULL, NULL);

    if ((rc = consulnative_listener_address(listener, addr, sizeof addr, &n))) { report("address", rc); goto out; }
    const char *colon = strrchr(addr, ':');
    /* Register NAME with a TTL check kept passing below; the instance ID is NAME-PORT. */
    snprintf(id, sizeof id, "%s-%s", name, colon + 1);
    if ((rc = consulnative_client_register(client, name, id, "127.0.0.1", (uint16_t)atoi(colon + 1), NULL,
                                           "ttl:30000"))) { report("register", rc); goto out; }
    registered = true;
    snprintf(check_id, sizeof check_id, "service:%s", id);
    if ((rc = consulnative_client_pass_ttl(client, check_id, NULL))) { report("check", rc); goto out; }

    printf("%s listening on %s (instance %s)\n", name, addr, id);
    fflush(stdout);
    if (argc > 3) {
        FILE *f = fopen(argv[3], "w");
        if (f) { fprintf(f, "%s\n", addr); fclose(f); }
    }

    int ticks = 0;
    while (!stopping) {
        consulnative_conn *conn = NULL;
        rc = consulnative_listener_accept(listener, 500, &conn); /* short timeout: notice signals */
        if (rc == CONSULNATIVE_RESULT_TIMEOUT) {
            if (++ticks % 20 == 0) consulnative_client_pass_ttl(client, check_id, NULL);
            continue;
        }
        if (rc != CONSULNATIVE_RESULT_OK) { report("accept", rc); goto out; }
        pthread_t t;
        if (pthread_create(&t, NULL, echo, conn) != 0) { consulnative_conn_free(conn); continue; }
        pthread_detach(t);
    }
    status = 0;

out:
    if (registered) consulnative_client_deregister(client, id);
    consulnative_listener_free(listener); /* connections already accepted keep working */
    consulnative_service_free(service);
    consulnative_client_free(client);
    printf("%s stopped\n", name);
    return status;
}
