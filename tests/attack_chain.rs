//! Attack: chain bombs. A client certificate chain longer or larger than a Consul chain (a leaf plus a few
//! intermediates) is refused before any path building, with a reason; legitimate clients are admitted meanwhile.
//! The long chains are built with the dev agent's CA (`consulnative_devagent::ca`).

mod attack;
mod common;
use attack::*;
use common::*;
use consulnative_devagent::ca::Authority;
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// `web`'s own leaf (issued by the agent, so the chain would start out right) followed by `n` intermediates of a
/// CA chain built here: the shape of the 60-certificate, 70 KB chain of issue 12.
fn bomb(web: &Service, n: usize) -> Vec<rustls::pki_types::CertificateDer<'static>> {
    let mut chain = certs(&web.pem(PEM_LEAF_CHAIN));
    let mut ca = Authority::root("7f42f496-fbc7-8692-05ed-334aa5340c1e.consul", "Bomb root").unwrap();
    for i in 0..n {
        ca = ca.intermediate(&format!("Bomb intermediate {i}")).unwrap();
        chain.extend(certs(&ca.pem()));
    }
    chain
}

#[test]
fn chain_bombs_are_refused_before_verification_while_legitimate_clients_get_in() {
    let agent = Agent::start();
    let client = Client::new(&agent.address(), &[]);
    let db = client.service("db").ready(10_000);
    let web = Arc::new(client.service("web").ready(10_000));
    let listener = Arc::new(db.listen("127.0.0.1:0"));
    let addr = listener.address();
    let seen = on_refused_sleeping(&listener, Duration::ZERO);
    echo_server(listener.clone());

    let chain = bomb(&web, 60);
    let bytes: usize = chain.iter().map(|c| c.len()).sum();
    assert_eq!(chain.len(), 61);
    let config = raw_client(chain, &web.pem(PEM_LEAF_KEY));
    let bombers: Vec<_> = (0..2)
        .map(|_| {
            let (config, addr) = (config.clone(), addr.clone());
            std::thread::spawn(move || {
                (0..40)
                    .filter(|_| {
                        tls_echo(TcpStream::connect(&addr).unwrap(), config.clone(), Duration::from_secs(5)).is_err()
                    })
                    .count()
            })
        })
        .collect();
    let probes: Vec<_> = (0..10).map(|_| probe(&web, &addr)).collect();
    let failed_bombs: usize = bombers.into_iter().map(|b| b.join().unwrap()).sum();

    assert!(probes.iter().all(|p| p.is_ok()), "{probes:?}");
    assert_eq!(failed_bombs, 80, "no bomb is admitted");
    assert!(eventually(Duration::from_secs(10), || seen.calls.load(Ordering::SeqCst) >= 80));
    let messages = seen.messages.lock().unwrap().clone();
    let expected = format!("client certificate chain of 61 certificates ({bytes} bytes) is over the limit of 8");
    assert!(messages.iter().all(|(code, m)| *code == ERR_CERT_INVALID && m.contains(&expected)), "{messages:?}");
    assert!(messages.iter().all(|(_, m)| m.contains("refused before verification")));
    let s = stats(&listener);
    assert_eq!((s["accepted"].as_u64(), s["refused"].as_u64()), (Some(10), Some(80)), "{s}");
}

#[test]
fn the_chain_limits_are_configuration_keys() {
    let agent = Agent::start();
    let client = Client::new(&agent.address(), &[("max_chain_certs", "4"), ("max_chain_bytes", "1200")]);
    let db = client.service("db").ready(10_000);
    let web = client.service("web").ready(10_000);
    let listener = Arc::new(db.listen("127.0.0.1:0"));
    let addr = listener.address();
    let seen = on_refused_sleeping(&listener, Duration::ZERO);
    echo_server(listener.clone());
    let key = web.pem(PEM_LEAF_KEY);

    // 5 certificates: over the count. 3 certificates (a leaf and two CA certificates): under the count, over the
    // size. The agent's own one-certificate chain: admitted.
    for (n, why) in [(4, "chain of 5 certificates"), (2, "chain of 3 certificates")] {
        let chain = bomb(&web, n);
        assert!(n > 2 || chain.iter().map(|c| c.len()).sum::<usize>() > 1200, "the test's chain is over the size");
        let config = raw_client(chain, &key);
        assert!(tls_echo(TcpStream::connect(&addr).unwrap(), config, Duration::from_secs(5)).is_err());
        assert!(eventually(Duration::from_secs(10), || seen
            .messages
            .lock()
            .unwrap()
            .iter()
            .any(|(_, m)| m.contains(why))));
    }
    let messages = seen.messages.lock().unwrap().clone();
    assert!(
        messages.iter().all(|(_, m)| m.contains("over the limit of 4 certificates and 1200 bytes")),
        "{messages:?}"
    );
    let chain = certs(&web.pem(PEM_LEAF_CHAIN));
    assert!(chain.len() == 1 && chain[0].len() < 1200);
    let config = raw_client(chain, &key);
    tls_echo(TcpStream::connect(&addr).unwrap(), config, Duration::from_secs(5)).expect("a Consul chain is admitted");
}
