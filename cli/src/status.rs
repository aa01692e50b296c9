//! `consulnative status` and `consulnative authorize`.

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use consulnative_core::api::{Client, ErrorKind};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Prints a service's certificate status; exit 1 when it is not ready within `ready_timeout`.
pub fn print_status(client: &Client, name: &str, ready_timeout: Duration) -> Result<ExitCode, String> {
    let service = client.service(name).map_err(|e| e.message().to_string())?;
    let ready = service.wait_ready(Some(ready_timeout));
    let s = service.status();
    let none = || "-".to_string();
    println!("service:      {}", s.service);
    println!("agent:        {}", client.agent_address());
    println!(
        "ready:        {}",
        if s.ready { "yes".to_string() } else { format!("no: {}", s.not_ready_reason.unwrap_or_default()) }
    );
    println!("spiffe id:    {}", s.spiffe_id.unwrap_or_else(none));
    println!("leaf serial:  {}", s.leaf_serial.unwrap_or_else(none));
    println!("leaf expires: {}", s.leaf_valid_before_unix.map(expiry).unwrap_or_else(none));
    println!("trust domain: {}", s.trust_domain.unwrap_or_else(none));
    println!("roots:        {} (active root {})", s.roots, s.active_root_id.unwrap_or_else(none));
    println!("last error:   {}", s.last_error.unwrap_or_else(|| "none".into()));
    Ok(if ready.is_ok() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `2025-01-02T03:04:05Z (in 71h59m)`.
fn expiry(unix: u64) -> String {
    let at = OffsetDateTime::from_unix_timestamp(unix as i64)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string());
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    if unix <= now {
        return format!("{at} (expired)");
    }
    let left = unix - now;
    format!("{at} (in {}h{:02}m)", left / 3600, left % 3600 / 60)
}

/// Asks the agent; exit 0 when allowed, 1 when denied.
pub fn authorize(client: &Client, source: &str, destination: &str) -> Result<ExitCode, String> {
    match client.authorize(source, destination) {
        Ok(a) if a.authorized => {
            println!("allowed: {} => {}: {}", a.source_uri, destination, a.reason);
            Ok(ExitCode::SUCCESS)
        }
        Ok(a) => {
            println!("denied: {} => {}: {}", a.source_uri, destination, a.reason);
            Ok(ExitCode::from(1))
        }
        Err(e) if e.kind() == ErrorKind::InvalidArgument => Err(e.message().to_string()),
        Err(e) => Err(format!("cannot ask the agent at {}: {}", client.agent_address(), e.message())),
    }
}
