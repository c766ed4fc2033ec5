//! What the daemon sends back: a job's result, displayed values, stream events.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::wire;

/// The outcome of a job or a session cell that ran: the wire protocol's result map.
///
/// A job that ran is a success even if the Python code failed: look at `exit_code`,
/// `timed_out`, `oom_killed`, `cancelled` and `error`. The v2 fields are empty unless
/// asked for (`display`, `collect`) or relevant (session cells).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct ExecutionResult {
    /// The code's exit status: 1 for an uncaught exception, -N when killed by signal N.
    pub exit_code: i32,
    #[serde(with = "wire::bytes")]
    pub stdout: Vec<u8>,
    #[serde(with = "wire::bytes")]
    pub stderr: Vec<u8>,
    pub duration_ms: f64,
    /// Bytes.
    pub memory_peak: u64,
    /// User + system CPU time, microseconds.
    pub cpu_time_us: u64,
    pub timed_out: bool,
    pub oom_killed: bool,
    /// The daemon cut the output at its cap.
    #[serde(default)]
    pub stdout_truncated: bool,
    #[serde(default)]
    pub stderr_truncated: bool,
    /// Syscalls the sandbox's seccomp filter refused.
    #[serde(default)]
    pub denied_syscalls: Vec<String>,
    /// The limits backend that enforced and measured the job ("cgroup2", "rlimit", ...).
    #[serde(default)]
    pub limits: String,
    /// The code's uncaught exception.
    #[serde(default)]
    pub error: Option<PythonError>,
    /// Displayed values, in emission order (with `display`).
    #[serde(default)]
    pub results: Vec<DisplayResult>,
    #[serde(default)]
    pub results_truncated: bool,
    /// Collected workdir files (with `collect`): relative path -> content.
    #[serde(default, with = "wire::bytes_map")]
    pub files: BTreeMap<String, Vec<u8>>,
    #[serde(default)]
    pub files_truncated: bool,
    /// The handle [`Client::cancel`](crate::Client::cancel) takes (v2 daemons).
    #[serde(default)]
    pub execution_id: Option<String>,
    /// 1, 2, ... for session cells.
    #[serde(default)]
    pub execution_count: Option<u64>,
    /// A Cancel ended it.
    #[serde(default)]
    pub cancelled: bool,
    /// The session a cell ran in, after the cell.
    #[serde(default)]
    pub session: Option<SessionState>,
}

impl ExecutionResult {
    /// Ran to the end and exited 0.
    pub fn success(&self) -> bool {
        self.exit_code == 0 && !self.timed_out && !self.oom_killed && !self.cancelled
    }

    /// stdout as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stdout)
    }

    /// stderr as text (invalid UTF-8 replaced).
    pub fn stderr_text(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.stderr)
    }

    /// Wall-clock time of the job.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration_ms.max(0.0) / 1000.0)
    }

    /// The final expression's displayed value, if the cell ended with one.
    pub fn main_result(&self) -> Option<&DisplayResult> {
        self.results.iter().find(|r| r.main)
    }

    /// The final expression's `text/plain` (its repr), if any.
    pub fn text(&self) -> Option<&str> {
        self.main_result().and_then(|r| r.text("text/plain"))
    }

    /// The main result's `text/html`, else the first result's that has one (a DataFrame).
    pub fn html(&self) -> Option<&str> {
        self.main_first().find_map(|r| r.text("text/html"))
    }

    /// The main result's `image/png`, else the first result's (a matplotlib figure).
    pub fn png(&self) -> Option<Vec<u8>> {
        self.main_first().find_map(|r| r.bytes("image/png"))
    }

    fn main_first(&self) -> impl Iterator<Item = &DisplayResult> {
        self.main_result().into_iter().chain(self.results.iter().filter(|r| !r.main))
    }
}

/// An uncaught exception of the sandboxed code.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct PythonError {
    /// The exception's class name, e.g. `"ZeroDivisionError"`.
    pub name: String,
    pub value: String,
    pub traceback: String,
}

/// One displayed value: MIME type -> value, as IPython's display protocol gives them.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct DisplayResult {
    /// The final expression's value (bound to `_`), rather than a `display()` call's.
    pub main: bool,
    /// A string for text types, `{"$bytes": base64}` for `image/png`, `image/jpeg` and
    /// `application/pdf`, an object for `application/json`.
    pub data: BTreeMap<String, serde_json::Value>,
}

impl DisplayResult {
    /// The value of a text MIME type (`text/plain`, `text/html`, `text/markdown`, ...).
    pub fn text(&self, mime: &str) -> Option<&str> {
        self.data.get(mime)?.as_str()
    }

