//! What an agent answer must satisfy before it replaces the last good one. The agent is trusted to hand out our
//! certificates, but a broken, misconfigured or compromised one must not make a service present another service's
//! identity, a certificate its peers cannot verify, or one outside its validity: such an answer is refused with an
//! `AgentBadResponse` error that says what was wrong, and the last good certificates stay in force.
//!
//! Leaf checks come in two groups: those that need nothing but the leaf ([`leaf_identity`], [`leaf_times`]) and
//! those that need the current CA roots ([`leaf_against_roots`]), which a later roots answer can change.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Code, Error, Result};
use crate::tls::{verify_leaf, Leaf, Roots};

/// The identity a service's leaf must carry. `namespace` and `partition` are checked only when configured: without
/// them the agent (or the token) decides, and the leaf's say is all there is to know.
#[derive(Debug, Clone, Copy)]
pub struct ExpectedLeaf<'a> {
    /// The service name the leaf was asked for.
    pub service: &'a str,
    /// The configured namespace, if any.
    pub namespace: Option<&'a str>,
    /// The configured admin partition, if any.
    pub partition: Option<&'a str>,
}

fn refused(service: &str, leaf: &Leaf, why: String) -> Error {
    Error::new(
        Code::AgentBadResponse,
        format!("the agent returned a leaf for \"{service}\" {why} (serial {}, {})", leaf.serial, leaf.uri),
    )
}

/// The leaf's SPIFFE identity names this service (and the configured namespace and partition). Service names
/// compare without regard to ASCII case, as Consul's do.
pub fn leaf_identity(expected: &ExpectedLeaf<'_>, leaf: &Leaf) -> Result<()> {
    let id = &leaf.id;
    if !id.service.eq_ignore_ascii_case(expected.service) {
        return Err(refused(expected.service, leaf, format!("that belongs to service \"{}\"", id.service)));
    }
    if let Some(ns) = expected.namespace.filter(|ns| !id.namespace.eq_ignore_ascii_case(ns)) {
        return Err(refused(
            expected.service,
            leaf,
            format!("in namespace \"{}\", not the configured \"{ns}\"", id.namespace),
        ));
    }
    if let Some(ap) = expected.partition.filter(|ap| !id.partition.eq_ignore_ascii_case(ap)) {
        return Err(refused(
            expected.service,
            leaf,
            format!("in partition \"{}\", not the configured \"{ap}\"", id.partition),
        ));
    }
    Ok(())
}

/// RFC 3339 of a certificate time, for messages.
fn when(t: SystemTime) -> String {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => crate::encoding::rfc3339(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        Err(e) => crate::encoding::rfc3339(-i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX)),
    }
}

/// The leaf is valid at `now`: not before its `NotBefore`, not after its `NotAfter`.
pub fn leaf_times(service: &str, leaf: &Leaf, now: SystemTime) -> Result<()> {
    if now < leaf.valid_after {
        return Err(refused(
            service,
            leaf,
            format!("that is not valid yet (valid from {}, now {})", when(leaf.valid_after), when(now)),
        ));
    }
    if leaf.valid_before <= now {
        return Err(refused(
            service,
            leaf,
            format!("that has expired (valid until {}, now {})", when(leaf.valid_before), when(now)),
        ));
    }
    Ok(())
}

/// The leaf is in the roots' trust domain and its chain verifies against them, for both server and client use.
pub fn leaf_against_roots(service: &str, leaf: &Leaf, roots: &Roots, now: SystemTime) -> Result<()> {
    if !leaf.id.trust_domain.eq_ignore_ascii_case(&roots.trust_domain) {
        return Err(refused(
            service,
            leaf,
            format!(
                "in trust domain \"{}\", but the CA roots are for \"{}\"",
                leaf.id.trust_domain, roots.trust_domain
            ),
        ));
    }
    verify_leaf(leaf, roots, now).map_err(|e| {
        let reason = e.message.split_once(" is not usable: ").map(|(_, r)| r).unwrap_or(&e.message).to_string();
        refused(service, leaf, format!("that does not verify against the current CA roots: {reason}"))
    })
}

