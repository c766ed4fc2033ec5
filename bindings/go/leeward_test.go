package leeward

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests run real executions against a daemon started by TestMain from
// this checkout (<repo>/.venv/bin/python -m leeward_daemon). When none can
// start, the tests that need one are skipped with the reason.

const startWait = 90 * time.Second // bound on waiting for readiness, not a speed assertion

var (
	socketPath string // of the test daemon
	allowedDir string // the daemon's --allow-path
	skipReason string // why there is no daemon ("" when there is one)
)

func repoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func TestMain(m *testing.M) {
	os.Exit(runWithDaemon(m))
}

func runWithDaemon(m *testing.M) int {
	dir, err := os.MkdirTemp("", "leeward-go-test-")
	if err != nil {
		skipReason = "cannot create a temporary directory: " + err.Error()
		return m.Run()
	}
	defer os.RemoveAll(dir)
	stop, err := startDaemon(dir)
	if err != nil {
		skipReason = "no test daemon: " + err.Error()
		fmt.Fprintln(os.Stderr, "leeward: skipping daemon tests:", skipReason)
		return m.Run()
	}
	defer stop()
	return m.Run()
}

func startDaemon(dir string) (stop func(), err error) {
	repo := repoRoot()
	python := filepath.Join(repo, ".venv", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		return nil, fmt.Errorf("%s not found (run `make setup` at the repo root)", python)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	allowed := filepath.Join(real, "allowed")
	if err := os.Mkdir(allowed, 0o777); err != nil {
		return nil, err
	}
	// A root daemon runs each sandbox as an otherwise unused uid: rw mounts must let it write.
	if err := os.Chmod(allowed, 0o777); err != nil {
		return nil, err
	}
	sock := filepath.Join(real, "s.sock")
	logPath := filepath.Join(real, "daemon.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	cmd := exec.Command(python, "-m", "leeward_daemon", "--socket", sock, "--workers", "2",
		"--allow-path", allowed)
	cmd.Dir = "/"
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop = func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}
	logTail := func() string {
		data, _ := os.ReadFile(logPath)
		if len(data) > 2000 {
			data = data[len(data)-2000:]
		}
		return string(data)
	}

	deadline := time.Now().Add(startWait)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return nil, fmt.Errorf("daemon exited (%v):\n%s", cmd.ProcessState, logTail())
		default:
		}
		if c, err := Connect(sock); err == nil {
			err = c.Ping()
			c.Close()
			if err == nil {
				socketPath, allowedDir = sock, allowed
				return stop, nil
			}
			last = err
		} else {
			last = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop()
	return nil, fmt.Errorf("daemon did not answer within %v (last error: %v):\n%s", startWait, last, logTail())
}

func client(t *testing.T) *Client {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	c, err := Connect(socketPath)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func execute(t *testing.T, c *Client, code string, opts *Options) *Result {
	t.Helper()
	res, err := c.Execute(code, opts)
	if err != nil {
		t.Fatalf("Execute(%q): %v", code, err)
	}
	return res
}

func wantCode(t *testing.T, err error, code string) *Error {
	t.Helper()
	var lerr *Error
	if !errors.As(err, &lerr) {
		t.Fatalf("want *leeward.Error with code %s, got %T: %v", code, err, err)
	}
	if lerr.Code != code {
		t.Fatalf("want code %s, got %s (%s)", code, lerr.Code, lerr.Message)
	}
	if lerr.Message == "" {
		t.Fatalf("error %s has no message", code)
	}
	return lerr
}

func TestVersion(t *testing.T) {
	if v := Version(); v == "" {
		t.Fatal("empty version")
	}
}

func TestPrintSum(t *testing.T) {
	c := client(t)
	res := execute(t, c, "print(sum(range(100)))", nil)
	if string(res.Stdout) != "4950\n" || res.ExitCode != 0 {
		t.Fatalf("stdout %q exit %d stderr %q", res.Stdout, res.ExitCode, res.Stderr)
	}
	if res.TimedOut || res.OOMKilled || res.StdoutTruncated || res.StderrTruncated {
		t.Fatalf("unexpected flags: %+v", res)
	}
	if res.Duration <= 0 {
		t.Fatalf("duration %v", res.Duration)
	}
	if !bytes.HasPrefix(res.Details, []byte("{")) {
		t.Fatalf("details %q", res.Details)
	}
}

func TestExitCodeAndStderr(t *testing.T) {
	c := client(t)
	res := execute(t, c, "import sys\nsys.stderr.write('oops')\nsys.exit(3)", nil)
	if res.ExitCode != 3 || string(res.Stderr) != "oops" {
		t.Fatalf("exit %d stderr %q", res.ExitCode, res.Stderr)
	}
	res = execute(t, c, "raise ValueError('boom')", nil)
	if res.ExitCode != 1 || !strings.Contains(string(res.Stderr), "ValueError: boom") {
		t.Fatalf("exit %d stderr %q", res.ExitCode, res.Stderr)
	}
}

func TestBinaryOutput(t *testing.T) {
	c := client(t)
	res := execute(t, c, "import sys; sys.stdout.buffer.write(b'a\\x00b\\xff')", nil)
	if !bytes.Equal(res.Stdout, []byte("a\x00b\xff")) {
		t.Fatalf("stdout %q", res.Stdout)
	}
}

func TestTimeout(t *testing.T) {
	c := client(t)
	res := execute(t, c, "while True: pass", &Options{Timeout: time.Second})
	if !res.TimedOut {
		t.Fatalf("not timed out: %+v", res)
	}
}

// executeConcurrently runs job(i) for i < n, each on its own goroutine, on one
// Client, and returns every call's stdout and error by index.
func executeConcurrently(c *Client, n int, job func(i int) (string, *Options)) ([]string, []error) {
	var wg sync.WaitGroup
	errs := make([]error, n)
	outs := make([]string, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			code, opts := job(i)
			res, err := c.Execute(code, opts)
			errs[i] = err
			if err == nil {
				outs[i] = string(res.Stdout)
			}
		}(i)
	}
	wg.Wait()
	return outs, errs
}

