//! Against a real daemon ($LEEWARD_SOCKET, started by run-tests.sh): jobs in real
//! sandboxes, sessions, streaming, cancel and the error codes. Without a daemon these
//! fail (E1006) rather than skip: run them through run-tests.sh.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use leeward::{codes, CellOptions, Client, Error, Event, Mount, Options, SessionOptions};

fn client() -> Client {
    Client::connect_default().expect("a daemon at $LEEWARD_SOCKET (run the tests through run-tests.sh)")
}

fn allowed_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("LEEWARD_TEST_ALLOWED_DIR").expect("run-tests.sh sets LEEWARD_TEST_ALLOWED_DIR"))
}

#[test]
fn a_job_runs_and_its_failure_is_a_result() {
    let client = client();
    let result = client.execute("import sys\nprint('out')\nprint('err', file=sys.stderr)\n1/0", &Options::default()).unwrap();
    assert_eq!(result.exit_code, 1);
    assert!(!result.success());
    assert_eq!(result.stdout_text(), "out\n");
    assert!(result.stderr_text().starts_with("err\n"));
    assert_eq!(result.error.as_ref().map(|e| e.name.as_str()), Some("ZeroDivisionError"));
    assert!(result.duration() > Duration::ZERO && result.memory_peak > 0);
}

#[test]
fn options_reach_the_sandbox() {
    let client = client();
    let options = Options {
        env: BTreeMap::from([("GREETING".into(), "hello".into())]),
        files: BTreeMap::from([("data/in.txt".into(), b"from the host".to_vec())]),
        stdin: b"typed\n".to_vec(),
        collect: vec!["*.out".into()],
        ..Options::default()
    };
    let code = "import os\nprint(os.environ['GREETING'], input(), open('data/in.txt').read())\nopen('r.out', 'wb').write(b'\\x00\\xff')";
    let result = client.execute(code, &options).unwrap();
    assert_eq!(result.stdout_text(), "hello typed from the host\n", "{}", result.stderr_text());
    assert_eq!(result.files, BTreeMap::from([("r.out".to_string(), vec![0, 0xff])]));
}

#[test]
fn mounts_are_read_only_unless_writable() {
    let client = client();
    let host = allowed_dir().join("rust-mounts");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("in.txt"), "mounted").unwrap();
    let read_only = Options { mounts: vec![Mount::read_only(&host, "/mnt/data")], ..Options::default() };
    let code = "print(open('/mnt/data/in.txt').read())\ntry:\n    open('/mnt/data/x', 'w')\nexcept OSError as e:\n    print(type(e).__name__)";
    let result = client.execute(code, &read_only).unwrap();
    assert_eq!(result.stdout_text(), "mounted\nOSError\n", "{}", result.stderr_text());

    let out = allowed_dir().join("rust-mounts-rw");
    std::fs::create_dir_all(&out).unwrap();
    // A root daemon runs the sandbox as an otherwise unused uid.
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o777)).unwrap();
    let writable = Options { mounts: vec![Mount::writable(&out, "/mnt/out")], ..Options::default() };
    let result = client.execute("open('/mnt/out/w.txt', 'w').write('written')", &writable).unwrap();
    assert!(result.success(), "{}", result.stderr_text());
    assert_eq!(std::fs::read_to_string(out.join("w.txt")).unwrap(), "written");
}

#[test]
fn a_timeout_kills_the_job() {
    let options = Options { timeout: Some(Duration::from_millis(500)), ..Options::default() };
    let result = client().execute("import time\ntime.sleep(60)", &options).unwrap();
    assert!(result.timed_out && !result.success());
}

fn refused<T>(outcome: leeward::Result<T>) -> Error {
    match outcome {
        Ok(_) => panic!("the request was not refused"),
        Err(err) => err,
    }
}

