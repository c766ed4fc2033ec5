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
 *   Codes are the daemon protocol's, listed below as LEEWARD_E_* (the one source
 *   every binding reads or is checked against), and the same codes for failures
 *   detected on the client side:
 *     E1002  request larger than the frame limit (never sent)
 *     E1003  leeward_call: request_json is not valid UTF-8 JSON
 *     E1004  leeward_call: request_json is not a JSON object
 *     E1006  no daemon answered, or it went away during the call
 *     E1007  the socket is served by a uid that is neither the caller's nor root's
 *            (SO_PEERCRED), or its per-user directory under /tmp is not the caller's
 *            own mode-0700 directory: no code is sent to it
 *     E2001  a required argument is NULL (code, handle, a mount's path)
 *     E2002  an argument has the wrong shape (code not UTF-8, mounts NULL with
 *            mounts_len > 0, a malformed {"$bytes": ...} value)
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
 *   leeward_status_json() or through leeward_call*()'s reply_json is released with
 *   leeward_string_free(). The strings
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

/* Stable error codes, as leeward_last_error_code() and the daemon's error replies
 * give them. Never renumbered. Python's ErrorCode (libleeward/abi.py) is generated
 * from these lines, and the Go and Node bindings are checked against them.
 * E1xxx: the frame itself */
#define LEEWARD_E_FRAME_EMPTY "E1001"         /* frame length is 0 */
#define LEEWARD_E_FRAME_TOO_LARGE "E1002"     /* frame over the limit (the client does not send it) */
#define LEEWARD_E_FRAME_UNDECODABLE "E1003"   /* body is not msgpack (leeward_call: not JSON) */
#define LEEWARD_E_FRAME_NOT_A_MAP "E1004"     /* body is not a map (leeward_call: not an object) */
#define LEEWARD_E_UNKNOWN_TYPE "E1005"        /* unknown or missing request "type" */
#define LEEWARD_E_CONNECTION_CLOSED "E1006"   /* client side: no daemon, the connection dropped, or the client is closed */
#define LEEWARD_E_UNTRUSTED_SOCKET "E1007"    /* client side: the socket or its directory is not yours or root's */
/* E2xxx: a well-formed request with invalid content */
#define LEEWARD_E_MISSING_FIELD "E2001"
#define LEEWARD_E_WRONG_TYPE "E2002"
#define LEEWARD_E_OUT_OF_RANGE "E2003"
#define LEEWARD_E_UNKNOWN_FIELD "E2004"
#define LEEWARD_E_BAD_PATH "E2005"            /* mount target over a system dir, file outside the workdir, ".." */
#define LEEWARD_E_MOUNT_NOT_ALLOWED "E2006"   /* mount source not under the daemon's allowed paths */
#define LEEWARD_E_MOUNT_NOT_FOUND "E2007"
#define LEEWARD_E_MOUNT_SYMLINK "E2008"
#define LEEWARD_E_CODE_OR_ARGV "E2009"        /* exactly one of "code" and "argv" */
#define LEEWARD_E_FEATURE_DISABLED "E2010"    /* the feature is turned off by the daemon's config */
/* E3xxx: the sandbox could not run the job */
#define LEEWARD_E_SANDBOX_UNAVAILABLE "E3001"
#define LEEWARD_E_SANDBOX_FAILED "E3002"
#define LEEWARD_E_SHUTTING_DOWN "E3003"
#define LEEWARD_E_DAEMON_BUSY "E3004"         /* queue or connection limit full: the one retryable code */
/* E4xxx: a bug or an unexpected host failure */
#define LEEWARD_E_INTERNAL "E4001"
/* E5xxx: sessions */
#define LEEWARD_E_SESSION_NOT_FOUND "E5001"   /* no such session, or not yours: the two are not told apart */
#define LEEWARD_E_SESSION_BUSY "E5002"        /* the session ran other cells past session_queue_secs */
#define LEEWARD_E_SESSION_ENDED "E5003"       /* the session has ended; the message names the reason */
#define LEEWARD_E_SESSION_LIMIT "E5004"       /* max_sessions or max_sessions_per_uid reached */

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

/* ---- the generic entry point: any request of the wire protocol, as JSON ----
 *
 * request_json is one request map of the protocol ({"type": "Ping"},
 * {"type": "Execute", "code": "print(1)", "timeout_secs": 5}, ...) written as a
 * UTF-8 JSON object; the reply is the daemon's response map as a JSON object.
 * The library does not interpret the request beyond this encoding, so a protocol
 * feature the daemon gains is usable here without a new function or struct.
 *
 * Bytes: msgpack bin values (stdout, stderr, files, stdin) are written in JSON as
 *   {"$bytes": "<base64, RFC 4648 with padding>"}
 * both ways: such an object in the request is sent as bin (a malformed one fails
 * with E2002), and every bin in the reply comes back so. A JSON string is sent as
 * a msgpack str (where the protocol takes bytes, a str means its UTF-8 encoding).
 *
 * Returns 0 when the daemon answered success and stores the reply in *reply_json
 * (release it with leeward_string_free()). Returns -1 otherwise, *reply_json set
 * to NULL: an error reply from the daemon leaves its code and message in
 * leeward_last_error_code() / leeward_last_error(), exactly as leeward_execute
 * does; a request that is not JSON fails with E1003, one that is not an object
 * with E1004, NULL handle, request_json or reply_json with E2001. */
int leeward_call(LeewardHandle *handle, const char *request_json, char **reply_json);

/* Receives one Event frame of a streaming request ({"type": "Event",
 * "execution_id", "event", "data"}, bytes as above) as a NUL-terminated JSON
 * object that is valid only during the call. `user` is leeward_call_stream's.
 * It runs on the thread that called leeward_call_stream, before the final reply;
 * it must not use the same handle (that deadlocks) but may use another. */
typedef void (*LeewardEventCallback)(const char *event_json, void *user);

/* leeward_call for a request that may stream (e.g. Execute with "stream": true):
 * on_event is called for each Event frame that precedes the reply, in order.
 * A daemon that does not stream sends none, and then on_event is never called.
 * on_event may be NULL (events are dropped). Returns and fails as leeward_call. */
int leeward_call_stream(LeewardHandle *handle, const char *request_json, LeewardEventCallback on_event,
                        void *user, char **reply_json);

/* Programs, streaming and cancel through leeward_call / leeward_call_stream
 * (protocol v2; each field only when the daemon's Ping lists its feature in
 * "features", since the daemon refuses an unknown field with E2004):
 *
 *   "argv": ["sh", "-c", "echo hi"]   (feature "argv") runs a program instead of
 *       Python, in an Execute or a SessionExecute: exactly one of "code" and "argv"
 *       (else E2009). argv[0] is looked up on the sandbox's PATH; exit_code is the
 *       program's, 128 + N when signal N ended it, 127 when argv[0] was not found.
 *   "stream": true   (feature "stream") sends Event frames before the reply; only
 *       leeward_call_stream delivers them (leeward_call drops them). Their stdout /
 *       stderr chunks add up to the result's.
 *   "execution_id": "job-1"   (feature "cancel"; 1 to 64 of [A-Za-z0-9_-], made by
 *       the daemon if absent) names the job; the result and every event echo it.
 *   {"type": "Cancel", "execution_id": "job-1"} on another handle (the one running
 *       the job is busy until its reply) stops it: a one-shot job is killed, a
 *       session cell gets KeyboardInterrupt. The reply's "found" says whether it was
 *       running; the job's result then has "cancelled": true. Only the same uid's
 *       jobs are found. A Cancel sent before the job reached the daemon finds
 *       nothing: send it again until found or the job's reply arrives.
 *
 *   leeward_call_stream(h, "{\"type\": \"Execute\", \"argv\": [\"ls\", \"/\"], "
 *                          "\"stream\": true, \"execution_id\": \"job-1\"}", on_event, NULL, &reply);
 */

#ifdef __cplusplus
}
#endif

#endif /* LEEWARD_H */
