package leeward

// Sessions: one live sandbox whose globals, imports and /tmp files persist between cells
// (SessionOpen, SessionExecute, SessionClose and the File* requests of protocol v2), built
// on Client.Call:
//
//	sess, err := client.OpenSession(ctx, nil)
//	defer sess.Close()
//	sess.Run(ctx, "x = 1", nil)
//	res, err := sess.Run(ctx, "x + 1", nil) // res.Text() == "2"
//
// ctx is checked before each request is sent; a request already sent runs to its end
// (a cell is bounded by its timeout).

import (
	"context"
	"encoding/json"
	"time"
)

// SessionOptions are the settings of a new session; a nil *SessionOptions means all
// defaults. Every value is bounded by the daemon's config.
type SessionOptions struct {
	Mounts      []Mount
	Files       map[string][]byte // relative path in the workdir -> content
	Env         map[string]string
	MemoryLimit uint64        // bytes, for the whole session; 0: the daemon's default
	IdleTimeout time.Duration // ended after this long without a cell; 0: the daemon's default (300 s)
	MaxLifetime time.Duration // ended this long after it opened; 0: the daemon's default (3600 s)
}

// RunOptions are per-cell settings; a nil *RunOptions means all defaults.
type RunOptions struct {
	Timeout time.Duration // 0: the daemon's default; past it the cell gets KeyboardInterrupt
	Stdin   []byte
	// NoDisplay turns off notebook display. By default a cell is displayed (the final
	// expression's value is the main result) when the daemon offers "display".
	NoDisplay bool
	Collect   []string // globs relative to the workdir; matching files come back in Files
	// ExecutionID names the cell for Cancel (RunStream); empty: one is made.
	ExecutionID string
}

// Session is an open session. Its ID names it to any connection of the same user.
// Cells run one at a time, in order; a Session is safe for concurrent use.
type Session struct {
	ID          string
	IdleTimeout time.Duration
	MaxLifetime time.Duration
	client      *Client
}

// DisplayResult is one displayed value: Data maps a MIME type to its JSON value (a
// string for text types, {"$bytes": base64} for image/png, image/jpeg and
// application/pdf, an object for application/json). Main marks the final expression's.
type DisplayResult struct {
	Main bool                       `json:"main"`
	Data map[string]json.RawMessage `json:"data"`
}

// Text returns the value of a text MIME type ("text/plain", "text/html", ...).
func (d DisplayResult) Text(mime string) (string, bool) {
	var s string
	raw, ok := d.Data[mime]
	if !ok || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// Bytes returns the value of a binary MIME type ("image/png", "image/jpeg", "application/pdf").
func (d DisplayResult) Bytes(mime string) ([]byte, bool) {
	var b Bytes
	raw, ok := d.Data[mime]
	if !ok || json.Unmarshal(raw, &b) != nil {
		return nil, false
	}
	return b, true
}

// SessionState is the session a cell ran in, after the cell: Alive false means the
// cell ended it (EndReason "timeout", "oom", "crashed", ...).
type SessionState struct {
	ID        string `json:"id"`
	Alive     bool   `json:"alive"`
	EndReason string `json:"end_reason,omitempty"`
}

// CellError is a cell's uncaught exception.
type CellError struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	Traceback string `json:"traceback"`
}

// CellResult is what a session cell did: the wire protocol's result map, typed.
type CellResult struct {
	ExitCode         int              `json:"exit_code"`
	Stdout           Bytes            `json:"stdout"`
	Stderr           Bytes            `json:"stderr"`
	DurationMs       float64          `json:"duration_ms"`
	MemoryPeak       uint64           `json:"memory_peak"`
	CPUTimeUs        uint64           `json:"cpu_time_us"`
	TimedOut         bool             `json:"timed_out"`
	OOMKilled        bool             `json:"oom_killed"`
	StdoutTruncated  bool             `json:"stdout_truncated"`
	StderrTruncated  bool             `json:"stderr_truncated"`
	DeniedSyscalls   []string         `json:"denied_syscalls"`
	Limits           string           `json:"limits"`
	Error            *CellError       `json:"error"`
	Results          []DisplayResult  `json:"results"`
	ResultsTruncated bool             `json:"results_truncated"`
	Files            map[string]Bytes `json:"files"`
	FilesTruncated   bool             `json:"files_truncated"`
	ExecutionID      string           `json:"execution_id"`
	ExecutionCount   int              `json:"execution_count"`
	Cancelled        bool             `json:"cancelled"`
	Session          *SessionState    `json:"session"`
}

// Main is the final expression's result, or nil when the cell ended without one.
func (r *CellResult) Main() *DisplayResult {
	for i := range r.Results {
		if r.Results[i].Main {
			return &r.Results[i]
		}
	}
	return nil
}

// Text is the final expression's text/plain ("" when there is none).
func (r *CellResult) Text() string {
	if main := r.Main(); main != nil {
		text, _ := main.Text("text/plain")
		return text
	}
	return ""
}

