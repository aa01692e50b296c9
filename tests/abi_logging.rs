//! The log callback: levels, library events, and no secrets in what it is given. (Own test binary: the logger is
//! process-wide.)

mod common;
use common::*;
use std::ffi::{c_char, CStr};
use std::sync::Mutex;
use std::time::Duration;

static LINES: Mutex<Vec<(u32, String)>> = Mutex::new(Vec::new());

unsafe extern "C" fn collect(_ud: *mut libc::c_void, level: consulnative_log_level, message: *const c_char) {
    LINES.lock().unwrap().push((level as u32, CStr::from_ptr(message).to_string_lossy().into_owned()));
}

#[test]
fn log_callback_gets_leveled_events_and_never_the_token_or_keys() {
    check(consulnative::consulnative_set_logger(Some(collect), std::ptr::null_mut(), 4)).unwrap();
    let agent = Agent::start_with(None, Some("tok-DO-NOT-LOG"), false, 0);
    let bad = Client::new(&agent.address(), &[("token", "wrong-tok-DO-NOT-LOG")]);
    let denied = bad.service("web");
    assert!(denied.wait_ready(800).is_err());

    let client = Client::new(&agent.address(), &[("token", "tok-DO-NOT-LOG")]);
    let db = client.service("db").ready(10_000);
    let web = client.service("web").ready(10_000);
    let listener = db.listen("127.0.0.1:0");
    if let Ok(conn) = web.dial_address(&listener.address(), "db", 5000) {
        let _ = conn.read(1, 2000); // refused: default deny
    }
    assert!(eventually(Duration::from_secs(5), || LINES
        .lock()
        .unwrap()
        .iter()
        .any(|(l, m)| *l == 2 && m.contains("refused"))));
    check(consulnative::consulnative_set_logger(None, std::ptr::null_mut(), 0)).unwrap();

    let lines = LINES.lock().unwrap().clone();
    assert!(lines.iter().any(|(l, m)| *l == 2 && m.contains("403")), "the agent's 403 is logged as a warning");
    assert!(lines.iter().any(|(l, m)| *l == 3 && m.contains("leaf for \"db\" updated")), "rotation events at info");
    assert!(
        lines.iter().any(|(_, m)| m.starts_with("rustls::")),
        "rustls' own diagnostics (the log crate) reach the same callback"
    );
    for (_, m) in &lines {
        assert!(!m.contains("DO-NOT-LOG"), "a token leaked into the log: {m}");
        assert!(!m.contains("PRIVATE KEY"), "a key leaked into the log: {m}");
    }
}
