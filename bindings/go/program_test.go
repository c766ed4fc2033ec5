package leeward

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestRunProgramWithStdinEnvFilesAndCollect(t *testing.T) {
	c := client(t)
	needFeatures(t, c, "argv", "collect")
	res, err := c.Run(context.Background(),
		[]string{"sh", "-c", `tr a-z A-Z; echo "$GREETING" >&2; sort in.txt > out.txt; exit 3`},
		&ProgramOptions{
			Stdin:   []byte("shout\n"),
			Env:     map[string]string{"GREETING": "hello"},
			Files:   map[string][]byte{"in.txt": []byte("b\na\n")},
			Collect: []string{"out.txt"},
		})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 3 || string(res.Stdout) != "SHOUT\n" || string(res.Stderr) != "hello\n" {
		t.Fatalf("exit %d stdout %q stderr %q", res.ExitCode, res.Stdout, res.Stderr)
	}
	if string(res.Files["out.txt"]) != "a\nb\n" || res.ExecutionID == "" || res.Cancelled {
		t.Fatalf("%+v", res)
	}
}

func TestRunAProgramThatIsNotThere(t *testing.T) {
	c := client(t)
	needFeatures(t, c, "argv")
	res, err := c.Run(context.Background(), []string{"no-such-program-here"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 127 || !strings.Contains(string(res.Stderr), "no-such-program-here") {
		t.Fatalf("exit %d stderr %q", res.ExitCode, res.Stderr)
	}
}

func TestRunRefusals(t *testing.T) {
	c := client(t)
	needFeatures(t, c, "argv")
	_, err := c.Run(context.Background(), []string{""}, nil)
	wantCode(t, err, CodeOutOfRange) // argv[0] must name a program
	_, err = c.Run(context.Background(), nil, nil)
	wantCode(t, err, CodeWrongType) // no list at all

	c.mu.Lock()
	c.features = []string{} // as a daemon without the feature answers Ping
	c.mu.Unlock()
	_, err = c.Run(context.Background(), []string{"true"}, nil)
	wantCode(t, err, CodeFeatureDisabled)
}

func TestRunStreamEventsAddUpAndCancellingTheContextKillsTheProgram(t *testing.T) {
	c := client(t)
	needFeatures(t, c, "argv", "stream", "cancel")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var stdout []byte
	res, err := c.RunStream(ctx, []string{"sh", "-c", "echo started; exec sleep 600"},
		&ProgramOptions{Options: Options{Timeout: 2 * time.Minute}, ExecutionID: "go-argv"},
		func(ev Event) {
			if ev.Kind == "stdout" && ev.ExecutionID == "go-argv" {
				stdout = append(stdout, ev.Bytes()...)
				stop()
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Cancelled || res.TimedOut || string(stdout) != "started\n" || string(res.Stdout) != "started\n" {
		t.Fatalf("events %q, result %+v", stdout, res)
	}
}

func TestSessionRunsProgramsBesideItsCells(t *testing.T) {
	c := client(t)
	needFeatures(t, c, "sessions", "argv")
	ctx := context.Background()
	sess, err := c.OpenSession(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	if _, err := sess.Run(ctx, "open('t.txt', 'w').write('1\\n2\\n')", nil); err != nil {
		t.Fatal(err)
	}
	res, err := sess.RunProgram(ctx, []string{"wc", "-l", "t.txt"}, &RunOptions{Timeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 0 || string(res.Stdout) != "2 t.txt\n" || res.ExecutionCount != 2 || !res.Session.Alive {
		t.Fatalf("%+v", res)
	}
	var chunks []byte
	res, err = sess.RunProgramStream(ctx, []string{"cat"}, &RunOptions{Stdin: []byte("piped")},
		func(ev Event) { chunks = append(chunks, ev.Bytes()...) })
	if err != nil {
		t.Fatal(err)
	}
	if string(res.Stdout) != "piped" || string(chunks) != "piped" {
		t.Fatalf("events %q, result %+v", chunks, res)
	}
}