// HTML is the main result's text/html, else the first result's that has one.
func (r *CellResult) HTML() string {
	for _, d := range r.mainFirst() {
		if html, ok := d.Text("text/html"); ok {
			return html
		}
	}
	return ""
}

// PNG is the main result's image/png, else the first result's (a matplotlib figure).
func (r *CellResult) PNG() []byte {
	for _, d := range r.mainFirst() {
		if png, ok := d.Bytes("image/png"); ok {
			return png
		}
	}
	return nil
}

func (r *CellResult) mainFirst() []DisplayResult {
	ordered := make([]DisplayResult, 0, len(r.Results))
	if main := r.Main(); main != nil {
		ordered = append(ordered, *main)
	}
	for _, d := range r.Results {
		if !d.Main {
			ordered = append(ordered, d)
		}
	}
	return ordered
}

// SessionSummary is one of your open sessions (times: Unix seconds).
type SessionSummary struct {
	ID         string  `json:"id"`
	CreatedAt  float64 `json:"created_at"`
	LastUsedAt float64 `json:"last_used_at"`
	Executions int     `json:"executions"`
	Busy       bool    `json:"busy"`
	ExpiresAt  float64 `json:"expires_at"`
}

// callInto sends request once ctx allows and decodes the reply into reply (may be nil).
func (c *Client) callInto(ctx context.Context, request map[string]any, reply any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	raw, err := c.Call(request)
	if err != nil || reply == nil {
		return err
	}
	if err := json.Unmarshal(raw, reply); err != nil {
		return &Error{Code: CodeInternal, Message: "undecodable " + request["type"].(string) + " reply: " + err.Error()}
	}
	return nil
}

// Features lists what the daemon offers beyond protocol v1 (Pong's "features":
// "sessions", "display", "collect", "files", ...); empty for a v1 daemon.
func (c *Client) Features(ctx context.Context) ([]string, error) {
	var pong struct {
		Features []string `json:"features"`
	}
	err := c.callInto(ctx, map[string]any{"type": "Ping"}, &pong)
	return pong.Features, err
}

func (c *Client) offers(ctx context.Context, feature string) (bool, error) {
	c.mu.Lock()
	features := c.features
	c.mu.Unlock()
	if features == nil {
		var err error
		if features, err = c.Features(ctx); err != nil {
			return false, err
		}
		if features == nil {
			features = []string{}
		}
		c.mu.Lock()
		c.features = features
		c.mu.Unlock()
	}
	for _, f := range features {
		if f == feature {
			return true, nil
		}
	}
	return false, nil
}

// OpenSession opens a session: one sandbox kept alive between cells. Close it when done.
func (c *Client) OpenSession(ctx context.Context, opts *SessionOptions) (*Session, error) {
	request := map[string]any{"type": "SessionOpen"}
	if opts != nil {
		if len(opts.Mounts) > 0 {
			request["mounts"] = wireMounts(opts.Mounts)
		}
		addFilesAndEnv(request, opts.Files, opts.Env)
		if opts.MemoryLimit > 0 {
			request["memory_limit"] = opts.MemoryLimit
		}
		if opts.IdleTimeout > 0 {
			request["idle_timeout_secs"] = opts.IdleTimeout.Seconds()
		}
		if opts.MaxLifetime > 0 {
			request["max_lifetime_secs"] = opts.MaxLifetime.Seconds()
		}
	}
	var reply struct {
		Session struct {
			ID          string  `json:"id"`
			IdleTimeout float64 `json:"idle_timeout_secs"`
			MaxLifetime float64 `json:"max_lifetime_secs"`
		} `json:"session"`
	}
	if err := c.callInto(ctx, request, &reply); err != nil {
		return nil, err
	}
	s := reply.Session
	return &Session{ID: s.ID, client: c, IdleTimeout: time.Duration(s.IdleTimeout * float64(time.Second)),
		MaxLifetime: time.Duration(s.MaxLifetime * float64(time.Second))}, nil
}

// wireMounts are mounts as the protocol's requests carry them (read-only unless Writable).
func wireMounts(mounts []Mount) []map[string]any {
	wire := make([]map[string]any, len(mounts))
	for i, m := range mounts {
		wire[i] = map[string]any{"host": m.Host, "sandbox": m.Sandbox, "ro": !m.Writable}
	}
	return wire
}

// addFilesAndEnv sets the workdir's files (as bytes, not strings) and the environment of a
// SessionOpen or an Execute, each only when set.
func addFilesAndEnv(request map[string]any, files map[string][]byte, env map[string]string) {
	if len(files) > 0 {
		wire := make(map[string]Bytes, len(files))
		for name, data := range files {
			wire[name] = data
		}
		request["files"] = wire
	}
	if len(env) > 0 {
		request["env"] = env
	}
}

