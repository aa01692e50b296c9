//! SPIFFE identities and certificate inspection.

//! STUB
use crate::error::Result;
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceId { pub trust_domain: String, pub partition: String, pub namespace: String, pub datacenter: String, pub service: String }
impl ServiceId { pub fn parse(_u: &str) -> Result<ServiceId> { todo!() } pub fn uri(&self) -> String { todo!() } }
pub fn uri_matches(_g: &str, _w: &str) -> bool { todo!() }
pub fn serial_colon_hex(_b: &[u8]) -> String { todo!() }
