/* C-level tests of include/leeward.h, driven by tests/libleeward/test_capi.py.
 *
 *   capi_test args                 argument checks that need no daemon
 *   capi_test nodaemon PATH        nothing listens on PATH
 *   capi_test bootfail             the embedded Python cannot import libleeward
 *   capi_test daemon SOCKET        every function against a live daemon
 *   capi_test call SOCKET          leeward_call / leeward_call_stream against a live daemon
 *   capi_test huge SOCKET          a 20 MB program: clean E1002, handle still usable
 *   capi_test threads SOCKET       one handle shared by threads, plus a handle per thread
 *   capi_test killed SOCKET        daemon killed / restarted between calls (stdin-driven)
 *   capi_test loop SOCKET N        N executes; prints RSS after a warm-up and at the end
 *
 * Prints "ok <name>" per check and "PASS" at the end; exits 1 at the first failure.
 * The host does not ignore SIGPIPE on purpose: the library must not die of it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "leeward.h"

static int checks;

#define CHECK(cond, name)                                                                  \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            printf("FAIL %s (%s:%d): last_error=[%s] code=[%s]\n", name, __FILE__, __LINE__, \
                   leeward_last_error(), leeward_last_error_code());                       \
            fflush(stdout);                                                                \
            exit(1);                                                                       \
        }                                                                                  \
        checks++;                                                                          \
        printf("ok %s\n", name);                                                           \
    } while (0)

#define CHECK_CODE(expected, name) \
    CHECK(strcmp(leeward_last_error_code(), expected) == 0 && leeward_last_error()[0] != '\0', name)

static int stdout_is(const LeewardResult *r, const char *text)
{
    return r != NULL && r->stdout_len == strlen(text) && memcmp(r->stdout_data, text, r->stdout_len) == 0;
}

/* ------------------------------------------------------------ no daemon */

static void test_args(void)
{
    CHECK(strcmp(leeward_version(), LEEWARD_VERSION) == 0, "version matches the header");
    CHECK(leeward_last_error() != NULL && leeward_last_error_code() != NULL, "last_error never NULL");
    CHECK(leeward_execute(NULL, "print(1)", NULL) == NULL, "execute(NULL handle) is NULL");
    CHECK_CODE("E2001", "execute(NULL handle) says E2001");
    CHECK(leeward_ping(NULL) == -1, "ping(NULL) is -1");
    CHECK_CODE("E2001", "ping(NULL) says E2001");
    CHECK(leeward_status_json(NULL) == NULL, "status_json(NULL) is NULL");
    CHECK_CODE("E2001", "status_json(NULL) says E2001");
    leeward_result_free(NULL);
    leeward_disconnect(NULL);
    leeward_string_free(NULL);
    CHECK(1, "NULL frees are no-ops");
    /* A handle that was never issued is refused, not dereferenced. */
    CHECK(leeward_execute((LeewardHandle *)(uintptr_t)0xdead, "print(1)", NULL) == NULL, "forged handle refused");
    CHECK_CODE("E2001", "forged handle says E2001");
    leeward_disconnect((LeewardHandle *)(uintptr_t)0xdead);
    CHECK(1, "disconnect(forged handle) is harmless");

    char *reply = (char *)"not touched";
    CHECK(leeward_call(NULL, "{\"type\": \"Ping\"}", &reply) == -1, "call(NULL handle) is -1");
    CHECK_CODE(LEEWARD_E_MISSING_FIELD, "call(NULL handle) says E2001");
    CHECK(reply == NULL, "call(NULL handle) sets *reply_json to NULL");
    CHECK(leeward_call((LeewardHandle *)(uintptr_t)0xdead, "{\"type\": \"Ping\"}", &reply) == -1,
          "call(forged handle) is -1");
    CHECK_CODE(LEEWARD_E_MISSING_FIELD, "call(forged handle) says E2001");
    CHECK(leeward_call((LeewardHandle *)(uintptr_t)0xdead, "{\"type\": \"Ping\"}", NULL) == -1,
          "call(NULL reply_json) is -1");
    CHECK_CODE(LEEWARD_E_MISSING_FIELD, "call(NULL reply_json) says E2001");
}

static void test_nodaemon(const char *path)
{
    CHECK(leeward_connect(path) == NULL, "connect without daemon is NULL");
    CHECK_CODE("E1006", "connect without daemon says E1006");
    CHECK(strstr(leeward_last_error(), path) != NULL, "the error names the socket");
    printf("error: %s\n", leeward_last_error());
    CHECK(leeward_connect(path) == NULL, "a second attempt fails the same way");
    CHECK_CODE("E1006", "still E1006");
}

