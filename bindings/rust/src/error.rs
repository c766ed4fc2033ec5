//! One error type for every failure, carrying the protocol's stable code.

use crate::codes;

/// A failure reported by libleeward or the daemon. The variant is the code's class;
/// [`Error::code`] is the stable code itself (`"E1006"`, ... : the [`codes`] constants).
///
/// A job that ran is not an error even if the Python code failed: that is
/// [`ExecutionResult::exit_code`](crate::ExecutionResult::exit_code), `timed_out`,
/// `oom_killed`.
///
/// ```
/// # fn main() {
/// let err = leeward::Client::connect("/nonexistent/leeward.sock").err().unwrap();
/// assert!(matches!(err, leeward::Error::Connection { .. }));
/// assert_eq!(err.code(), leeward::codes::CONNECTION_CLOSED); // E1006: nothing listens there
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No daemon answered, the connection dropped, the client is closed (E1006), or the
    /// socket is not served by you or root (E1007).
    #[error("{code}: {message}")]
    Connection { code: String, message: String },
    /// The request was refused: a malformed frame (E1xxx) or invalid content (E2xxx: out
    /// of range, mount not allowed, a feature turned off, ...).
    #[error("{code}: {message}")]
    Request { code: String, message: String },
    /// The daemon could not run the job (E3xxx); E3004, busy, is retryable.
    #[error("{code}: {message}")]
    Sandbox { code: String, message: String },
    /// A session is unknown, busy, ended or over its limit (E5xxx); E5002 is retryable.
    #[error("{code}: {message}")]
    Session { code: String, message: String },
    /// A bug or an unexpected host failure (E4001), or a code this crate does not know.
    #[error("{code}: {message}")]
    Internal { code: String, message: String },
}

impl Error {
    /// The variant for `code`, as the library or the daemon reported it.
    pub(crate) fn from_code(code: &str, message: impl Into<String>) -> Error {
        let code = if code.is_empty() { codes::INTERNAL } else { code }.to_string();
        let message = message.into();
        let class = code.get(..2).unwrap_or("");
        match class {
            _ if code == codes::CONNECTION_CLOSED || code == codes::UNTRUSTED_SOCKET => Error::Connection { code, message },
            "E1" | "E2" => Error::Request { code, message },
            "E3" => Error::Sandbox { code, message },
            "E5" => Error::Session { code, message },
            _ => Error::Internal { code, message },
        }
    }

    /// A reply this crate could not read: a bug on one side or the other.
    pub(crate) fn undecodable(what: &str, err: impl std::fmt::Display) -> Error {
        Error::from_code(codes::INTERNAL, format!("undecodable {what}: {err}"))
    }

    fn parts(&self) -> (&str, &str) {
        match self {
            Error::Connection { code, message }
            | Error::Request { code, message }
            | Error::Sandbox { code, message }
            | Error::Session { code, message }
            | Error::Internal { code, message } => (code, message),
        }
    }

    /// The stable code, e.g. `"E1006"`: one of the [`codes`] constants.
    pub fn code(&self) -> &str {
        self.parts().0
    }

    /// The human-readable description.
    pub fn message(&self) -> &str {
        self.parts().1
    }

    /// Whether the same request may succeed if sent again after a short wait: the daemon
    /// was at its limit (E3004) or a session's earlier cells held it past the queue wait
    /// (E5002). Nothing ran.
    pub fn is_retryable(&self) -> bool {
        self.code() == codes::DAEMON_BUSY || self.code() == codes::SESSION_BUSY
    }
}

/// `Result<T, leeward::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn class(err: &Error) -> &'static str {
        match err {
            Error::Connection { .. } => "connection",
            Error::Request { .. } => "request",
            Error::Sandbox { .. } => "sandbox",
            Error::Session { .. } => "session",
            Error::Internal { .. } => "internal",
        }
    }

    #[test]
    fn codes_map_to_their_class() {
        let cases = [
            ("E1001", "request"),
            ("E1006", "connection"),
            ("E1007", "connection"),
            ("E2003", "request"),
            ("E2010", "request"),
            ("E3004", "sandbox"),
            ("E4001", "internal"),
            ("E5001", "session"),
            ("E9999", "internal"),
        ];
        for (code, expected) in cases {
            assert_eq!(class(&Error::from_code(code, "m")), expected, "{code}");
        }
        for &code in codes::ALL {
            let err = Error::from_code(code, "m");
            assert_eq!((err.code(), err.message()), (code, "m"));
        }
    }

    #[test]
    fn retryable_codes_are_busy_ones() {
        let retryable: Vec<_> = codes::ALL.iter().filter(|c| Error::from_code(c, "").is_retryable()).collect();
        assert_eq!(retryable, [&codes::DAEMON_BUSY, &codes::SESSION_BUSY]);
    }

    #[test]
    fn an_empty_code_is_internal_and_shown_with_its_code() {
        let err = Error::from_code("", "boom");
        assert_eq!(err.code(), codes::INTERNAL);
        assert_eq!(err.to_string(), "E4001: boom");
    }
}
