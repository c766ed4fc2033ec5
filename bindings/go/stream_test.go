package leeward

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

const streamJob = "import sys\nprint('out 1', flush=True)\nprint('err', file=sys.stderr, flush=True)\nprint('out 2')\n6 * 7"

func TestExecuteStreamEventsAddUpToTheResult(t *testing.T) {
	c := client(t)
	needFeatures(t, c, "stream", "cancel")
	var stdout, stderr []byte
	var shown []DisplayResult
	res, err := c.ExecuteStream(context.Background(), streamJob, &StreamOptions{Display: true, ExecutionID: "go-1"},
		func(ev Event) {
			if ev.ExecutionID != "go-1" {
				t.Errorf("event of another execution: %+v", ev)
			}
			switch ev.Kind {
			case "stdout":
				stdout = append(stdout, ev.Bytes()...)
			case "stderr":
				stderr = append(stderr, ev.Bytes()...)
			case "display":
				d, _ := ev.Display()
				shown = append(shown, d)
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	if string(stdout) != string(res.Stdout) || string(stdout) != "out 1\nout 2\n" || string(stderr) != string(res.Stderr) {
		t.Fatalf("events %q %q, result %q %q", stdout, stderr, res.Stdout, res.Stderr)
	}
	if len(shown) != 1 || !shown[0].Main || res.Text() != "42" || res.ExecutionID != "go-1" || res.Cancelled {
		t.Fatalf("display %+v, result %+v", shown, res)
	}
}

func TestCancellingTheContextCancelsTheJob(t *testing.T) {
	c := client(t)
	needFeatures(t, c, "stream", "cancel")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	res, err := c.ExecuteStream(ctx, "import time\nprint('started', flush=True)\ntime.sleep(600)",
		&StreamOptions{Options: Options{Timeout: 2 * time.Minute}}, func(ev Event) { stop() })
	if err != nil {
		t.Fatal(err)
	}
	if !res.Cancelled || res.ExitCode >= 0 || string(res.Stdout) != "started\n" {
		t.Fatalf("%+v", res)
	}
	if found, err := c.Cancel(context.Background(), res.ExecutionID); err != nil || found {
		t.Fatalf("an ended job is not found: %v %v", found, err)
	}
}

func TestCancellingTheContextInterruptsACellAndTheSessionLives(t *testing.T) {
	c := client(t)
	needFeatures(t, c, "sessions", "stream", "cancel")
	sess, err := c.OpenSession(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	res, err := sess.RunStream(ctx, "import time\nkept = 1\nprint('in', flush=True)\ntime.sleep(600)",
		&RunOptions{Timeout: 2 * time.Minute}, func(ev Event) { stop() })
	if err != nil {
		t.Fatal(err)
	}
	if !res.Cancelled || res.Error == nil || res.Error.Name != "KeyboardInterrupt" || !res.Session.Alive {
		t.Fatalf("%+v", res)
	}
	if r, err := sess.Run(context.Background(), "kept", nil); err != nil || r.Text() != "1" {
		t.Fatalf("the session lives on: %+v %v", r, err)
	}
}

func TestCallStreamDeliversEventFrames(t *testing.T) {
	c := client(t)
	needFeatures(t, c, "stream")
	var frames []map[string]any
	reply, err := c.CallStream(map[string]any{"type": "Execute", "code": "print('x')", "stream": true},
		func(frame json.RawMessage) {
			var f map[string]any
			if err := json.Unmarshal(frame, &f); err != nil {
				t.Error(err)
			}
			frames = append(frames, f)
		})
	if err != nil || !strings.Contains(string(reply), `"exit_code": 0`) {
		t.Fatalf("%s %v", reply, err)
	}
	if len(frames) == 0 || frames[0]["type"] != "Event" || frames[0]["event"] != "stdout" {
		t.Fatalf("%v", frames)
	}
}

func TestNoStreamOrExecutionIDToADaemonThatDoesNotOfferThem(t *testing.T) {
	f := startFake(t, map[string]any{
		"Ping":    pong("display"),
		"Execute": ok("Execute", map[string]any{"result": map[string]any{"exit_code": 0, "stdout": Bytes("1\n")}}),
	})
	c := f.client(t)
	events := 0
	res, err := c.ExecuteStream(context.Background(), "print(1)", nil, func(Event) { events++ })
	if err != nil || string(res.Stdout) != "1\n" || events != 0 {
		t.Fatalf("%+v %v %d", res, err, events)
	}
	sent := f.requests(t, "Execute")
	if len(sent) != 1 || len(sent[0]) != 2 { // type and code only
		t.Fatalf("%v", sent)
	}
}

func TestACancelRightAfterTheStartStillFindsTheJob(t *testing.T) {
	c := client(t)
	needFeatures(t, c, "cancel")
	ctx, stop := context.WithCancel(context.Background())
	time.AfterFunc(0, stop) // likely before the request reaches the daemon
	res, err := c.ExecuteStream(ctx, "import time\ntime.sleep(600)", &StreamOptions{Options: Options{Timeout: 2 * time.Minute}}, nil)
	if err == context.Canceled {
		t.Skip("cancelled before the request was sent")
	}
	if err != nil || !res.Cancelled {
		t.Fatalf("%+v %v", res, err)
	}
}
