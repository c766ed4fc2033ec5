/* `leeward`: the command users run. Its hot path -- `leeward exec` and `leeward run`
 * with the options below -- is this small C program speaking the wire protocol
 * itself; everything else (help, --json, --display, --collect, sessions, status,
 * doctor, usage errors, starting a daemon when none answers) is handed, by exec, to
 * the Python CLI (bindings/python/leeward/cli.py), which is the reference for every
 * message and rule. Why not libleeward.so's C ABI on the hot path: the target is the
 * whole run within 1.0x a bare `python3 -c`, and any embedded CPython's start alone
 * (`python3 -I -S -c pass`) is 0.6-0.8x of it; with the daemon's round trip (~0.5x) that
 * is over 1.0x before anything is imported. bench/cli.py measures all three.
 *
 *   leeward exec [OPTIONS] CODE | - | -f FILE
 *   leeward run  [OPTIONS] -- CMD [ARGS...]
 *   OPTIONS: --socket PATH --mount HOST:SANDBOX[:rw|:ro] --timeout SECS --memory SIZE
 *            --env NAME=VALUE --stdin FILE|- --file NAME=PATH --no-stream --no-autostart
 *
 * Built with LW_PYTHON_CLI, the interpreter that runs `-m leeward` (cli/build.py); a
 * relative one is looked up beside this program (a wheel's, see setup.py). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "msgpack.h"
#include "wire.h"

#ifndef LW_PYTHON_CLI
#error "define LW_PYTHON_CLI: the Python that runs `-m leeward` (cli/build.py does)"
#endif

/* Exit statuses of leeward itself, as the Python CLI's (docker run / timeout(1)). */
#define EXIT_LEEWARD_ERROR 125
#define EXIT_TIMED_OUT 124
#define EXIT_CANCELLED 130 /* the shell's status for a Ctrl-C */
#define MAX_ITEMS 64       /* of each repeatable option: more goes to the Python CLI */

typedef struct {
    const char *name;
    const char *value;
} pair;

typedef struct {
    char *data;
    size_t len;
} blob;

typedef struct {
    int is_run;              /* `run`: argv job; else `exec`: Python code */
    const char *socket;      /* --socket, or NULL: the default path */
    const char *code;        /* CODE, "-" for stdin */
    const char *script;      /* -f FILE, "-" for stdin */
    char **argv;             /* run: CMD ARGS... */
    int argc;
    pair mounts[MAX_ITEMS];  /* host, sandbox[:rw|:ro] as given */
    int read_only[MAX_ITEMS];
    int n_mounts;
    pair env[MAX_ITEMS];
    int n_env;
    pair files[MAX_ITEMS];   /* name, host path */
    int n_files;
    const char *stdin_path;  /* --stdin */
    double timeout;          /* 0: the daemon's default */
    unsigned long long memory;
    int stream;              /* Event frames as output arrives (default) */
} job;

static char **original_argv;

/* ------------------------------------------------------------ hand-over */

/* The interpreter that runs `-m leeward`. A relative LW_PYTHON_CLI (a wheel's build, see
 * setup.py: where pip installs it is known only then) names it beside this program. */
static char *python_cli_path(void)
{
    static char path[4096];
    char self[4096];
    ssize_t len;
    char *slash;
    if (LW_PYTHON_CLI[0] == '/')
        return LW_PYTHON_CLI;
    len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return LW_PYTHON_CLI;
    self[len] = '\0';
    slash = strrchr(self, '/');
    snprintf(path, sizeof path, "%.*s/%s", (int)(slash ? slash - self : 0), self, LW_PYTHON_CLI);
    return path;
}

/* Everything this program does not do itself is the Python CLI's, with our argv
 * unchanged: it gives the same answer it always did, help and usage errors included. */
static void python_cli(void)
{
    char *python = python_cli_path();
    int argc = 0;
    while (original_argv[argc])
        argc++;
    char **args = calloc((size_t)argc + 3, sizeof *args);
    if (args == NULL) {
        fprintf(stderr, "leeward: out of memory\n");
        exit(EXIT_LEEWARD_ERROR);
    }
    args[0] = python;
    args[1] = "-m";
    args[2] = "leeward";
    for (int i = 1; i < argc; i++)
        args[2 + i] = original_argv[i];
    execv(python, args);
    fprintf(stderr, "leeward: cannot run %s: %s\n", python, strerror(errno));
    exit(EXIT_LEEWARD_ERROR);
}

