/* C entry points of libleeward.so (include/leeward.h).
 *
 * Pasted by libleeward/build_ffi.py into cffi's embedding module, after Python.h
 * and cffi's _embedding.h, with LW_BAKED_PYTHONPATH, LW_PROGRAM_NAME and
 * LW_RELATIVE_PROGRAM_NAME defined.
 * Every exported function is here, in C, so that a failure to start the
 * embedded Python becomes NULL + leeward_last_error() instead of cffi's
 * "Returning 0" to stderr. The work itself is done by the extern "Python"
 * functions of libleeward/_cffi_impl.py.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <time.h>
#include <unistd.h>

#include "leeward.h"

/* Implemented in Python (cffi emits their bodies after this code). The int
 * ones return 1 for success: cffi answers 0 when Python cannot run them. */
static int _lw_py_boot(void);
static LeewardHandle *_lw_py_connect(const char *socket_path);
static void _lw_py_disconnect(LeewardHandle *handle);
static int _lw_py_execute(LeewardHandle *handle, const char *code,
                          const LeewardOptions *options, LeewardResult *out);
static int _lw_py_ping(LeewardHandle *handle);
static char *_lw_py_status_json(LeewardHandle *handle);
static int _lw_py_call(LeewardHandle *handle, const char *request_json, LeewardEventCallback on_event,
                       void *user, char **reply_json);

/* ------------------------------------------------------------ errors */

/* Fixed thread-local buffers: nothing to free when a host thread exits. */
static __thread char lw_error[2048];
static __thread char lw_error_code[16];

static void lw_clear_error(void)
{
    lw_error[0] = '\0';
    lw_error_code[0] = '\0';
}

static void lw_fail(const char *code, const char *fmt, ...)
{
    va_list ap;
    snprintf(lw_error_code, sizeof lw_error_code, "%s", code);
    va_start(ap, fmt);
    vsnprintf(lw_error, sizeof lw_error, fmt, ap);
    va_end(ap);
}

static void _lw_set_error(const char *code, const char *message)
{
    lw_fail(code ? code : LEEWARD_E_INTERNAL, "%s", message ? message : "unknown error");
}

static char *_lw_memdup(const char *data, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return NULL;
    if (len)
        memcpy(copy, data, len);
    copy[len] = '\0';
    return copy;
}

/* ------------------------------------------------------------ start-up */

static pthread_once_t lw_once = PTHREAD_ONCE_INIT;
static int lw_ready;               /* 1 once Python and libleeward are up */
static char lw_boot_error[1024];   /* why not, when lw_ready stays 0 */

static void _lw_set_boot_error(const char *message)
{
    snprintf(lw_boot_error, sizeof lw_boot_error, "%s", message);
}

/* Extension modules (_cffi_backend, msgpack) are not linked to libpython: they
 * expect its symbols in the global scope. A host that dlopen()ed us with
 * RTLD_LOCAL (koffi, most plugin loaders) put libpython in our local scope only,
 * so promote the copy we are bound to. */
static void lw_promote_libpython(void)
{
    Dl_info info;
    if (dladdr((void *)&Py_IsInitialized, &info) && info.dli_fname) {
        void *self = dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
        (void)self;  /* kept open on purpose: Python is never unloaded */
    }
}

/* Puts `paths` (colon-separated) on sys.path: first when we own the interpreter,
 * last when the host is Python (its own packages win there). Needs the GIL. */
static int lw_add_paths(const char *paths, int first)
{
    PyObject *sys_path = PySys_GetObject("path");  /* borrowed */
    Py_ssize_t at = 0;
    const char *p = paths;
    if (sys_path == NULL || !PyList_Check(sys_path))
        return -1;
    while (*p) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len) {
            PyObject *entry = PyUnicode_DecodeFSDefaultAndSize(p, (Py_ssize_t)len);
            int present;
            if (entry == NULL)
                return -1;
            present = PySequence_Contains(sys_path, entry);
            if (present == 0)
                present = first ? PyList_Insert(sys_path, at++, entry) : PyList_Append(sys_path, entry);
            Py_DECREF(entry);
            if (present < 0)
                return -1;
        }
        p += len + (end != NULL);
    }
    return 0;
}

/* The interpreter path the embedded Python starts from (its stdlib; for a venv's, the
 * venv's site-packages through pyvenv.cfg). A relocatable build (a wheel's) names it
 * relative to this library's directory, known only once installed; when that file is
 * missing (an install outside a venv), the building interpreter's is used. */