/// A roots answer names a trust domain that can be one: a non-empty DNS-like name.
pub fn roots_trust_domain(roots: &Roots) -> Result<()> {
    let td = roots.trust_domain.as_str();
    let plausible = !td.is_empty()
        && td.len() <= 253
        && td.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && !td.starts_with(['.', '-']);
    if plausible {
        Ok(())
    } else {
        Err(Error::new(
            Code::AgentBadResponse,
            format!(
                "the agent returned CA roots with trust domain {td:?}, which is not a trust domain (active root {})",
                roots.active_root_id
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::types::{CaRoots, LeafCert};
    use consulnative_devagent::ca::{ca_roots, Authority};
    use std::time::Duration;

    const TD: &str = "11111111-2222-3333-4444-555555555555.consul";

    /// The dev agent's CA links its own copy of this crate: its wire values come over as JSON.
    fn ours<T: serde::Serialize, U: serde::de::DeserializeOwned>(theirs: &T) -> U {
        serde_json::from_value(serde_json::to_value(theirs).unwrap()).unwrap()
    }

    fn ca(td: &str, name: &str) -> Authority {
        Authority::root(td, name).unwrap()
    }

    fn roots_of(ca: &Authority) -> Roots {
        Roots::from_agent(&ours::<_, CaRoots>(&ca_roots(ca, &[ca]))).unwrap()
    }

    fn leaf_of(ca: &Authority, service: &str) -> Leaf {
        Leaf::from_agent(&ours::<_, LeafCert>(&ca.leaf(service).unwrap())).unwrap()
    }

    fn leaf_between(ca: &Authority, service: &str, nb: SystemTime, na: SystemTime) -> Leaf {
        let uri = format!("spiffe://{}/ns/default/dc/dc1/svc/{service}", ca.trust_domain);
        Leaf::from_agent(&ours::<_, LeafCert>(&ca.sign_leaf(&uri, nb, na).unwrap())).unwrap()
    }

    fn expect(service: &str) -> ExpectedLeaf<'_> {
        ExpectedLeaf { service, namespace: None, partition: None }
    }

    #[test]
    fn a_leaf_for_another_service_is_refused_naming_both() {
        let leaf = leaf_of(&ca(TD, "R1"), "admin");
        let err = leaf_identity(&expect("db"), &leaf).unwrap_err();
        assert_eq!(err.code, Code::AgentBadResponse);
        assert!(
            err.message.starts_with("the agent returned a leaf for \"db\" that belongs to service \"admin\""),
            "{}",
            err.message
        );
        assert!(err.message.contains(&leaf.serial) && err.message.contains("/svc/admin"), "{}", err.message);
        leaf_identity(&expect("admin"), &leaf).unwrap();
        leaf_identity(&expect("ADMIN"), &leaf).unwrap();
    }

    #[test]
    fn namespace_and_partition_are_checked_when_configured() {
        let leaf = leaf_of(&ca(TD, "R1"), "db");
        leaf_identity(&ExpectedLeaf { service: "db", namespace: Some("default"), partition: Some("default") }, &leaf)
            .unwrap();
        let err = leaf_identity(&ExpectedLeaf { namespace: Some("billing"), ..expect("db") }, &leaf).unwrap_err();
        assert!(err.message.contains("in namespace \"default\", not the configured \"billing\""), "{}", err.message);
        let err = leaf_identity(&ExpectedLeaf { partition: Some("team-a"), ..expect("db") }, &leaf).unwrap_err();
        assert!(err.message.contains("partition"), "{}", err.message);
    }

    #[test]
    fn a_leaf_outside_its_validity_is_refused() {
        let ca = ca(TD, "R1");
        let now = SystemTime::now();
        let hour = Duration::from_secs(3600);
        let future = leaf_between(&ca, "db", now + hour, now + 2 * hour);
        let err = leaf_times("db", &future, now).unwrap_err();
        assert!(err.message.contains("that is not valid yet (valid from "), "{}", err.message);
        let past = leaf_between(&ca, "db", now - 2 * hour, now - hour);
        let err = leaf_times("db", &past, now).unwrap_err();
        assert!(err.message.contains("that has expired (valid until "), "{}", err.message);
        leaf_times("db", &leaf_of(&ca, "db"), now).unwrap();
    }

    #[test]
    fn a_leaf_from_a_foreign_ca_or_trust_domain_is_refused() {
        let ours = ca(TD, "R1");
        let roots = roots_of(&ours);
        let now = SystemTime::now();
        leaf_against_roots("db", &leaf_of(&ours, "db"), &roots, now).unwrap();

        let leaf = leaf_of(&ca(TD, "Foreign"), "db");
        let err = leaf_against_roots("db", &leaf, &roots, now).unwrap_err();
        assert_eq!(err.code, Code::AgentBadResponse);
        assert!(err.message.contains("does not verify against the current CA roots"), "{}", err.message);
        assert!(err.message.contains("UnknownIssuer"), "{}", err.message);

        let leaf = leaf_of(&ca("99999999-2222-3333-4444-555555555555.consul", "Other"), "db");
        let err = leaf_against_roots("db", &leaf, &roots, now).unwrap_err();
        assert!(err.message.contains("in trust domain \"99999999-"), "{}", err.message);
        assert!(err.message.contains(&format!("but the CA roots are for \"{TD}\"")), "{}", err.message);
    }

    #[test]
    fn roots_need_a_plausible_trust_domain() {
        let ca = ca(TD, "R1");
        let mut answer: CaRoots = ours(&ca_roots(&ca, &[&ca]));
        roots_trust_domain(&Roots::from_agent(&answer).unwrap()).unwrap();
        for bad in ["", "spiffe://x", "a/b", ".consul", "x y"] {
            answer.trust_domain = bad.to_string();
            let err = roots_trust_domain(&Roots::from_agent(&answer).unwrap()).unwrap_err();
            assert_eq!(err.code, Code::AgentBadResponse, "{bad}");
        }
    }
}