#[test]
fn refused_requests_carry_their_codes() {
    let client = client();
    let out_of_range = refused(client.execute("pass", &Options { timeout: Some(Duration::from_secs(1 << 30)), ..Options::default() }));
    assert!(matches!(out_of_range, Error::Request { .. }) && out_of_range.code() == codes::OUT_OF_RANGE, "{out_of_range}");
    let not_allowed = refused(client.execute("pass", &Options { mounts: vec![Mount::read_only("/etc", "/mnt/etc")], ..Options::default() }));
    assert_eq!(not_allowed.code(), codes::MOUNT_NOT_ALLOWED, "{not_allowed}");
    let unknown = refused(client.call(&serde_json::json!({"type": "NoSuchRequest"})));
    assert_eq!(unknown.code(), codes::UNKNOWN_TYPE, "{unknown}");
    let no_session = refused(client.attach_session("no-such-session").execute("1", &CellOptions::default()));
    assert!(matches!(no_session, Error::Session { .. }) && no_session.code() == codes::SESSION_NOT_FOUND, "{no_session}");
    let nobody = refused(Client::connect(allowed_dir().join("nobody.sock")));
    assert!(matches!(nobody, Error::Connection { .. }) && nobody.code() == codes::CONNECTION_CLOSED, "{nobody}");
    assert!(!nobody.is_retryable() && !nobody.message().is_empty());
}

#[test]
fn a_session_keeps_its_state_and_files() {
    let client = client();
    let session = client.open_session(&SessionOptions { idle_timeout: Some(Duration::from_secs(60)), ..SessionOptions::default() }).unwrap();
    assert_eq!(session.idle_timeout(), Some(Duration::from_secs(60)));
    let first = session.execute("import math\nx = 41", &CellOptions::default()).unwrap();
    let second = session.execute("x + 1", &CellOptions::default()).unwrap();
    assert_eq!((first.execution_count, second.execution_count), (Some(1), Some(2)));
    assert_eq!(second.text(), Some("42"));
    assert!(second.session.as_ref().is_some_and(|s| s.alive && s.id == session.id()));

    let files = session.files();
    assert_eq!(files.write("notes/a.txt", b"abc").unwrap(), 3);
    assert_eq!(session.execute("print(open('notes/a.txt').read())", &CellOptions::default()).unwrap().stdout_text(), "abc\n");
    let listed = files.list("notes").unwrap();
    assert_eq!((listed.len(), listed[0].name.as_str(), listed[0].kind.as_str(), listed[0].size), (1, "a.txt", "file", 3));
    let head = files.read_at_most("notes/a.txt", 2).unwrap();
    assert_eq!((head.data.as_slice(), head.size, head.truncated), (&b"ab"[..], 3, true));
    files.remove("notes/a.txt").unwrap();
    assert_eq!(files.read("notes/a.txt").unwrap_err().code().get(..2), Some("E2"));
    assert_eq!(files.read("../etc/passwd").unwrap_err().code(), codes::BAD_PATH);

    let id = session.id().to_string();
    assert!(client.sessions().unwrap().iter().any(|s| s.id == id));
    session.close().unwrap();
    let ended = client.attach_session(id).execute("x", &CellOptions::default()).unwrap_err();
    assert_eq!(ended.code(), codes::SESSION_ENDED, "{ended}");
}

#[test]
fn a_dropped_session_is_closed_and_a_detached_one_is_not() {
    let client = client();
    let dropped = client.open_session(&SessionOptions::default()).unwrap().id().to_string();
    let kept = client.open_session(&SessionOptions::default()).unwrap().detach();
    let open: Vec<String> = client.sessions().unwrap().into_iter().map(|s| s.id).collect();
    assert!(!open.contains(&dropped) && open.contains(&kept));
    client.attach_session(kept).close().unwrap();
}