static void lw_program_name(char *out, size_t size)
{
    Dl_info info;
    const char *slash;
    snprintf(out, size, "%s", LW_PROGRAM_NAME);
    if (!LW_RELATIVE_PROGRAM_NAME[0] || !dladdr((void *)&leeward_version, &info) || info.dli_fname == NULL
        || info.dli_fname[0] != '/' || (slash = strrchr(info.dli_fname, '/')) == NULL)
        return;
    {
        char candidate[4096];
        int len = snprintf(candidate, sizeof candidate, "%.*s/%s", (int)(slash - info.dli_fname), info.dli_fname,
                           LW_RELATIVE_PROGRAM_NAME);
        if (len > 0 && (size_t)len < sizeof candidate && access(candidate, X_OK) == 0)
            snprintf(out, size, "%s", candidate);
    }
}

static int lw_start_python(void)
{
    /* secure_getenv: in a setuid/setgid or file-capability host (AT_SECURE) the
     * environment is the unprivileged caller's, and a path of theirs on sys.path
     * would run their code with the host's privileges. */
    const char *paths = secure_getenv("LEEWARD_PYTHONPATH");
    int ours = !Py_IsInitialized();
    int rc;
    if (paths == NULL || !*paths)
        paths = LW_BAKED_PYTHONPATH;
    if (ours) {
        PyConfig config;
        PyStatus status;
        char program[4096];
        lw_program_name(program, sizeof program);
        lw_promote_libpython();
        /* CPython itself does not look at AT_SECURE: isolated, it ignores PYTHONPATH,
         * PYTHONHOME, PYTHONSTARTUP and the user's site-packages. */
        if (getauxval(AT_SECURE))
            PyConfig_InitIsolatedConfig(&config);
        else
            PyConfig_InitPythonConfig(&config);
        config.install_signal_handlers = 0;  /* the host owns its signals */
        config.parse_argv = 0;
        status = PyConfig_SetBytesString(&config, &config.program_name, program);
        if (!PyStatus_Exception(status))
            status = Py_InitializeFromConfig(&config);
        PyConfig_Clear(&config);
        if (PyStatus_Exception(status)) {
            snprintf(lw_boot_error, sizeof lw_boot_error, "embedded Python failed to start: %s%s%s",
                     status.func ? status.func : "", status.func ? ": " : "",
                     status.err_msg ? status.err_msg : "(no message)");
            return -1;
        }
    }
    {
        PyGILState_STATE gil = PyGILState_Ensure();
        rc = lw_add_paths(paths, ours);
        if (rc < 0) {
            PyErr_Clear();
            snprintf(lw_boot_error, sizeof lw_boot_error, "cannot extend the embedded Python's sys.path");
        }
        PyGILState_Release(gil);
    }
    if (ours)
        PyEval_SaveThread();  /* Py_InitializeFromConfig left us holding the GIL */
    return rc;
}

static void lw_boot_once(void)
{
    if (lw_start_python() != 0)
        return;
    /* Imports _cffi_backend (from the paths above) and runs the init code. */
    if (cffi_start_python() != 0) {
        snprintf(lw_boot_error, sizeof lw_boot_error,
                 "the embedded Python could not load libleeward's cffi module (details on stderr)");
        return;
    }
    if (_lw_py_boot() != 1) {
        if (!lw_boot_error[0])
            snprintf(lw_boot_error, sizeof lw_boot_error, "libleeward failed to initialize");
        return;
    }
    lw_ready = 1;
}

static int lw_boot(void)
{
    pthread_once(&lw_once, lw_boot_once);
    if (!lw_ready) {
        lw_fail(LEEWARD_E_INTERNAL, "%s", lw_boot_error[0] ? lw_boot_error : "libleeward failed to initialize");
        return -1;
    }
    return 0;
}

/* What every call on a handle checks first, after clearing the thread's error:
 * a handle, and a Python that started. 0 to go on; -1 with the error set. */
static int lw_enter(LeewardHandle *handle)
{
    if (handle == NULL) {
        lw_fail(LEEWARD_E_MISSING_FIELD, "handle is NULL");
        return -1;
    }
    return lw_boot();
}

/* ------------------------------------------------------------ SIGPIPE */

/* CPython's socket.sendall() does not pass MSG_NOSIGNAL and, embedded without
 * its signal handlers, does not ignore SIGPIPE: a daemon dying mid-request
 * would kill the host. SIGPIPE from a write is sent to the writing thread, so
 * block it there and drop the one we caused. */
typedef struct {
    sigset_t old;
    int was_pending;
} lw_sigpipe_guard;

static void lw_sigpipe_block(lw_sigpipe_guard *guard)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    sigpending(&pending);
    guard->was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, &guard->old);
}

