/*
 * demo: libconsulnative end to end, in one process, without Consul.
 *
 * Starts a dev agent (the consulnative-dev-agent binary, as a child process: see dev_agent.h), creates the services
 * `web` and `db`, and shows:
 *   1. an allow intention web => db: web dials db, the echo works, both sides see the other's SPIFFE ID;
 *   2. a deny intention: db refuses the connection and says why (the agent's reason), web sees it closed;
 *   3. a CA rotation: an open connection keeps working, db gets a new leaf, a new connection presents it.
 * Exits 0 only if every step behaved as expected. Run it with `bash scripts/demo.sh`, or
 *
 *   demo [PATH-TO-consulnative-dev-agent]
 *
 * The dev agent binary is $CONSULNATIVE_DEV_AGENT if set, else the path given, else found in PATH.
 */
#include <consulnative.h>

#include "dev_agent.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define WAIT_MS 60000 /* generous: the demo also runs under valgrind */

static int failures = 0;

static void ok(bool good, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    printf("   %s ", good ? "\u2713" : "\u2717");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    if (!good) failures++;
}

static const char *last_error(void) {
    static char msg[2048];
    size_t n;
    if (consulnative_last_error(msg, sizeof msg, &n) != CONSULNATIVE_RESULT_OK) snprintf(msg, sizeof msg, "(long message)");
    return msg;
}

/* Fails the demo with the library's message when rc is not OK. */
static bool call_ok(uint32_t rc, const char *what) {
    if (rc != CONSULNATIVE_RESULT_OK) ok(false, "%s: %s: %s", what, consulnative_result_name(rc), last_error());
    return rc == CONSULNATIVE_RESULT_OK;
}

/* Fails the demo with the helper's message when a dev agent call did not succeed. */
static bool agent_ok(dev_agent_result rc, const char *what) {
    if (rc != DEV_AGENT_OK) ok(false, "%s: %s", what, dev_agent_last_error());
    return rc == DEV_AGENT_OK;
}

/* The string value of "key" in the library's compact JSON (enough for status and conn_info). */
static const char *json_string(const char *json, const char *key, char *out, size_t len) {
    char pattern[64];
    snprintf(pattern, sizeof pattern, "\"%s\":\"", key);
    const char *p = strstr(json, pattern);
    const char *end = p ? strchr(p + strlen(pattern), '"') : NULL;
    size_t n = end ? (size_t)(end - (p + strlen(pattern))) : 0;
    if (n >= len) n = len - 1;
    memcpy(out, p ? p + strlen(pattern) : "", n);
    out[n] = '\0';
    return out;
}

static const char *status_field(const consulnative_service *svc, const char *key, char *out, size_t len) {
    char json[4096];
    size_t n;
    out[0] = '\0';
    if (consulnative_service_status(svc, json, sizeof json, &n) == CONSULNATIVE_RESULT_OK) json_string(json, key, out, len);
    return out;
}

static const char *peer_field(const consulnative_conn *conn, const char *key, char *out, size_t len) {
    char json[4096];
    size_t n;
    out[0] = '\0';
    if (consulnative_conn_info(conn, json, sizeof json, &n) == CONSULNATIVE_RESULT_OK) json_string(json, key, out, len);
    return out;
}

static struct timespec deadline_in(int ms) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += ms / 1000;
    t.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (t.tv_nsec >= 1000000000L) { t.tv_sec++; t.tv_nsec -= 1000000000L; }
    return t;
}

