// Package leeward runs untrusted Python in leeward's single-use sandboxes.
//
// It is a cgo binding over libleeward.so (include/leeward.h), found with
// pkg-config ("leeward"). A Client is safe for concurrent use by many
// goroutines: it keeps a small pool of library handles (one connection each)
// so that concurrent Execute calls run in parallel instead of queueing on one
// connection.
//
// Failures are returned as *Error, carrying the protocol's stable code:
//
//	res, err := client.Execute("print(1)", nil)
//	var lerr *leeward.Error
//	if errors.As(err, &lerr) && lerr.Code == leeward.CodeConnectionClosed { ... }
//
// A job that ran is a success even if the Python code failed: look at
// Result.ExitCode, TimedOut and OOMKilled.
package leeward

/*
#cgo pkg-config: leeward
#include <stdlib.h>
#include <leeward.h>
*/
import "C"

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// Stable error codes of the protocol, read at build time from include/leeward.h's
// LEEWARD_E_* macros (the one source; TestCodesAreTheHeaders fails when one is missing).
const (
	CodeFrameEmpty         = C.LEEWARD_E_FRAME_EMPTY
	CodeFrameTooLarge      = C.LEEWARD_E_FRAME_TOO_LARGE
	CodeFrameUndecodable   = C.LEEWARD_E_FRAME_UNDECODABLE // Call: the request is not JSON
	CodeFrameNotAMap       = C.LEEWARD_E_FRAME_NOT_A_MAP   // Call: the request is not a JSON object
	CodeUnknownType        = C.LEEWARD_E_UNKNOWN_TYPE
	CodeConnectionClosed   = C.LEEWARD_E_CONNECTION_CLOSED // no daemon answered, it went away, or the client is closed
	CodeUntrustedSocket    = C.LEEWARD_E_UNTRUSTED_SOCKET  // the socket is served or held by a uid that is neither yours nor root's
	CodeMissingField       = C.LEEWARD_E_MISSING_FIELD
	CodeWrongType          = C.LEEWARD_E_WRONG_TYPE
	CodeOutOfRange         = C.LEEWARD_E_OUT_OF_RANGE
	CodeUnknownField       = C.LEEWARD_E_UNKNOWN_FIELD
	CodeBadPath            = C.LEEWARD_E_BAD_PATH
	CodeMountNotAllowed    = C.LEEWARD_E_MOUNT_NOT_ALLOWED
	CodeMountNotFound      = C.LEEWARD_E_MOUNT_NOT_FOUND
	CodeMountSymlink       = C.LEEWARD_E_MOUNT_SYMLINK
	CodeCodeOrArgv         = C.LEEWARD_E_CODE_OR_ARGV     // exactly one of code and argv
	CodeFeatureDisabled    = C.LEEWARD_E_FEATURE_DISABLED // turned off by the daemon's config
	CodeSandboxUnavailable = C.LEEWARD_E_SANDBOX_UNAVAILABLE
	CodeSandboxFailed      = C.LEEWARD_E_SANDBOX_FAILED
	CodeShuttingDown       = C.LEEWARD_E_SHUTTING_DOWN
	CodeDaemonBusy         = C.LEEWARD_E_DAEMON_BUSY // queue or connection limit full: retryable
	CodeInternal           = C.LEEWARD_E_INTERNAL
	CodeSessionNotFound    = C.LEEWARD_E_SESSION_NOT_FOUND // no such session, or not yours
	CodeSessionBusy        = C.LEEWARD_E_SESSION_BUSY      // other cells ran past session_queue_secs
	CodeSessionEnded       = C.LEEWARD_E_SESSION_ENDED     // the message names the reason
	CodeSessionLimit       = C.LEEWARD_E_SESSION_LIMIT     // max_sessions or max_sessions_per_uid
)

// HeaderVersion is LEEWARD_VERSION of the include/leeward.h this package was built against;
// Version() is the loaded library's.
const HeaderVersion = C.LEEWARD_VERSION

// Error is a failure reported by libleeward or the daemon.
type Error struct {
	Code    string // the protocol's stable code, e.g. "E1006"
	Message string // human-readable description
}