static void fail(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void fail(const char *code, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "leeward: %s%s", code ? code : "", code ? ": " : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(EXIT_LEEWARD_ERROR);
}

/* ------------------------------------------------------------ arguments */

/* parse_size of the Python binding: digits[.digits] then k/m/g/t, optional i, b. */
static int parse_size(const char *text, unsigned long long *out)
{
    char *end;
    const char *p = text;
    double number, unit = 1;
    while (*p == ' ')
        p++;
    if (*p < '0' || *p > '9')
        return -1;
    number = strtod(p, &end);
    if (end == p)
        return -1;
    for (const char *q = p; q < end; q++)
        if (!(*q >= '0' && *q <= '9') && *q != '.')
            return -1;
    p = end;
    while (*p == ' ')
        p++;
    switch (*p | 0x20) {
    case 'k': unit = 1024.0; p++; break;
    case 'm': unit = 1024.0 * 1024; p++; break;
    case 'g': unit = 1024.0 * 1024 * 1024; p++; break;
    case 't': unit = 1024.0 * 1024 * 1024 * 1024; p++; break;
    }
    if ((*p | 0x20) == 'i')
        p++;
    if ((*p | 0x20) == 'b')
        p++;
    while (*p == ' ')
        p++;
    number *= unit;
    if (*p || !(number >= 1) || number >= 18446744073709551616.0)
        return -1;
    *out = (unsigned long long)number;
    return 0;
}

static int parse_seconds(const char *text, double *out)
{
    char *end;
    for (const char *q = text; *q; q++)
        if (!strchr("0123456789.eE+-", *q))
            return -1;
    *out = strtod(text, &end);
    return (*text && !*end && isfinite(*out) && *out > 0) ? 0 : -1;
}

/* HOST:SANDBOX or HOST:SANDBOX:rw|ro, split as the Python CLI splits it. */
static int parse_mount(job *j, char *text)
{
    char *first = strchr(text, ':'), *second;
    if (j->n_mounts == MAX_ITEMS || first == NULL)
        return -1;
    second = strchr(first + 1, ':');
    if (second != NULL) {
        if (strchr(second + 1, ':') || (strcmp(second + 1, "rw") && strcmp(second + 1, "ro")))
            return -1;
        j->read_only[j->n_mounts] = strcmp(second + 1, "ro") == 0;
        *second = '\0';
    } else {
        if (first == text || !first[1])
            return -1;
        j->read_only[j->n_mounts] = 1;
    }
    *first = '\0';
    j->mounts[j->n_mounts++] = (pair){text, first + 1};
    return 0;
}

static int parse_pair(pair *items, int *n, char *text, int value_required)
{
    char *eq = strchr(text, '=');
    if (*n == MAX_ITEMS || eq == NULL || eq == text || (value_required && !eq[1]))
        return -1;
    *eq = '\0';
    items[(*n)++] = (pair){text, eq + 1};
    return 0;
}

/* 0: the job is on the hot path; -1: hand the whole command line to the Python CLI. */
static int parse_args(int argc, char **argv, job *j)
{
    memset(j, 0, sizeof *j);
    j->stream = 1;
    if (argc < 2 || (strcmp(argv[1], "exec") && strcmp(argv[1], "run")))
        return -1;
    j->is_run = strcmp(argv[1], "run") == 0;
    for (int i = 2; i < argc; i++) {
        char *arg = argv[i], *value = NULL;
        char *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
        if (strcmp(arg, "--") == 0 || (arg[0] != '-' || strcmp(arg, "-") == 0)) {
            if (j->is_run) {  /* the command and everything after it */
                int from = strcmp(arg, "--") == 0 ? i + 1 : i;
                j->argv = argv + from;
                j->argc = argc - from;
                return j->argc > 0 ? 0 : -1;
            }
            if (strcmp(arg, "--") == 0 || j->code != NULL)
                return -1;
            j->code = arg;
            continue;
        }
        if (strcmp(arg, "--no-stream") == 0) { j->stream = 0; continue; }
        if (strcmp(arg, "--no-autostart") == 0) continue;  /* only matters in the hand-over */
        if (eq != NULL) {
            *eq = '\0';  /* --name=value */
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            return -1;
        }
        if (strcmp(arg, "--socket") == 0) j->socket = value;
        else if ((strcmp(arg, "-f") == 0 || strcmp(arg, "--script") == 0) && !j->is_run && !j->script) j->script = value;
        else if (strcmp(arg, "--mount") == 0) { if (parse_mount(j, value)) return -1; }
        else if (strcmp(arg, "--env") == 0) { if (parse_pair(j->env, &j->n_env, value, 0)) return -1; }
        else if (strcmp(arg, "--file") == 0) { if (parse_pair(j->files, &j->n_files, value, 1)) return -1; }
        else if (strcmp(arg, "--stdin") == 0 && !j->stdin_path) j->stdin_path = value;
        else if (strcmp(arg, "--timeout") == 0) { if (parse_seconds(value, &j->timeout)) return -1; }
        else if (strcmp(arg, "--memory") == 0) { if (parse_size(value, &j->memory)) return -1; }
        else return -1;
    }
    if (j->is_run)
        return -1;  /* no command */
    if ((j->code == NULL) == (j->script == NULL))
        return -1;  /* nothing to run, or both: the Python CLI says which */
    {
        const char *source = j->code ? j->code : j->script;
        if (strcmp(source, "-") == 0 && j->stdin_path && strcmp(j->stdin_path, "-") == 0)
            return -1;  /* both from our stdin */
    }
    return 0;
}

/* ------------------------------------------------------------ inputs */

static blob read_all(const char *path)
{
    blob out = {NULL, 0};
    size_t cap = 0;
    int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        fail(NULL, "%s: %s", path, strerror(errno));
    for (;;) {
        ssize_t got;
        if (out.len + 65536 > cap) {
            cap = cap ? cap * 2 : 65536;
            if (cap > LW_MAX_REQUEST_FRAME * 2u)
                fail("E1002", "%s: over the daemon's frame limit of %u bytes", path, LW_MAX_REQUEST_FRAME);
            out.data = realloc(out.data, cap);
            if (out.data == NULL)
                fail("E4001", "out of memory");
        }
        got = read(fd, out.data + out.len, cap - out.len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            fail(NULL, "%s: %s", path, strerror(errno));
        if (got == 0)
            break;
        out.len += (size_t)got;
    }
    if (fd != 0)
        close(fd);
    return out;
}

/* 32 hex digits: the handle a Cancel names (PROTOCOL-V2 `execution_id`). */
static void new_execution_id(char out[33])
{
    unsigned char random[16];
    if (getrandom(random, sizeof random, 0) != (ssize_t)sizeof random)
        fail("E4001", "getrandom: %s", strerror(errno));
    for (int i = 0; i < 16; i++)
        sprintf(out + 2 * i, "%02x", random[i]);
}

static void build_request(const job *j, mp_writer *w, const char *execution_id)
{
    blob source = {NULL, 0}, input = {NULL, 0};
    uint32_t fields = 2;
    if (!j->is_run) {
        const char *from = j->script ? j->script : j->code;
        source = j->script || strcmp(j->code, "-") == 0 ? read_all(from) : (blob){(char *)j->code, strlen(j->code)};
    }
    if (j->stdin_path)
        input = read_all(j->stdin_path);
    fields += (j->n_mounts > 0) + (j->n_env > 0) + (j->n_files > 0) + (j->stdin_path != NULL)
              + (j->timeout > 0) + (j->memory > 0) + j->stream + (execution_id != NULL);
    mp_write_map(w, fields);
    mp_write_cstr(w, "type");
    mp_write_cstr(w, "Execute");
    if (j->is_run) {
        mp_write_cstr(w, "argv");
        mp_write_array(w, (uint32_t)j->argc);
        for (int i = 0; i < j->argc; i++)
            mp_write_cstr(w, j->argv[i]);
    } else {
        mp_write_cstr(w, "code");
        mp_write_str(w, source.data, source.len);
    }
    if (j->n_mounts) {
        mp_write_cstr(w, "mounts");
        mp_write_array(w, (uint32_t)j->n_mounts);
        for (int i = 0; i < j->n_mounts; i++) {
            mp_write_map(w, 3);
            mp_write_cstr(w, "host");
            mp_write_cstr(w, j->mounts[i].name);
            mp_write_cstr(w, "sandbox");
            mp_write_cstr(w, j->mounts[i].value);
            mp_write_cstr(w, "ro");
            mp_write_bool(w, j->read_only[i]);
        }
    }
    if (j->n_env) {
        mp_write_cstr(w, "env");
        mp_write_map(w, (uint32_t)j->n_env);
        for (int i = 0; i < j->n_env; i++) {
            mp_write_cstr(w, j->env[i].name);
            mp_write_cstr(w, j->env[i].value);
        }
    }
    if (j->n_files) {
        mp_write_cstr(w, "files");
        mp_write_map(w, (uint32_t)j->n_files);
        for (int i = 0; i < j->n_files; i++) {
            blob data = read_all(j->files[i].value);
            mp_write_cstr(w, j->files[i].name);
            mp_write_bin(w, data.data, data.len);
            free(data.data);
        }
    }
    if (j->stdin_path) {
        mp_write_cstr(w, "stdin");
        mp_write_bin(w, input.data, input.len);
    }
    if (j->timeout > 0) {
        mp_write_cstr(w, "timeout_secs");
        mp_write_double(w, j->timeout);
    }
    if (j->memory) {
        mp_write_cstr(w, "memory_limit");
        mp_write_uint(w, j->memory);
    }
    if (j->stream) {
        mp_write_cstr(w, "stream");
        mp_write_bool(w, 1);
    }
    if (execution_id) {
        mp_write_cstr(w, "execution_id");
        mp_write_cstr(w, execution_id);
    }
    if (source.data != j->code)
        free(source.data);
    free(input.data);
    if (w->failed)
        fail("E4001", "out of memory");
    if (w->len > LW_MAX_REQUEST_FRAME)
        fail("E1002", "request of %zu bytes exceeds the daemon's frame limit of %u", w->len, LW_MAX_REQUEST_FRAME);
}

/* ------------------------------------------------------------ Ctrl-C */

static volatile sig_atomic_t interrupted;

static void on_interrupt(int signo)
{
    if (interrupted) {  /* a second Ctrl-C: stop waiting, as any CLI would */
        signal(signo, SIG_DFL);
        raise(signo);
    }
    interrupted = signo;
}

/* Cancel{execution_id} on a second connection: the first is busy waiting for the reply. */
static void send_cancel(const char *socket_path, const char *execution_id)
{
    char why[512];
    mp_writer w = {0};
    uint8_t *reply;
    size_t len;
    int fd = lw_connect(socket_path, why, sizeof why);
    if (fd < 0) {
        fprintf(stderr, "leeward: cannot cancel: %s\n", why);
        return;
    }
    mp_write_map(&w, 2);
    mp_write_cstr(&w, "type");
    mp_write_cstr(&w, "Cancel");
    mp_write_cstr(&w, "execution_id");
    mp_write_cstr(&w, execution_id);
    if (!w.failed && lw_send_frame(fd, w.data, w.len) == 0 && lw_recv_frame(fd, &reply, &len) == 0)
        free(reply);
    mp_writer_free(&w);
    close(fd);
}

/* Ctrl-C (or SIGTERM) is blocked from here on, and let through only inside wait_readable's
 * ppoll: a signal that lands while an Event is being printed is then acted on at the next
 * wait, instead of being noted by the handler just before a recv that would block until
 * the job ends. `waiting` receives the mask to wait with. */
static void catch_interrupts(sigset_t *waiting)
{
    struct sigaction sa;
    sigset_t both;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigemptyset(&both);
    sigaddset(&both, SIGINT);
    sigaddset(&both, SIGTERM);
    sigprocmask(SIG_BLOCK, &both, waiting);
}

/* Waits until fd has a reply to read, sending the Cancel once if a signal came first. */
static void wait_readable(int fd, const sigset_t *waiting, const char *socket_path, const char *execution_id)
{
    static int cancel_sent;
    struct pollfd readable = {.fd = fd, .events = POLLIN};
    for (;;) {
        if (interrupted && !cancel_sent) {
            send_cancel(socket_path, execution_id);
            cancel_sent = 1;
        }
        if (ppoll(&readable, 1, NULL, waiting) >= 0 || errno != EINTR)
            return;
    }
}

/* ------------------------------------------------------------ output */

static void write_all(int fd, const uint8_t *data, size_t len)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return;  /* a closed pipe: SIGPIPE (default) already ended us, or output is lost */
        data += n;
        len -= (size_t)n;
    }
}

