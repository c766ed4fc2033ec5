//! The C ABI of include/leeward.h, and the crate's only `unsafe` code.
//!
//! Only the generic entry points are bound (`leeward_call_stream`, which `leeward_call` is
//! with no callback): every request and reply is JSON, so a protocol feature the daemon
//! gains needs a Rust type, never a new C struct here. The library keeps its last error
//! per OS thread; each call below reads it on the thread that made the call, before
//! returning, so nothing here depends on which thread runs what afterwards.

use std::any::Any;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{self, AssertUnwindSafe};
use std::ptr::{self, NonNull};

use crate::error::Error;

/// The library's opaque connection.
#[repr(C)]
struct LeewardHandle {
    _private: [u8; 0],
}

type EventCallback = unsafe extern "C" fn(event_json: *const c_char, user: *mut c_void);

extern "C" {
    fn leeward_connect(socket_path: *const c_char) -> *mut LeewardHandle;
    fn leeward_disconnect(handle: *mut LeewardHandle);
    fn leeward_last_error() -> *const c_char;
    fn leeward_last_error_code() -> *const c_char;
    fn leeward_version() -> *const c_char;
    fn leeward_string_free(string: *mut c_char);
    fn leeward_call_stream(
        handle: *mut LeewardHandle,
        request_json: *const c_char,
        on_event: Option<EventCallback>,
        user: *mut c_void,
        reply_json: *mut *mut c_char,
    ) -> c_int;
}

/// The loaded library's version (`LEEWARD_VERSION` of the header it was built from).
pub(crate) fn version() -> &'static str {
    // SAFETY: leeward_version returns a static NUL-terminated ASCII string owned by the
    // library for the life of the process, and does not start Python.
    unsafe { CStr::from_ptr(leeward_version()) }.to_str().unwrap_or("")
}

/// The calling thread's last failure, as the error of the call that just failed on it.
fn last_error() -> Error {
    // SAFETY: both functions return library-owned NUL-terminated strings, never NULL,
    // valid until this thread's next leeward call; they are copied out at once.
    let (code, message) = unsafe {
        (
            CStr::from_ptr(leeward_last_error_code()).to_string_lossy().into_owned(),
            CStr::from_ptr(leeward_last_error()).to_string_lossy().into_owned(),
        )
    };
    Error::from_code(&code, message)
}

fn c_string(what: &str, value: &str) -> Result<CString, Error> {
    CString::new(value).map_err(|_| Error::from_code(crate::codes::WRONG_TYPE, format!("{what} contains a NUL byte")))
}

/// One connection to the daemon, closed on drop.
pub(crate) struct Handle(NonNull<LeewardHandle>);

// SAFETY: include/leeward.h, "Thread safety": every function may be called from any
// thread, and one handle may be shared by several threads (the library serializes the
// requests on it). The handle is released only by Drop, which has it exclusively.
unsafe impl Send for Handle {}
// SAFETY: as for Send; `call` takes &self because the library does its own locking.
unsafe impl Sync for Handle {}

/// A Rust callback behind the C one, and the panic it raised, if any: a panic must not
/// unwind through the library's C and Python frames, so it is caught there and resumed
/// once the call has returned.
struct EventSink<'a> {
    callback: &'a mut dyn FnMut(&str),
    panic: Option<Box<dyn Any + Send>>,
}

unsafe extern "C" fn deliver_event(event_json: *const c_char, user: *mut c_void) {
    // SAFETY: `user` is the &mut EventSink that Handle::call passed to
    // leeward_call_stream; it outlives that call, and the library calls back only on the
    // calling thread during it, so this is the only live reference.
    let sink = unsafe { &mut *user.cast::<EventSink<'_>>() };
    if sink.panic.is_some() || event_json.is_null() {
        return;
    }
    // SAFETY: the library passes a NUL-terminated string valid for this callback.
    let event = unsafe { CStr::from_ptr(event_json) }.to_string_lossy();
    let callback = &mut sink.callback;
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| callback(&event))) {
        sink.panic = Some(payload);
    }
}

impl Handle {
    /// `leeward_connect`: `None` is $LEEWARD_SOCKET, else the per-user default socket.
    pub(crate) fn connect(socket_path: Option<&str>) -> Result<Handle, Error> {
        let path = socket_path.map(|p| c_string("socket path", p)).transpose()?;
        // SAFETY: `path` is NULL or a NUL-terminated string borrowed for the call only.
        let raw = unsafe { leeward_connect(path.as_ref().map_or(ptr::null(), |p| p.as_ptr())) };
        NonNull::new(raw).map(Handle).ok_or_else(last_error)
    }

    /// `leeward_call_stream`: one request map as JSON; the daemon's success reply as JSON.
    /// `on_event` gets each Event frame's JSON before the reply, on this thread.
    pub(crate) fn call(&self, request_json: &str, on_event: Option<&mut dyn FnMut(&str)>) -> Result<String, Error> {
        let request = c_string("request", request_json)?;
        let mut reply: *mut c_char = ptr::null_mut();
        let mut sink = on_event.map(|callback| EventSink { callback, panic: None });
        let (callback, user): (Option<EventCallback>, *mut c_void) = match sink.as_mut() {
            Some(sink) => (Some(deliver_event), ptr::from_mut(sink).cast()),
            None => (None, ptr::null_mut()),
        };
        // SAFETY: the handle is live (owned by self); request is NUL-terminated and
        // borrowed for the call; `user` points at `sink`, which outlives the call;
        // `reply` is a valid out-pointer that the library sets to NULL or a string we own.
        let rc = unsafe { leeward_call_stream(self.0.as_ptr(), request.as_ptr(), callback, user, &mut reply) };
        let outcome = if rc == 0 && !reply.is_null() {
            // SAFETY: on success `reply` is a NUL-terminated string the library allocated
            // for us; it is copied, then released exactly once with leeward_string_free.
            let text = unsafe { CStr::from_ptr(reply) }.to_string_lossy().into_owned();
            // SAFETY: as above: ours, released once, not used after.
            unsafe { leeward_string_free(reply) };
            Ok(text)
        } else {
            Err(last_error())
        };
        if let Some(payload) = sink.and_then(|s| s.panic) {
            panic::resume_unwind(payload);
        }
        outcome
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from leeward_connect and is released exactly once, here,
        // where no other reference to it can exist.
        unsafe { leeward_disconnect(self.0.as_ptr()) }
    }
}
