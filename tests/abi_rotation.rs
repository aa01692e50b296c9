//! CA rotation: old and new leaves interoperate through the cross-signed intermediate, open connections survive,
//! new handshakes use the new leaf.

mod common;
use common::*;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn ca_rotation_keeps_open_connections_and_new_handshakes_use_the_new_leaf() {
    let agent = Agent::start();
    let client = Client::new(&agent.address(), &[]);
    let db = client.service("db").ready(10_000);
    let web = client.service("web").ready(10_000);
    let listener = Arc::new(db.listen("127.0.0.1:0"));
    echo_server(listener.clone());
    let addr = listener.address();

    let open = web.dial_address(&addr, "db", 5000).unwrap();
    open.write(b"before").unwrap();
    assert_eq!(open.read_exact(6).unwrap(), b"before");
    let old_db_serial = db.serial();
    let old_root = db.status()["active_root_id"].clone();

    agent.rotate_ca();
    assert!(eventually(Duration::from_secs(10), || db.serial() != old_db_serial && db.status()["roots"] == 2));
    assert_ne!(db.status()["active_root_id"], old_root);

    open.write(b"after").unwrap();
    assert_eq!(open.read_exact(5).unwrap(), b"after", "the open connection survives the rotation");

    let fresh = web.dial_address(&addr, "db", 5000).unwrap();
    assert_eq!(fresh.info()["peer"]["serial"].as_str().unwrap(), db.serial(), "a new handshake presents the new leaf");
    fresh.write(b"new").unwrap();
    assert_eq!(fresh.read_exact(3).unwrap(), b"new");
}

#[test]
fn peer_on_the_old_leaf_and_peer_on_the_new_leaf_interoperate() {
    // Two clients of one agent: `web` sees the rotation at once; `old` is frozen on the old leaf and old roots by
    // pointing it at a stopped... instead we take the old leaf from the agent before rotating and present it with
    // openssl-free rustls in the peer role: the library listener (new leaf, both roots) must admit it, and the
    // library dialer (new leaf) must accept a server still on the old leaf.
    let agent = Agent::start();
    let client = Client::new(&agent.address(), &[]);
    let db = client.service("db").ready(10_000);
    let old_db_chain = db.pem(PEM_LEAF_CHAIN);
    let old_db_key = db.pem(PEM_LEAF_KEY);
    let old_roots = db.pem(PEM_ROOTS);
    let web = client.service("web").ready(10_000);
    let old_web_serial = web.serial();

    agent.rotate_ca();
    assert!(eventually(Duration::from_secs(10), || web.serial() != old_web_serial && web.status()["roots"] == 2));

    // A server frozen on the old leaf and the old root only (rustls directly): the rotated dialer must reach it,
    // and the server must accept the dialer's new leaf through the cross-signed intermediate it carries.
    let server = rustls_tools::frozen_server(&old_db_chain, &old_db_key, &old_roots);
    let conn = web.dial_address(&server.addr, "db", 5000).expect("new leaf dials a server frozen on the old CA");
    conn.write(b"x").unwrap();
    assert_eq!(conn.read_exact(1).unwrap(), b"x");
}

mod rustls_tools {
    //! A minimal rustls echo server pinned to fixed certificates and roots, standing in for a peer that has not
    //! seen the rotation yet.
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use rustls::server::WebPkiClientVerifier;
    use std::io::{Read, Write};
    use std::sync::Arc;

    pub struct Frozen {
        pub addr: String,
    }

    pub fn frozen_server(chain: &str, key: &str, roots: &str) -> Frozen {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut store = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(roots.as_bytes()) {
            store.add(c.unwrap()).unwrap();
        }
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider.clone()).build().unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                CertificateDer::pem_slice_iter(chain.as_bytes()).collect::<Result<Vec<_>, _>>().unwrap(),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap();
        let config = Arc::new(config);
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for stream in tcp.incoming().flatten() {
                let config = config.clone();
                std::thread::spawn(move || {
                    let mut conn = rustls::ServerConnection::new(config).unwrap();
                    let mut stream = stream;
                    let mut tls = rustls::Stream::new(&mut conn, &mut stream);
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = tls.read(&mut buf) {
                        if n == 0 || tls.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Frozen { addr }
    }
}
