//! `Client`: connections to the daemon and the requests of the protocol.

use std::path::Path;
use std::sync::{Mutex, OnceLock, PoisonError};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ffi::Handle;
use crate::options::{JobRequest, Options, Program, SessionOpenRequest, SessionOptions};
use crate::results::{Event, ExecutionResult};
use crate::session::{Session, SessionSummary};

/// Connections kept open between calls.
const MAX_IDLE: usize = 16;

/// A connection to the daemon; `Send + Sync`, so one `Client` may serve many threads.
///
/// It keeps a small pool of library handles (one connection each): concurrent calls run
/// in parallel instead of queueing on one connection, and an event callback may use the
/// same client (to cancel the job, say) without waiting on the call it is part of.
///
/// ```
/// # fn main() -> leeward::Result<()> {
/// let client = leeward::Client::connect_default()?; // $LEEWARD_SOCKET, else the per-user socket
/// let result = client.execute("print(sum(range(100)))", &leeward::Options::default())?;
/// assert_eq!(result.stdout_text(), "4950\n");
/// assert!(result.success());
/// # Ok(())
/// # }
/// ```
pub struct Client {
    socket_path: Option<String>,
    idle: Mutex<Vec<Handle>>,
    features: OnceLock<Vec<String>>,
}

/// The daemon's answer to a Ping.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Pong {
    /// Protocol version: 1 when the daemon does not say (a v1 daemon).
    #[serde(default = "protocol_v1")]
    pub version: u32,
    /// What the daemon offers beyond v1: "sessions", "display", "collect", "files",
    /// "argv", "stream", "cancel"; a feature turned off by its config is not listed.
    #[serde(default)]
    pub features: Vec<String>,
}

fn protocol_v1() -> u32 {
    1
}

#[derive(Deserialize)]
struct JobReply {
    result: ExecutionResult,
}

impl Client {
    /// Connects to the daemon listening on `socket_path`; fails with E1006
    /// ([`Error::Connection`]) when nothing listens there.
    pub fn connect(socket_path: impl AsRef<Path>) -> Result<Client> {
        let path = socket_path.as_ref();
        let path = path.to_str().ok_or_else(|| Error::from_code(crate::codes::WRONG_TYPE, "socket path is not UTF-8"))?;
        Client::open(Some(path.to_string()))
    }

    /// Connects to `$LEEWARD_SOCKET`, else the per-user default socket
    /// (`/run/leeward/leeward.sock` for root, `$XDG_RUNTIME_DIR/leeward.sock`).
    pub fn connect_default() -> Result<Client> {
        Client::open(None)
    }

    fn open(socket_path: Option<String>) -> Result<Client> {
        let first = Handle::connect(socket_path.as_deref())?;
        Ok(Client { socket_path, idle: Mutex::new(vec![first]), features: OnceLock::new() })
    }