// AttachSession is a handle on a session opened elsewhere by the same user (another
// connection, the CLI); nothing is sent until it is used.
func (c *Client) AttachSession(id string) *Session { return &Session{ID: id, client: c} }

// Sessions lists your open sessions (another user's are never listed).
func (c *Client) Sessions(ctx context.Context) ([]SessionSummary, error) {
	var reply struct {
		Sessions []SessionSummary `json:"sessions"`
	}
	err := c.callInto(ctx, map[string]any{"type": "SessionList"}, &reply)
	return reply.Sessions, err
}

// Run runs code as the session's next cell. A cell past its timeout is interrupted;
// one that ignores the interrupt ends the session (Session.Alive false in the result).
func (s *Session) Run(ctx context.Context, code string, opts *RunOptions) (*CellResult, error) {
	request, err := s.cellRequest(ctx, code, opts)
	if err != nil {
		return nil, err
	}
	var reply struct {
		Result CellResult `json:"result"`
	}
	if err := s.client.callInto(ctx, request, &reply); err != nil {
		return nil, err
	}
	return &reply.Result, nil
}

// cellRequest is a SessionExecute of code with opts (nil: defaults).
func (s *Session) cellRequest(ctx context.Context, code string, opts *RunOptions) (map[string]any, error) {
	if opts == nil {
		opts = &RunOptions{}
	}
	request := map[string]any{"type": "SessionExecute", "session_id": s.ID, "code": code}
	addCellFields(request, opts)
	if !opts.NoDisplay {
		// A v2 field goes only to a daemon that offers it (it refuses unknown fields).
		display, err := s.client.offers(ctx, "display")
		if err != nil {
			return nil, err
		}
		if display {
			request["display"] = true
		}
	}
	return request, nil
}

// addCellFields sets the fields a code cell and a program cell share, each only when set.
func addCellFields(request map[string]any, opts *RunOptions) {
	if opts.Timeout > 0 {
		request["timeout_secs"] = opts.Timeout.Seconds()
	}
	if len(opts.Stdin) > 0 {
		request["stdin"] = Bytes(opts.Stdin)
	}
	if len(opts.Collect) > 0 {
		request["collect"] = opts.Collect
	}
}

// Close ends the session and destroys its sandbox. A session that already ended
// (idle TTL, lifetime, OOM, a closed one) closes without an error.
func (s *Session) Close() error {
	err := s.client.callInto(context.Background(), map[string]any{"type": "SessionClose", "session_id": s.ID}, nil)
	if lerr, ok := err.(*Error); ok && lerr.Code == CodeSessionEnded {
		return nil
	}
	return err
}

// Files reads and writes the session's workdir, through its own sandbox process.
func (s *Session) Files() *SessionFiles { return &SessionFiles{session: s} }

// SessionFiles are a session's files. Paths are relative to the workdir (/tmp), or
// absolute under /tmp or a writable mount; ".." is refused (E2005).
type SessionFiles struct{ session *Session }

// FileEntry is an entry of a session directory; Type is "file", "dir", "symlink" or "other".
type FileEntry struct {
	Name string `json:"name"`
	Type string `json:"type"`
	Size int64  `json:"size"`
}

// FileContent is what Read returned: Size is the whole file's, Truncated when maxBytes cut it.
type FileContent struct {
	Data      Bytes `json:"data"`
	Size      int64 `json:"size"`
	Truncated bool  `json:"truncated"`
}

func (f *SessionFiles) call(ctx context.Context, kind, path string, fields map[string]any, reply any) error {
	request := map[string]any{"type": kind, "session_id": f.session.ID, "path": path}
	for k, v := range fields {
		request[k] = v
	}
	return f.session.client.callInto(ctx, request, reply)
}

// Write replaces path with data and returns the size written.
func (f *SessionFiles) Write(ctx context.Context, path string, data []byte) (int64, error) {
	var reply struct {
		Size int64 `json:"size"`
	}
	err := f.call(ctx, "FileWrite", path, map[string]any{"data": Bytes(data)}, &reply)
	return reply.Size, err
}

// Read returns path's content; maxBytes > 0 reads at most that many bytes.
func (f *SessionFiles) Read(ctx context.Context, path string, maxBytes int64) (*FileContent, error) {
	fields := map[string]any{}
	if maxBytes > 0 {
		fields["max_bytes"] = maxBytes
	}
	var reply FileContent
	if err := f.call(ctx, "FileRead", path, fields, &reply); err != nil {
		return nil, err
	}
	return &reply, nil
}

// List returns the entries of the directory path ("." for the workdir).
func (f *SessionFiles) List(ctx context.Context, path string) ([]FileEntry, error) {
	var reply struct {
		Entries []FileEntry `json:"entries"`
	}
	err := f.call(ctx, "FileList", path, nil, &reply)
	return reply.Entries, err
}

// Remove deletes path.
func (f *SessionFiles) Remove(ctx context.Context, path string) error {
	return f.call(ctx, "FileRemove", path, nil, nil)
}
