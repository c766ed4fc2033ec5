//! Run untrusted Python in [leeward](https://github.com/leeward-sandbox/leeward)'s
//! single-use Linux sandboxes.
//!
//! A safe binding over `libleeward.so` (the C ABI of `include/leeward.h`, found with
//! `pkg-config leeward`) through its generic entry point: each request is the wire
//! protocol's map as JSON, so new protocol features need Rust types here, never new C
//! structs. `unsafe` lives in one private module, each block with its SAFETY reason.
//!
//! ```
//! use leeward::{Client, Options};
//! use std::time::Duration;
//!
//! # fn main() -> leeward::Result<()> {
//! let client = Client::connect_default()?; // $LEEWARD_SOCKET, else the per-user socket
//! let options = Options { timeout: Some(Duration::from_secs(5)), ..Options::default() };
//! let result = client.execute("import sys; print('hi'); sys.exit(3)", &options)?;
//! assert_eq!((result.exit_code, result.stdout_text().as_ref()), (3, "hi\n"));
//!
//! // A job that ran is Ok even when the code failed; a refused request is an Err
//! // with the protocol's stable code.
//! let too_long = Options { timeout: Some(Duration::from_secs(100_000)), ..Options::default() };
//! let err = client.execute("pass", &too_long).unwrap_err();
//! assert_eq!(err.code(), leeward::codes::OUT_OF_RANGE); // E2003
//! assert!(matches!(err, leeward::Error::Request { .. }));
//! # Ok(())
//! # }
//! ```
//!
//! - [`Client`]: [`execute`](Client::execute), [`execute_streaming`](Client::execute_streaming)
//!   (stdout/stderr chunks and displayed values as they arrive), [`run`](Client::run) (a
//!   program instead of Python), [`cancel`](Client::cancel), sessions
//!   ([`open_session`](Client::open_session), [`Session`]), [`ping`](Client::ping),
//!   [`status`](Client::status), and [`call`](Client::call) for any request as JSON.
//! - Every failure is an [`Error`] whose variant is the code's class and whose
//!   [`code`](Error::code) is one of [`codes`], read from the header at build time.
//! - Linking: the build script asks pkg-config for `leeward` (a checkout:
//!   `PKG_CONFIG_PATH=<repo>/build/lib/pkgconfig`; an installed wheel:
//!   `<prefix>/lib/pkgconfig`); the loader must find `libleeward.so` at run time too
//!   (the .pc's rpath for this crate's own tests, `LD_LIBRARY_PATH` or your rpath otherwise).
#![deny(unsafe_code)]

mod client;
mod error;
#[allow(unsafe_code)]
mod ffi;
mod options;
mod results;
mod session;
mod wire;

/// The protocol's stable error codes (`"E1001"`, ...), from include/leeward.h's
/// `LEEWARD_E_*` macros at build time.
pub mod codes {
    include!(concat!(env!("OUT_DIR"), "/codes.rs"));
}

include!(concat!(env!("OUT_DIR"), "/version.rs"));

pub use client::{Client, Pong};
pub use error::{Error, Result};
pub use options::{CellOptions, Mount, Options, SessionOptions};
pub use results::{DisplayResult, Event, ExecutionResult, PythonError, SessionState};
pub use session::{FileContent, FileEntry, Session, SessionFiles, SessionSummary};

/// The version of the loaded `libleeward.so` ([`HEADER_VERSION`] is the header's this
/// crate was built against).
///
/// ```
/// assert_eq!(leeward::version(), leeward::HEADER_VERSION);
/// ```
pub fn version() -> &'static str {
    ffi::version()
}
