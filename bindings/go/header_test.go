package leeward

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// include/leeward.h is the one source of the codes and the version: the constants
// are read from its macros by cgo, and this test fails when the header gains a code
// that has no Code* constant here.
func TestCodesAreTheHeaders(t *testing.T) {
	header, err := os.ReadFile(filepath.Join(repoRoot(), "include", "leeward.h"))
	if err != nil {
		t.Fatal(err)
	}
	inHeader := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^#define LEEWARD_E_([A-Z0-9_]+) "(E\d{4})"`).FindAllSubmatch(header, -1) {
		inHeader[string(m[1])] = string(m[2])
	}
	inGo := map[string]string{
		"FRAME_EMPTY": CodeFrameEmpty, "FRAME_TOO_LARGE": CodeFrameTooLarge,
		"FRAME_UNDECODABLE": CodeFrameUndecodable, "FRAME_NOT_A_MAP": CodeFrameNotAMap,
		"UNKNOWN_TYPE": CodeUnknownType, "CONNECTION_CLOSED": CodeConnectionClosed,
		"UNTRUSTED_SOCKET": CodeUntrustedSocket, "MISSING_FIELD": CodeMissingField,
		"WRONG_TYPE": CodeWrongType, "OUT_OF_RANGE": CodeOutOfRange, "UNKNOWN_FIELD": CodeUnknownField,
		"BAD_PATH": CodeBadPath, "MOUNT_NOT_ALLOWED": CodeMountNotAllowed,
		"MOUNT_NOT_FOUND": CodeMountNotFound, "MOUNT_SYMLINK": CodeMountSymlink,
		"SANDBOX_UNAVAILABLE": CodeSandboxUnavailable, "SANDBOX_FAILED": CodeSandboxFailed,
		"SHUTTING_DOWN": CodeShuttingDown, "DAEMON_BUSY": CodeDaemonBusy, "INTERNAL": CodeInternal,
		"CODE_OR_ARGV": CodeCodeOrArgv, "FEATURE_DISABLED": CodeFeatureDisabled,
		"SESSION_NOT_FOUND": CodeSessionNotFound, "SESSION_BUSY": CodeSessionBusy,
		"SESSION_ENDED": CodeSessionEnded, "SESSION_LIMIT": CodeSessionLimit,
	}
	if len(inHeader) == 0 {
		t.Fatal("no LEEWARD_E_* in the header")
	}
	for name, code := range inHeader {
		if inGo[name] != code {
			t.Errorf("LEEWARD_E_%s is %s in the header, %q here", name, code, inGo[name])
		}
	}
	if len(inGo) != len(inHeader) {
		t.Errorf("%d codes here, %d in the header", len(inGo), len(inHeader))
	}
	if ErrClosed.Code != "E1006" || CodeDaemonBusy != "E3004" || CodeUntrustedSocket != "E1007" {
		t.Errorf("client closed %s, busy %s, untrusted %s", ErrClosed.Code, CodeDaemonBusy, CodeUntrustedSocket)
	}
	version := regexp.MustCompile(`(?m)^#define LEEWARD_VERSION "([^"]+)"`).FindSubmatch(header)
	if version == nil || string(version[1]) != HeaderVersion || Version() != HeaderVersion {
		t.Errorf("header version %q, HeaderVersion %q, library %q", version, HeaderVersion, Version())
	}
}
