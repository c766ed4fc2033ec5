/*
 * leeward.h -- the C ABI of leeward, the one contract every language binds to.
 *
 * libleeward.so is a thin C layer over an embedded CPython (cffi embedding
 * mode) that speaks leeward's wire protocol to the daemon over a Unix socket.
 * Callers see only this header; msgpack, the socket and Python stay inside.
 *
 *   cc app.c $(pkg-config --cflags --libs leeward)      # or -Iinclude -Lbuild/lib -lleeward
 *
 * Error handling
 *   No function aborts, exits or raises a signal in the host process. A function
 *   that fails returns NULL (or -1) and leaves a description for the calling thread
 *   in leeward_last_error() and a stable code in leeward_last_error_code().
 *   Every call that can fail first resets both to "" on the calling thread.
 *   Being thread-local, they must be read on the OS thread that made the failing
 *   call (Go: under runtime.LockOSThread(); Node/koffi: not across an async call).
 *   Codes are the daemon protocol's (see DESIGN.md section 2), plus the same codes
 *   for failures detected on the client side:
 *     E1002  request larger than the frame limit (never sent)
 *     E1006  no daemon answered, or it went away during the call
 *     E1007  the socket is served by a uid that is neither the caller's nor root's
 *            (SO_PEERCRED), or its per-user directory under /tmp is not the caller's
 *            own mode-0700 directory: no code is sent to it
 *     E2001  a required argument is NULL (code, handle, a mount's path)
 *     E2002  an argument has the wrong shape (code not UTF-8, mounts NULL with mounts_len > 0)
 *     E2xxx  other invalid requests, as rejected by the daemon (E2003 out of range, ...)
 *     E3xxx  the daemon could not run the job
 *     E3004  the daemon is busy (its queue or connection limit is full): nothing
 *            ran; the one retryable code -- send the same request again after a
 *            short wait
 *     E4001  internal failure, including "the embedded Python could not start"
 *   A job that ran is a success even if the code failed: look at exit_code,
 *   timed_out, oom_killed.
 *
 * Thread safety
 *   Every function may be called from any thread. One handle may be shared by
 *   several threads: requests on one handle are serialized (the daemon answers a
 *   connection's requests in order); use one handle per thread for parallelism.
 *   Do not use a handle after, or concurrently with, leeward_disconnect() on it
 *   (a stale handle is detected and reported as E2001, but that is a courtesy).
 *
 * Ownership
 *   Strings passed in are borrowed for the duration of the call only.
 *   A LeewardResult and every buffer it points to belong to the caller, who
 *   releases them with exactly one leeward_result_free(). A string returned by
 *   leeward_status_json() is released with leeward_string_free(). The strings
 *   returned by leeward_last_error*() and leeward_version() belong to the library.
 *
 * Connection life
 *   A handle holds one connection. When the daemon goes away, the call in
 *   flight fails with E1006 (a request is never resent: it may have run); the
 *   next call on the handle reconnects once to the same socket path.
 *
 * Process environment read by the library
 *   LEEWARD_SOCKET      socket path used by leeward_connect(NULL)
 *   LEEWARD_PYTHONPATH  colon-separated directories to put first on the embedded
 *                       Python's sys.path (replaces the site-packages baked in
 *                       at build time); read once, at the first call.
 *   XDG_RUNTIME_DIR     where the default per-user socket is
 *   In a setuid/setgid or file-capability process (AT_SECURE) all of these are
 *   ignored, as secure_getenv(3) does, and the embedded Python starts isolated
 *   (no PYTHONPATH, PYTHONHOME, user site-packages): the environment is then the
 *   unprivileged caller's, who must choose neither the code loaded nor the daemon.
 *   Whatever the path, a daemon is spoken to only if it runs as the caller's uid
 *   or root (SO_PEERCRED), else E1007.
 *   SIGPIPE is blocked in the calling thread while the library writes to the
 *   socket, so a daemon that dies mid-request cannot kill the host.
 */
#ifndef LEEWARD_H
#define LEEWARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LEEWARD_VERSION "0.1.0"

/* An open connection to the daemon. Opaque; thread-safe (see above). */
typedef struct LeewardHandle LeewardHandle;

