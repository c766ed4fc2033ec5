package leeward

// Streaming and cancel (protocol v2 "stream", "execution_id", Cancel): a job's output
// as it arrives, and the context that stops it.
//
//	ctx, stop := context.WithCancel(context.Background())
//	res, err := client.ExecuteStream(ctx, "print(1)", nil, func(ev leeward.Event) {
//		os.Stdout.Write(ev.Bytes()) // ev.Kind: "stdout", "stderr" or "display"
//	})
//	// stop() from anywhere sends Cancel: the sandbox is killed, res.Cancelled is true.

/*
#include <stdint.h>
#include <stdlib.h>
#include <leeward.h>
int leeward_go_call_stream(LeewardHandle *handle, const char *request_json, uintptr_t user, char **reply_json);
*/
import "C"

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"runtime/cgo"
	"time"
	"unsafe"
)

// cancelRetry: a Cancel sent right after the job started may arrive before it; it is sent
// again this often until the job is found or over.
const cancelRetry = 20 * time.Millisecond

// Event is one frame a streaming job sends before its result.
type Event struct {
	ExecutionID string          `json:"execution_id"`
	Kind        string          `json:"event"` // "stdout", "stderr" or "display"
	Data        json.RawMessage `json:"data"`
}

// Bytes is a stdout or stderr chunk (nil for a display event). The chunks of a job
// add up to its result's Stdout and Stderr.
func (e Event) Bytes() []byte {
	var b Bytes
	if e.Kind == "display" || json.Unmarshal(e.Data, &b) != nil {
		return nil
	}
	return b
}

// Display is a display event's result (sent just before the job's result).
func (e Event) Display() (DisplayResult, bool) {
	var d DisplayResult
	if e.Kind != "display" || json.Unmarshal(e.Data, &d) != nil {
		return DisplayResult{}, false
	}
	return d, true
}

// StreamOptions are the settings of ExecuteStream; a nil *StreamOptions means all defaults.
type StreamOptions struct {
	Options
	Stdin   []byte
	Display bool     // run as a notebook cell: display results come as events and in Results
	Collect []string // globs relative to the workdir; matching files come back in Files
	// ExecutionID names the job for Cancel from elsewhere (1 to 64 of A-Z a-z 0-9 _ -);
	// empty: one is made (unguessable) and returned in the result.
	ExecutionID string
}

//export leewardGoEvent
func leewardGoEvent(eventJSON *C.char, user unsafe.Pointer) {
	deliver := cgo.Handle(uintptr(user)).Value().(func(json.RawMessage))
	deliver(json.RawMessage(C.GoString(eventJSON)))
}

// CallStream is Call for a request that may stream (e.g. an Execute with "stream":
// true): onEvent gets each Event frame's JSON, in order, before the reply returns, on
// the calling goroutine (leeward_call_stream). A slow onEvent slows the job, never
// the daemon's memory: the daemon stops reading the job's output meanwhile.
func (c *Client) CallStream(request any, onEvent func(json.RawMessage)) (json.RawMessage, error) {
	text, err := json.Marshal(request)
	if err != nil {
		return nil, &Error{Code: CodeFrameUndecodable, Message: "request is not JSON: " + err.Error()}
	}
	creq := C.CString(string(text))
	defer C.free(unsafe.Pointer(creq))
	handle := cgo.NewHandle(onEvent)
	defer handle.Delete()
	var reply json.RawMessage
	err = c.onHandle(func(h *C.LeewardHandle) error {
		var s *C.char
		if C.leeward_go_call_stream((*C.LeewardHandle)(unsafe.Pointer(h)), creq, C.uintptr_t(handle), &s) != 0 {
			return lastError()
		}
		reply = takeString(s)
		return nil
	})
	return reply, err
}