static void test_bootfail(void)
{
    CHECK(leeward_connect("/nonexistent.sock") == NULL, "connect with a broken Python is NULL");
    CHECK_CODE("E4001", "boot failure says E4001");
    printf("error: %s\n", leeward_last_error());
    CHECK(leeward_connect("/nonexistent.sock") == NULL, "later calls fail the same way");
    CHECK_CODE("E4001", "later calls say E4001");
    CHECK(strcmp(leeward_version(), LEEWARD_VERSION) == 0, "version still works");
}

/* ------------------------------------------------------------ live daemon */

static void test_daemon(const char *socket_path)
{
    LeewardHandle *h = leeward_connect(socket_path);
    CHECK(h != NULL, "connect");
    CHECK(leeward_last_error()[0] == '\0', "success leaves no error");

    LeewardResult *r = leeward_execute(h, "print('hello')", NULL);
    CHECK(r != NULL, "execute with NULL options");
    CHECK(stdout_is(r, "hello\n"), "stdout_data/stdout_len");
    CHECK(r->stdout_data[r->stdout_len] == '\0', "stdout is NUL-terminated");
    CHECK(r->exit_code == 0 && !r->timed_out && !r->oom_killed, "exit_code 0");
    CHECK(r->stderr_data != NULL && r->stderr_len == 0, "empty stderr is \"\", not NULL");
    CHECK(r->details_json != NULL && strstr(r->details_json, "\"limits\"") != NULL, "details_json");
    leeward_result_free(r);

    LeewardOptions opts = {.timeout_secs = 10.0, .memory_limit = 256u << 20};
    r = leeward_execute(h, "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)", &opts);
    CHECK(r != NULL && r->exit_code == 3, "exit status 3");
    CHECK(stdout_is(r, "out\n") && r->stderr_len == 4 && memcmp(r->stderr_data, "err\n", 4) == 0,
          "stdout and stderr apart");
    leeward_result_free(r);

    r = leeward_execute(h, "import sys; sys.stdout.buffer.write(b'a\\x00b')", NULL);
    CHECK(r != NULL && r->stdout_len == 3 && memcmp(r->stdout_data, "a\0b", 3) == 0, "binary stdout with NUL");
    leeward_result_free(r);

    r = leeward_execute(h, "1/0", NULL);
    CHECK(r != NULL && r->exit_code != 0, "uncaught exception is a result, not an error");
    CHECK(strstr(r->details_json, "ZeroDivisionError") != NULL, "details_json carries the exception");
    leeward_result_free(r);

    LeewardOptions short_timeout = {.timeout_secs = 0.5};
    r = leeward_execute(h, "while True: pass", &short_timeout);
    CHECK(r != NULL && r->timed_out == 1, "timeout reported as timed_out");
    leeward_result_free(r);

    /* Invalid requests: NULL, a result of the daemon's validation, never a crash. */
    CHECK(leeward_execute(h, NULL, NULL) == NULL, "execute(NULL code) is NULL");
    CHECK_CODE("E2001", "NULL code says E2001");
    CHECK(leeward_execute(h, "print('\xff')", NULL) == NULL, "invalid UTF-8 refused");
    CHECK_CODE("E2002", "invalid UTF-8 says E2002");
    LeewardOptions bad_mounts = {.mounts = NULL, .mounts_len = 2};
    CHECK(leeward_execute(h, "print(1)", &bad_mounts) == NULL, "mounts NULL with mounts_len 2");
    CHECK_CODE("E2002", "NULL mounts says E2002");
    LeewardOptions many_mounts = {.mounts = (const LeewardMount *)"x", .mounts_len = (size_t)1 << 40};
    CHECK(leeward_execute(h, "print(1)", &many_mounts) == NULL, "absurd mounts_len refused unread");
    CHECK_CODE("E2003", "absurd mounts_len says E2003");
    LeewardMount null_host = {.host = NULL, .sandbox = "/data", .read_only = 1};
    LeewardOptions null_mount = {.mounts = &null_host, .mounts_len = 1};
    CHECK(leeward_execute(h, "print(1)", &null_mount) == NULL, "mount with NULL host");
    CHECK_CODE("E2001", "NULL mount host says E2001");
    LeewardMount outside = {.host = "/etc", .sandbox = "/data", .read_only = 1};
    LeewardOptions outside_mount = {.mounts = &outside, .mounts_len = 1};
    CHECK(leeward_execute(h, "print(1)", &outside_mount) == NULL, "mount outside allowed paths");
    CHECK(leeward_last_error_code()[0] == 'E' && leeward_last_error_code()[1] == '2', "mount refusal is E2xxx");
    LeewardOptions negative = {.timeout_secs = -1.0};
    CHECK(leeward_execute(h, "print(1)", &negative) == NULL, "negative timeout refused");
    CHECK_CODE("E2003", "negative timeout says E2003");

    r = leeward_execute(h, "print('still fine')", NULL);
    CHECK(stdout_is(r, "still fine\n"), "handle usable after errors");
    leeward_result_free(r);

    CHECK(leeward_ping(h) == 0, "ping");
    char *status = leeward_status_json(h);
    CHECK(status != NULL && status[0] == '{' && strstr(status, "\"Status\"") != NULL, "status_json");
    leeward_string_free(status);

    leeward_disconnect(h);
    CHECK(leeward_execute(h, "print(1)", NULL) == NULL, "execute after disconnect");
    CHECK_CODE("E2001", "stale handle says E2001");
    leeward_disconnect(h);
    CHECK(1, "double disconnect is harmless");
}