static void write_field(mp_value map, const char *key, int fd)
{
    const uint8_t *data;
    size_t len;
    if (mp_bytes(mp_get(map, key), &data, &len) == 0)
        write_all(fd, data, len);
}

/* An Event frame's stdout/stderr chunk to our own; display events are --display's. */
static void write_event(mp_value event)
{
    mp_value kind = mp_get(event, "event");
    if (mp_str_is(kind, "stdout"))
        write_field(event, "data", 1);
    else if (mp_str_is(kind, "stderr"))
        write_field(event, "data", 2);
}

static int report(mp_value result, int streamed)
{
    int64_t exit_code = 0;
    static const char *const notes[][2] = {
        {"timed_out", "timed out"}, {"oom_killed", "killed: out of memory"},
        {"stdout_truncated", "stdout truncated"}, {"stderr_truncated", "stderr truncated"},
        {"cancelled", "cancelled"},
    };
    if (mp_int(mp_get(result, "exit_code"), &exit_code) != 0)
        fail("E4001", "the daemon's result has no exit_code");
    if (!streamed) {
        write_field(result, "stdout", 1);
        write_field(result, "stderr", 2);
    }
    for (size_t i = 0; i < sizeof notes / sizeof notes[0]; i++)
        if (mp_bool(mp_get(result, notes[i][0]), 0))
            fprintf(stderr, "leeward: %s\n", notes[i][1]);
    if (mp_bool(mp_get(result, "cancelled"), 0))
        return EXIT_CANCELLED;
    if (mp_bool(mp_get(result, "timed_out"), 0))
        return EXIT_TIMED_OUT;
    if (exit_code < 0)  /* killed by signal N: the shell's 128+N */
        return 128 + (int)(-exit_code & 0x7F);
    return (int)(exit_code & 0xFF);
}

