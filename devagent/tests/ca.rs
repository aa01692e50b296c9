//! The dev agent's Connect CA checked independently with the `openssl` CLI, leaf renewal and rotation through
//! blocking queries, the CPU cost of waiting queries, and the standalone binary. Every test runs the binary as a
//! child process.

mod common;

use common::{default_agent, start, Client};
use consulnative_core::api::wire::{CaRoots, LeafCert};
use consulnative_devagent::process::DevAgentOptions;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn roots(c: &Client) -> CaRoots {
    c.get("/v1/agent/connect/ca/roots").json()
}

fn leaf(c: &Client, svc: &str) -> LeafCert {
    c.get(&format!("/v1/agent/connect/ca/leaf/{svc}")).json()
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("devagent-{}-{}-{}", name, std::process::id(), fastrand::u32(..)));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl").args(args).output().expect("run openssl");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Split a PEM bundle into its certificate blocks.
fn pem_blocks(bundle: &str) -> Vec<String> {
    bundle
        .split_inclusive("-----END CERTIFICATE-----\n")
        .filter(|b| b.contains("BEGIN CERTIFICATE"))
        .map(|b| b.trim_start().to_string())
        .collect()
}

#[test]
fn leaf_verifies_against_roots_with_openssl_and_has_consul_extensions() {
    let (_a, c) = default_agent();
    let roots = roots(&c);
    let l = leaf(&c, "web");
    let dir = TempDir::new("verify");
    let root = dir.write("root.pem", &roots.roots[0].root_cert);
    let leaf_pem = dir.write("leaf.pem", &pem_blocks(&l.cert_pem)[0]);
    let (ok, out) = openssl(&["verify", "-CAfile", path(&root), "-purpose", "sslserver", path(&leaf_pem)]);
    assert!(ok, "openssl verify: {out}");
    let (ok, out) = openssl(&["verify", "-CAfile", path(&root), "-purpose", "sslclient", path(&leaf_pem)]);
    assert!(ok, "openssl verify (client): {out}");

    let (ok, text) = openssl(&["x509", "-in", path(&leaf_pem), "-noout", "-text"]);
    assert!(ok, "{text}");
    let subject_line = text.lines().find(|l| l.trim_start().starts_with("Subject:")).expect("Subject line");
    assert_eq!(subject_line.trim(), "Subject:", "subject must be empty: {subject_line:?}");
    assert!(text.contains("X509v3 Subject Alternative Name: critical"), "{text}");
    let san_line =
        text.lines().skip_while(|l| !l.contains("Subject Alternative Name")).nth(1).unwrap().trim().to_string();
    assert_eq!(san_line, format!("URI:{}", l.service_uri), "exactly one URI SAN");
    assert!(text.contains("TLS Web Server Authentication, TLS Web Client Authentication"), "{text}");
    // Consul's leaf key usages [agent/connect/ca/provider_consul.go].
    assert!(text.contains("Digital Signature, Key Encipherment, Data Encipherment, Key Agreement"), "{text}");
    assert!(text.contains("CA:FALSE"));
    // Strict DER: x509-parser reads every extension, and BasicConstraints is Go's empty critical SEQUENCE, not an
    // explicit `cA FALSE` (a DEFAULT value DER forbids; Python's cryptography refuses it).
    let der = x509_parser::pem::parse_x509_pem(l.cert_pem.as_bytes()).expect("PEM").1.contents;
    let (rest, cert) = x509_parser::parse_x509_certificate(&der).expect("strict DER leaf");
    assert!(rest.is_empty());
    for ext in cert.extensions() {
        assert!(
            !matches!(
                ext.parsed_extension(),
                x509_parser::extensions::ParsedExtension::UnsupportedExtension { .. }
                    | x509_parser::extensions::ParsedExtension::ParseError { .. }
            ),
            "extension {} does not parse",
            ext.oid
        );
    }
    let bc = cert.basic_constraints().expect("one BasicConstraints").expect("BasicConstraints present");
    assert!(bc.critical && !bc.value.ca);
    let raw = cert.extensions().iter().find(|e| e.oid.to_id_string() == "2.5.29.19").expect("BasicConstraints").value;
    assert_eq!(raw, [0x30, 0x00], "BasicConstraints must be an empty SEQUENCE");
    assert!(text.contains("ecdsa-with-SHA256"));

    // The serial in JSON is the certificate's serial, minimal lowercase colon-hex.
    let (_, serial) = openssl(&["x509", "-in", path(&leaf_pem), "-noout", "-serial"]);
    let hex = serial.trim().trim_start_matches("serial=").to_lowercase();
    assert_eq!(l.serial_number.replace(':', ""), hex);

    // Root: self-signed CA with the trust-domain URI SAN; ID is the SHA-1 fingerprint.
    let (ok, rtext) = openssl(&["x509", "-in", path(&root), "-noout", "-text", "-fingerprint", "-sha1"]);
    assert!(ok);
    assert!(rtext.contains(&format!("URI:spiffe://{}", roots.trust_domain)), "{rtext}");
    assert!(rtext.contains("CA:TRUE"));
    let fp = rtext.lines().find(|l| l.contains("Fingerprint=")).unwrap().split('=').nth(1).unwrap().to_lowercase();
    assert_eq!(fp, roots.roots[0].id);
    let skid =
        rtext.lines().skip_while(|l| !l.contains("Subject Key Identifier")).nth(1).unwrap().trim().to_lowercase();
    assert_eq!(skid, roots.roots[0].signing_key_id);

    // Validity: about 72h from ValidAfter, which is about a minute ago.
    let (_, dates) = openssl(&["x509", "-in", path(&leaf_pem), "-noout", "-checkend", &(71 * 3600).to_string()]);
    assert!(dates.contains("will not expire"), "{dates}");
}

