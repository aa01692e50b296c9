/*
 * echo_client: dials a Connect-native echo service, sends each line of stdin, prints the echo.
 *
 *   CONSUL_HTTP_ADDR=127.0.0.1:8500 echo_client AS TARGET [ADDRESS]
 *
 * AS is our own service name (the identity we present), TARGET the service we want. Without ADDRESS, TARGET is
 * found through the agent's catalog; with ADDRESS (host:port) we dial it directly and require that the server
 * presents TARGET's identity. Either way the agent's intentions decide whether AS may talk to TARGET.
 */
#include <consulnative.h>

#include <stdio.h>
#include <string.h>

static void report(const char *what, uint32_t rc) {
    char msg[1024];
    size_t n = 0;
    if (consulnative_last_error(msg, sizeof msg, &n) != CONSULNATIVE_RESULT_OK) msg[0] = '\0';
    fprintf(stderr, "echo_client: %s: %s: %s\n", what, consulnative_result_name(rc), msg);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s AS TARGET [ADDRESS]   (agent address from CONSUL_HTTP_ADDR)\n", argv[0]);
        return 2;
    }
    int status = 1;
    uint32_t rc;
    consulnative_client *client = NULL;
    consulnative_service *self = NULL;
    consulnative_conn *conn = NULL;

    if ((rc = consulnative_client_new(NULL, &client))) { report("client", rc); goto out; }
    if ((rc = consulnative_service_new(client, argv[1], &self))) { report("service", rc); goto out; }
    if ((rc = consulnative_service_wait_ready(self, 30000))) { report("certificates", rc); goto out; }
    if (argc > 3)
        rc = consulnative_service_dial_address(self, argv[3], argv[2], NULL, 10000, &conn);
    else
        rc = consulnative_service_dial(self, argv[2], NULL, NULL, 10000, &conn);
    if (rc) { report("dial", rc); goto out; }

    char line[4096], echo[4096];
    while (fgets(line, sizeof line, stdin)) {
        size_t len = strlen(line), n, got = 0;
        if ((rc = consulnative_conn_write(conn, (const uint8_t *)line, len, 10000, &n))) { report("write", rc); goto out; }
        while (got < len) { /* the echo may arrive in pieces */
            rc = consulnative_conn_read(conn, (uint8_t *)echo + got, len - got, 10000, &n);
            if (rc) { report("read", rc); goto out; }
            if (n == 0) { fprintf(stderr, "echo_client: the server closed the connection\n"); goto out; }
            got += n;
        }
        printf("echo: %.*s", (int)got, echo);
        fflush(stdout);
    }
    /* Tell the server we are done and wait for its EOF, so nothing is cut off. */
    consulnative_conn_shutdown(conn, 5000);
    size_t n;
    rc = consulnative_conn_read(conn, (uint8_t *)echo, sizeof echo, 5000, &n);
    status = (rc == CONSULNATIVE_RESULT_OK && n == 0) ? 0 : 1;

out:
    consulnative_conn_free(conn);
    consulnative_service_free(self);
    consulnative_client_free(client);
    return status;
}