/* What the refusal callback saw. Callbacks run on library threads: guard with a mutex, signal a condition. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int count;
    uint32_t result;
    char uri[512], message[2048];
} refusal = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, "", ""};

static void on_refused(void *userdata, uint32_t result, const char *peer_address, const char *peer_uri, const char *message) {
    (void)userdata;
    (void)peer_address;
    pthread_mutex_lock(&refusal.mu);
    refusal.count++;
    refusal.result = result;
    snprintf(refusal.uri, sizeof refusal.uri, "%s", peer_uri ? peer_uri : "");
    snprintf(refusal.message, sizeof refusal.message, "%s", message);
    pthread_cond_broadcast(&refusal.cv);
    pthread_mutex_unlock(&refusal.mu);
}

/* Counts db's leaf rotations, from a change callback. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int leaf_rotations;
} changes = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};

static void on_change(void *userdata, uint32_t event) {
    (void)userdata;
    if (event != CONSULNATIVE_EVENT_LEAF_ROTATED) return;
    pthread_mutex_lock(&changes.mu);
    changes.leaf_rotations++;
    pthread_cond_broadcast(&changes.cv);
    pthread_mutex_unlock(&changes.mu);
}

/* web sends msg on `web_side`, db echoes it back on `db_side`, web checks what it got. */
static bool echo_roundtrip(const consulnative_conn *web_side, const consulnative_conn *db_side, const char *msg) {
    size_t len = strlen(msg), n, got = 0;
    char buf[256];
    if (!call_ok(consulnative_conn_write(web_side, (const uint8_t *)msg, len, WAIT_MS, &n), "web writes")) return false;
    while (got < len) {
        if (!call_ok(consulnative_conn_read(db_side, (uint8_t *)buf + got, len - got, WAIT_MS, &n), "db reads")) return false;
        if (n == 0) { ok(false, "db read end of stream"); return false; }
        got += n;
    }
    if (!call_ok(consulnative_conn_write(db_side, (const uint8_t *)buf, got, WAIT_MS, &n), "db writes")) return false;
    for (got = 0; got < len; got += n) {
        if (!call_ok(consulnative_conn_read(web_side, (uint8_t *)buf + got, len - got, WAIT_MS, &n), "web reads")) return false;
        if (n == 0) { ok(false, "web read end of stream"); return false; }
    }
    return memcmp(buf, msg, len) == 0;
}

