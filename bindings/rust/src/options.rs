//! What a caller asks for: per-job, per-session and per-cell settings, and the request
//! maps they become on the wire (only the fields set are sent: a daemon refuses fields it
//! does not know, E2004).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

use crate::wire;

/// A host directory exposed inside the sandbox. `host` must be under one of the daemon's
/// allowed paths; `sandbox` is an absolute path inside. Read-only unless `writable`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub host: PathBuf,
    pub sandbox: PathBuf,
    pub writable: bool,
}

impl Mount {
    /// A read-only mount (what most jobs want).
    pub fn read_only(host: impl Into<PathBuf>, sandbox: impl Into<PathBuf>) -> Mount {
        Mount { host: host.into(), sandbox: sandbox.into(), writable: false }
    }

    /// A read-write mount.
    pub fn writable(host: impl Into<PathBuf>, sandbox: impl Into<PathBuf>) -> Mount {
        Mount { host: host.into(), sandbox: sandbox.into(), writable: true }
    }
}

/// Settings of a one-shot job; `Options::default()` is the daemon's defaults. Each value
/// is bounded by the daemon's config (E2003 past it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Options {
    /// Wall clock; `None`: the daemon's default.
    pub timeout: Option<Duration>,
    /// Bytes; `None`: the daemon's default.
    pub memory_limit: Option<u64>,
    pub mounts: Vec<Mount>,
    pub env: BTreeMap<String, String>,
    /// Files written into the workdir (/tmp) first: relative path -> content.
    pub files: BTreeMap<String, Vec<u8>>,
    pub stdin: Vec<u8>,
    /// Run as a notebook cell: the final expression's value comes back in `results`.
    pub display: bool,
    /// Globs relative to the workdir: matching files come back in the result's `files`.
    pub collect: Vec<String>,
    /// The handle for [`Client::cancel`](crate::Client::cancel) (<= 64 of
    /// `[A-Za-z0-9_-]`); `None`: the daemon makes one.
    pub execution_id: Option<String>,
}

/// Settings of a new session; `SessionOptions::default()` is the daemon's defaults.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionOptions {
    pub mounts: Vec<Mount>,
    pub files: BTreeMap<String, Vec<u8>>,
    pub env: BTreeMap<String, String>,
    /// Bytes, for the whole session.
    pub memory_limit: Option<u64>,
    /// Ended after this long without a cell (the daemon's default: 300 s).
    pub idle_timeout: Option<Duration>,
    /// Ended this long after it opened (the daemon's default: 3600 s).
    pub max_lifetime: Option<Duration>,
}

/// Settings of one session cell; `CellOptions::default()` is the daemon's defaults, with
/// display on where the daemon offers it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CellOptions {
    /// Past it the cell gets `KeyboardInterrupt`.
    pub timeout: Option<Duration>,
    pub stdin: Vec<u8>,
    /// Turns off notebook display (on by default: the final expression is the main result).
    pub no_display: bool,
    pub collect: Vec<String>,
    pub execution_id: Option<String>,
}

/// What runs: Python source or a program (argv jobs, v2).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Program<'a> {
    Code(&'a str),
    Argv(&'a [&'a str]),
}

#[derive(Serialize)]
struct WireMount<'a> {
    host: &'a std::path::Path,
    sandbox: &'a std::path::Path,
    ro: bool,
}

fn wire_mounts(mounts: &[Mount]) -> Vec<WireMount<'_>> {
    mounts.iter().map(|m| WireMount { host: &m.host, sandbox: &m.sandbox, ro: !m.writable }).collect()
}

fn is_false(value: &bool) -> bool {
    !value
}

/// An Execute or SessionExecute request.
#[derive(Serialize, Default)]
pub(crate) struct JobRequest<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    session_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    argv: &'a [&'a str],
    #[serde(skip_serializing_if = "Option::is_none")]
    timeout_secs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_limit: Option<u64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mounts: Vec<WireMount<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    env: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "files_field")]
    files: Option<&'a BTreeMap<String, Vec<u8>>>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "bytes_field")]
    stdin: Option<&'a [u8]>,
    #[serde(skip_serializing_if = "is_false")]
    display: bool,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    collect: &'a [String],
    #[serde(skip_serializing_if = "is_false")]
    pub(crate) stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    execution_id: Option<&'a str>,
}

fn bytes_field<S: serde::Serializer>(data: &Option<&[u8]>, serializer: S) -> Result<S::Ok, S::Error> {
    wire::bytes::serialize(data.unwrap_or_default(), serializer)
}

fn files_field<S: serde::Serializer>(files: &Option<&BTreeMap<String, Vec<u8>>>, serializer: S) -> Result<S::Ok, S::Error> {
    match files {
        Some(files) => wire::bytes_map::serialize(files, serializer),
        None => serializer.serialize_none(),
    }
}

fn non_empty<K, V>(map: &BTreeMap<K, V>) -> Option<&BTreeMap<K, V>> {
    (!map.is_empty()).then_some(map)
}

