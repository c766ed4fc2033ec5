package leeward

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// Sessions against tests/bindings/fake_daemon.py (request shapes, reply decoding), then
// against the TestMain daemon once its Pong lists the features.

const sid = "k3J9x-AbCdEfGhIjKlMnOp"

var png = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

type fakeDaemon struct {
	socket string
	log    string
}

// startFake runs the scripted fake daemon with replies ({type: reply or [replies]}).
func startFake(t *testing.T, replies map[string]any) *fakeDaemon {
	t.Helper()
	python := filepath.Join(repoRoot(), ".venv", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		t.Skipf("%s not found (run `make setup` at the repo root)", python)
	}
	dir := t.TempDir()
	table, err := json.Marshal(replies)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeDaemon{socket: filepath.Join(dir, "fake.sock"), log: filepath.Join(dir, "requests.jsonl")}
	if err := os.WriteFile(filepath.Join(dir, "replies.json"), table, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, filepath.Join(repoRoot(), "tests", "bindings", "fake_daemon.py"),
		f.socket, filepath.Join(dir, "replies.json"), f.log)
	cmd.Stderr = os.Stderr
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("fake daemon did not start: %q %v", line, err)
	}
	return f
}

// requests are what the fake got of these types, in order, as generic JSON ({"$bytes": ...} for bytes).
func (f *fakeDaemon) requests(t *testing.T, kinds ...string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(f.log)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(data), []byte("\n")) {
		var request map[string]any
		if len(line) == 0 {
			continue
		}
		if err := json.Unmarshal(line, &request); err != nil {
			t.Fatal(err)
		}
		if kind, _ := request["type"].(string); slices.Contains(kinds, kind) {
			out = append(out, request)
		}
	}
	return out
}

