//! Callback lifetimes: once a remove, a setter or a `_free` returns, the callback is not running, will not run
//! again, and its drop callback has run — so a binding can release its object right then.

mod common;
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

static DROPS: AtomicUsize = AtomicUsize::new(0);
static CALLS_STARTED: AtomicUsize = AtomicUsize::new(0);
static CALLS_FINISHED: AtomicUsize = AtomicUsize::new(0);

unsafe extern "C" fn slow_event(_ud: *mut libc::c_void, _event: consulnative_event) {
    CALLS_STARTED.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(300));
    CALLS_FINISHED.fetch_add(1, Ordering::SeqCst);
}

unsafe extern "C" fn count_drop(_ud: *mut libc::c_void) {
    DROPS.fetch_add(1, Ordering::SeqCst);
}

unsafe extern "C" fn ignore_refusal(
    _: *mut libc::c_void,
    _: consulnative_result,
    _: *const libc::c_char,
    _: *const libc::c_char,
    _: *const libc::c_char,
) {
}

#[test]
fn drops_run_synchronously_and_never_while_the_callback_is_running() {
    let agent = Agent::start();
    let client = Client::new(&agent.address(), &[]);
    let web = client.service("web").ready(10_000);

    // remove_callback while the callback is running: returns only after it finished, with the drop done.
    let mut id = 0;
    check(consulnative_service_add_callback(web.0, Some(slow_event), std::ptr::null_mut(), Some(count_drop), &mut id))
        .unwrap();
    agent.rotate_ca();
    assert!(eventually(Duration::from_secs(10), || CALLS_STARTED.load(Ordering::SeqCst) > 0));
    check(consulnative_service_remove_callback(web.0, id)).unwrap();
    assert_eq!(CALLS_STARTED.load(Ordering::SeqCst), CALLS_FINISHED.load(Ordering::SeqCst), "no call still running");
    assert_eq!(DROPS.load(Ordering::SeqCst), 1, "the drop ran before remove returned");
    let calls = CALLS_STARTED.load(Ordering::SeqCst);
    agent.rotate_ca();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(CALLS_STARTED.load(Ordering::SeqCst), calls, "a removed callback is never called again");

    // service_free retires every callback it holds.
    let db = client.service("db").ready(10_000);
    for _ in 0..2 {
        check(consulnative_service_add_callback(
            db.0,
            Some(slow_event),
            std::ptr::null_mut(),
            Some(count_drop),
            &mut id,
        ))
        .unwrap();
    }
    drop(db);
    assert_eq!(DROPS.load(Ordering::SeqCst), 3);

    // Replacing a listener callback drops the old one; freeing the listener drops the current one.
    let listener = web.listen("127.0.0.1:0");
    check(consulnative_listener_on_refused(listener.0, Some(ignore_refusal), std::ptr::null_mut(), Some(count_drop)))
        .unwrap();
    check(consulnative_listener_on_refused(listener.0, Some(ignore_refusal), std::ptr::null_mut(), Some(count_drop)))
        .unwrap();
    assert_eq!(DROPS.load(Ordering::SeqCst), 4);
    drop(listener);
    assert_eq!(DROPS.load(Ordering::SeqCst), 5);
}

#[test]
fn a_callback_added_after_wait_ready_is_not_told_about_the_first_leaf() {
    static EVENTS: AtomicUsize = AtomicUsize::new(0);
    unsafe extern "C" fn count(_ud: *mut libc::c_void, _event: consulnative_event) {
        EVENTS.fetch_add(1, Ordering::SeqCst);
    }
    let agent = Agent::start();
    let client = Client::new(&agent.address(), &[]);
    for _ in 0..5 {
        let svc = client.service("api").ready(10_000);
        let mut id = 0;
        check(consulnative_service_add_callback(svc.0, Some(count), std::ptr::null_mut(), None, &mut id)).unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(EVENTS.load(Ordering::SeqCst), 0);
}