/* ------------------------------------------------------------ leeward_call */

static int events_seen;
static char first_event[4096];  /* the first Event's JSON, cut to fit */

static void count_event(const char *event_json, void *user)
{
    (void)user;
    if (events_seen++ == 0)
        snprintf(first_event, sizeof first_event, "%s", event_json);
}

/* A successful call, its reply checked to contain `needle`. */
static void call_ok(LeewardHandle *h, const char *request, const char *needle, const char *name)
{
    char *reply = NULL;
    int rc = leeward_call(h, request, &reply);
    if (rc != 0 || reply == NULL || strstr(reply, needle) == NULL)
        printf("reply: %s\n", reply ? reply : "(null)");
    CHECK(rc == 0 && reply != NULL && strstr(reply, needle) != NULL, name);
    CHECK(leeward_last_error()[0] == '\0', "success leaves no error");
    leeward_string_free(reply);
}

static void call_fails(LeewardHandle *h, const char *request, const char *code, const char *name)
{
    char *reply = (char *)"not touched";
    CHECK(leeward_call(h, request, &reply) == -1 && reply == NULL, name);
    CHECK_CODE(code, name);
}

static void test_call(const char *socket_path)
{
    LeewardHandle *h = leeward_connect(socket_path);
    CHECK(h != NULL, "connect");

    call_ok(h, "{\"type\": \"Ping\"}", "\"type\": \"Pong\"", "Ping through JSON");
    call_ok(h, "{\"type\": \"Status\"}", "\"version\": \"" LEEWARD_VERSION "\"",
            "Status through JSON: the daemon's version is the header's");
    /* stdin {"$bytes"} in, stdout {"$bytes"} out: "hi\n" is aGkK, "\0\xff" is AP8=. */
    call_ok(h, "{\"type\": \"Execute\", \"code\": \"import sys; print('hi'); sys.stdout.flush(); "
               "sys.stdout.buffer.write(sys.stdin.buffer.read())\", \"stdin\": {\"$bytes\": \"AP8=\"}}",
            "\"stdout\": {\"$bytes\": \"aGkKAP8=\"}", "Execute through JSON, bytes as $bytes");
    call_ok(h, "{\"type\": \"Execute\", \"code\": \"1/0\"}", "ZeroDivisionError",
            "an uncaught exception is a reply, not an error");

    /* Error replies from the daemon: -1 and the daemon's code. */
    call_fails(h, "{\"type\": \"Execute\", \"code\": \"print(1)\", \"timeout_secs\": -1}",
               LEEWARD_E_OUT_OF_RANGE, "error reply: out of range");
    call_fails(h, "{\"type\": \"Execute\", \"code\": \"print(1)\", \"no_such_field\": 1}",
               LEEWARD_E_UNKNOWN_FIELD, "error reply: unknown field");
    call_fails(h, "{\"type\": \"NoSuchRequest\"}", LEEWARD_E_UNKNOWN_TYPE, "error reply: unknown type");

    /* Refused before sending. */
    call_fails(h, "{\"type\": \"Ping\"", LEEWARD_E_FRAME_UNDECODABLE, "invalid JSON says E1003");
    call_fails(h, "\xff", LEEWARD_E_FRAME_UNDECODABLE, "not UTF-8 says E1003");
    call_fails(h, "[\"Ping\"]", LEEWARD_E_FRAME_NOT_A_MAP, "a JSON array says E1004");
    call_fails(h, "{\"type\": \"Execute\", \"code\": \"\", \"stdin\": {\"$bytes\": \"!!\"}}",
               LEEWARD_E_WRONG_TYPE, "bad base64 says E2002");
    call_fails(h, NULL, LEEWARD_E_MISSING_FIELD, "NULL request_json says E2001");

    /* A request without "stream": the callback is never called, the reply comes. */
    char *reply = NULL;
    events_seen = 0;
    CHECK(leeward_call_stream(h, "{\"type\": \"Execute\", \"code\": \"print('streamed')\"}", count_event, NULL,
                              &reply) == 0 && strstr(reply, "\"exit_code\": 0") != NULL, "call_stream");
    CHECK(events_seen == 0, "no Event frames for a request that does not stream");
    leeward_string_free(reply);
    /* With "stream": the output's Event frames reach the callback before the reply
     * ("b25lCg==" is "one\n", written and flushed before anything else). */
    events_seen = 0;
    CHECK(leeward_call_stream(h, "{\"type\": \"Execute\", \"stream\": true, \"execution_id\": \"c-job\", "
                                 "\"code\": \"print('one', flush=True)\\nprint('two')\"}", count_event, NULL,
                              &reply) == 0 && strstr(reply, "\"execution_id\": \"c-job\"") != NULL, "call_stream, stream");
    CHECK(events_seen >= 1 && strstr(first_event, "\"type\": \"Event\"") != NULL &&
          strstr(first_event, "\"execution_id\": \"c-job\"") != NULL &&
          strstr(first_event, "\"event\": \"stdout\"") != NULL && strstr(first_event, "\"b25lC") != NULL,
          "Event frames delivered to the C callback");
    leeward_string_free(reply);
    CHECK(leeward_call_stream(h, "{\"type\": \"Ping\"}", NULL, NULL, &reply) == 0, "call_stream, NULL callback");
    leeward_string_free(reply);

    LeewardResult *r = leeward_execute(h, "print('execute still works')", NULL);
    CHECK(stdout_is(r, "execute still works\n"), "leeward_execute beside leeward_call");
    leeward_result_free(r);
    leeward_disconnect(h);
}

