//! Argument checking at the C ABI: NULL handles, out-params and strings, invalid UTF-8, short buffers, unknown
//! keys and malformed addresses give the documented code and a message naming the argument; never a crash.

mod common;
use common::*;
use std::ffi::{c_char, CStr};
use std::ptr::{null, null_mut};

const NOT_UTF8: &[u8] = b"\xff\xfe not utf-8 \xc3\x28\0";
fn bad() -> *const c_char {
    NOT_UTF8.as_ptr() as *const c_char
}

/// Asserts `rc` is `code` and the thread's last error message contains `needle`.
#[track_caller]
fn assert_fails(rc: consulnative_result, code: u32, needle: &str) {
    let message = last_error();
    let rc = rc as u32;
    assert_eq!(rc, code, "expected {code}, got {rc}: {message}");
    assert!(message.contains(needle), "message {message:?} should contain {needle:?}");
}

fn ready_web() -> (Agent, Client, Service) {
    let agent = Agent::start();
    let client = Client::new(&agent.address(), &[]);
    let web = client.service("web").ready(10_000);
    (agent, client, web)
}

#[test]
fn null_handles_are_rejected_with_a_message_naming_the_argument() {
    let mut n = 0usize;
    let mut buf = [0 as c_char; 64];
    assert_fails(consulnative_config_set(null_mut(), c("address").as_ptr(), c("x").as_ptr()), ERR_NULL, "`config`");
    assert_fails(
        consulnative_client_register(null(), c("web").as_ptr(), null(), null(), 1, null(), null()),
        ERR_NULL,
        "`client`",
    );
    assert_fails(consulnative_client_deregister(null(), c("web").as_ptr()), ERR_NULL, "`client`");
    assert_fails(consulnative_service_new(null(), c("web").as_ptr(), &mut null_mut()), ERR_NULL, "`client`");
    assert_fails(consulnative_service_wait_ready(null(), 0), ERR_NULL, "`service`");
    assert_fails(consulnative_service_status(null(), buf.as_mut_ptr(), buf.len(), &mut n), ERR_NULL, "`service`");
    assert_fails(
        consulnative_service_listen(null(), c("127.0.0.1:0").as_ptr(), null(), &mut null_mut()),
        ERR_NULL,
        "`service`",
    );
    assert_fails(consulnative_listener_accept(null(), 0, &mut null_mut()), ERR_NULL, "`listener`");
    assert_fails(consulnative_listener_counts(null(), &mut 0, &mut 0), ERR_NULL, "`listener`");
    assert_fails(consulnative_conn_read(null(), buf.as_mut_ptr() as *mut u8, buf.len(), 0, &mut n), ERR_NULL, "`conn`");
    assert_fails(consulnative_conn_write(null(), b"x".as_ptr(), 1, 0, &mut n), ERR_NULL, "`conn`");
    assert_fails(consulnative_conn_info(null(), buf.as_mut_ptr(), buf.len(), &mut n), ERR_NULL, "`conn`");
    assert_fails(consulnative_conn_close(null(), 0), ERR_NULL, "`conn`");
    assert_fails(consulnative_conn_shutdown(null(), 0), ERR_NULL, "`conn`");
}

#[test]
fn null_out_params_are_rejected_and_nothing_is_created() {
    let (_agent, client, web) = ready_web();
    let mut buf = [0 as c_char; 256];
    assert_fails(consulnative_config_new(null_mut()), ERR_NULL, "`out`");
    assert_fails(consulnative_client_new(null(), null_mut()), ERR_NULL, "`out`");
    assert_fails(consulnative_service_new(client.0, c("web").as_ptr(), null_mut()), ERR_NULL, "`out`");
    assert_fails(consulnative_service_listen(web.0, c("127.0.0.1:0").as_ptr(), null(), null_mut()), ERR_NULL, "`out`");
    assert_fails(
        consulnative_service_dial_address(web.0, c("127.0.0.1:1").as_ptr(), c("db").as_ptr(), null(), 100, null_mut()),
        ERR_NULL,
        "`out`",
    );
    assert_fails(consulnative_service_status(web.0, buf.as_mut_ptr(), buf.len(), null_mut()), ERR_NULL, "`out_n`");
    assert_fails(consulnative_service_add_callback(web.0, None, null_mut(), None, &mut 0), ERR_NULL, "`callback`");
    let listener = web.listen("127.0.0.1:0");
    assert_fails(consulnative_listener_counts(listener.0, null_mut(), &mut 0), ERR_NULL, "`out_accepted`");
    assert_fails(consulnative_listener_counts(listener.0, &mut 0, null_mut()), ERR_NULL, "`out_refused`");
    assert_fails(consulnative_listener_accept(listener.0, 0, null_mut()), ERR_NULL, "`out`");

    // Out-params are written only on success.
    let mut out = std::ptr::dangling_mut::<consulnative_service>();
    assert_fails(consulnative_service_new(client.0, null(), &mut out), ERR_NULL, "`name`");
    assert_eq!(out, std::ptr::dangling_mut::<consulnative_service>());
}