#[test]
fn streamed_output_arrives_in_chunks_that_add_up() {
    let client = client();
    let mut events = Vec::new();
    let code = "import sys, time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.2)\nprint('e', file=sys.stderr)";
    let result = client.execute_streaming(code, &Options::default(), |event| events.push(event)).unwrap();
    let joined = |pick: fn(&Event) -> Option<&Vec<u8>>| events.iter().filter_map(pick).flatten().copied().collect::<Vec<u8>>();
    assert_eq!(joined(|e| if let Event::Stdout { data, .. } = e { Some(data) } else { None }), result.stdout);
    assert_eq!(joined(|e| if let Event::Stderr { data, .. } = e { Some(data) } else { None }), result.stderr);
    assert_eq!(result.stdout_text(), "0\n1\n2\n");
    assert!(events.iter().all(|e| Some(e.execution_id()) == result.execution_id.as_deref()));
}

#[test]
fn a_job_cancelled_from_its_first_event_stops() {
    let client = client();
    assert!(client.ping().unwrap().features.iter().any(|f| f == "cancel"), "the test daemon offers cancel");
    let mut found = None;
    let options = Options { timeout: Some(Duration::from_secs(120)), execution_id: Some("rust-cancel-1".into()), ..Options::default() };
    let code = "import time\nprint('started', flush=True)\ntime.sleep(120)";
    // The callback uses the same client: the call it is part of holds another connection.
    let result = client
        .execute_streaming(code, &options, |event| {
            if found.is_none() {
                found = Some(client.cancel(event.execution_id()).unwrap());
            }
        })
        .unwrap();
    assert_eq!(found, Some(true));
    assert!(result.cancelled && !result.timed_out && !result.success());
    assert_eq!(result.execution_id.as_deref(), Some("rust-cancel-1"));
    assert!(!client.cancel("rust-cancel-1").unwrap(), "an ended job is not found");
}

#[test]
fn a_session_cell_streams_displayed_values() {
    let client = client();
    let session = client.open_session(&SessionOptions::default()).unwrap();
    let mut shown = Vec::new();
    let result = session
        .execute_streaming("display('shown')\nprint('printed')\n6 * 7", &CellOptions::default(), |event| {
            if let Event::Display { result, .. } = event {
                shown.push(result);
            }
        })
        .unwrap();
    assert_eq!(result.stdout_text(), "printed\n");
    assert_eq!(shown, result.results);
    assert_eq!(shown.iter().map(|r| (r.main, r.text("text/plain"))).collect::<Vec<_>>(), [(false, Some("'shown'")), (true, Some("42"))]);
}

#[test]
fn a_program_runs_instead_of_python() {
    let client = client();
    let options = Options { stdin: b"piped".to_vec(), ..Options::default() };
    let result = client.run(&["sh", "-c", "cat; echo \" and $0\""], &options).unwrap();
    assert_eq!(result.stdout_text(), "piped and sh\n", "{}", result.stderr_text());
}

#[test]
fn one_client_serves_many_threads() {
    fn shareable<T: Send + Sync>(_: &T) {}
    let client = Arc::new(client());
    shareable(&*client);
    let jobs: Vec<_> = (0..3)
        .map(|i| {
            let client = Arc::clone(&client);
            std::thread::spawn(move || client.execute(&format!("print({i} * 2)"), &Options::default()).unwrap())
        })
        .collect();
    let outputs: Vec<String> = jobs.into_iter().map(|j| j.join().unwrap().stdout_text().into_owned()).collect();
    assert_eq!(outputs, ["0\n", "2\n", "4\n"]);
}

#[test]
fn a_panicking_callback_unwinds_to_the_caller_and_the_client_goes_on() {
    let client = client();
    let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        client.execute_streaming("print('x')", &Options::default(), |_| panic!("from the callback"))
    }));
    let payload = unwound.expect_err("the panic reaches the caller");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"from the callback"));
    assert_eq!(client.execute("print('after')", &Options::default()).unwrap().stdout_text(), "after\n");
}

#[test]
fn the_library_is_the_header_version() {
    assert_eq!(leeward::version(), leeward::HEADER_VERSION);
    assert_eq!(client().ping().unwrap().version, 2);
}
