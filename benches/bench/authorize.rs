//! Section 3, authorize latency: the agent's authorize round trip, alone and the way the listener makes it; and
//! 3b, the lag from a dial returning to `accept` returning the same connection, library and bare rustls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use consulnative_core::api::wire::{AuthorizeRequest, AuthorizeResponse};

use crate::stats::{fmt_num, percentile, Report};
use crate::world::{server_name, Bare, Usage, World};
use crate::Plan;

/// `POST /v1/agent/connect/authorize` for web's current leaf (URI and serial, from the service's status) and
/// target db, over one kept-alive connection: the request the listener makes for each inbound connection. No
/// timeout is set, so ureq resolves the IP-literal address on the calling thread (with one, ureq 3.5 starts a
/// resolver thread per request; the library's transport avoids that the same way: see its `AgentResolver`).
struct AuthorizeCall {
    http: ureq::Agent,
    url: String,
    body: String,
}

impl AuthorizeCall {
    fn new(w: &World) -> AuthorizeCall {
        let status = w.web.status();
        let request = AuthorizeRequest {
            target: "db".into(),
            client_cert_uri: status["spiffe_id"].as_str().expect("web's SPIFFE ID").into(),
            client_cert_serial: status["leaf_serial"].as_str().expect("web's leaf serial").into(),
        };
        AuthorizeCall {
            http: ureq::Agent::config_builder().http_status_as_error(false).build().new_agent(),
            url: format!("http://{}/v1/agent/connect/authorize", w.agent.address()),
            body: serde_json::to_string(&request).unwrap(),
        }
    }

    /// One call; `Err` unless the agent answered 200 with `Authorized: true`.
    fn call(&self) -> Result<(), String> {
        let mut response = self
            .http
            .post(&self.url)
            .header("Content-Type", "application/json")
            .send(self.body.as_str())
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().map_err(|e| e.to_string())?;
        let answer: AuthorizeResponse =
            serde_json::from_str(&text).map_err(|e| format!("HTTP {status}: {e}: {text}"))?;
        if status == 200 && answer.authorized {
            Ok(())
        } else {
            Err(format!("HTTP {status}: {text}"))
        }
    }
}

/// Back-to-back authorize calls, µs each. `direct`: on this thread. Otherwise the listener's shape: on a tokio
/// runtime's blocking pool (`spawn_blocking`), bounded by a timeout, awaited from the runtime.
fn authorize_samples(call: &Arc<AuthorizeCall>, bare: &Bare, calls: usize, budget: Duration, direct: bool) -> Vec<f64> {
    let deadline = Instant::now() + budget;
    let mut out = Vec::with_capacity(calls);
    for _ in 0..calls {
        if Instant::now() > deadline {
            break;
        }
        let t = Instant::now();
        let r = if direct {
            call.call()
        } else {
            let call = call.clone();
            bare.rt.block_on(async move {
                let step = tokio::task::spawn_blocking(move || call.call());
                match tokio::time::timeout(Duration::from_millis(5100), step).await {
                    Ok(Ok(r)) => r,
                    Ok(Err(join)) => Err(join.to_string()),
                    Err(_) => Err("timed out".into()),
                }
            })
        };
        let us = t.elapsed().as_secs_f64() * 1e6;
        r.expect("authorize allowed");
        out.push(us);
    }
    out
}

/// Through the C ABI: the time from `dial` returning (the client's handshake is done) to `accept` returning the
/// same connection (the listener finished the handshake, verified the client, authorized it and queued it).
fn accept_lag_library(w: &World, samples: usize, budget: Duration) -> Vec<f64> {
    let listener = Arc::new(w.db.listen("127.0.0.1:0"));
    let addr = listener.address();
    let deadline = Instant::now() + budget;
    let mut out = Vec::with_capacity(samples);
    for _ in 0..samples {
        if Instant::now() > deadline {
            break;
        }
        let l = listener.clone();
        let (tx, rx) = std::sync::mpsc::channel::<Instant>();
        let acceptor = std::thread::spawn(move || {
            let c = l.accept(5000);
            (Instant::now(), c.is_ok(), rx.recv().ok())
        });
        let conn = w.web.dial_address(&addr, &w.db_uri, 5000).expect("dial");
        let _ = tx.send(Instant::now());
        let (accepted, ok, dialed) = acceptor.join().unwrap();
        drop(conn);
        if ok {
            out.push((accepted.saturating_duration_since(dialed.unwrap())).as_secs_f64() * 1e6);
        }
    }
    out
}

