//! Certificate rotation: root rotation with a cross-signed intermediate, and leaf swaps between handshakes.

use super::support::{ca_roots, handshake, uri, Source, TestCa, TD};
use crate::error::Code;
use crate::tls::{client_config, handshake_error, peer_identity, server_config, Expected, Leaf, Roots};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Old root R1, new root R2, and R2' (R2's subject and key signed by R1) carried by every new leaf.
struct Rotation {
    r1: TestCa,
    r2: TestCa,
}

impl Rotation {
    fn new() -> Rotation {
        let r1 = TestCa::new(TD, "Consul CA 1");
        let mut r2 = TestCa::new(TD, "Consul CA 2");
        r2.0.intermediates = vec![r2.cross_signed_by(&r1)];
        Rotation { r1, r2 }
    }
    fn old_roots(&self) -> Roots {
        Roots::from_agent(&ca_roots(&self.r1, &[&self.r1])).unwrap()
    }
    fn both_roots(&self) -> Roots {
        Roots::from_agent(&ca_roots(&self.r2, &[&self.r1, &self.r2])).unwrap()
    }
    fn new_roots(&self) -> Roots {
        Roots::from_agent(&ca_roots(&self.r2, &[&self.r2])).unwrap()
    }
}

fn leaf(ca: &TestCa, service: &str) -> Leaf {
    Leaf::from_agent(&ca.leaf(service)).unwrap()
}

#[tokio::test]
async fn new_leaf_with_cross_signed_root_is_accepted_by_a_server_trusting_only_the_old_root() {
    let r = Rotation::new();
    let new_leaf = leaf(&r.r2, "web");
    assert_eq!(new_leaf.chain.len(), 2, "leaf + R2'");
    let server = server_config(Source::new(Some(r.old_roots()), Some(leaf(&r.r1, "db"))), vec![]).unwrap();
    let client =
        client_config(Source::new(Some(r.both_roots()), Some(new_leaf)), Expected::Uri(uri("db")), vec![]).unwrap();
    let (s, c) = handshake(server, client).await;
    assert_eq!(s.unwrap().peer.service, "web");
    assert_eq!(c.unwrap().peer.service, "db");
}

#[tokio::test]
async fn new_leaf_with_cross_signed_root_is_accepted_by_a_server_trusting_both_roots() {
    let r = Rotation::new();
    let server = server_config(Source::new(Some(r.both_roots()), Some(leaf(&r.r2, "db"))), vec![]).unwrap();
    let client =
        client_config(Source::new(Some(r.both_roots()), Some(leaf(&r.r2, "web"))), Expected::Uri(uri("db")), vec![])
            .unwrap();
    let (s, c) = handshake(server, client).await;
    s.unwrap();
    c.unwrap();
}

#[tokio::test]
async fn server_trusting_both_roots_accepts_old_and_new_client_leaves() {
    let r = Rotation::new();
    let server_source = Source::new(Some(r.both_roots()), Some(leaf(&r.r2, "db")));
    for (ca, service) in [(&r.r1, "old-client"), (&r.r2, "new-client")] {
        let server = server_config(server_source.clone(), vec![]).unwrap();
        let client =
            client_config(Source::new(Some(r.both_roots()), Some(leaf(ca, service))), Expected::Uri(uri("db")), vec![])
                .unwrap();
        let (s, c) = handshake(server, client).await;
        assert_eq!(s.unwrap().peer.service, service);
        c.unwrap();
    }
}

#[tokio::test]
async fn dialer_still_on_the_old_root_verifies_a_server_with_a_new_leaf() {
    let r = Rotation::new();
    let server = server_config(Source::new(Some(r.both_roots()), Some(leaf(&r.r2, "db"))), vec![]).unwrap();
    let client =
        client_config(Source::new(Some(r.old_roots()), Some(leaf(&r.r1, "web"))), Expected::Uri(uri("db")), vec![])
            .unwrap();
    let (s, c) = handshake(server, client).await;
    s.unwrap();
    assert_eq!(c.unwrap().peer.service, "db");
}

#[tokio::test]
async fn old_client_leaf_is_refused_once_the_old_root_is_pruned() {
    let r = Rotation::new();
    let server_source = Source::new(Some(r.both_roots()), Some(leaf(&r.r2, "db")));
    let client_source = Source::new(Some(r.both_roots()), Some(leaf(&r.r1, "web")));
    let server = server_config(server_source.clone(), vec![]).unwrap();
    let client = client_config(client_source, Expected::Uri(uri("db")), vec![]).unwrap();
    let (s, _) = handshake(server.clone(), client.clone()).await;
    s.unwrap();
    server_source.set_roots(Some(r.new_roots()));
    let (s, _) = handshake(server, client).await;
    let err = s.unwrap_err();
    assert_eq!(err.code, Code::CertificateInvalid, "{err}");
    assert!(err.message.contains("the 1 current CA root"), "{err}");
}

#[tokio::test]
async fn swapping_the_leaf_changes_the_next_handshake_and_established_connections_keep_working() {
    let ca = TestCa::new(TD, "Consul CA 1");
    let roots = || Roots::from_agent(&ca_roots(&ca, &[&ca])).unwrap();
    let first = leaf(&ca, "db");
    let second = leaf(&ca, "db");
    let (first_serial, second_serial) = (first.serial.clone(), second.serial.clone());
    assert_ne!(first_serial, second_serial);
    let server_source = Source::new(Some(roots()), Some(first));
    let server = server_config(server_source.clone(), vec![]).unwrap();
    let client =
        client_config(Source::new(Some(roots()), Some(leaf(&ca, "web"))), Expected::Uri(uri("db")), vec![]).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(server.clone());
    // An echo server that keeps every connection open.
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = [0u8; 64];
                while let Ok(n) = tls.read(&mut buf).await {
                    if n == 0 || tls.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let connector = TlsConnector::from(client);
    let dial = || async {
        let tcp = TcpStream::connect(addr).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        connector.connect(crate::tls::dial_server_name(), tcp).await.map_err(|e| handshake_error(&e)).unwrap()
    };
    let echo = |mut tls: tokio_rustls::client::TlsStream<TcpStream>, msg: &'static [u8]| async move {
        tls.write_all(msg).await.unwrap();
        let mut buf = vec![0u8; msg.len()];
        tls.read_exact(&mut buf).await.unwrap();
        assert_eq!(buf, msg);
        tls
    };

    let conn1 = echo(dial().await, b"before").await;
    assert_eq!(peer_identity(conn1.get_ref().1.peer_certificates().unwrap()).unwrap().serial, first_serial);

    server_source.set_leaf(Some(second));
    let conn2 = echo(dial().await, b"after").await;
    assert_eq!(peer_identity(conn2.get_ref().1.peer_certificates().unwrap()).unwrap().serial, second_serial);

    // The connection made with the old leaf keeps working after the swap.
    let conn1 = echo(conn1, b"still here").await;
    assert_eq!(peer_identity(conn1.get_ref().1.peer_certificates().unwrap()).unwrap().serial, first_serial);
}
