package leeward

import (
	"encoding/json"
	"errors"
	"testing"
)

func TestCallPingStatusExecute(t *testing.T) {
	c := client(t)
	var pong struct {
		Type    string `json:"type"`
		Success bool   `json:"success"`
	}
	reply, err := c.Call(map[string]any{"type": "Ping"})
	if err != nil || json.Unmarshal(reply, &pong) != nil || pong.Type != "Pong" || !pong.Success {
		t.Fatalf("Ping: %s %v", reply, err)
	}

	var status struct {
		Type    string `json:"type"`
		Version string `json:"version"`
	}
	reply, err = c.Call(json.RawMessage(`{"type": "Status"}`))
	if err != nil || json.Unmarshal(reply, &status) != nil || status.Type != "Status" || status.Version != HeaderVersion {
		t.Fatalf("Status: %s %v", reply, err)
	}

	var execute struct {
		Result struct {
			ExitCode int   `json:"exit_code"`
			Stdout   Bytes `json:"stdout"`
		} `json:"result"`
	}
	reply, err = c.Call(map[string]any{
		"type":  "Execute",
		"code":  "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read()[::-1])",
		"stdin": Bytes("\x00\xffabc"),
	})
	if err != nil {
		t.Fatalf("Execute: %v", err)
	}
	if err := json.Unmarshal(reply, &execute); err != nil {
		t.Fatalf("Execute reply %s: %v", reply, err)
	}
	if execute.Result.ExitCode != 0 || string(execute.Result.Stdout) != "cba\xff\x00" {
		t.Fatalf("Execute: exit %d stdout %q", execute.Result.ExitCode, execute.Result.Stdout)
	}
}

func TestCallErrors(t *testing.T) {
	c := client(t)
	_, err := c.Call(map[string]any{"type": "Execute", "code": "print(1)", "timeout_secs": -1})
	wantCode(t, err, CodeOutOfRange) // the daemon's error reply
	_, err = c.Call(map[string]any{"type": "NoSuchRequest"})
	wantCode(t, err, CodeUnknownType)
	_, err = c.Call(json.RawMessage(`{"type": "Ping"`))
	wantCode(t, err, CodeFrameUndecodable) // invalid JSON
	_, err = c.Call("Ping")
	wantCode(t, err, CodeFrameNotAMap) // JSON, but not an object: refused by the library
	_, err = c.Call(json.RawMessage(`{"type": "Execute", "code": "", "stdin": {"$bytes": "!!"}}`))
	wantCode(t, err, CodeWrongType)
	if _, err := c.Call(map[string]any{"type": "Ping"}); err != nil {
		t.Fatalf("the client is usable after refused calls: %v", err)
	}
	c.Close()
	if _, err := c.Call(map[string]any{"type": "Ping"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Call after Close: %v", err)
	}
}

func TestBytesJSON(t *testing.T) {
	text, err := json.Marshal(Bytes("\x00\xff"))
	if err != nil || string(text) != `{"$bytes":"AP8="}` {
		t.Fatalf("%s %v", text, err)
	}
	var back Bytes
	if err := json.Unmarshal(text, &back); err != nil || string(back) != "\x00\xff" {
		t.Fatalf("%q %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"$bytes":"AA==","x":"1"}`), &back); err == nil {
		t.Fatal("a second key is accepted")
	}
}