func (e *Error) Error() string { return "leeward: " + e.Code + ": " + e.Message }

// Retryable reports whether the same request may succeed if sent again after a short
// wait: the daemon was at its limit (E3004), or a session's earlier cells held it past
// the queue wait (E5002); nothing ran.
func (e *Error) Retryable() bool { return e.Code == CodeDaemonBusy || e.Code == CodeSessionBusy }

// ErrClosed is returned by calls on a Client after Close: a client-side connection
// failure, E1006 as in every binding.
var ErrClosed = &Error{Code: CodeConnectionClosed, Message: "client is closed"}

// Mount exposes a host directory inside the sandbox. Host must be under one of
// the daemon's allowed paths; Sandbox is an absolute path inside the sandbox.
// A Mount is read-only unless Writable is set, so the zero value is the safe one
// (as in the wire protocol and the Python and Node bindings).
type Mount struct {
	Host     string
	Sandbox  string
	Writable bool
}

// Options are per-execution settings. A nil *Options means all defaults.
type Options struct {
	// Timeout is the wall-clock limit; 0 means the daemon's default.
	// Negative or above the daemon's maximum fails with E2003.
	Timeout time.Duration
	// MemoryLimit is in bytes; 0 means the daemon's default.
	// Above the daemon's maximum fails with E2003.
	MemoryLimit uint64
	Mounts      []Mount
}

// Result is the outcome of a job the daemon ran.
type Result struct {
	ExitCode        int // 1 for an uncaught exception; -N: killed by signal N
	Stdout          []byte
	Stderr          []byte
	Duration        time.Duration
	MemoryPeak      uint64 // bytes
	CPUTimeUs       uint64 // user+system, microseconds
	TimedOut        bool
	OOMKilled       bool
	StdoutTruncated bool
	StderrTruncated bool
	// Details is the JSON object of every wire-protocol result field except
	// stdout and stderr (denied_syscalls, limits, "error" when the code raised...).
	Details json.RawMessage
}

// Version is the version of the loaded libleeward.so.
func Version() string { return C.GoString(C.leeward_version()) }

// maxIdle bounds the connections a Client keeps open between calls.
const maxIdle = 16

// Client is a connection to the daemon, safe for concurrent use.
type Client struct {
	path   *C.char // nil: the library's default ($LEEWARD_SOCKET, then the per-user path)
	mu     sync.Mutex
	idle   []*C.LeewardHandle
	busy   int // handles taken by running calls
	closed bool
	// features is Pong's list, asked once when a call first needs it (session.go).
	features []string
}

// Connect connects to the daemon listening on socketPath. An empty socketPath
// means $LEEWARD_SOCKET, else the default per-user path. It fails with E1006
// when nothing listens there.
func Connect(socketPath string) (*Client, error) {
	c := &Client{}
	if socketPath != "" {
		if strings.IndexByte(socketPath, 0) >= 0 {
			return nil, &Error{Code: CodeWrongType, Message: "socket path contains a NUL byte"}
		}
		c.path = C.CString(socketPath)
	}
	h, err := c.connect()
	if err != nil {
		c.freePath()
		return nil, err
	}
	c.idle = append(c.idle, h)
	return c, nil
}

// lastError reads the calling thread's error; the caller holds the OS thread.
func lastError() *Error {
	code := C.GoString(C.leeward_last_error_code())
	msg := C.GoString(C.leeward_last_error())
	if code == "" {
		code = CodeInternal
	}
	if msg == "" {
		msg = "unknown error"
	}
	return &Error{Code: code, Message: msg}
}

func (c *Client) connect() (*C.LeewardHandle, error) {
	// The library keeps the last error per OS thread: the call and the read
	// of its error must happen on the same thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	h := C.leeward_connect(c.path)
	if h == nil {
		return nil, lastError()
	}
	return h, nil
}

// acquire takes an idle handle, or opens a new connection. Each handle is
// used by one call at a time, so concurrent calls run in parallel.
func (c *Client) acquire() (*C.LeewardHandle, error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.busy++
	if n := len(c.idle); n > 0 {
		h := c.idle[n-1]
		c.idle = c.idle[:n-1]
		c.mu.Unlock()
		return h, nil
	}
	c.mu.Unlock()
	h, err := c.connect()
	if err != nil {
		c.release(nil)
	}
	return h, err
}