func TestConcurrentGoroutines(t *testing.T) {
	c := client(t)
	const n = 16
	outs, errs := executeConcurrently(c, n, func(i int) (string, *Options) {
		return fmt.Sprintf("print(%d*%d)", i, i), nil
	})
	for i := 0; i < n; i++ {
		if errs[i] != nil {
			t.Errorf("goroutine %d: %v", i, errs[i])
		} else if want := fmt.Sprintf("%d\n", i*i); outs[i] != want {
			t.Errorf("goroutine %d: got %q, want %q", i, outs[i], want)
		}
	}
}

// The error of a failed call is read on the OS thread that made it: a
// neighbour's success must not blank it, nor its failure leak into a neighbour.
func TestConcurrentFailuresAndSuccesses(t *testing.T) {
	c := client(t)
	const n = 16
	outs, errs := executeConcurrently(c, n, func(i int) (string, *Options) {
		if i%2 == 1 {
			return fmt.Sprintf("print(%d+1)", i), &Options{Timeout: 1e9 * time.Second}
		}
		return fmt.Sprintf("print(%d+1)", i), nil
	})
	for i := 0; i < n; i++ {
		if i%2 == 1 {
			var lerr *Error
			if !errors.As(errs[i], &lerr) || lerr.Code != CodeOutOfRange {
				t.Errorf("call %d: want E2003, got %v", i, errs[i])
			}
		} else if errs[i] != nil || outs[i] != fmt.Sprintf("%d\n", i+1) {
			t.Errorf("call %d: got %q, %v", i, outs[i], errs[i])
		}
	}
}

func TestNoDaemon(t *testing.T) {
	bogus := filepath.Join(t.TempDir(), "nobody-listens.sock")
	c, err := Connect(bogus)
	if c != nil {
		c.Close()
	}
	lerr := wantCode(t, err, CodeConnectionClosed)
	if !strings.Contains(lerr.Error(), "E1006") {
		t.Fatalf("Error() %q does not name the code", lerr.Error())
	}
}

func TestBadOptions(t *testing.T) {
	c := client(t)
	_, err := c.Execute("print(1)", &Options{Timeout: 1e9 * time.Second})
	wantCode(t, err, CodeOutOfRange)
	_, err = c.Execute("print(1)", &Options{Timeout: -time.Second})
	wantCode(t, err, CodeOutOfRange)
	_, err = c.Execute("print(1)", &Options{MemoryLimit: 1 << 60})
	wantCode(t, err, CodeOutOfRange)
	// The client is still usable after a refused request.
	if res := execute(t, c, "print(2)", nil); string(res.Stdout) != "2\n" {
		t.Fatalf("stdout %q", res.Stdout)
	}
}

func TestNULInCode(t *testing.T) {
	c := client(t)
	_, err := c.Execute("print(1)\x00print(2)", nil)
	wantCode(t, err, CodeWrongType)
}

func TestMounts(t *testing.T) {
	c := client(t)
	shared, err := os.MkdirTemp(allowedDir, "job-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(shared, "input.txt"), []byte("host data"), 0o644); err != nil {
		t.Fatal(err)
	}
	code := "print(open('/data/input.txt').read())\n" +
		"try:\n    open('/data/new', 'w'); print('written')\n" +
		"except OSError as e:\n    print('errno', e.errno)\n"
	res := execute(t, c, code, &Options{Mounts: []Mount{{Host: shared, Sandbox: "/data"}}})
	if string(res.Stdout) != "host data\nerrno 30\n" {
		t.Fatalf("read-only mount: stdout %q stderr %q", res.Stdout, res.Stderr)
	}
	res = execute(t, c, "open('/out/result.txt', 'w').write('from sandbox')",
		&Options{Mounts: []Mount{{Host: shared, Sandbox: "/out", Writable: true}}})
	if res.ExitCode != 0 {
		t.Fatalf("read-write mount: exit %d stderr %q", res.ExitCode, res.Stderr)
	}
	if data, err := os.ReadFile(filepath.Join(shared, "result.txt")); err != nil || string(data) != "from sandbox" {
		t.Fatalf("read-write mount: %q %v", data, err)
	}
	_, err = c.Execute("print(1)", &Options{Mounts: []Mount{{Host: "/etc", Sandbox: "/data"}}})
	wantCode(t, err, CodeMountNotAllowed)
}

func TestPingStatusClose(t *testing.T) {
	c := client(t)
	if err := c.Ping(); err != nil {
		t.Fatal(err)
	}
	st, err := c.Status()
	if err != nil || !bytes.HasPrefix(st, []byte("{")) {
		t.Fatalf("status %q %v", st, err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.Execute("print(1)", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Execute after Close: %v", err)
	}
}
