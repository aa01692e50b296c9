//! Interop with a TLS stack we did not write: the `openssl` CLI (`s_client`, `s_server`) against the library's
//! listener and dialer, through the C ABI, with certificates from the dev agent.

mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An `openssl` child process: killed and reaped on drop; its stdout (and stderr) lines arrive on a channel.
struct OpenSsl {
    child: std::process::Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl OpenSsl {
    fn spawn(args: &[&str]) -> OpenSsl {
        let mut child = Command::new("openssl")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the openssl CLI is installed");
        let (tx, lines) = channel();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
        }
        OpenSsl { stdin: child.stdin.take(), child, lines, seen: Vec::new() }
    }

    /// Sends text to the process's stdin (s_client/s_server send it to the peer). Stdin stays open.
    fn send(&mut self, text: &str) {
        self.try_send(text).expect("openssl is still running");
    }

    /// Like `send`, for a peer that may already have given up (a refused handshake ends s_client).
    fn try_send(&mut self, text: &str) -> std::io::Result<()> {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(text.as_bytes())?;
        stdin.flush()
    }

    /// Waits until the process has printed a line containing `needle` (stdout and stderr arrive on separate
    /// threads, so lines already seen count too); panics with everything seen so far on timeout.
    fn expect_line(&mut self, needle: &str, timeout: Duration) -> String {
        if let Some(line) = self.seen.iter().find(|l| l.contains(needle)) {
            return line.clone();
        }
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = line.contains(needle);
                    self.seen.push(line.clone());
                    if hit {
                        return line;
                    }
                }
                Err(_) => panic!("openssl never printed {needle:?}; output:\n{}", self.seen.join("\n")),
            }
        }
    }
}

impl Drop for OpenSsl {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A dev agent, a client, and `db` listening (refusals recorded) with an echo server behind it.
struct Setup {
    agent: Agent,
    client: Client,
    _db: Service,
    listener: Arc<Listener>,
    refusals: Arc<RefusalLog>,
    dir: TempDir,
    roots: String,
}

fn setup(tag: &str) -> Setup {
    let agent = Agent::start_with(None, None, false, 0);
    agent.intention("web", "db", true);
    let client = Client::new(&agent.address(), &[]);
    let db = client.service("db").ready(10_000);
    let listener = Arc::new(db.listen("127.0.0.1:0"));
    let refusals = listener.record_refusals();
    let dir = TempDir::new(tag);
    let roots = dir.write("roots.pem", &db.pem(PEM_ROOTS));
    Setup { agent, client, _db: db, listener, refusals, dir, roots }
}

impl Setup {
    /// Writes a certificate chain and key for s_client/s_server; returns (cert path, key path).
    fn write_leaf(&self, name: &str, chain: &str, key: &str) -> (String, String) {
        (self.dir.write(&format!("{name}.pem"), chain), self.dir.write(&format!("{name}.key"), key))
    }

    /// s_client to db's listener with an optional client certificate.
    fn s_client(&self, version: &str, cert: Option<&(String, String)>) -> OpenSsl {
        let addr = self.listener.address();
        let mut args =
            vec!["s_client", "-connect", &addr, version, "-CAfile", &self.roots, "-verify_return_error", "-ign_eof"];
        if let Some((c, k)) = cert {
            args.extend(["-cert", c.as_str(), "-key", k.as_str()]);
        }
        OpenSsl::spawn(&args)
    }