int main(int argc, char **argv) {
    if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
        fprintf(stderr, "usage: %s [PATH-TO-consulnative-dev-agent]   ($CONSULNATIVE_DEV_AGENT wins; else PATH)\n",
                argv[0]);
        return 2;
    }
    dev_agent *agent = NULL;
    consulnative_config *config = NULL;
    consulnative_client *client = NULL;
    consulnative_service *web = NULL, *db = NULL;
    consulnative_listener *listener = NULL;
    consulnative_conn *c1 = NULL, *s1 = NULL, *c2 = NULL, *s2 = NULL, *c3 = NULL, *s3 = NULL;
    char agent_addr[128], trust_domain[128], listen_addr[128], text[512], text2[512];
    size_t n;
    uint64_t admitted = 0, refused = 0, callback_id = 0;

    printf("libconsulnative %s demo\n\n", consulnative_version());

    printf("0. Start a dev agent (default policy: deny) and the services web and db\n");
    dev_agent_options agent_options = {.binary = argc == 2 ? argv[1] : NULL, .default_deny = true};
    if (!agent_ok(dev_agent_start(&agent_options, &agent), "start dev agent") ||
        !agent_ok(dev_agent_trust_domain(agent, trust_domain, sizeof trust_domain), "read the trust domain"))
        goto done;
    snprintf(agent_addr, sizeof agent_addr, "%s", dev_agent_address(agent));
    ok(true, "dev agent at http://%s, trust domain %s", agent_addr, trust_domain);
    printf("     binary: %s\n", dev_agent_binary(agent));
    /* A real program would just use the environment (CONSUL_HTTP_ADDR): consulnative_client_new(NULL, &client). */
    if (!call_ok(consulnative_config_new(&config), "config") ||
        !call_ok(consulnative_config_set(config, "address", agent_addr), "config address") ||
        !call_ok(consulnative_config_set(config, "handshake_timeout_ms", "30000"), "config handshake timeout") ||
        !call_ok(consulnative_client_new(config, &client), "client") ||
        !call_ok(consulnative_service_new(client, "web", &web), "service web") ||
        !call_ok(consulnative_service_new(client, "db", &db), "service db") ||
        !call_ok(consulnative_service_wait_ready(web, WAIT_MS), "web ready") ||
        !call_ok(consulnative_service_wait_ready(db, WAIT_MS), "db ready"))
        goto done;
    ok(true, "web and db have their leaf certificates and the CA roots");
    if (!call_ok(consulnative_service_listen(db, "127.0.0.1:0", NULL, &listener), "db listen")) goto done;
    consulnative_listener_on_refused(listener, on_refused, NULL, NULL);
    consulnative_listener_address(listener, listen_addr, sizeof listen_addr, &n);
    ok(true, "db listens on %s", listen_addr);

    printf("\n1. Intention web => db: allow\n");
    if (!agent_ok(dev_agent_set_intention(agent, "web", "db", true), "set intention web => db allow") ||
        !call_ok(consulnative_service_dial_address(web, listen_addr, "db", NULL, WAIT_MS, &c1), "web dials db") ||
        !call_ok(consulnative_listener_accept(listener, WAIT_MS, &s1), "db accepts"))
        goto done;
    ok(true, "web connected to db, db accepted the connection");
    ok(echo_roundtrip(c1, s1, "hello db\n"), "web sent \"hello db\", db echoed it back");
    printf("     web sees db as  %s\n", peer_field(c1, "uri", text, sizeof text));
    printf("     db sees web as  %s\n", peer_field(s1, "uri", text, sizeof text));
    consulnative_conn_free(c1);
    consulnative_conn_free(s1);
    c1 = s1 = NULL;

    printf("\n2. Intention web => db: deny\n");
    if (!agent_ok(dev_agent_set_intention(agent, "web", "db", false), "set intention web => db deny")) goto done;
    uint32_t rc = consulnative_service_dial_address(web, listen_addr, "db", NULL, WAIT_MS, &c1);
    uint32_t dial_rc = rc;
    const char *dial_error = rc ? last_error() : "";
    /* TLS 1.3: web's handshake finishes before db has asked the agent, so web may only learn it on a read. */
    if (rc == CONSULNATIVE_RESULT_OK) consulnative_conn_write(c1, (const uint8_t *)"secret\n", 7, WAIT_MS, &n);

    pthread_mutex_lock(&refusal.mu);
    struct timespec until = deadline_in(WAIT_MS);
    while (refusal.count == 0 && pthread_cond_timedwait(&refusal.cv, &refusal.mu, &until) != ETIMEDOUT) {}
    ok(refusal.count == 1 && refusal.result == CONSULNATIVE_RESULT_AUTHORIZATION_DENIED &&
           strstr(refusal.message, "Action: DENY") != NULL,
       "db refused the connection: %s", refusal.count ? consulnative_result_name(refusal.result) : "(no refusal seen)");
    printf("     peer:   %s\n     reason: %s\n", refusal.uri[0] ? refusal.uri : "(unknown)", refusal.message);
    pthread_mutex_unlock(&refusal.mu);

    if (dial_rc != CONSULNATIVE_RESULT_OK) {
        ok(true, "web's dial failed: %s: %s", consulnative_result_name(dial_rc), dial_error);
    } else {
        rc = consulnative_conn_read(c1, (uint8_t *)text, sizeof text, WAIT_MS, &n);
        if (rc == CONSULNATIVE_RESULT_OK && n == 0)
            ok(true, "web saw the connection closed before any data (end of stream)");
        else if (rc != CONSULNATIVE_RESULT_OK)
            ok(true, "web saw its first read fail: %s: %s", consulnative_result_name(rc), last_error());
        else
            ok(false, "web received %zu bytes from a denied connection", n);
    }
    rc = consulnative_listener_accept(listener, 0, &s1);
    consulnative_listener_counts(listener, &admitted, &refused);
    ok(rc == CONSULNATIVE_RESULT_TIMEOUT && admitted == 1 && refused == 1,
       "nothing reached db's accept (admitted %llu, refused %llu)", (unsigned long long)admitted,
       (unsigned long long)refused);
    consulnative_conn_free(c1);
    consulnative_conn_free(s1);
    c1 = s1 = NULL;

    printf("\n3. CA rotation with a connection open (intention back to allow)\n");
    if (!agent_ok(dev_agent_set_intention(agent, "web", "db", true), "set intention web => db allow") ||
        !call_ok(consulnative_service_dial_address(web, listen_addr, "db", NULL, WAIT_MS, &c2), "web dials db") ||
        !call_ok(consulnative_listener_accept(listener, WAIT_MS, &s2), "db accepts"))
        goto done;
    char old_serial[128], old_root[256], new_serial[128];
    status_field(db, "leaf_serial", old_serial, sizeof old_serial);
    status_field(db, "active_root_id", old_root, sizeof old_root);
    ok(echo_roundtrip(c2, s2, "before rotation\n") &&
           strcmp(peer_field(c2, "serial", text, sizeof text), old_serial) == 0,
       "connection A echoes; db presents leaf serial %s", old_serial);
    consulnative_service_add_callback(db, on_change, NULL, NULL, &callback_id);
    if (!agent_ok(dev_agent_rotate_ca(agent), "rotate CA")) goto done;
    ok(true, "the agent rotated its CA (old root %.23s...)", old_root);
    ok(echo_roundtrip(c2, s2, "during rotation\n"), "connection A still echoes");

    pthread_mutex_lock(&changes.mu);
    until = deadline_in(WAIT_MS);
    while (changes.leaf_rotations == 0 && pthread_cond_timedwait(&changes.cv, &changes.mu, &until) != ETIMEDOUT) {}
    int rotations = changes.leaf_rotations;
    pthread_mutex_unlock(&changes.mu);
    status_field(db, "leaf_serial", new_serial, sizeof new_serial);
    ok(rotations > 0 && new_serial[0] && strcmp(new_serial, old_serial) != 0,
       "db's change callback saw LEAF_ROTATED: new leaf serial %s", new_serial);
    /* web must also have the new root before it can verify db's new leaf. */
    for (int i = 0; i < WAIT_MS / 50; i++) {
        if (strcmp(status_field(web, "active_root_id", text, sizeof text),
                   status_field(db, "active_root_id", text2, sizeof text2)) == 0 && strcmp(text, old_root) != 0)
            break;
        nanosleep(&(struct timespec){0, 50 * 1000000L}, NULL);
    }
    ok(strcmp(text, text2) == 0 && strcmp(text, old_root) != 0, "web and db both trust the new root %.23s...", text);

    if (!call_ok(consulnative_service_dial_address(web, listen_addr, "db", NULL, WAIT_MS, &c3), "web dials db again") ||
        !call_ok(consulnative_listener_accept(listener, WAIT_MS, &s3), "db accepts again"))
        goto done;
    peer_field(c3, "serial", text, sizeof text);
    ok(echo_roundtrip(c3, s3, "after rotation\n") && strcmp(text, new_serial) == 0,
       "connection B echoes; db presents the new leaf serial %s", text);
    ok(echo_roundtrip(c2, s2, "still here\n"), "connection A (old leaf) still echoes");

done:
    consulnative_service_remove_callback(db, callback_id);
    consulnative_conn_free(c1);
    consulnative_conn_free(s1);
    consulnative_conn_free(c2);
    consulnative_conn_free(s2);
    consulnative_conn_free(c3);
    consulnative_conn_free(s3);
    consulnative_listener_free(listener);
    consulnative_service_free(web);
    consulnative_service_free(db);
    consulnative_client_free(client);
    consulnative_config_free(config);
    agent_ok(dev_agent_stop(agent), "stop dev agent"); /* NULL: nothing to stop */
    printf("\n%s\n", failures ? "\u2717 Some steps did not behave as expected." : "\u2713 Every step behaved as expected.");
    return failures ? 1 : 0;
}
