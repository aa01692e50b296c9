//! The `consulnative` binary against the dev agent binary: PEM files, status, authorize, and the failures a user
//! sees (no agent, bad usage).

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};

use consulnative_devagent::process::{DevAgentOptions, DevAgentProcess};

fn consulnative(agent: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_consulnative"))
        .args(args)
        .env("CONSUL_HTTP_ADDR", agent)
        .env_remove("CONSUL_HTTP_TOKEN")
        .env_remove("CONSUL_HTTP_TOKEN_FILE")
        .output()
        .expect("run consulnative")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("consulnative-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

#[test]
fn pem_files_once_writes_a_matching_leaf_key_and_roots() {
    let agent = DevAgentProcess::start(DevAgentOptions::default()).unwrap();
    let dir = temp_dir("once");
    let out =
        consulnative(agent.address(), &["pem-files", "--service", "web", "--dir", dir.to_str().unwrap(), "--once"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("/svc/web"), "{}", text(&out.stdout));
    let cert = std::fs::read_to_string(dir.join("cert.pem")).unwrap();
    let key = std::fs::read_to_string(dir.join("key.pem")).unwrap();
    let roots = std::fs::read_to_string(dir.join("roots.pem")).unwrap();
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(key.contains("PRIVATE KEY-----"));
    assert!(roots.contains("BEGIN CERTIFICATE"));
    assert_eq!(std::fs::metadata(dir.join("key.pem")).unwrap().permissions().mode() & 0o777, 0o600);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn status_prints_the_spiffe_id_serial_expiry_and_roots() {
    let agent = DevAgentProcess::start(DevAgentOptions::default()).unwrap();
    let out = consulnative(agent.address(), &["status", "web"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    let td = agent.trust_domain().unwrap();
    assert!(stdout.contains(&format!("spiffe id:    spiffe://{td}/ns/default/dc/dc1/svc/web")), "{stdout}");
    assert!(stdout.contains("leaf serial:  ") && stdout.contains("(in 71h"), "{stdout}");
    assert!(stdout.contains("roots:        1 "), "{stdout}");
    assert!(stdout.contains("last error:   none"), "{stdout}");
}

#[test]
fn authorize_reports_the_agents_decision_and_exits_one_when_denied() {
    let agent = DevAgentProcess::start(DevAgentOptions::default()).unwrap();
    let out = consulnative(agent.address(), &["authorize", "web", "db"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("allowed: spiffe://"), "{}", text(&out.stdout));
    agent.set_intention("web", "db", false).unwrap();
    let out = consulnative(agent.address(), &["authorize", "web", "db"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("denied: ") && stdout.contains("Action: DENY"), "{stdout}");
}

#[test]
fn without_an_agent_pem_files_exits_one_and_says_why() {
    let dir = temp_dir("noagent");
    let out = consulnative(
        "127.0.0.1:1",
        &["pem-files", "--service", "web", "--dir", dir.to_str().unwrap(), "--ready-timeout", "1"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("cannot get certificates for service \"web\" from the agent at http://127.0.0.1:1"),
        "{stderr}"
    );
    assert!(!dir.join("cert.pem").exists());
}

#[test]
fn bad_usage_exits_two_with_the_usage() {
    let out = consulnative("127.0.0.1:1", &["pem-files", "--dir", "/tmp/x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("pem-files needs --service NAME"));
}