static void fail_reply(mp_value reply)
{
    mp_value error = mp_get(reply, "error");
    const uint8_t *code = (const uint8_t *)"E4001", *message = (const uint8_t *)"the daemon failed the request";
    size_t code_len = 5, message_len = strlen((const char *)message);
    mp_bytes(mp_get(error, "code"), &code, &code_len);
    mp_bytes(mp_get(error, "message"), &message, &message_len);
    fail(NULL, "%.*s: %.*s", (int)code_len, code, (int)message_len, message);
}

/* ------------------------------------------------------------ the exchange */

static mp_value frame_value(uint8_t *body, size_t len) { return (mp_value){body, body + len}; }

/* Pong.features, to send a v2 field only to a daemon that offers it. */
static uint8_t *ping(int fd, mp_value *features)
{
    static const uint8_t request[] = {0x81, 0xa4, 't', 'y', 'p', 'e', 0xa4, 'P', 'i', 'n', 'g'};
    uint8_t *body;
    size_t len;
    if (lw_send_frame(fd, request, sizeof request) != 0 || lw_recv_frame(fd, &body, &len) != 0)
        return NULL;
    *features = mp_get(frame_value(body, len), "features");
    return body;
}

static int run(job *j)
{
    char socket_path[4096], why[512], execution_id[33];
    mp_value features;
    mp_writer request = {0};
    uint8_t *pong;
    sigset_t waiting;
    int fd, cancellable;

    if (j->socket)
        snprintf(socket_path, sizeof socket_path, "%s", j->socket);
    else
        lw_default_socket(socket_path, sizeof socket_path);
    /* Nothing of stdin is read before this: the hand-over must find it whole. */
    fd = lw_connect(socket_path, why, sizeof why);
    if (fd < 0 || (pong = ping(fd, &features)) == NULL)
        python_cli();  /* it starts a daemon when none answers, or says why not */

    if (j->is_run && !mp_array_has_str(features, "argv"))
        fail("E2010", "the daemon on %s does not run commands (no \"argv\" in its features)", socket_path);
    j->stream = j->stream && mp_array_has_str(features, "stream");
    cancellable = mp_array_has_str(features, "cancel");
    free(pong);
    if (cancellable) {
        new_execution_id(execution_id);
        catch_interrupts(&waiting);
    }
    build_request(j, &request, cancellable ? execution_id : NULL);
    if (lw_send_frame(fd, request.data, request.len) != 0)
        fail("E1006", "daemon connection failed: %s", strerror(errno));
    mp_writer_free(&request);

    for (;;) {
        uint8_t *body;
        size_t len;
        mp_value reply;
        if (cancellable)
            wait_readable(fd, &waiting, socket_path, execution_id);
        if (lw_recv_frame(fd, &body, &len) != 0) {
            fail("E1006", "daemon connection failed: %s", errno == EPROTO ? "malformed frame" : strerror(errno));
        }
        reply = frame_value(body, len);
        if (mp_kind(reply) != MP_MAP || mp_next(reply).end != reply.end)
            fail("E1003", "the daemon's reply is not one msgpack map");
        if (mp_str_is(mp_get(reply, "type"), "Event")) {
            write_event(reply);
            free(body);
            continue;
        }
        if (!mp_bool(mp_get(reply, "success"), 0))
            fail_reply(reply);
        return report(mp_get(reply, "result"), j->stream);
    }
}

int main(int argc, char **argv)
{
    job j;
    /* Parsed from a copy: parsing splits NAME=VALUE in place, the hand-over needs argv as given. */
    char **copy = calloc((size_t)argc + 1, sizeof *copy);
    original_argv = argv;
    if (copy == NULL)
        python_cli();
    for (int i = 0; i < argc; i++)
        if ((copy[i] = strdup(argv[i])) == NULL)
            python_cli();
    if (parse_args(argc, copy, &j) != 0)
        python_cli();
    return run(&j);
}