    /// The value of a binary MIME type (`image/png`, `image/jpeg`, `application/pdf`).
    pub fn bytes(&self, mime: &str) -> Option<Vec<u8>> {
        wire::decode(self.data.get(mime)?)
    }
}

/// A session after a cell: `alive` false means the cell ended it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SessionState {
    pub id: String,
    pub alive: bool,
    /// Why it ended: "timeout", "oom", "crashed", ...
    #[serde(default)]
    pub end_reason: Option<String>,
}

/// What a streamed job sends while it runs (protocol v2 `Event` frames), in order. The
/// stdout and stderr chunks concatenate to the result's `stdout` and `stderr`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    Stdout { execution_id: String, data: Vec<u8> },
    Stderr { execution_id: String, data: Vec<u8> },
    Display { execution_id: String, result: DisplayResult },
}

impl Event {
    /// The job's handle, for [`Client::cancel`](crate::Client::cancel) from the callback.
    pub fn execution_id(&self) -> &str {
        match self {
            Event::Stdout { execution_id, .. } | Event::Stderr { execution_id, .. } | Event::Display { execution_id, .. } => {
                execution_id
            }
        }
    }

    /// The event of one Event frame's JSON; `None` for a kind this crate does not know
    /// yet (a newer daemon's), which is skipped.
    pub(crate) fn from_json(text: &str) -> Result<Option<Event>> {
        #[derive(Deserialize)]
        struct Frame {
            execution_id: String,
            event: String,
            data: serde_json::Value,
        }
        let frame: Frame = serde_json::from_str(text).map_err(|e| Error::undecodable("Event", e))?;
        let execution_id = frame.execution_id;
        let bytes = |data: &serde_json::Value| wire::decode(data).ok_or_else(|| Error::undecodable("Event data", "not {\"$bytes\": base64}"));
        Ok(Some(match frame.event.as_str() {
            "stdout" => Event::Stdout { data: bytes(&frame.data)?, execution_id },
            "stderr" => Event::Stderr { data: bytes(&frame.data)?, execution_id },
            "display" => Event::Display {
                result: DisplayResult::deserialize(frame.data).map_err(|e| Error::undecodable("display Event", e))?,
                execution_id,
            },
            _ => return Ok(None),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v1_result_decodes_with_v2_fields_empty() {
        let json = r#"{"exit_code": 1, "stdout": {"$bytes": "aGkK"}, "stderr": {"$bytes": ""}, "duration_ms": 12.5,
                       "memory_peak": 4096, "cpu_time_us": 900, "timed_out": false, "oom_killed": false}"#;
        let result: ExecutionResult = serde_json::from_str(json).unwrap();
        assert_eq!((result.exit_code, result.stdout_text().as_ref()), (1, "hi\n"));
        assert_eq!(result.duration(), Duration::from_micros(12_500));
        assert!(!result.success() && result.results.is_empty() && result.files.is_empty() && result.session.is_none());
    }

    #[test]
    fn rich_results_main_first() {
        let json = r#"{"exit_code": 0, "stdout": {"$bytes": ""}, "stderr": {"$bytes": ""}, "duration_ms": 1,
            "memory_peak": 0, "cpu_time_us": 0, "timed_out": false, "oom_killed": false,
            "results": [{"main": false, "data": {"text/html": "<b>x</b>", "image/png": {"$bytes": "iVBO"}}},
                        {"main": true, "data": {"text/plain": "42"}}]}"#;
        let result: ExecutionResult = serde_json::from_str(json).unwrap();
        assert_eq!(result.text(), Some("42"));
        assert_eq!(result.html(), Some("<b>x</b>"));
        assert_eq!(result.png(), Some(vec![0x89, 0x50, 0x4e]));
    }

    #[test]
    fn events_decode_and_unknown_kinds_are_skipped() {
        let out = Event::from_json(r#"{"type":"Event","execution_id":"x1","event":"stdout","data":{"$bytes":"aGk="}}"#);
        assert_eq!(out.unwrap(), Some(Event::Stdout { execution_id: "x1".into(), data: b"hi".to_vec() }));
        let shown = Event::from_json(r#"{"execution_id":"x1","event":"display","data":{"main":true,"data":{"text/plain":"1"}}}"#);
        assert_eq!(shown.unwrap().unwrap().execution_id(), "x1");
        assert_eq!(Event::from_json(r#"{"execution_id":"x1","event":"progress","data":1}"#).unwrap(), None);
        assert!(Event::from_json(r#"{"execution_id":"x1","event":"stdout","data":"hi"}"#).is_err());
    }
}