// release returns a handle to the pool, or closes it when the client is
// closed or the pool is full.
func (c *Client) release(h *C.LeewardHandle) {
	c.mu.Lock()
	c.busy--
	if h != nil && !c.closed && len(c.idle) < maxIdle {
		c.idle = append(c.idle, h)
		c.mu.Unlock()
		return
	}
	last := c.closed && c.busy == 0
	c.mu.Unlock()
	if h != nil {
		C.leeward_disconnect(h)
	}
	if last {
		c.freePath()
	}
}

// Execute runs code (Python source, run as __main__) in a fresh sandbox and
// waits for it. opts may be nil.
func (c *Client) Execute(code string, opts *Options) (*Result, error) {
	if strings.IndexByte(code, 0) >= 0 {
		return nil, &Error{Code: CodeWrongType, Message: "code contains a NUL byte"}
	}
	copts, free, err := cOptions(opts)
	if err != nil {
		return nil, err
	}
	defer free()
	ccode := C.CString(code)
	defer C.free(unsafe.Pointer(ccode))

	var result *Result
	err = c.onHandle(func(h *C.LeewardHandle) error {
		res := C.leeward_execute(h, ccode, copts)
		if res == nil {
			return lastError()
		}
		defer C.leeward_result_free(res)
		result = goResult(res)
		return nil
	})
	return result, err
}

// Ping checks that the daemon answers.
func (c *Client) Ping() error {
	return c.onHandle(func(h *C.LeewardHandle) error {
		if C.leeward_ping(h) != 0 {
			return lastError()
		}
		return nil
	})
}

// Status returns the daemon's pool state (the protocol's Status response) as JSON.
func (c *Client) Status() (json.RawMessage, error) {
	var status json.RawMessage
	err := c.onHandle(func(h *C.LeewardHandle) error {
		s := C.leeward_status_json(h)
		if s == nil {
			return lastError()
		}
		status = takeString(s)
		return nil
	})
	return status, err
}

// Call sends any request of the wire protocol and returns the daemon's reply
// (leeward_call): the way to a protocol feature that has no method here yet.
// request is marshalled with encoding/json (a json.RawMessage goes as is) and must
// be a JSON object; bytes are written {"$bytes": base64} both ways (see Bytes).
// An error reply is returned as *Error with the daemon's code, a request that is
// not JSON as E1003, one that is not an object as E1004.
//
//	reply, err := client.Call(map[string]any{"type": "Execute", "code": "print(1)"})
func (c *Client) Call(request any) (json.RawMessage, error) {
	text, err := json.Marshal(request) // never a raw NUL: JSON escapes it
	if err != nil {
		return nil, &Error{Code: CodeFrameUndecodable, Message: "request is not JSON: " + err.Error()}
	}
	creq := C.CString(string(text))
	defer C.free(unsafe.Pointer(creq))
	var reply json.RawMessage
	err = c.onHandle(func(h *C.LeewardHandle) error {
		var s *C.char
		if C.leeward_call(h, creq, &s) != 0 {
			return lastError()
		}
		reply = takeString(s)
		return nil
	})
	return reply, err
}

// onHandle runs fn with a handle of its own (so concurrent calls run in parallel), on
// a locked OS thread: libleeward keeps the last error per thread, so the call and the
// read of its error must happen on the same one.
func (c *Client) onHandle(fn func(h *C.LeewardHandle) error) error {
	h, err := c.acquire()
	if err != nil {
		return err
	}
	defer c.release(h)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return fn(h)
}

// takeString copies a string the library returned, and frees it.
func takeString(s *C.char) json.RawMessage {
	defer C.leeward_string_free(s)
	return json.RawMessage(C.GoString(s))
}

// Bytes is a byte string as Call writes and reads it: {"$bytes": "<base64>"}
// (a msgpack bin on the wire). Use it for stdin, files, and to decode stdout.
type Bytes []byte