#[test]
fn null_and_invalid_utf8_strings_are_rejected_by_name() {
    let (_agent, client, web) = ready_web();
    let mut cfg = null_mut();
    check(consulnative_config_new(&mut cfg)).unwrap();
    assert_fails(consulnative_config_set(cfg, null(), c("x").as_ptr()), ERR_NULL, "`key`");
    assert_fails(consulnative_config_set(cfg, bad(), c("x").as_ptr()), ERR_INVALID, "`key` is not valid UTF-8");
    assert_fails(consulnative_config_set(cfg, c("address").as_ptr(), bad()), ERR_INVALID, "`value` is not valid UTF-8");
    consulnative_config_free(cfg);
    assert_fails(consulnative_service_new(client.0, bad(), &mut null_mut()), ERR_INVALID, "`name`");
    assert_fails(
        consulnative_client_register(client.0, c("web").as_ptr(), bad(), null(), 1, null(), null()),
        ERR_INVALID,
        "`id`",
    );
    assert_fails(consulnative_client_pass_ttl(client.0, null(), null()), ERR_NULL, "`check_id`");
    assert_fails(consulnative_client_pass_ttl(client.0, c("service:web").as_ptr(), bad()), ERR_INVALID, "`note`");
    assert_fails(consulnative_service_dial(web.0, null(), null(), null(), 100, &mut null_mut()), ERR_NULL, "`target`");
    assert_fails(
        consulnative_service_dial(web.0, c("db").as_ptr(), bad(), null(), 100, &mut null_mut()),
        ERR_INVALID,
        "`datacenter`",
    );
    assert_fails(
        consulnative_service_dial_address(web.0, c("127.0.0.1:1").as_ptr(), null(), null(), 100, &mut null_mut()),
        ERR_NULL,
        "`expected`",
    );
    assert_fails(
        consulnative_service_dial_address(web.0, bad(), c("db").as_ptr(), null(), 100, &mut null_mut()),
        ERR_INVALID,
        "`address`",
    );
    assert_fails(
        consulnative_service_listen(web.0, c("127.0.0.1:0").as_ptr(), bad(), &mut null_mut()),
        ERR_INVALID,
        "`alpn`",
    );
}

#[test]
fn free_of_null_is_a_no_op_for_every_handle() {
    consulnative_config_free(null_mut());
    consulnative_client_free(null_mut());
    consulnative_service_free(null_mut());
    consulnative_listener_close(null());
    consulnative_listener_free(null_mut());
    consulnative_conn_free(null_mut());
}

#[test]
fn short_or_null_buffers_report_the_needed_length_in_out_n() {
    let (_agent, _client, web) = ready_web();
    let listener = web.listen("127.0.0.1:0");
    let addr = listener.address();
    let mut n = 0usize;
    assert_eq!(consulnative_listener_address(listener.0, null_mut(), 0, &mut n) as u32, 17);
    assert_eq!(n, addr.len());
    // Exactly the text length leaves no room for the NUL: still too small, nothing written.
    let mut buf = vec![b'#' as c_char; addr.len()];
    assert_eq!(consulnative_listener_address(listener.0, buf.as_mut_ptr(), buf.len(), &mut n) as u32, 17);
    assert!(buf.iter().all(|&b| b == b'#' as c_char));
    let mut buf = vec![0 as c_char; n + 1];
    check(consulnative_listener_address(listener.0, buf.as_mut_ptr(), buf.len(), &mut n)).unwrap();
    // SAFETY: the call succeeded, so `buf` holds a NUL-terminated string.
    assert_eq!(unsafe { CStr::from_ptr(buf.as_ptr()) }.to_str().unwrap(), addr);

    let status = read_text(|b, l, n| consulnative_service_status(web.0, b, l, n)).unwrap();
    assert_eq!(consulnative_service_status(web.0, null_mut(), 0, &mut n) as u32, 17);
    assert_eq!(n, status.len());
    assert_eq!(consulnative_service_pem(web.0, PEM_ROOTS, null_mut(), 0, &mut n) as u32, 17);
    assert!(n > 100, "roots PEM length {n}");
}

#[test]
fn last_error_with_a_short_buffer_reports_the_length_and_keeps_the_message() {
    assert_eq!(consulnative_service_wait_ready(null(), 0) as u32, ERR_NULL);
    let want = "argument `service` is NULL";
    let mut n = 0usize;
    assert_eq!(consulnative_last_error(null_mut(), 0, &mut n) as u32, 17);
    assert_eq!(n, want.len());
    let mut small = [0 as c_char; 4];
    assert_eq!(consulnative_last_error(small.as_mut_ptr(), small.len(), &mut n) as u32, 17);
    assert_eq!(last_error(), want, "a short buffer must not replace the recorded message");
}

