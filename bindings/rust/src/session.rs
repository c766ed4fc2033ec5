//! Sessions: one live sandbox whose state persists between cells, and its files.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::codes;
use crate::error::Result;
use crate::options::{CellOptions, JobRequest, Program};
use crate::results::{Event, ExecutionResult};
use crate::wire;

/// An open session. Cells run one at a time, in order; its id names it to any connection
/// of the same user. A session this client opened is closed when dropped (errors are
/// then ignored: call [`close`](Session::close) to see them), unless
/// [`detach`](Session::detach)ed.
#[derive(Debug)]
pub struct Session<'c> {
    client: &'c Client,
    id: String,
    idle_timeout: Option<Duration>,
    max_lifetime: Option<Duration>,
    close_on_drop: bool,
}

/// One of your open sessions (times: Unix seconds).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct SessionSummary {
    pub id: String,
    pub created_at: f64,
    pub last_used_at: f64,
    pub executions: u64,
    pub busy: bool,
    pub expires_at: f64,
}

impl<'c> Session<'c> {
    pub(crate) fn opened(client: &'c Client, id: String, idle_secs: f64, lifetime_secs: f64) -> Session<'c> {
        let seconds = |s: f64| Duration::try_from_secs_f64(s).ok();
        Session { client, id, idle_timeout: seconds(idle_secs), max_lifetime: seconds(lifetime_secs), close_on_drop: true }
    }

    pub(crate) fn attached(client: &'c Client, id: String) -> Session<'c> {
        Session { client, id, idle_timeout: None, max_lifetime: None, close_on_drop: false }
    }

    /// The session's id: 128 random bits, url-safe.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Ended after this long without a cell (as the daemon granted it; `None` when attached).
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// Ended this long after it opened (as the daemon granted it; `None` when attached).
    pub fn max_lifetime(&self) -> Option<Duration> {
        self.max_lifetime
    }

    fn cell(&self, program: Program<'_>, options: &CellOptions, on_event: Option<&mut dyn FnMut(Event)>) -> Result<ExecutionResult> {
        // A v2 field goes only to a daemon that offers it (it refuses unknown fields).
        let display = !options.no_display && self.client.offers("display")?;
        self.client.job(JobRequest::cell(&self.id, program, options, display), on_event)
    }

    /// Runs `code` as the next cell. A cell past its timeout is interrupted; one that
    /// ignores the interrupt ends the session (`result.session.alive` false).
    pub fn execute(&self, code: &str, options: &CellOptions) -> Result<ExecutionResult> {
        self.cell(Program::Code(code), options, None)
    }

    /// [`execute`](Session::execute), with output and displayed values given to
    /// `on_event` as they arrive.
    pub fn execute_streaming(&self, code: &str, options: &CellOptions, mut on_event: impl FnMut(Event)) -> Result<ExecutionResult> {
        self.cell(Program::Code(code), options, Some(&mut on_event))
    }

    /// Runs a program in the session's sandbox (it sees the session's files).
    pub fn run<S: AsRef<str>>(&self, argv: &[S], options: &CellOptions) -> Result<ExecutionResult> {
        let argv: Vec<&str> = argv.iter().map(AsRef::as_ref).collect();
        self.cell(Program::Argv(&argv), options, None)
    }

    /// The session's workdir, read and written by its own sandbox process.
    pub fn files(&self) -> SessionFiles<'_> {
        SessionFiles { session: self }
    }

    /// Ends the session and destroys its sandbox. One that already ended (idle TTL,
    /// lifetime, OOM) closes without an error.
    pub fn close(mut self) -> Result<()> {
        self.close_on_drop = false;
        self.end()
    }

    /// Leaves the session open past this handle and returns its id.
    pub fn detach(mut self) -> String {
        self.close_on_drop = false;
        std::mem::take(&mut self.id)
    }

    fn end(&self) -> Result<()> {
        let closed = self.client.request::<serde_json::Value>(&serde_json::json!({"type": "SessionClose", "session_id": self.id}));
        match closed {
            Err(err) if err.code() == codes::SESSION_ENDED => Ok(()),
            other => other.map(drop),
        }
    }
}

impl Drop for Session<'_> {
    fn drop(&mut self) {
        if self.close_on_drop {
            let _ = self.end(); // best effort: the daemon's idle TTL ends it otherwise
        }
    }
}

/// An entry of a session directory.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct FileEntry {
    pub name: String,
    /// "file", "dir", "symlink" or "other".
    #[serde(rename = "type")]
    pub kind: String,
    pub size: u64,
}

/// A file read from a session: `size` is the whole file's, `truncated` when `max_bytes` cut it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct FileContent {
    #[serde(with = "wire::bytes")]
    pub data: Vec<u8>,
    pub size: u64,
    pub truncated: bool,
}

/// A session's files. Paths are relative to the workdir (/tmp), or absolute under /tmp or
/// a writable mount; `..` is refused (E2005).
#[derive(Debug, Clone, Copy)]
pub struct SessionFiles<'s> {
    session: &'s Session<'s>,
}

#[derive(Serialize)]
struct FileRequest<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    session_id: &'a str,
    path: &'a str,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "data_field")]
    data: Option<&'a [u8]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_bytes: Option<u64>,
}

fn data_field<S: serde::Serializer>(data: &Option<&[u8]>, serializer: S) -> std::result::Result<S::Ok, S::Error> {
    wire::bytes::serialize(data.unwrap_or_default(), serializer)
}

impl SessionFiles<'_> {
    fn request<'a>(&'a self, kind: &'static str, path: &'a str) -> FileRequest<'a> {
        FileRequest { kind, session_id: &self.session.id, path, data: None, max_bytes: None }
    }

    /// Replaces `path` with `data`; returns the size written.
    pub fn write(&self, path: &str, data: &[u8]) -> Result<u64> {
        #[derive(Deserialize)]
        struct Reply {
            size: u64,
        }
        let request = FileRequest { data: Some(data), ..self.request("FileWrite", path) };
        Ok(self.session.client.request::<Reply>(&request)?.size)
    }

    /// The whole content of `path`.
    pub fn read(&self, path: &str) -> Result<FileContent> {
        self.session.client.request(&self.request("FileRead", path))
    }

    /// At most `max_bytes` of `path`.
    pub fn read_at_most(&self, path: &str, max_bytes: u64) -> Result<FileContent> {
        self.session.client.request(&FileRequest { max_bytes: Some(max_bytes), ..self.request("FileRead", path) })
    }

    /// The entries of the directory `path` ("." for the workdir).
    pub fn list(&self, path: &str) -> Result<Vec<FileEntry>> {
        #[derive(Deserialize)]
        struct Reply {
            entries: Vec<FileEntry>,
        }
        Ok(self.session.client.request::<Reply>(&self.request("FileList", path))?.entries)
    }

    /// Deletes `path`.
    pub fn remove(&self, path: &str) -> Result<()> {
        self.session.client.request::<serde_json::Value>(&self.request("FileRemove", path)).map(drop)
    }
}