    /// Waits for the listener's first refusal and checks nothing was admitted.
    fn first_refusal(&self) -> (u32, Option<String>, String) {
        assert!(
            eventually(Duration::from_secs(10), || !self.refusals.lock().unwrap().is_empty()),
            "the listener reported no refusal"
        );
        assert_eq!(self.listener.accept(0).err().map(|f| f.code), Some(ERR_TIMEOUT), "a refused client reached accept");
        assert_eq!(self.listener.counts(), (0, 1));
        self.refusals.lock().unwrap()[0].clone()
    }
}

fn openssl_client_with_an_agent_leaf_is_admitted_and_echoed(version: &str) {
    let s = setup("sclient-ok");
    let web = s.client.service("web").ready(10_000);
    let leaf = s.write_leaf("web", &web.pem(PEM_LEAF_CHAIN), &web.pem(PEM_LEAF_KEY));
    let mut ossl = s.s_client(version, Some(&leaf));
    // s_client verified db's certificate chain against the roots (-verify_return_error would abort otherwise).
    ossl.expect_line("Verify return code: 0 (ok)", Duration::from_secs(10));
    ossl.send("hello from openssl\n");

    let conn = s.listener.accept(10_000).expect("the openssl client is admitted");
    let info = conn.info();
    assert_eq!(info["peer"]["service"], "web", "{info}");
    assert_eq!(info["peer"]["serial"].as_str().unwrap(), web.serial());
    let got = conn.read_exact("hello from openssl\n".len()).unwrap();
    assert_eq!(got, b"hello from openssl\n");
    conn.write(b"echo: hello from openssl\n").unwrap();
    ossl.expect_line("echo: hello from openssl", Duration::from_secs(10));
    let want = if version == "-tls1_3" { "New, TLSv1.3, Cipher is" } else { "New, TLSv1.2, Cipher is" };
    assert!(ossl.seen.iter().any(|l| l.contains(want)), "wanted {want:?}:\n{}", ossl.seen.join("\n"));
    assert!(s.refusals.lock().unwrap().is_empty());
}

#[test]
fn openssl_s_client_with_a_dev_agent_leaf_is_admitted_and_echoed_over_tls13() {
    openssl_client_with_an_agent_leaf_is_admitted_and_echoed("-tls1_3");
}

#[test]
fn openssl_s_client_with_a_dev_agent_leaf_is_admitted_and_echoed_over_tls12() {
    openssl_client_with_an_agent_leaf_is_admitted_and_echoed("-tls1_2");
}

/// `openssl s_server -Verify 1` on a free port, presenting an agent-issued leaf for `service`.
fn s_server(s: &Setup, service: &str, version: &str) -> (OpenSsl, String) {
    let now = unix_now();
    let leaf = s.agent.issue_leaf(service, now - 60, now + 3600);
    let (cert, key) = s.write_leaf(&format!("server-{service}"), &leaf.cert_pem, &leaf.private_key_pem);
    let port = free_port().to_string();
    let mut ossl = OpenSsl::spawn(&[
        "s_server",
        "-accept",
        &port,
        "-4",
        version,
        "-cert",
        &cert,
        "-key",
        &key,
        "-CAfile",
        &s.roots,
        "-Verify",
        "1",
        "-verify_return_error",
        "-naccept",
        "1",
    ]);
    ossl.expect_line("ACCEPT", Duration::from_secs(10));
    (ossl, format!("127.0.0.1:{port}"))
}

fn library_dialer_talks_to_openssl_s_server(version: &str) {
    let s = setup("sserver-ok");
    let web = s.client.service("web").ready(10_000);
    let (mut ossl, addr) = s_server(&s, "db", version);
    let conn = web.dial_address(&addr, "db", 10_000).expect("the library accepts s_server's db leaf");
    assert_eq!(conn.info()["peer"]["service"], "db");
    conn.write(b"ping from the library\n").unwrap();
    ossl.expect_line("ping from the library", Duration::from_secs(10));
    ossl.send("pong from openssl\n");
    assert_eq!(conn.read_exact("pong from openssl\n".len()).unwrap(), b"pong from openssl\n");
    // s_server verified our client certificate (-Verify 1 -verify_return_error) against the same roots.
    for line in ["depth=0", "verify return:1", "Client certificate"] {
        ossl.expect_line(line, Duration::from_secs(10));
    }
}

#[test]
fn library_dialer_exchanges_data_with_openssl_s_server_requiring_a_client_cert_over_tls13() {
    library_dialer_talks_to_openssl_s_server("-tls1_3");
}

#[test]
fn library_dialer_exchanges_data_with_openssl_s_server_requiring_a_client_cert_over_tls12() {
    library_dialer_talks_to_openssl_s_server("-tls1_2");
}

#[test]
fn library_dialer_refuses_an_openssl_s_server_presenting_another_service() {
    let s = setup("sserver-wrong");
    let web = s.client.service("web").ready(10_000);
    let (_ossl, addr) = s_server(&s, "cache", "-tls1_3");
    let err = web.dial_address(&addr, "db", 10_000).err().expect("a cache leaf must not pass for db");
    assert_eq!(err.code, ERR_IDENTITY, "{err:?}");
    assert!(err.message.contains("svc/cache") && err.message.contains("db"), "{}", err.message);
}

#[test]
fn openssl_s_client_without_a_certificate_is_refused_at_the_handshake() {
    let s = setup("sclient-nocert");
    let mut ossl = s.s_client("-tls1_3", None);
    let _ = ossl.try_send("let me in\n");
    let (code, uri, message) = s.first_refusal();
    assert_eq!(code, ERR_HANDSHAKE, "{message}");
    assert_eq!(uri, None);
    assert!(message.contains("no client certificate"), "{message}");
}

#[test]
fn openssl_s_client_with_a_leaf_from_a_foreign_ca_is_refused_as_certificate_invalid() {
    let s = setup("sclient-foreign");
    let other = Agent::start();
    let now = unix_now();
    let foreign = other.issue_leaf("web", now - 60, now + 3600);
    let leaf = s.write_leaf("foreign", &foreign.cert_pem, &foreign.private_key_pem);
    let mut ossl = s.s_client("-tls1_3", Some(&leaf));
    let _ = ossl.try_send("let me in\n");
    let (code, _, message) = s.first_refusal();
    assert_eq!(code, ERR_CERT_INVALID, "{message}");
}

#[test]
fn openssl_s_client_with_an_expired_leaf_is_refused_as_certificate_invalid() {
    let s = setup("sclient-expired");
    let now = unix_now();
    let expired = s.agent.issue_leaf("web", now - 7200, now - 3600);
    let leaf = s.write_leaf("expired", &expired.cert_pem, &expired.private_key_pem);
    let mut ossl = s.s_client("-tls1_2", Some(&leaf));
    let _ = ossl.try_send("let me in\n");
    let (code, _, message) = s.first_refusal();
    assert_eq!(code, ERR_CERT_INVALID, "{message}");
    assert!(message.to_lowercase().contains("expired"), "{message}");
}