#[test]
fn private_key_is_sec1_ec_and_openssl_accepts_it() {
    let (_a, c) = default_agent();
    let l = leaf(&c, "web");
    assert!(l.private_key_pem.starts_with("-----BEGIN EC PRIVATE KEY-----\n"));
    assert!(l.private_key_pem.ends_with("-----END EC PRIVATE KEY-----\n"));
    let dir = TempDir::new("key");
    let key = dir.write("key.pem", &l.private_key_pem);
    let (ok, out) = openssl(&["ec", "-check", "-noout", "-in", path(&key)]);
    assert!(ok && out.contains("EC Key valid"), "{out}");
    let (ok, out) = openssl(&["ec", "-in", path(&key), "-noout", "-text"]);
    assert!(ok && out.contains("prime256v1"), "curve parameters must be present: {out}");
    // The key matches the certificate.
    let cert = dir.write("leaf.pem", &pem_blocks(&l.cert_pem)[0]);
    let (_, kpub) = openssl(&["ec", "-in", path(&key), "-pubout"]);
    let (_, cpub) = openssl(&["x509", "-in", path(&cert), "-noout", "-pubkey"]);
    let strip = |s: &str| {
        s.lines().filter(|l| !l.starts_with("read EC") && !l.starts_with("writing")).collect::<Vec<_>>().join("\n")
    };
    assert_eq!(strip(&kpub), strip(&cpub));
}

#[test]
fn blocking_leaf_query_returns_early_when_ca_rotates() {
    let (a, c) = default_agent();
    let a = std::sync::Arc::new(a);
    let old_roots = roots(&c);
    let l1 = leaf(&c, "web");
    let a2 = a.clone();
    let rot = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        a2.rotate_ca().expect("rotate");
    });
    let t0 = Instant::now();
    let r = c.get(&format!("/v1/agent/connect/ca/leaf/web?index={}&wait=30s", l1.modify_index));
    let el = t0.elapsed();
    rot.join().unwrap();
    let (idx, body) = (r.index(), r.body);
    eprintln!("blocked leaf query returned {el:?} after start (rotation at 300ms)");
    assert!(el < Duration::from_secs(5));
    let l2: LeafCert = serde_json::from_str(&body).unwrap();
    assert!(idx > l1.modify_index);
    assert_eq!(idx, l2.modify_index);
    assert_ne!(l2.serial_number, l1.serial_number);

    let new_roots = roots(&c);
    assert_eq!(new_roots.roots.len(), 2);
    assert_ne!(new_roots.active_root_id, old_roots.active_root_id);
    let old = new_roots.roots.iter().find(|r| r.id == old_roots.active_root_id).unwrap();
    assert!(!old.active);
    let new = new_roots.roots.iter().find(|r| r.active).unwrap();
    let cross = &new.intermediate_certs.as_ref().expect("cross-signed intermediate")[0];

    // CertPEM = leaf + the cross-signed intermediate.
    let blocks = pem_blocks(&l2.cert_pem);
    assert_eq!(blocks.len(), 2);
    assert_eq!(&blocks[1], cross);

    let dir = TempDir::new("rotate");
    let old_root = dir.write("old.pem", &old.root_cert);
    let new_root = dir.write("new.pem", &new.root_cert);
    let inter = dir.write("inter.pem", cross);
    let leaf_pem = dir.write("leaf.pem", &blocks[0]);
    // Against the OLD root alone, through the cross-signed intermediate.
    let (ok, out) = openssl(&["verify", "-CAfile", path(&old_root), "-untrusted", path(&inter), path(&leaf_pem)]);
    assert!(ok, "new leaf via cross-signed intermediate to the old root: {out}");
    // Against the new root directly.
    let (ok, out) = openssl(&["verify", "-CAfile", path(&new_root), path(&leaf_pem)]);
    assert!(ok, "new leaf against the new root: {out}");
    // The old leaf is not signed by the new root.
    let old_leaf = dir.write("oldleaf.pem", &pem_blocks(&l1.cert_pem)[0]);
    let (ok, _) = openssl(&["verify", "-CAfile", path(&new_root), path(&old_leaf)]);
    assert!(!ok);
    let (ok, out) = openssl(&["verify", "-CAfile", path(&old_root), path(&old_leaf)]);
    assert!(ok, "{out}");
}