static void test_huge(const char *socket_path)
{
    size_t size = 20u << 20;
    char *code = malloc(size + 1);
    CHECK(code != NULL, "allocate 20 MB");
    memset(code, '#', size);  /* one long comment: valid Python */
    code[size] = '\0';
    LeewardHandle *h = leeward_connect(socket_path);
    CHECK(h != NULL, "connect");
    CHECK(leeward_execute(h, code, NULL) == NULL, "20 MB program refused");
    CHECK_CODE("E1002", "20 MB says E1002 (frame too large)");
    free(code);
    LeewardResult *r = leeward_execute(h, "print('after')", NULL);
    CHECK(stdout_is(r, "after\n"), "handle still usable");
    leeward_result_free(r);
    leeward_disconnect(h);
}

/* ------------------------------------------------------------ threads */

#define THREADS 4
#define PER_THREAD 10

struct worker {
    LeewardHandle *shared;
    const char *socket_path;
    int index;
    int failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char code[64], expected[32];
    LeewardHandle *own = leeward_connect(w->socket_path);
    if (own == NULL)
        w->failures++;
    for (int i = 0; i < PER_THREAD; i++) {
        LeewardHandle *h = (i % 2 && own) ? own : w->shared;
        snprintf(code, sizeof code, "print(%d * 1000 + %d)", w->index, i);
        snprintf(expected, sizeof expected, "%d\n", w->index * 1000 + i);
        LeewardResult *r = leeward_execute(h, code, NULL);
        if (!stdout_is(r, expected)) {
            printf("thread %d job %d: %s\n", w->index, i, r ? "wrong output" : leeward_last_error());
            w->failures++;
        }
        leeward_result_free(r);
    }
    leeward_disconnect(own);
    return NULL;
}