impl<'a> JobRequest<'a> {
    fn program(kind: &'static str, program: Program<'a>) -> JobRequest<'a> {
        let (code, argv) = match program {
            Program::Code(code) => (Some(code), &[][..]),
            Program::Argv(argv) => (None, argv),
        };
        JobRequest { kind, code, argv, ..JobRequest::default() }
    }

    /// A one-shot Execute.
    pub(crate) fn execute(program: Program<'a>, options: &'a Options) -> JobRequest<'a> {
        JobRequest {
            timeout_secs: options.timeout.map(|t| t.as_secs_f64()),
            memory_limit: options.memory_limit,
            mounts: wire_mounts(&options.mounts),
            env: non_empty(&options.env),
            files: non_empty(&options.files),
            stdin: (!options.stdin.is_empty()).then_some(&options.stdin[..]),
            display: options.display,
            collect: &options.collect,
            execution_id: options.execution_id.as_deref(),
            ..JobRequest::program("Execute", program)
        }
    }

    /// A SessionExecute; `display` as decided by the caller (the daemon may not offer it).
    pub(crate) fn cell(session_id: &'a str, program: Program<'a>, options: &'a CellOptions, display: bool) -> JobRequest<'a> {
        JobRequest {
            session_id: Some(session_id),
            timeout_secs: options.timeout.map(|t| t.as_secs_f64()),
            stdin: (!options.stdin.is_empty()).then_some(&options.stdin[..]),
            display,
            collect: &options.collect,
            execution_id: options.execution_id.as_deref(),
            ..JobRequest::program("SessionExecute", program)
        }
    }
}

/// A SessionOpen request.
#[derive(Serialize)]
pub(crate) struct SessionOpenRequest<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    mounts: Vec<WireMount<'a>>,
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "files_field")]
    files: Option<&'a BTreeMap<String, Vec<u8>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    env: Option<&'a BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_timeout_secs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_lifetime_secs: Option<f64>,
}

impl<'a> SessionOpenRequest<'a> {
    pub(crate) fn new(options: &'a SessionOptions) -> SessionOpenRequest<'a> {
        SessionOpenRequest {
            kind: "SessionOpen",
            mounts: wire_mounts(&options.mounts),
            files: non_empty(&options.files),
            env: non_empty(&options.env),
            memory_limit: options.memory_limit,
            idle_timeout_secs: options.idle_timeout.map(|t| t.as_secs_f64()),
            max_lifetime_secs: options.max_lifetime.map(|t| t.as_secs_f64()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_send_only_the_program() {
        let options = Options::default();
        let request = serde_json::to_value(JobRequest::execute(Program::Code("print(1)"), &options)).unwrap();
        assert_eq!(request, json!({"type": "Execute", "code": "print(1)"}));
        let argv = ["ls", "-l"];
        let request = serde_json::to_value(JobRequest::execute(Program::Argv(&argv), &options)).unwrap();
        assert_eq!(request, json!({"type": "Execute", "argv": ["ls", "-l"]}));
    }

    #[test]
    fn every_option_has_its_wire_name() {
        let options = Options {
            timeout: Some(Duration::from_millis(2500)),
            memory_limit: Some(64 << 20),
            mounts: vec![Mount::read_only("/data", "/mnt/data"), Mount::writable("/out", "/mnt/out")],
            env: BTreeMap::from([("A".into(), "1".into())]),
            files: BTreeMap::from([("in.txt".into(), b"hi".to_vec())]),
            stdin: b"x".to_vec(),
            display: true,
            collect: vec!["*.png".into()],
            execution_id: Some("job-1".into()),
        };
        let mut request = JobRequest::execute(Program::Code("1"), &options);
        request.stream = true;
        assert_eq!(
            serde_json::to_value(request).unwrap(),
            json!({"type": "Execute", "code": "1", "timeout_secs": 2.5, "memory_limit": 67108864,
                   "mounts": [{"host": "/data", "sandbox": "/mnt/data", "ro": true},
                              {"host": "/out", "sandbox": "/mnt/out", "ro": false}],
                   "env": {"A": "1"}, "files": {"in.txt": {"$bytes": "aGk="}}, "stdin": {"$bytes": "eA=="},
                   "display": true, "collect": ["*.png"], "stream": true, "execution_id": "job-1"})
        );
    }

    #[test]
    fn cells_and_sessions() {
        let cell = CellOptions { timeout: Some(Duration::from_secs(3)), ..CellOptions::default() };
        let request = serde_json::to_value(JobRequest::cell("s1", Program::Code("x"), &cell, true)).unwrap();
        assert_eq!(request, json!({"type": "SessionExecute", "session_id": "s1", "code": "x", "timeout_secs": 3.0, "display": true}));
        let open = SessionOptions { idle_timeout: Some(Duration::from_secs(60)), ..SessionOptions::default() };
        let request = serde_json::to_value(SessionOpenRequest::new(&open)).unwrap();
        assert_eq!(request, json!({"type": "SessionOpen", "idle_timeout_secs": 60.0}));
    }
}