func (f *fakeDaemon) client(t *testing.T) *Client {
	t.Helper()
	c, err := Connect(f.socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// asJSON is v as generic JSON, for comparing with what the fake logged.
func asJSON(t *testing.T, v any) any {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func ok(kind string, fields map[string]any) map[string]any {
	reply := map[string]any{"type": kind, "success": true}
	for k, v := range fields {
		reply[k] = v
	}
	return reply
}

func failed(kind, code, message string) map[string]any {
	return map[string]any{"type": kind, "success": false, "error": map[string]any{"code": code, "message": message}}
}

func cell(count int, fields map[string]any) map[string]any {
	result := map[string]any{"exit_code": 0, "stdout": Bytes(""), "stderr": Bytes(""), "duration_ms": 0.4,
		"memory_peak": 1 << 20, "cpu_time_us": 120, "timed_out": false, "oom_killed": false,
		"denied_syscalls": []string{}, "limits": "cgroup", "execution_count": count,
		"session": map[string]any{"id": sid, "alive": true}}
	for k, v := range fields {
		result[k] = v
	}
	return ok("SessionExecute", map[string]any{"result": result})
}

func pong(features ...string) map[string]any {
	return map[string]any{"type": "Pong", "success": true, "version": 2, "features": features}
}

var opened = ok("SessionOpen", map[string]any{"session": map[string]any{
	"id": sid, "idle_timeout_secs": 300, "max_lifetime_secs": 3600}})

func TestSessionRequestShapes(t *testing.T) {
	f := startFake(t, map[string]any{
		"Ping": pong("sessions", "display"), "SessionOpen": opened, "SessionClose": ok("SessionClose", nil),
		"SessionExecute": []any{cell(1, nil), cell(2, map[string]any{"results": []any{
			map[string]any{"main": true, "data": map[string]any{"text/plain": "2"}}}})},
	})
	ctx := context.Background()
	sess, err := f.client(t).OpenSession(ctx, &SessionOptions{
		Mounts: []Mount{{Host: "/srv", Sandbox: "/srv", Writable: true}}, Files: map[string][]byte{"in": []byte("\x00")},
		Env: map[string]string{"A": "1"}, MemoryLimit: 512 << 20, IdleTimeout: time.Minute, MaxLifetime: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if sess.ID != sid || sess.IdleTimeout != 300*time.Second || sess.MaxLifetime != time.Hour {
		t.Fatalf("session %+v", sess)
	}
	first, err := sess.Run(ctx, "x = 1", nil)
	if err != nil || first.Text() != "" || first.ExecutionCount != 1 || first.Session.ID != sid || !first.Session.Alive {
		t.Fatalf("first cell %+v %v", first, err)
	}
	second, err := sess.Run(ctx, "x + 1", &RunOptions{Timeout: 5 * time.Second, Stdin: []byte("in"),
		Collect: []string{"*.csv"}})
	if err != nil || second.Text() != "2" || second.ExecutionCount != 2 {
		t.Fatalf("second cell %+v %v", second, err)
	}
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	wantRequests(t, f.requests(t, "SessionOpen"), []any{map[string]any{"type": "SessionOpen",
		"mounts": []any{map[string]any{"host": "/srv", "sandbox": "/srv", "ro": false}},
		"files":  map[string]any{"in": Bytes("\x00")}, "env": map[string]any{"A": "1"},
		"memory_limit": 512 << 20, "idle_timeout_secs": 60, "max_lifetime_secs": 3600}})
	wantRequests(t, f.requests(t, "SessionExecute"), []any{
		map[string]any{"type": "SessionExecute", "session_id": sid, "code": "x = 1", "display": true},
		map[string]any{"type": "SessionExecute", "session_id": sid, "code": "x + 1", "display": true,
			"timeout_secs": 5, "stdin": Bytes("in"), "collect": []string{"*.csv"}}})
	wantRequests(t, f.requests(t, "SessionClose"), []any{map[string]any{"type": "SessionClose", "session_id": sid}})
	if n := len(f.requests(t, "Ping")); n != 1 {
		t.Fatalf("features asked %d times, want once", n)
	}
}

func wantRequests(t *testing.T, got []map[string]any, want []any) {
	t.Helper()
	if g, w := asJSON(t, got), asJSON(t, want); !reflect.DeepEqual(g, w) {
		t.Fatalf("requests\n got %v\nwant %v", g, w)
	}
}

func TestDisplayIsSentOnlyWhenOffered(t *testing.T) {
	f := startFake(t, map[string]any{"Ping": pong("sessions"), "SessionExecute": cell(1, nil)})
	sess := f.client(t).AttachSession(sid)
	if _, err := sess.Run(context.Background(), "pass", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := sess.Run(context.Background(), "pass", &RunOptions{NoDisplay: true}); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"type": "SessionExecute", "session_id": sid, "code": "pass"}
	wantRequests(t, f.requests(t, "SessionExecute"), []any{want, want})
}

func TestRichResultsDecode(t *testing.T) {
	f := startFake(t, map[string]any{"Ping": pong("display"), "SessionExecute": cell(3, map[string]any{
		"stdout": Bytes("out\xff"), "results_truncated": true,
		"files": map[string]any{"a.csv": Bytes("\x00,1\n")},
		"results": []any{
			map[string]any{"main": false, "data": map[string]any{"image/png": Bytes(png), "text/plain": "<Figure>"}},
			map[string]any{"main": true, "data": map[string]any{"text/plain": "   a", "text/html": "<table/>",
				"application/json": map[string]any{"a": 1}}},
		},
		"error": map[string]any{"name": "ValueError", "value": "v", "traceback": "tb"},
	})})
	r, err := f.client(t).AttachSession(sid).Run(context.Background(), "df", nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Text() != "   a" || r.HTML() != "<table/>" || !bytes.Equal(r.PNG(), png) || !r.ResultsTruncated {
		t.Fatalf("text %q html %q png %q", r.Text(), r.HTML(), r.PNG())
	}
	if string(r.Stdout) != "out\xff" || string(r.Files["a.csv"]) != "\x00,1\n" || r.Error.Name != "ValueError" {
		t.Fatalf("%+v", r)
	}
	var object map[string]int
	if err := json.Unmarshal(r.Main().Data["application/json"], &object); err != nil || object["a"] != 1 {
		t.Fatalf("application/json %s %v", r.Main().Data["application/json"], err)
	}
	if _, isText := r.Results[0].Text("image/png"); isText {
		t.Fatal("bytes read as text")
	}
}

func TestSessionFiles(t *testing.T) {
	f := startFake(t, map[string]any{
		"FileWrite": ok("FileWrite", map[string]any{"size": 3}),
		"FileRead":  ok("FileRead", map[string]any{"data": Bytes("\x00"), "size": 3, "truncated": true}),
		"FileList": ok("FileList", map[string]any{"entries": []any{
			map[string]any{"name": "a", "type": "file", "size": 3}, map[string]any{"name": "d", "type": "dir", "size": 0}}}),
		"FileRemove": ok("FileRemove", nil),
	})
	ctx := context.Background()
	files := f.client(t).AttachSession(sid).Files()
	if n, err := files.Write(ctx, "a", []byte("\x00\xffz")); err != nil || n != 3 {
		t.Fatalf("write %d %v", n, err)
	}
	content, err := files.Read(ctx, "a", 1)
	if err != nil || string(content.Data) != "\x00" || content.Size != 3 || !content.Truncated {
		t.Fatalf("read %+v %v", content, err)
	}
	entries, err := files.List(ctx, ".")
	if err != nil || !reflect.DeepEqual(entries, []FileEntry{{"a", "file", 3}, {"d", "dir", 0}}) {
		t.Fatalf("list %+v %v", entries, err)
	}
	if err := files.Remove(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := files.Read(ctx, "a", 0); err != nil {
		t.Fatal(err)
	}
	wantRequests(t, f.requests(t, "FileWrite", "FileRead", "FileList", "FileRemove"), []any{
		map[string]any{"type": "FileWrite", "session_id": sid, "path": "a", "data": Bytes("\x00\xffz")},
		map[string]any{"type": "FileRead", "session_id": sid, "path": "a", "max_bytes": 1},
		map[string]any{"type": "FileList", "session_id": sid, "path": "."},
		map[string]any{"type": "FileRemove", "session_id": sid, "path": "a"},
		map[string]any{"type": "FileRead", "session_id": sid, "path": "a"},
	})
}

func TestSessionErrorsAndList(t *testing.T) {
	f := startFake(t, map[string]any{
		"Ping":         pong("sessions", "display"),
		"SessionClose": failed("SessionClose", CodeSessionEnded, "session ended: idle_expired"),
		"SessionList": ok("SessionList", map[string]any{"sessions": []any{map[string]any{
			"id": sid, "created_at": 1.5, "last_used_at": 2, "executions": 4, "busy": true, "expires_at": 9}}}),
		"SessionExecute": []any{failed("SessionExecute", CodeSessionBusy, "busy"),
			failed("SessionExecute", CodeSessionNotFound, "no such session")},
	})
	c := f.client(t)
	sess := c.AttachSession(sid)
	_, err := sess.Run(context.Background(), "1", nil)
	if lerr := wantCode(t, err, CodeSessionBusy); !lerr.Retryable() {
		t.Fatal("E5002 is retryable")
	}
	_, err = sess.Run(context.Background(), "1", nil)
	if wantCode(t, err, CodeSessionNotFound).Retryable() {
		t.Fatal("E5001 is not retryable")
	}
	if err := sess.Close(); err != nil {
		t.Fatalf("closing an ended session: %v", err)
	}
	list, err := c.Sessions(context.Background())
	want := []SessionSummary{{ID: sid, CreatedAt: 1.5, LastUsedAt: 2, Executions: 4, Busy: true, ExpiresAt: 9}}
	if err != nil || !reflect.DeepEqual(list, want) {
		t.Fatalf("sessions %+v %v", list, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := sess.Run(ctx, "1", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled ctx sends nothing: %v", err)
	}
}

// ---------------------------------------------------------------- a real daemon

func needFeatures(t *testing.T, c *Client, features ...string) {
	t.Helper()
	offered, err := c.Features(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range features {
		if !slices.Contains(offered, f) {
			t.Skipf("the daemon does not list %q in Pong.features (sessions are issue 13, S1/S2)", f)
		}
	}
}

func TestSessionOnTheDaemon(t *testing.T) {
	c := client(t)
	needFeatures(t, c, "sessions", "display", "files")
	ctx := context.Background()
	sess, err := c.OpenSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sess.Run(ctx, "x = 1", nil); err != nil {
		t.Fatal(err)
	}
	r, err := sess.Run(ctx, "x + 1", nil)
	if err != nil || r.Text() != "2" || r.ExecutionCount != 2 || r.Session.ID != sess.ID {
		t.Fatalf("%+v %v", r, err)
	}
	files := sess.Files()
	if _, err := files.Write(ctx, "in.bin", []byte("\x00\xff")); err != nil {
		t.Fatal(err)
	}
	if r, err := sess.Run(ctx, "len(open('in.bin','rb').read())", nil); err != nil || r.Text() != "2" {
		t.Fatalf("%+v %v", r, err)
	}
	if content, err := files.Read(ctx, "in.bin", 0); err != nil || string(content.Data) != "\x00\xff" {
		t.Fatalf("%+v %v", content, err)
	}
	_, err = files.Read(ctx, "../etc/passwd", 0)
	wantCode(t, err, CodeBadPath)
	if err := sess.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = sess.Run(ctx, "x", nil)
	if lerr := wantCode(t, err, CodeSessionEnded); !strings.Contains(lerr.Message, "closed") {
		t.Fatalf("E5003 names the reason: %v", lerr)
	}
}