// MarshalJSON writes {"$bytes": base64}.
func (b Bytes) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{"$bytes": base64.StdEncoding.EncodeToString(b)})
}

// UnmarshalJSON reads {"$bytes": base64}.
func (b *Bytes) UnmarshalJSON(data []byte) error {
	var tagged map[string]string
	if err := json.Unmarshal(data, &tagged); err != nil {
		return err
	}
	text, ok := tagged["$bytes"]
	if !ok || len(tagged) != 1 {
		return fmt.Errorf(`leeward: bytes must be {"$bytes": base64}, got %s`, data)
	}
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return err
	}
	*b = raw
	return nil
}

// Close closes the client's idle connections; connections in use by running
// calls are closed when those calls return. Later calls fail with ErrClosed.
// Close is idempotent.
func (c *Client) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	idle := c.idle
	c.idle = nil
	last := c.busy == 0 // else the last running call frees c.path
	c.mu.Unlock()
	for _, h := range idle {
		C.leeward_disconnect(h)
	}
	if last {
		c.freePath()
	}
	return nil
}

func (c *Client) freePath() {
	if c.path != nil {
		C.free(unsafe.Pointer(c.path))
		c.path = nil
	}
}

// cOptions builds the C options in C memory (nothing the C side sees points
// into Go memory); free releases it.
func cOptions(opts *Options) (*C.LeewardOptions, func(), error) {
	if opts == nil {
		return nil, func() {}, nil
	}
	var allocs []unsafe.Pointer
	free := func() {
		for _, p := range allocs {
			C.free(p)
		}
	}
	cstr := func(s, what string) (*C.char, error) {
		if strings.IndexByte(s, 0) >= 0 {
			return nil, &Error{Code: CodeWrongType, Message: what + " contains a NUL byte"}
		}
		p := C.CString(s)
		allocs = append(allocs, unsafe.Pointer(p))
		return p, nil
	}
	o := (*C.LeewardOptions)(C.calloc(1, C.size_t(unsafe.Sizeof(C.LeewardOptions{}))))
	allocs = append(allocs, unsafe.Pointer(o))
	o.timeout_secs = C.double(opts.Timeout.Seconds())
	o.memory_limit = C.uint64_t(opts.MemoryLimit)
	if n := len(opts.Mounts); n > 0 {
		size := unsafe.Sizeof(C.LeewardMount{})
		arr := C.calloc(C.size_t(n), C.size_t(size))
		allocs = append(allocs, arr)
		mounts := unsafe.Slice((*C.LeewardMount)(arr), n)
		for i, m := range opts.Mounts {
			host, err := cstr(m.Host, fmt.Sprintf("mounts[%d].Host", i))
			if err != nil {
				free()
				return nil, nil, err
			}
			sandbox, err := cstr(m.Sandbox, fmt.Sprintf("mounts[%d].Sandbox", i))
			if err != nil {
				free()
				return nil, nil, err
			}
			mounts[i].host = host
			mounts[i].sandbox = sandbox
			if !m.Writable {
				mounts[i].read_only = 1
			}
		}
		o.mounts = (*C.LeewardMount)(arr)
		o.mounts_len = C.size_t(n)
	}
	return o, free, nil
}

// goBytes copies n bytes from C memory (C.GoBytes takes an int32 length).
func goBytes(p *C.char, n C.size_t) []byte {
	out := make([]byte, int(n))
	if n > 0 {
		copy(out, unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n)))
	}
	return out
}

func goResult(r *C.LeewardResult) *Result {
	return &Result{
		ExitCode:        int(r.exit_code),
		Stdout:          goBytes(r.stdout_data, r.stdout_len),
		Stderr:          goBytes(r.stderr_data, r.stderr_len),
		Duration:        time.Duration(r.duration_us) * time.Microsecond,
		MemoryPeak:      uint64(r.memory_peak),
		CPUTimeUs:       uint64(r.cpu_time_us),
		TimedOut:        r.timed_out != 0,
		OOMKilled:       r.oom_killed != 0,
		StdoutTruncated: r.stdout_truncated != 0,
		StderrTruncated: r.stderr_truncated != 0,
		Details:         json.RawMessage(C.GoString(r.details_json)),
	}
}