#[test]
fn last_error_is_per_thread() {
    assert_eq!(consulnative_listener_accept(null(), 0, &mut null_mut()) as u32, ERR_NULL);
    let other = std::thread::spawn(last_error).join().unwrap();
    assert_eq!(other, "", "another thread has no failure yet");
    assert_eq!(last_error(), "argument `listener` is NULL");
}

#[test]
fn unknown_configuration_keys_and_bad_values_are_invalid_arguments() {
    let mut cfg = null_mut();
    check(consulnative_config_new(&mut cfg)).unwrap();
    let set = |k: &str, v: Option<&str>| {
        let v = v.map(c);
        consulnative_config_set(cfg, c(k).as_ptr(), v.as_ref().map_or(null(), |v| v.as_ptr()))
    };
    assert_fails(set("adress", Some("127.0.0.1:8500")), ERR_INVALID, "unknown configuration key \"adress\"");
    assert_fails(
        set("request_timeout_ms", Some("5s")),
        ERR_INVALID,
        "`request_timeout_ms` must be a number of milliseconds",
    );
    assert_fails(set("blocking_wait_ms", None), ERR_INVALID, "`blocking_wait_ms` needs a value");
    assert_fails(set("tls_verify", Some("perhaps")), ERR_INVALID, "`tls_verify` must be true or false");
    assert_eq!(set("token", None) as u32, 0, "NULL clears an optional key");
    assert_eq!(set("datacenter", Some("")) as u32, 0, "empty clears an optional key");
    consulnative_config_free(cfg);
}

#[test]
fn malformed_addresses_are_invalid_arguments() {
    let (_agent, client, web) = ready_web();
    assert_fails(
        consulnative_service_listen(web.0, c("no port").as_ptr(), null(), &mut null_mut()),
        ERR_INVALID,
        "not a listen address: \"no port\"",
    );
    assert_fails(
        consulnative_service_listen(web.0, c("127.0.0.1:99999").as_ptr(), null(), &mut null_mut()),
        ERR_INVALID,
        "99999",
    );
    assert_fails(
        consulnative_client_register(client.0, c("web").as_ptr(), null(), null(), 1, null(), c("http:100").as_ptr()),
        ERR_INVALID,
        "unknown check",
    );
    // The expected identity must be a service name or a SPIFFE URI.
    let rc = consulnative_service_dial_address(
        web.0,
        c("127.0.0.1:1").as_ptr(),
        c("spiffe://bad uri").as_ptr(),
        null(),
        1000,
        &mut null_mut(),
    );
    assert_fails(rc, ERR_INVALID, "spiffe://bad uri");
}

/// A dial address without a port is refused before anything is dialed.
#[test]
fn malformed_dial_address_is_an_invalid_argument() {
    let (_agent, _client, web) = ready_web();
    let rc = consulnative_service_dial_address(
        web.0,
        c("no port").as_ptr(),
        c("db").as_ptr(),
        null(),
        1000,
        &mut null_mut(),
    );
    assert_fails(rc, ERR_INVALID, "no port");
}

#[test]
fn unknown_enum_values_are_invalid_arguments() {
    let (_agent, _client, web) = ready_web();
    let mut n = 0;
    assert_fails(consulnative_service_pem(web.0, 0, null_mut(), 0, &mut n), ERR_INVALID, "unknown PEM kind 0");
    assert_fails(consulnative_service_pem(web.0, 4, null_mut(), 0, &mut n), ERR_INVALID, "unknown PEM kind 4");
}

#[test]
fn every_result_code_has_a_name_and_unknown_codes_say_so() {
    let names: Vec<String> = (0..=20u32)
        // SAFETY: consulnative_result_name returns a static NUL-terminated string for any number.
        .map(|code| unsafe { CStr::from_ptr(consulnative_result_name(code)) }.to_str().unwrap().to_string())
        .collect();
    for (code, name) in names.iter().enumerate() {
        assert!(!name.is_empty() && name != "unknown result", "code {code} has no name");
    }
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "names are distinct: {names:?}");
    assert_eq!(names[ERR_DENIED as usize], "authorization denied");
    for code in [21, 1000, u32::MAX] {
        // SAFETY: a static NUL-terminated string for any number.
        assert_eq!(unsafe { CStr::from_ptr(consulnative_result_name(code)) }.to_str().unwrap(), "unknown result");
    }
}

#[test]
fn version_is_the_crate_version() {
    // SAFETY: consulnative_version returns a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(consulnative_version()) }.to_str().unwrap();
    assert_eq!(v, env!("CARGO_PKG_VERSION"));
    assert_eq!(consulnative_version(), consulnative_version(), "a static string");
}