// Cancel stops a running job or session cell of yours by its execution ID, from any
// goroutine or process of the same user: a job is killed, a cell gets
// KeyboardInterrupt (then is killed after the daemon's interrupt_grace_secs). It
// reports whether one was running; its result then has Cancelled set.
func (c *Client) Cancel(ctx context.Context, executionID string) (bool, error) {
	var reply struct {
		Found bool `json:"found"`
	}
	err := c.callInto(ctx, map[string]any{"type": "Cancel", "execution_id": executionID}, &reply)
	return reply.Found, err
}

// ExecuteStream runs code in a fresh sandbox like Execute, calling onEvent (may be
// nil) for each Event as output arrives. Cancelling ctx while it runs sends Cancel:
// the job is killed and the result, with Cancelled set, is returned (a nil error:
// the job ran). A daemon that does not offer streaming sends no events.
func (c *Client) ExecuteStream(ctx context.Context, code string, opts *StreamOptions,
	onEvent func(Event)) (*CellResult, error) {
	if opts == nil {
		opts = &StreamOptions{}
	}
	request := map[string]any{"type": "Execute", "code": code}
	addJobFields(request, opts.Options, opts.Stdin, opts.Collect)
	if opts.Display {
		request["display"] = true
	}
	return c.runStreaming(ctx, request, opts.ExecutionID, onEvent)
}

// addJobFields sets the fields a one-shot job of code and one of a program share, each
// only when set.
func addJobFields(request map[string]any, opts Options, stdin []byte, collect []string) {
	if opts.Timeout > 0 {
		request["timeout_secs"] = opts.Timeout.Seconds()
	}
	if opts.MemoryLimit > 0 {
		request["memory_limit"] = opts.MemoryLimit
	}
	if len(opts.Mounts) > 0 {
		request["mounts"] = wireMounts(opts.Mounts)
	}
	if len(stdin) > 0 {
		request["stdin"] = Bytes(stdin)
	}
	if len(collect) > 0 {
		request["collect"] = collect
	}
}

// runStreaming sends an Execute or SessionExecute with "stream" and "execution_id"
// (each only if the daemon offers it), watching ctx to send Cancel.
func (c *Client) runStreaming(ctx context.Context, request map[string]any, executionID string,
	onEvent func(Event)) (*CellResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	streams, err := c.offers(ctx, "stream")
	if err != nil {
		return nil, err
	}
	cancels, err := c.offers(ctx, "cancel")
	if err != nil {
		return nil, err
	}
	if streams && onEvent != nil {
		request["stream"] = true
	}
	if cancels {
		if executionID == "" {
			executionID = newExecutionID()
		}
		request["execution_id"] = executionID
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-ctx.Done():
				// The request may not have reached the daemon yet: ask until found or over.
				for {
					if found, err := c.Cancel(context.Background(), executionID); found || err != nil {
						return
					}
					select {
					case <-done:
						return
					case <-time.After(cancelRetry):
					}
				}
			case <-done:
			}
		}()
	}
	raw, err := c.CallStream(request, func(frame json.RawMessage) {
		var ev Event
		if onEvent != nil && json.Unmarshal(frame, &ev) == nil {
			onEvent(ev)
		}
	})
	if err != nil {
		return nil, err
	}
	var reply struct {
		Result CellResult `json:"result"`
	}
	if err := json.Unmarshal(raw, &reply); err != nil {
		return nil, &Error{Code: CodeInternal, Message: "undecodable " + request["type"].(string) + " reply: " + err.Error()}
	}
	return &reply.Result, nil
}

// RunStream runs code as the session's next cell like Run, calling onEvent (may be
// nil) for each Event as output arrives. Cancelling ctx while it runs sends Cancel:
// the cell gets KeyboardInterrupt and the session lives on (unless the cell ignores
// it: then it is killed and the session ends).
func (s *Session) RunStream(ctx context.Context, code string, opts *RunOptions, onEvent func(Event)) (*CellResult, error) {
	request, err := s.cellRequest(ctx, code, opts)
	if err != nil {
		return nil, err
	}
	id := ""
	if opts != nil {
		id = opts.ExecutionID
	}
	return s.client.runStreaming(ctx, request, id, onEvent)
}

func newExecutionID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("leeward: no randomness for an execution id: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}