    /// Runs `f` on an idle handle, or on a new connection when all are in use.
    fn with_handle<T>(&self, f: impl FnOnce(&Handle) -> Result<T>) -> Result<T> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let handle = match idle {
            Some(handle) => handle,
            None => Handle::connect(self.socket_path.as_deref())?,
        };
        let outcome = f(&handle);
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE {
            idle.push(handle);
        }
        outcome
    }

    /// Sends any request of the wire protocol and returns the daemon's success reply: the
    /// way to a protocol feature that has no method yet. Bytes are `{"$bytes": base64}`
    /// both ways.
    ///
    /// ```
    /// # fn main() -> leeward::Result<()> {
    /// let client = leeward::Client::connect_default()?;
    /// let reply = client.call(&serde_json::json!({"type": "Ping"}))?;
    /// assert_eq!(reply["type"], "Pong");
    /// # Ok(())
    /// # }
    /// ```
    pub fn call(&self, request: &serde_json::Value) -> Result<serde_json::Value> {
        self.request(request)
    }

    /// Sends `request` and decodes the success reply as `R`.
    pub(crate) fn request<R: DeserializeOwned>(&self, request: &impl Serialize) -> Result<R> {
        self.request_streaming(request, None)
    }

    fn request_streaming<R: DeserializeOwned>(&self, request: &impl Serialize, on_event: Option<&mut dyn FnMut(&str)>) -> Result<R> {
        let json = serde_json::to_string(request).map_err(|e| Error::from_code(crate::codes::WRONG_TYPE, e.to_string()))?;
        let reply = self.with_handle(|handle| handle.call(&json, on_event))?;
        serde_json::from_str(&reply).map_err(|e| Error::undecodable("reply", e))
    }

    /// Sends a job, streamed when `on_event` is given and the daemon offers it. A daemon
    /// that does not stream (older, or `stream` turned off) gives the whole output as one
    /// event each, after the job, so the events still add up to the result.
    pub(crate) fn job(&self, mut request: JobRequest<'_>, on_event: Option<&mut dyn FnMut(Event)>) -> Result<ExecutionResult> {
        let Some(on_event) = on_event else {
            return Ok(self.request::<JobReply>(&request)?.result);
        };
        if !self.offers("stream")? {
            let result = self.request::<JobReply>(&request)?.result;
            let execution_id = result.execution_id.clone().unwrap_or_default();
            if !result.stdout.is_empty() {
                on_event(Event::Stdout { execution_id: execution_id.clone(), data: result.stdout.clone() });
            }
            if !result.stderr.is_empty() {
                on_event(Event::Stderr { execution_id, data: result.stderr.clone() });
            }
            return Ok(result);
        }
        request.stream = true;
        let mut undecodable = None;
        let mut frames = |json: &str| match Event::from_json(json) {
            Ok(Some(event)) => on_event(event),
            Ok(None) => {}
            Err(err) => {
                undecodable.get_or_insert(err);
            }
        };
        let reply: JobReply = self.request_streaming(&request, Some(&mut frames))?;
        match undecodable {
            Some(err) => Err(err),
            None => Ok(reply.result),
        }
    }

    /// Runs Python `code` in a fresh sandbox and waits for it.
    pub fn execute(&self, code: &str, options: &Options) -> Result<ExecutionResult> {
        self.job(JobRequest::execute(Program::Code(code), options), None)
    }

    /// [`execute`](Client::execute), with each stdout/stderr chunk and displayed value
    /// given to `on_event` as it arrives (on this thread, before the result).
    ///
    /// ```
    /// # fn main() -> leeward::Result<()> {
    /// let client = leeward::Client::connect_default()?;
    /// let mut streamed = Vec::new();
    /// let code = "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.1)";
    /// let result = client.execute_streaming(code, &leeward::Options::default(), |event| {
    ///     if let leeward::Event::Stdout { data, .. } = event {
    ///         streamed.extend(data);
    ///     }
    /// })?;
    /// assert_eq!(streamed, result.stdout);
    /// assert_eq!(result.stdout_text(), "0\n1\n2\n");
    /// # Ok(())
    /// # }
    /// ```
    pub fn execute_streaming(&self, code: &str, options: &Options, mut on_event: impl FnMut(Event)) -> Result<ExecutionResult> {
        self.job(JobRequest::execute(Program::Code(code), options), Some(&mut on_event))
    }

    /// Runs a program instead of Python (`argv[0]` looked up on the sandbox's `PATH`),
    /// with the same isolation and limits; needs a daemon that offers "argv".
    pub fn run<S: AsRef<str>>(&self, argv: &[S], options: &Options) -> Result<ExecutionResult> {
        let argv: Vec<&str> = argv.iter().map(AsRef::as_ref).collect();
        self.job(JobRequest::execute(Program::Argv(&argv), options), None)
    }

    /// Stops a running job by its execution id (from [`Options::execution_id`] or an
    /// [`Event`]): a one-shot job is killed, a session cell interrupted. `false` when no
    /// job of yours has that id (it ended, or never was).
    pub fn cancel(&self, execution_id: &str) -> Result<bool> {
        #[derive(Deserialize)]
        struct Reply {
            found: bool,
        }
        let reply: Reply = self.request(&serde_json::json!({"type": "Cancel", "execution_id": execution_id}))?;
        Ok(reply.found)
    }

    /// A round trip to the daemon.
    pub fn ping(&self) -> Result<Pong> {
        self.request(&serde_json::json!({"type": "Ping"}))
    }

    /// Whether the daemon offers `feature` (asked once per client).
    pub(crate) fn offers(&self, feature: &str) -> Result<bool> {
        let features = match self.features.get() {
            Some(features) => features,
            None => {
                let pong = self.ping()?;
                self.features.get_or_init(|| pong.features)
            }
        };
        Ok(features.iter().any(|f| f == feature))
    }

    /// The daemon's pool state (the Status reply), as JSON.
    pub fn status(&self) -> Result<serde_json::Value> {
        self.request(&serde_json::json!({"type": "Status"}))
    }

    /// Opens a session: one sandbox whose globals, imports and /tmp files persist between
    /// cells. It is closed when dropped, or by [`Session::close`].
    ///
    /// ```
    /// # fn main() -> leeward::Result<()> {
    /// let client = leeward::Client::connect_default()?;
    /// let session = client.open_session(&leeward::SessionOptions::default())?;
    /// session.execute("x = 40", &leeward::CellOptions::default())?;
    /// let cell = session.execute("x + 2", &leeward::CellOptions::default())?;
    /// assert_eq!(cell.text(), Some("42")); // the final expression, displayed
    /// session.files().write("notes.txt", b"kept between cells")?;
    /// assert_eq!(session.files().read("notes.txt")?.data, b"kept between cells");
    /// session.close()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn open_session(&self, options: &SessionOptions) -> Result<Session<'_>> {
        #[derive(Deserialize)]
        struct Reply {
            session: Opened,
        }
        #[derive(Deserialize)]
        struct Opened {
            id: String,
            idle_timeout_secs: f64,
            max_lifetime_secs: f64,
        }
        let Reply { session } = self.request(&SessionOpenRequest::new(options))?;
        Ok(Session::opened(self, session.id, session.idle_timeout_secs, session.max_lifetime_secs))
    }

    /// A handle on a session opened elsewhere by the same user (another connection, the
    /// CLI). Nothing is sent until it is used, and dropping it does not close the session.
    pub fn attach_session(&self, id: impl Into<String>) -> Session<'_> {
        Session::attached(self, id.into())
    }

    /// Your open sessions (another user's are never listed).
    pub fn sessions(&self) -> Result<Vec<SessionSummary>> {
        #[derive(Deserialize)]
        struct Reply {
            sessions: Vec<SessionSummary>,
        }
        Ok(self.request::<Reply>(&serde_json::json!({"type": "SessionList"}))?.sessions)
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("socket_path", &self.socket_path).finish_non_exhaustive()
    }
}