/* A host directory exposed inside the sandbox. `host` must be under the
 * daemon's allowed paths; `sandbox` is an absolute path inside the sandbox.
 * read_only: non-zero mounts read-only (what most jobs want), 0 read-write. */
typedef struct {
    const char *host;
    const char *sandbox;
    int read_only;
} LeewardMount;

/* Per-execution options. A NULL LeewardOptions pointer means all defaults.
 * timeout_secs: wall clock in seconds; 0 = the daemon's default. Negative,
 *               NaN or above the daemon's maximum fail with E2003.
 * memory_limit: bytes; 0 = the daemon's default; above its maximum fails with E2003.
 * mounts/mounts_len: mounts_len entries (mounts may be NULL when mounts_len is 0). */
typedef struct {
    double timeout_secs;
    uint64_t memory_limit;
    const LeewardMount *mounts;
    size_t mounts_len;
} LeewardOptions;

/* The outcome of a job the daemon ran.
 * stdout_data/stderr_data: the captured bytes, stdout_len/stderr_len long, plus a
 *   terminating NUL that is not counted (so text output can be printed as is).
 *   Never NULL. They may contain NUL bytes: use the lengths for binary output.
 * exit_code: the code's exit status (1 for an uncaught exception; -N: killed by signal N).
 * duration_us: wall clock of the job; memory_peak: bytes; cpu_time_us: user+system.
 * timed_out/oom_killed: 1 when the job was killed for that reason, else 0.
 * The fields after oom_killed extend DESIGN.md section 5 and are only ever appended to:
 * stdout_truncated/stderr_truncated: 1 when the daemon cut the output at its cap.
 * details_json: NUL-terminated JSON object with every result field of the wire
 *   protocol except stdout and stderr (exit_code, duration_ms, memory_peak,
 *   cpu_time_us, timed_out, oom_killed, stdout_truncated, stderr_truncated,
 *   denied_syscalls, limits, and "error": {name, value, traceback} when the code
 *   raised). Never NULL. */
typedef struct {
    int exit_code;
    char *stdout_data;
    size_t stdout_len;
    char *stderr_data;
    size_t stderr_len;
    uint64_t duration_us;
    uint64_t memory_peak;
    uint64_t cpu_time_us;
    int timed_out;
    int oom_killed;
    int stdout_truncated;
    int stderr_truncated;
    char *details_json;
} LeewardResult;

/* Connects to the daemon. socket_path NULL: $LEEWARD_SOCKET, else the default
 * per-user path (/run/leeward/leeward.sock for root, $XDG_RUNTIME_DIR/leeward.sock).
 * Returns NULL on failure (E1006 when nothing listens). */
LeewardHandle *leeward_connect(const char *socket_path);

/* Runs `code` (UTF-8 Python source, run as __main__) in a fresh sandbox and
 * waits for it. options may be NULL. Returns NULL on failure; else a result to
 * release with leeward_result_free(). */
LeewardResult *leeward_execute(LeewardHandle *handle, const char *code, const LeewardOptions *options);

/* Releases a result and its buffers. NULL is a no-op. */
void leeward_result_free(LeewardResult *result);

/* Closes the connection and releases the handle. NULL is a no-op. */
void leeward_disconnect(LeewardHandle *handle);

/* The last failure on the calling thread, or "" if the last call succeeded.
 * Never NULL; valid until the thread's next leeward call. */
const char *leeward_last_error(void);

/* The library's version, LEEWARD_VERSION. Does not start Python. */
const char *leeward_version(void);

/* ---- extensions to DESIGN.md section 5 ---- */

/* The stable code ("E1006", ...) of the last failure on the calling thread, or "". */
const char *leeward_last_error_code(void);

/* Round trip to the daemon. Returns 0 if it answered, -1 on failure. */
int leeward_ping(LeewardHandle *handle);

/* The daemon's pool state as a NUL-terminated JSON object (the Status response),
 * to release with leeward_string_free(). NULL on failure. */
char *leeward_status_json(LeewardHandle *handle);

/* Releases a string returned by this library. NULL is a no-op. */
void leeward_string_free(char *string);

#ifdef __cplusplus
}
#endif

#endif /* LEEWARD_H */