static void lw_sigpipe_restore(lw_sigpipe_guard *guard)
{
    sigset_t set, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    if (!guard->was_pending && sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE)) {
        struct timespec zero = {0, 0};
        sigtimedwait(&set, NULL, &zero);
    }
    pthread_sigmask(SIG_SETMASK, &guard->old, NULL);
}

/* ------------------------------------------------------------ the ABI */

const char *leeward_version(void)
{
    return LEEWARD_VERSION;
}

const char *leeward_last_error(void)
{
    return lw_error;
}

const char *leeward_last_error_code(void)
{
    return lw_error_code;
}

LeewardHandle *leeward_connect(const char *socket_path)
{
    lw_clear_error();
    if (lw_boot() != 0)
        return NULL;
    /* Read here, not from the embedded os.environ: that is a snapshot taken
     * when Python started, and hosts may set it later. secure_getenv: an elevated
     * host's caller must not pick the daemon its jobs go to (the Python side's
     * fallback, libleeward.paths, applies the same rule). */
    if (socket_path == NULL)
        socket_path = secure_getenv("LEEWARD_SOCKET");
    return _lw_py_connect(socket_path);
}

void leeward_disconnect(LeewardHandle *handle)
{
    lw_clear_error();
    if (handle == NULL || lw_boot() != 0)
        return;
    _lw_py_disconnect(handle);
}

void leeward_result_free(LeewardResult *result)
{
    if (result == NULL)
        return;
    free(result->stdout_data);
    free(result->stderr_data);
    free(result->details_json);
    free(result);
}

void leeward_string_free(char *string)
{
    free(string);
}

LeewardResult *leeward_execute(LeewardHandle *handle, const char *code, const LeewardOptions *options)
{
    LeewardResult *result;
    lw_sigpipe_guard guard;
    int rc;
    lw_clear_error();
    if (lw_enter(handle) != 0)
        return NULL;
    if (code == NULL) {
        lw_fail(LEEWARD_E_MISSING_FIELD, "code is NULL");
        return NULL;
    }
    result = calloc(1, sizeof *result);
    if (result == NULL) {
        lw_fail(LEEWARD_E_INTERNAL, "out of memory");
        return NULL;
    }
    lw_sigpipe_block(&guard);
    rc = _lw_py_execute(handle, code, options, result);
    lw_sigpipe_restore(&guard);
    if (rc != 1) {
        if (!lw_error[0])
            lw_fail(LEEWARD_E_INTERNAL, "execute failed");
        leeward_result_free(result);
        return NULL;
    }
    return result;
}

int leeward_ping(LeewardHandle *handle)
{
    lw_sigpipe_guard guard;
    int rc;
    lw_clear_error();
    if (lw_enter(handle) != 0)
        return -1;
    lw_sigpipe_block(&guard);
    rc = _lw_py_ping(handle);
    lw_sigpipe_restore(&guard);
    if (rc != 1 && !lw_error[0])
        lw_fail(LEEWARD_E_INTERNAL, "ping failed");
    return rc == 1 ? 0 : -1;
}

char *leeward_status_json(LeewardHandle *handle)
{
    lw_sigpipe_guard guard;
    char *json;
    lw_clear_error();
    if (lw_enter(handle) != 0)
        return NULL;
    lw_sigpipe_block(&guard);
    json = _lw_py_status_json(handle);
    lw_sigpipe_restore(&guard);
    if (json == NULL && !lw_error[0])
        lw_fail(LEEWARD_E_INTERNAL, "status failed");
    return json;
}

int leeward_call_stream(LeewardHandle *handle, const char *request_json, LeewardEventCallback on_event,
                        void *user, char **reply_json)
{
    lw_sigpipe_guard guard;
    int rc;
    lw_clear_error();
    if (reply_json == NULL) {
        lw_fail(LEEWARD_E_MISSING_FIELD, "reply_json is NULL");
        return -1;
    }
    *reply_json = NULL;
    if (lw_enter(handle) != 0)
        return -1;
    if (request_json == NULL) {
        lw_fail(LEEWARD_E_MISSING_FIELD, "request_json is NULL");
        return -1;
    }
    lw_sigpipe_block(&guard);
    rc = _lw_py_call(handle, request_json, on_event, user, reply_json);
    lw_sigpipe_restore(&guard);
    if (rc != 1) {
        if (!lw_error[0])
            lw_fail(LEEWARD_E_INTERNAL, "call failed");
        free(*reply_json);
        *reply_json = NULL;
        return -1;
    }
    return 0;
}

int leeward_call(LeewardHandle *handle, const char *request_json, char **reply_json)
{
    return leeward_call_stream(handle, request_json, NULL, NULL, reply_json);
}
