//! Section 2, bulk throughput over one connection: the C ABI's read/write, its descriptor handoff, bare
//! tokio-rustls and plain TCP.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{check, consulnative_conn_handoff, consulnative_conn_read, consulnative_conn_write};
use crate::common::{consulnative_result, fd_stream, Conn, Listener};
use crate::stats::{median, Report};
use crate::world::{server_name, Bare, Usage, World};
use crate::Plan;

pub const WRITE_CHUNK: usize = 16 * 1024;
pub const READ_BUF: usize = 64 * 1024;

fn accept_one(listener: &Arc<Listener>) -> std::thread::JoinHandle<Conn> {
    let l = listener.clone();
    std::thread::spawn(move || l.accept(10_000).expect("accept"))
}

/// Library, blocking API: the dialer writes `bytes` in 16 KiB `consulnative_conn_write` calls; a thread reads on
/// the accepted side with 64 KiB `consulnative_conn_read` calls. Handoff: both ends handed off, the same over the
/// two descriptors. Returns MB/s.
pub fn bulk_library(w: &World, bytes: usize, handoff: bool) -> f64 {
    let listener = Arc::new(w.db.listen("127.0.0.1:0"));
    let server = accept_one(&listener);
    let client = w.web.dial_address(&listener.address(), &w.db_uri, 10_000).expect("dial");
    let server = server.join().unwrap();
    let chunk = vec![7u8; WRITE_CHUNK];
    let secs = if handoff {
        let (mut cfd, mut sfd) = (0i32, 0i32);
        check(consulnative_conn_handoff(client.0, &mut cfd)).unwrap();
        check(consulnative_conn_handoff(server.0, &mut sfd)).unwrap();
        // SAFETY: descriptors the handoffs just gave us; each stream owns and closes its own.
        let mut cs = unsafe { fd_stream(cfd) };
        // SAFETY: as above.
        let mut ss = unsafe { fd_stream(sfd) };
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; READ_BUF];
            let mut got = 0;
            while got < bytes {
                match ss.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            (Instant::now(), got)
        });
        let t0 = Instant::now();
        let mut sent = 0;
        while sent < bytes {
            cs.write_all(&chunk).unwrap();
            sent += chunk.len();
        }
        let (t1, got) = reader.join().unwrap();
        assert_eq!(got, bytes, "handoff: short read");
        (t1 - t0).as_secs_f64()
    } else {
        let server = Arc::new(server);
        let s2 = server.clone();
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; READ_BUF];
            let mut got = 0;
            while got < bytes {
                let mut n = 0;
                if consulnative_conn_read(s2.0, buf.as_mut_ptr(), buf.len(), 10_000, &mut n) != consulnative_result::Ok
                    || n == 0
                {
                    break;
                }
                got += n;
            }
            (Instant::now(), got)
        });
        let t0 = Instant::now();
        let mut sent = 0;
        while sent < bytes {
            let mut n = 0;
            check(consulnative_conn_write(client.0, chunk.as_ptr(), chunk.len(), 10_000, &mut n)).unwrap();
            sent += n;
        }
        let (t1, got) = reader.join().unwrap();
        assert_eq!(got, bytes, "read/write: short read");
        (t1 - t0).as_secs_f64()
    };
    bytes as f64 / secs / 1e6
}

/// Bare tokio-rustls (or plain TCP): the client task writes `bytes` in 16 KiB `write_all` calls, the server task
/// reads with a 64 KiB buffer; both on the baseline's runtime. Returns MB/s.
pub fn bulk_bare(bare: &Bare, bytes: usize, tls: bool) -> f64 {
    let (acceptor, connector) = (bare.acceptor(), bare.connector());
    bare.rt.block_on(async move {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (s, _) = tcp.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            let got = if tls { read_n(acceptor.accept(s).await.unwrap(), bytes).await } else { read_n(s, bytes).await };
            (Instant::now(), got)
        });
        let s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        let mut w: Box<dyn tokio::io::AsyncWrite + Unpin + Send> =
            if tls { Box::new(connector.connect(server_name(), s).await.unwrap()) } else { Box::new(s) };
        let chunk = vec![7u8; WRITE_CHUNK];
        let t0 = Instant::now();
        let mut sent = 0;
        while sent < bytes {
            w.write_all(&chunk).await.unwrap();
            sent += chunk.len();
        }
        w.flush().await.unwrap();
        let (t1, got) = server.await.unwrap();
        assert_eq!(got, bytes, "bare: short read");
        bytes as f64 / (t1 - t0).as_secs_f64() / 1e6
    })
}

async fn read_n(mut r: impl tokio::io::AsyncRead + Unpin, bytes: usize) -> usize {
    let mut buf = vec![0u8; READ_BUF];
    let mut got = 0;
    while got < bytes {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    got
}

pub fn bench_bulk(w: &World, bare: &Bare, plan: &Plan, report: &mut Report) {
    let bytes = plan.bulk_bytes;
    eprintln!("[2] bulk throughput: {} MiB in 16 KiB writes, {} rounds", bytes >> 20, plan.rounds);
    let _ = bulk_library(w, bytes / 8, false);
    let _ = bulk_bare(bare, bytes / 8, true);
    let (mut rw, mut ho, mut tls, mut tcp) = (vec![], vec![], vec![], vec![]);
    // CPU-seconds per GiB moved, this process and the agent's, per variant.
    let mut cpu: [Vec<f64>; 4] = Default::default();
    let gib = bytes as f64 / (1u64 << 30) as f64;
    let mut measured = |i: usize, f: &dyn Fn() -> f64| -> f64 {
        let before = Usage::now(w.agent_pid);
        let v = f();
        cpu[i].push(Usage::now(w.agent_pid).since(before).cpu() / gib);
        v
    };
    for r in 0..plan.rounds {
        rw.push(measured(0, &|| bulk_library(w, bytes, false)));
        tls.push(measured(2, &|| bulk_bare(bare, bytes, true)));
        ho.push(measured(1, &|| bulk_library(w, bytes, true)));
        tcp.push(measured(3, &|| bulk_bare(bare, bytes, false)));
        eprintln!(
            "    round {r}: read/write {:.0}, handoff {:.0}, bare rustls {:.0}, plain TCP {:.0} MB/s",
            rw[r], ho[r], tls[r], tcp[r]
        );
    }
    report.notes.push(format!(
        "Bulk throughput, CPU-seconds per GiB moved (whole process and the agent's, includes connection setup): \
         library read/write {:.2}, handoff {:.2}, bare rustls {:.2}, plain TCP {:.2}.",
        median(&cpu[0]),
        median(&cpu[1]),
        median(&cpu[2]),
        median(&cpu[3])
    ));
    let measure = format!("2. bulk throughput, one connection ({} MiB in 16 KiB writes)", bytes >> 20);
    let row = report.row("2", &measure, "library read/write (C ABI)", "MB/s", &rw);
    report.push_goal(row, &rw, &tls, 0.8, "≥ 0.8x bare rustls");
    let row = report.row("2", &measure, "library fd handoff (both ends)", "MB/s", &ho);
    report.push_goal(row, &ho, &tls, 0.5, "≥ 0.5x bare rustls");
    let row = report.row("2", &measure, "bare tokio-rustls", "MB/s", &tls);
    report.push_baseline(row);
    let row = report.row("2", &measure, "plain TCP", "MB/s", &tcp);
    report.push_ratio(row, &tcp, &tls);
}