static void test_threads(const char *socket_path)
{
    pthread_t threads[THREADS];
    struct worker workers[THREADS];
    LeewardHandle *shared = leeward_connect(socket_path);
    CHECK(shared != NULL, "connect");
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){shared, socket_path, i, 0};
        CHECK(pthread_create(&threads[i], NULL, worker_main, &workers[i]) == 0, "start thread");
    }
    int failures = 0;
    for (int i = 0; i < THREADS; i++) {
        pthread_join(threads[i], NULL);
        failures += workers[i].failures;
    }
    CHECK(failures == 0, "every job of every thread got its own output");
    leeward_disconnect(shared);
}

/* ------------------------------------------------------------ daemon death */

static void wait_for(const char *word)
{
    char line[64];
    printf("%s\n", word);
    fflush(stdout);
    if (fgets(line, sizeof line, stdin) == NULL) {
        printf("FAIL driver went away\n");
        exit(1);
    }
}

static void test_killed(const char *socket_path)
{
    LeewardHandle *h = leeward_connect(socket_path);
    CHECK(h != NULL, "connect");
    LeewardResult *r = leeward_execute(h, "print('before')", NULL);
    CHECK(stdout_is(r, "before\n"), "execute before the kill");
    leeward_result_free(r);

    wait_for("KILL-NOW");  /* the driver SIGKILLs the daemon and waits for it */
    CHECK(leeward_execute(h, "print('during')", NULL) == NULL, "execute on a dead daemon is NULL (no SIGPIPE death)");
    CHECK_CODE("E1006", "dead daemon says E1006");
    CHECK(leeward_ping(h) == -1, "ping on a dead daemon is -1");
    CHECK_CODE("E1006", "ping says E1006");
    CHECK(leeward_status_json(h) == NULL, "status on a dead daemon is NULL");
    CHECK(leeward_connect(socket_path) == NULL, "connect to a dead daemon is NULL");

    wait_for("RESTART-NOW");  /* the driver starts a daemon on the same socket */
    r = leeward_execute(h, "print('after')", NULL);
    CHECK(stdout_is(r, "after\n"), "the same handle reconnects to the new daemon");
    leeward_result_free(r);
    leeward_disconnect(h);
}

/* ------------------------------------------------------------ loop / RSS */

static long rss_kb(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void run_executes(LeewardHandle *h, int n)
{
    for (int i = 0; i < n; i++) {
        LeewardResult *r = leeward_execute(h, "print('x' * 100)", NULL);
        if (r == NULL || r->stdout_len != 101) {
            printf("FAIL loop execute %d: %s\n", i, leeward_last_error());
            exit(1);
        }
        leeward_result_free(r);
        /* The status path allocates too: include it. */
        if (i % 10 == 0) {
            char *status = leeward_status_json(h);
            leeward_string_free(status);
        }
    }
}

static void test_loop(const char *socket_path, int n)
{
    int warmup = n >= 100 ? 100 : 1;
    LeewardHandle *h = leeward_connect(socket_path);
    CHECK(h != NULL, "connect");
    run_executes(h, warmup);
    long before = rss_kb();
    run_executes(h, n);
    long after = rss_kb();
    printf("rss_kb_after_warmup=%ld rss_kb_after_%d=%ld\n", before, n, after);
    leeward_disconnect(h);
    CHECK(1, "loop");
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(mode, "args") == 0)
        test_args();
    else if (strcmp(mode, "nodaemon") == 0 && argc > 2)
        test_nodaemon(argv[2]);
    else if (strcmp(mode, "bootfail") == 0)
        test_bootfail();
    else if (strcmp(mode, "daemon") == 0 && argc > 2)
        test_daemon(argv[2]);
    else if (strcmp(mode, "call") == 0 && argc > 2)
        test_call(argv[2]);
    else if (strcmp(mode, "huge") == 0 && argc > 2)
        test_huge(argv[2]);
    else if (strcmp(mode, "threads") == 0 && argc > 2)
        test_threads(argv[2]);
    else if (strcmp(mode, "killed") == 0 && argc > 2)
        test_killed(argv[2]);
    else if (strcmp(mode, "loop") == 0 && argc > 3)
        test_loop(argv[2], atoi(argv[3]));
    else {
        fprintf(stderr, "usage: capi_test args|nodaemon PATH|bootfail|daemon S|call S|huge S|threads S|killed S|loop S N\n");
        return 2;
    }
    printf("PASS (%d checks)\n", checks);
    return 0;
}
