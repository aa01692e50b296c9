//! Carrying our errors through rustls and getting them back after a failed handshake.
//!
//! The verifiers return `rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(our_error)))`;
//! tokio-rustls wraps the rustls error in an `io::Error`; [`handshake_error`] unwraps both and returns the
//! original code and message. Errors that did not come from us are mapped to `Handshake` with a plain sentence.

use crate::error::{Code, Error};
use rustls::{AlertDescription, CertificateError, OtherError, PeerIncompatible};
use std::sync::Arc;

/// Wrap one of our errors so a verifier can return it to rustls.
pub(crate) fn to_rustls(err: Error) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(err))))
}

/// The message rustls uses when the server's certificate resolver hands out nothing.
const NO_SERVER_CERT: &str = "no server certificate chain resolved";

/// Map a tokio-rustls handshake `io::Error` to our error code and a message that says what happened.
pub fn handshake_error(err: &std::io::Error) -> Error {
    if let Some(inner) = err.get_ref() {
        if let Some(ours) = inner.downcast_ref::<Error>() {
            return ours.clone();
        }
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return from_rustls(tls);
        }
    }
    use std::io::ErrorKind::*;
    match err.kind() {
        UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe => {
            Error::new(Code::Handshake, "peer closed the connection during the TLS handshake")
        }
        TimedOut | WouldBlock => Error::timeout(format!("TLS handshake timed out: {err}")),
        _ => Error::new(Code::Handshake, format!("TLS handshake failed: {err}")),
    }
}

/// Map a rustls error (from a handshake or from the first read after a TLS 1.3 handshake).
pub fn from_rustls(err: &rustls::Error) -> Error {
    match err {
        rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(inner))) => {
            match inner.downcast_ref::<Error>() {
                Some(ours) => ours.clone(),
                None => Error::new(Code::CertificateInvalid, format!("peer certificate invalid: {inner}")),
            }
        }
        rustls::Error::InvalidCertificate(reason) => {
            Error::new(Code::CertificateInvalid, format!("peer certificate invalid: {reason:?}"))
        }
        rustls::Error::NoCertificatesPresented => Error::new(Code::Handshake, "peer sent no client certificate"),
        rustls::Error::General(msg) if msg == NO_SERVER_CERT => {
            Error::new(Code::NotReady, "no leaf certificate to present yet: refusing the TLS handshake")
        }
        rustls::Error::AlertReceived(alert) => Error::new(Code::Handshake, alert_message(*alert)),
        rustls::Error::PeerIncompatible(
            PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled
            | PeerIncompatible::ServerDoesNotSupportTls12Or13,
        ) => Error::new(
            Code::Handshake,
            format!("peer offered no TLS version we accept (TLS 1.2 is the minimum): {err}"),
        ),
        other => Error::new(Code::Handshake, format!("TLS handshake failed: {other}")),
    }
}

fn alert_message(alert: AlertDescription) -> String {
    use AlertDescription::*;
    match alert {
        BadCertificate
        | UnsupportedCertificate
        | CertificateRevoked
        | CertificateExpired
        | CertificateUnknown
        | UnknownCA
        | CertificateRequired => format!("peer rejected our certificate: alert {alert:?}"),
        AccessDenied => {
            format!("peer refused the handshake: alert {alert:?} (it may have no certificate yet, or refused ours)")
        }
        ProtocolVersion => format!("peer does not accept TLS 1.2 or 1.3: alert {alert:?}"),
        _ => format!("peer aborted the TLS handshake: alert {alert:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn io_err(e: rustls::Error) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }

    #[test]
    fn our_error_survives_the_trip_through_rustls_and_io() {
        let ours = Error::new(Code::IdentityMismatch, "peer certificate mismatch got a, want b");
        assert_eq!(handshake_error(&io_err(to_rustls(ours.clone()))), ours);
    }

    #[test]
    fn peer_alerts_and_hang_ups_are_handshake_errors() {
        let e = handshake_error(&io_err(rustls::Error::AlertReceived(AlertDescription::UnknownCA)));
        assert_eq!(e.code, Code::Handshake);
        assert_eq!(e.message, "peer rejected our certificate: alert UnknownCA");
        let e = handshake_error(&io::Error::new(io::ErrorKind::UnexpectedEof, "tls handshake eof"));
        assert_eq!(
            (e.code, e.message.as_str()),
            (Code::Handshake, "peer closed the connection during the TLS handshake")
        );
        let e = handshake_error(&io_err(rustls::Error::NoCertificatesPresented));
        assert_eq!((e.code, e.message.as_str()), (Code::Handshake, "peer sent no client certificate"));
    }

    #[test]
    fn missing_server_leaf_is_not_ready() {
        let e = handshake_error(&io_err(rustls::Error::General(NO_SERVER_CERT.into())));
        assert_eq!(e.code, Code::NotReady);
    }

    #[test]
    fn foreign_certificate_errors_are_certificate_invalid() {
        let e = handshake_error(&io_err(rustls::Error::InvalidCertificate(CertificateError::Expired)));
        assert_eq!(e.code, Code::CertificateInvalid);
    }
}
