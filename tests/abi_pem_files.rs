//! `consulnative_service_write_pem_files` and `consulnative_service_authorize` through the C ABI: files written
//! at once and after a rotation with the callback told each serial, the writer's drop on removal, a write error
//! as a result code, and the agent's answer for an allowed and a denied pair.

mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static WRITES: Mutex<Vec<(u32, String)>> = Mutex::new(Vec::new());
static DROPS: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn on_write(_ud: *mut libc::c_void, result: consulnative_result, detail: *const libc::c_char) {
    // SAFETY: the library passes a NUL-terminated string valid during the call.
    let detail = unsafe { std::ffi::CStr::from_ptr(detail) }.to_string_lossy().into_owned();
    WRITES.lock().unwrap().push((result as u32, detail));
}

unsafe extern "C" fn on_drop(_ud: *mut libc::c_void) {
    DROPS.fetch_add(1, Ordering::SeqCst);
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("consulnative-abi-pem-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn pem_files_are_written_then_rewritten_after_a_rotation_and_the_writer_drops_on_removal() {
    let agent = Agent::start();
    let client = Client::new(&agent.address(), &[("blocking_wait_ms", "2000"), ("retry_max_ms", "300")]);
    let web = client.service("web").ready(10_000);
    let dir = temp_dir("rotate");
    let mut id = 0;
    let path = c(dir.to_str().unwrap());
    check(consulnative_service_write_pem_files(
        web.0,
        path.as_ptr(),
        Some(on_write),
        std::ptr::null_mut(),
        Some(on_drop),
        &mut id,
    ))
    .unwrap();
    let first = web.serial();
    assert_eq!(WRITES.lock().unwrap().clone(), vec![(0, first.clone())], "the first write is reported before return");
    assert_eq!(std::fs::read_to_string(dir.join("key.pem")).unwrap(), web.pem(consulnative_pem_kind::LeafKey as u32));
    assert_eq!(std::fs::metadata(dir.join("key.pem")).unwrap().permissions().mode() & 0o777, 0o600);

    agent.rotate_ca();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !WRITES.lock().unwrap().iter().any(|(_, s)| *s != first) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let rotated = WRITES.lock().unwrap().last().cloned().unwrap();
    assert_ne!(rotated.1, first);
    assert_eq!(
        std::fs::read_to_string(dir.join("cert.pem")).unwrap(),
        web.pem(consulnative_pem_kind::LeafChain as u32)
    );

    check(consulnative_service_remove_callback(web.0, id)).unwrap();
    assert_eq!(DROPS.load(Ordering::SeqCst), 1, "the drop ran before remove_callback returned");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_uncreatable_directory_is_an_io_error_naming_it() {
    let agent = Agent::start();
    let client = Client::new(&agent.address(), &[]);
    let web = client.service("web").ready(10_000);
    let blocker = temp_dir("blocker");
    std::fs::write(&blocker, "a file").unwrap();
    let path = c(blocker.join("tls").to_str().unwrap());
    let mut id = 0;
    let err =
        check(consulnative_service_write_pem_files(web.0, path.as_ptr(), None, std::ptr::null_mut(), None, &mut id))
            .unwrap_err();
    assert_eq!(err.code, consulnative_result::Io as u32);
    assert!(err.message.contains("cannot create the PEM directory"), "{}", err.message);
    let _ = std::fs::remove_file(&blocker);
}

#[test]
fn authorize_writes_the_agents_reason_or_fails_with_authorization_denied() {
    let agent = Agent::start();
    let client = Client::new(&agent.address(), &[]);
    let web = client.service("web").ready(10_000);
    let db = c("db");
    let reason = read_text(|b, l, n| consulnative_service_authorize(web.0, db.as_ptr(), b, l, n)).unwrap();
    assert!(!reason.is_empty());
    agent.intention("web", "db", false);
    let code = read_text(|b, l, n| consulnative_service_authorize(web.0, db.as_ptr(), b, l, n)).unwrap_err();
    assert_eq!(code, consulnative_result::AuthorizationDenied as u32);
    assert!(last_error().contains("Action: DENY"), "{}", last_error());
}