/// The same lag for bare tokio-rustls (connect returned → accept returned), no authorize call.
fn accept_lag_bare(bare: &Bare, samples: usize, budget: Duration) -> Vec<f64> {
    let (acceptor, connector) = (bare.acceptor(), bare.connector());
    bare.rt.block_on(async move {
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let deadline = Instant::now() + budget;
        let mut out = Vec::new();
        for _ in 0..samples {
            if Instant::now() > deadline {
                break;
            }
            let acc = acceptor.clone();
            let ((accepted, _a), (dialed, _d)) = tokio::join!(
                async {
                    let (s, _) = tcp.accept().await.unwrap();
                    let _ = s.set_nodelay(true);
                    let t = acc.accept(s).await.unwrap();
                    (Instant::now(), t)
                },
                async {
                    let s = tokio::net::TcpStream::connect(addr).await.unwrap();
                    let _ = s.set_nodelay(true);
                    let t = connector.connect(server_name(), s).await.unwrap();
                    (Instant::now(), t)
                }
            );
            out.push(accepted.saturating_duration_since(dialed).as_secs_f64() * 1e6);
        }
        out
    })
}

pub fn bench_authorize(w: &World, bare: &Bare, plan: &Plan, report: &mut Report) {
    eprintln!("[3] authorize latency: {} calls", plan.authorize_calls);
    let call = Arc::new(AuthorizeCall::new(w));
    let _ = authorize_samples(&call, bare, 200, Duration::from_secs(5), false);
    // Interleaved blocks: the listener's step, and the bare agent call it makes (to split the cost).
    let (mut s, mut d) = (vec![], vec![]);
    let block = (plan.authorize_calls / 10).max(1);
    let (mut cpu, mut calls) = (0.0, 0usize);
    for _ in 0..10 {
        let before = Usage::now(w.agent_pid);
        let part = authorize_samples(&call, bare, block, Duration::from_secs(6), false);
        cpu += Usage::now(w.agent_pid).since(before).cpu();
        calls += part.len();
        s.extend(part);
        d.extend(authorize_samples(&call, bare, block, Duration::from_secs(6), true));
    }
    report.notes.push(format!(
        "Authorize: {:.0} µs of CPU per call of the authorize step, both sides (this process and the dev agent's, \
         getrusage and the agent's threads), calls made back to back.",
        cpu * 1e6 / calls.max(1) as f64
    ));
    let measure = format!("3. authorize latency seen by the listener ({} calls)", s.len());
    for (variant, p) in [("p50", 50.0), ("p99", 99.0), ("max", 100.0)] {
        let row = report.single("3", &measure, &format!("authorize step {variant}"), "µs", percentile(&s, p));
        report.push(row);
    }
    for (variant, p) in [("p50", 50.0), ("p99", 99.0)] {
        let variant = format!("of which the agent HTTP call alone {variant}");
        let row = report.single("3", &measure, &variant, "µs", percentile(&d, p));
        report.push(row);
    }
    let lib = accept_lag_library(w, plan.accept_lag_samples, Duration::from_secs(40));
    let base = accept_lag_bare(bare, plan.accept_lag_samples, Duration::from_secs(20));
    let measure = format!("3b. dial returned → accept returned ({} / {} samples)", lib.len(), base.len());
    for (variant, p) in [("p50", 50.0), ("p99", 99.0)] {
        let (l, b) = (percentile(&lib, p), percentile(&base, p));
        let mut row = report.single("3", &measure, &format!("library {variant}"), "µs", l);
        let sign = if l >= b { "+" } else { "" };
        row.ratio = format!("{sign}{} µs vs bare", fmt_num(l - b));
        report.push(row);
        let row = report.single("3", &measure, &format!("bare tokio-rustls {variant}"), "µs", b);
        report.push(row);
    }
}
