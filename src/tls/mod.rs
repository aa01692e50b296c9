//! rustls configurations and the verifiers that check Connect certificates.