#[test]
fn blocking_leaf_query_returns_early_on_ttl_renewal() {
    let (_a, c) = start(DevAgentOptions { leaf_ttl: Some(Duration::from_secs(3)), ..Default::default() });
    let l1 = leaf(&c, "web");
    let t0 = Instant::now();
    let r = c.get(&format!("/v1/agent/connect/ca/leaf/web?index={}&wait=20s", l1.modify_index));
    let el = t0.elapsed();
    let (idx, body) = (r.index(), r.body);
    eprintln!("3s-TTL leaf renewed after {el:?}");
    assert!(el < Duration::from_secs(4), "renewal took {el:?}");
    let l2: LeafCert = serde_json::from_str(&body).unwrap();
    assert_eq!(idx, l2.modify_index);
    assert_ne!(l2.serial_number, l1.serial_number);
    assert!(l2.valid_before >= l1.valid_before);
}

#[test]
fn issue_leaf_signs_an_adhoc_expired_leaf_with_the_active_ca() {
    let (a, c) = default_agent();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let l = a.issue_leaf("web", now - 7200, now - 3600).unwrap();
    let r = roots(&c);
    let dir = TempDir::new("expired");
    let root = dir.write("root.pem", &r.roots[0].root_cert);
    let leaf_pem = dir.write("leaf.pem", &pem_blocks(&l.cert_pem)[0]);
    let (ok, out) = openssl(&["verify", "-CAfile", path(&root), path(&leaf_pem)]);
    assert!(!ok && out.contains("expired"), "{out}");
    let (ok, out) = openssl(&["verify", "-no_check_time", "-CAfile", path(&root), path(&leaf_pem)]);
    assert!(ok, "{out}");
    // Not cached: the leaf endpoint issues its own.
    assert_ne!(leaf(&c, "web").serial_number, l.serial_number);
}

/// CPU seconds (user + system) the process `pid` has used, from /proc/<pid>/stat.
fn process_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/<pid>/stat");
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15 of the whole line.
    let fields: Vec<&str> = stat.rsplit_once(')').expect("stat format").1.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    // Ticks per second (USER_HZ), as `getconf` reports it.
    let out = Command::new("getconf").arg("CLK_TCK").output().expect("run getconf");
    let hz: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().expect("CLK_TCK");
    ticks / hz
}

#[test]
fn hundred_waiting_blocking_queries_cost_almost_no_cpu() {
    let (a, c) = default_agent();
    let pid = a.pid().expect("running agent");
    let idx = c.get("/v1/agent/connect/ca/roots").index();
    let n = 100;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(n + 1));
    let mut threads = Vec::new();
    for _ in 0..n {
        let c = Client::new(a.address());
        let b = barrier.clone();
        threads.push(std::thread::spawn(move || {
            b.wait();
            let t0 = Instant::now();
            let r = c.get(&format!("/v1/agent/connect/ca/roots?index={idx}&wait=3s"));
            (r.index(), t0.elapsed())
        }));
    }
    barrier.wait();
    // Let every request arrive and park, then measure the agent process while they wait.
    std::thread::sleep(Duration::from_millis(500));
    let cpu0 = process_cpu_seconds(pid);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let cpu = process_cpu_seconds(pid) - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    eprintln!("agent CPU while {n} blocking roots queries wait: {cpu:.4} s over {wall:.2} s");
    for t in threads {
        let (i, el) = t.join().unwrap();
        assert_eq!(i, idx);
        assert!(el >= Duration::from_secs(3), "returned early after {el:?}");
    }
    assert!(cpu < 0.5, "waiting queries burned {cpu} s CPU");
}

#[test]
fn binary_prints_one_listening_line_and_writes_the_addr_file() {
    use std::io::{BufRead, BufReader};
    let dir = TempDir::new("bin");
    let addr_file = dir.0.join("addr");
    let t0 = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_consulnative-dev-agent"))
        .args([
            "--http-addr",
            "127.0.0.1:0",
            "--addr-file",
            path(&addr_file),
            "--leaf-ttl",
            "1h",
            "--default-policy",
            "deny",
        ])
        .env("CONSUL_DEV_AGENT_TOKEN", "tok")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn binary");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    eprintln!("binary ready after {:?}", t0.elapsed());
    let addr = std::fs::read_to_string(&addr_file).unwrap_or_default();
    let result = std::panic::catch_unwind(|| {
        assert_eq!(line, format!("consulnative-dev-agent listening on http://{addr}\n"));
        assert!(addr.starts_with("127.0.0.1:"));
        let c = Client::new(&addr);
        assert_eq!(c.get("/v1/agent/connect/ca/leaf/web").status, 403);
        let r = c.call("GET", "/v1/agent/connect/ca/leaf/web", &[("X-Consul-Token", "tok")], None);
        assert_eq!(r.status, 200);
        let l: LeafCert = r.json();
        assert!(l.valid_before > l.valid_after);
    });
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    // --help works and bad flags fail.
    let out = Command::new(env!("CARGO_BIN_EXE_consulnative-dev-agent")).arg("--help").output().unwrap();
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("--http-addr"));
    let out = Command::new(env!("CARGO_BIN_EXE_consulnative-dev-agent")).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}
