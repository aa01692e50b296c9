//! Attack: slow and silent clients, and an application that stops accepting. A listener holds at most
//! `max_handshakes` connections between accept and admission and `accept_queue` admitted ones; beyond that,
//! connections wait in the kernel backlog. When every slot is taken, handshakes older than
//! `busy_handshake_timeout_ms` are cut, so clients that hold connections open on purpose only delay others briefly.

mod attack;
mod common;
use attack::*;
use common::*;
use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn silent_and_trickling_clients_are_cut_when_every_handshake_slot_is_taken() {
    let agent = Agent::start();
    let client = Client::new(
        &agent.address(),
        &[("max_handshakes", "16"), ("busy_handshake_timeout_ms", "300"), ("handshake_timeout_ms", "60000")],
    );
    let db = client.service("db").ready(10_000);
    let web = client.service("web").ready(10_000);
    let listener = Arc::new(db.listen("127.0.0.1:0"));
    let addr = listener.address();
    let seen = on_refused_sleeping(&listener, Duration::ZERO);
    echo_server(listener.clone());
    probe(&web, &addr).expect("warm-up dial");

    // 48 silent clients and 16 that trickle one byte of a TLS record every 100 ms: four times the slots.
    let silent: Vec<TcpStream> = (0..48).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    let trickle: Vec<TcpStream> = (0..16).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    let trickler = std::thread::spawn(move || {
        let mut trickle = trickle;
        let header = [0x16u8, 0x03, 0x01, 0x02, 0x00];
        for i in 0..header.len() * 10 {
            for s in trickle.iter_mut() {
                let _ = s.write_all(&header[i % header.len()..i % header.len() + 1]);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    let in_progress = stats(&listener)["in_progress"].as_u64().unwrap();
    assert!(in_progress <= 16, "never more than max_handshakes between accept and admission: {in_progress}");

    // Legitimate clients queue behind them in the backlog, and get in once the old handshakes are cut.
    let started = Instant::now();
    let probes: Vec<_> = (0..3).map(|_| probe(&web, &addr)).collect();
    let s = stats(&listener);
    assert!(probes.iter().all(|p| p.is_ok()), "{probes:?} {s}");
    assert!(started.elapsed() < Duration::from_secs(15), "{:?} {s}", started.elapsed());
    assert!(s["saturated"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["handshakes_cut"].as_u64().unwrap() >= 16, "{s}");
    assert!(s["in_progress"].as_u64().unwrap() <= 16, "{s}");
    trickler.join().unwrap();
    drop(silent);
    assert!(eventually(Duration::from_secs(15), || stats(&listener)["handshakes_cut"].as_u64().unwrap() >= 48));
    let cut = seen.messages.lock().unwrap().iter().filter(|(_, m)| m.contains("the listener is busy")).count();
    assert!(cut >= 16, "cut handshakes are refusals with a reason: {cut}");
    let messages = seen.messages.lock().unwrap();
    let (code, message) = messages.iter().find(|(_, m)| m.contains("the listener is busy")).unwrap();
    assert_eq!(*code, ERR_TIMEOUT);
    assert!(message.contains("cut after 300ms") && message.contains("16 handshake slots"), "{message}");
}

#[test]
fn an_application_that_stops_accepting_leaves_extra_connections_in_the_kernel_backlog() {
    let agent = Agent::start();
    let client = Client::new(&agent.address(), &[("accept_queue", "4"), ("max_handshakes", "4")]);
    let db = client.service("db").ready(10_000);
    let web = Arc::new(client.service("web").ready(10_000));
    let listener = db.listen("127.0.0.1:0");
    let addr = listener.address();

    // Nobody accepts. 20 clients dial with a short timeout: at most accept_queue + max_handshakes are admitted.
    let dials: Vec<_> = (0..20)
        .map(|_| {
            let (web, addr) = (web.clone(), addr.clone());
            std::thread::spawn(move || web.dial_address(&addr, "db", 3000).map(|_| ()))
        })
        .collect();
    let results: Vec<_> = dials.into_iter().map(|d| d.join().unwrap()).collect();
    let s = stats(&listener);
    assert_eq!(s["waiting"], 4, "the accept queue is full: {s}");
    assert!(s["accepted"].as_u64().unwrap() <= 8, "queue + handshake slots, no more: {s}");
    assert!(s["in_progress"].as_u64().unwrap() <= 4, "{s}");
    let timed_out = results.iter().filter(|r| r.as_ref().is_err_and(|f| f.code == ERR_TIMEOUT)).count();
    assert!(timed_out >= 12, "the others waited in the backlog and their dials timed out: {results:?}");

    // The application accepts again: the queue drains, and a new client is admitted.
    let mut accepted = 0;
    while listener.accept(2000).is_ok() {
        accepted += 1;
        assert!(accepted <= 40, "bounded");
    }
    assert!(accepted >= 4);
    let conn = web.dial_address(&addr, "db", 5000).expect("admitted once there is room");
    let server_side = listener.accept(5000).expect("accepted");
    conn.write(b"x").unwrap();
    assert_eq!(server_side.read_exact(1).unwrap(), b"x");
    assert!(stats(&listener)["waiting"].as_u64().unwrap() <= 4);
}
