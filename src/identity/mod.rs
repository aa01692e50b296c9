//! SPIFFE identities and certificate inspection.
