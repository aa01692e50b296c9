//! ureq 3 transport pieces for the agent client: a Unix-socket connector, a rustls connector that takes our own
//! `ClientConfig` (CA file/dir, client certificate, SNI override, verification off) and a resolver that skips DNS
//! for Unix sockets. TCP itself is ureq's `TcpConnector`, which sets TCP_NODELAY when `Config::no_delay` is on.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme, StreamOwned};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use ureq::config::Config;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport, TransportAdapter,
};

use super::config::AgentTls;
use crate::error::{Error, Result};

/// System CA bundles tried when https is used without `ca_file`/`ca_path` (no platform verifier in this build).
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
    "/usr/local/etc/openssl/cert.pem",
];

fn ureq_timeout_check(t: NextTimeout) -> std::result::Result<NextTimeout, ureq::Error> {
    if !t.after.is_not_happening() && t.after.is_zero() {
        Err(ureq::Error::Timeout(t.reason))
    } else {
        Ok(t)
    }
}

fn is_timeout_kind(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock)
}

// ---------------------------------------------------------------------------------------------------------------
// Unix sockets

/// Opens a Unix-socket connection when the client was configured with `unix://`; passes otherwise.
#[derive(Debug)]
pub(crate) struct UnixConnector {
    pub(crate) path: Option<PathBuf>,
}

impl Connector<()> for UnixConnector {
    type Out = UnixTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        _chained: Option<()>,
    ) -> std::result::Result<Option<UnixTransport>, ureq::Error> {
        let Some(path) = &self.path else { return Ok(None) };
        ureq_timeout_check(details.timeout)?;
        let stream = UnixStream::connect(path)?;
        let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        Ok(Some(UnixTransport { stream, buffers }))
    }
}

/// HTTP/1.1 over a Unix stream socket.
pub(crate) struct UnixTransport {
    stream: UnixStream,
    buffers: LazyBuffers,
}

impl fmt::Debug for UnixTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnixTransport").field("peer", &self.stream.peer_addr().ok()).finish()
    }
}

impl Transport for UnixTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> std::result::Result<(), ureq::Error> {
        let timeout = ureq_timeout_check(timeout.for_write())?;
        self.stream.set_write_timeout(timeout.not_zero().map(|d| *d))?;
        let output = &self.buffers.output()[..amount];
        match self.stream.write_all(output) {
            Ok(()) => Ok(()),
            Err(e) if is_timeout_kind(&e) => Err(ureq::Error::Timeout(timeout.reason)),
            Err(e) => Err(e.into()),
        }
    }

    fn await_input(&mut self, timeout: NextTimeout) -> std::result::Result<bool, ureq::Error> {
        let timeout = ureq_timeout_check(timeout.for_read())?;
        self.stream.set_read_timeout(timeout.not_zero().map(|d| *d))?;
        let input = self.buffers.input_append_buf();
        let amount = loop {
            match self.stream.read(input) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if is_timeout_kind(&e) => return Err(ureq::Error::Timeout(timeout.reason)),
                Err(e) => return Err(e.into()),
            }
        };
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        // Nothing may be waiting on an idle connection: data or EOF means the agent closed or misbehaved.
        if self.stream.set_nonblocking(true).is_err() {
            return false;
        }
        let mut buf = [0u8; 1];
        let open = matches!(self.stream.read(&mut buf), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        self.stream.set_nonblocking(false).is_ok() && open
    }
}

/// Resolves normally for TCP; for a Unix socket returns a placeholder address without any DNS lookup.
#[derive(Debug, Default)]
pub(crate) struct AgentResolver {
    pub(crate) unix: bool,
    inner: DefaultResolver,
}

impl AgentResolver {
    pub(crate) fn new(unix: bool) -> Self {
        AgentResolver { unix, inner: DefaultResolver::default() }
    }
}

impl Resolver for AgentResolver {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> std::result::Result<ResolvedSocketAddrs, ureq::Error> {
        if self.unix {
            let mut addrs = self.empty();
            addrs.push(SocketAddr::from(([127, 0, 0, 1], 0)));
            return Ok(addrs);
        }
        // An IP literal (the usual agent address) needs no lookup. ureq's default resolver would start a thread
        // for every request that has a timeout (ureq 3.5, resolver.rs `resolve_async`), and every agent call has
        // one: measured as one clone3 per authorize call and a 4 ms p99.
        if let Some(authority) = uri.authority() {
            let host = authority.host().trim_start_matches('[').trim_end_matches(']');
            let port = authority.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
            if let Ok(ip) = host.parse::<std::net::IpAddr>() {
                let mut addrs = self.empty();
                addrs.push(SocketAddr::new(ip, port));
                return Ok(addrs);
            }
        }
        self.inner.resolve(uri, config, timeout)
    }
}

// ---------------------------------------------------------------------------------------------------------------
// TLS

/// Wraps the connection in TLS for `https` with a prepared rustls configuration and server name.
pub(crate) struct TlsConnector {
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector").field("server_name", &self.server_name).finish()
    }
}

/// Keeps the rustls error when one is inside the I/O error, so the client can say "TLS".
fn tls_io_error(e: io::Error) -> ureq::Error {
    if let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        return ureq::Error::Rustls(tls.clone());
    }
    ureq::Error::from(e)
}

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> std::result::Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else { return Ok(None) };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let mut conn =
            ClientConnection::new(self.config.clone(), self.server_name.clone()).map_err(ureq::Error::Rustls)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        while conn.is_handshaking() {
            let (read, written) = conn.complete_io(&mut sock).map_err(tls_io_error)?;
            if read == 0 && written == 0 && conn.is_handshaking() {
                return Err(ureq::Error::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "agent closed the connection during the TLS handshake",
                )));
            }
        }
        let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        Ok(Some(Either::B(TlsTransport { buffers, stream: StreamOwned { conn, sock } })))
    }
}

/// HTTP/1.1 over rustls over a chained transport.
pub(crate) struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsTransport").field("chained", &self.stream.sock.inner()).finish()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> std::result::Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output).map_err(tls_io_error)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> std::result::Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input).map_err(tls_io_error)?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.get_mut().get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

/// Accepts any certificate (still checks handshake signatures, so the session is at least consistent).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn read_file(what: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::invalid(format!("cannot read agent TLS {what} {}: {e}", path.display())))
}

/// Every certificate in a PEM file (none is not an error here).
fn pem_certs(what: &str, path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let data = read_file(what, path)?;
    CertificateDer::pem_slice_iter(&data)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::invalid(format!("agent TLS {what} {} is not valid PEM: {e}", path.display())))
}

fn add_roots(store: &mut RootCertStore, what: &str, path: &Path, certs: Vec<CertificateDer<'static>>) -> Result<()> {
    for cert in certs {
        store.add(cert).map_err(|e| {
            Error::invalid(format!("agent TLS {what} {} holds an unusable CA certificate: {e}", path.display()))
        })?;
    }
    Ok(())
}

fn load_roots(tls: &AgentTls) -> Result<RootCertStore> {
    let mut store = RootCertStore::empty();
    if let Some(file) = &tls.ca_file {
        let certs = pem_certs("CA file", file)?;
        if certs.is_empty() {
            return Err(Error::invalid(format!("agent TLS CA file {} holds no PEM certificate", file.display())));
        }
        add_roots(&mut store, "CA file", file, certs)?;
    }
    if let Some(dir) = &tls.ca_path {
        let mut found = 0usize;
        let mut pending = vec![dir.clone()];
        while let Some(d) = pending.pop() {
            let entries = std::fs::read_dir(&d)
                .map_err(|e| Error::invalid(format!("cannot read agent TLS CA path {}: {e}", d.display())))?;
            for entry in entries.flatten() {
                let p = entry.path();
                if p.is_dir() {
                    pending.push(p);
                } else if p.is_file() {
                    // Non-PEM files in a certificate directory (READMEs, hash links to nowhere) are skipped.
                    let Ok(data) = std::fs::read(&p) else { continue };
                    let certs: Vec<_> = CertificateDer::pem_slice_iter(&data).filter_map(|c| c.ok()).collect();
                    found += certs.len();
                    add_roots(&mut store, "CA path file", &p, certs)?;
                }
            }
        }
        if found == 0 {
            return Err(Error::invalid(format!("agent TLS CA path {} holds no PEM certificate", dir.display())));
        }
    }
    if tls.ca_file.is_none() && tls.ca_path.is_none() {
        for bundle in SYSTEM_CA_BUNDLES {
            let Ok(data) = std::fs::read(bundle) else { continue };
            let certs = CertificateDer::pem_slice_iter(&data).filter_map(|c| c.ok());
            let (added, _) = store.add_parsable_certificates(certs);
            if added > 0 {
                break;
            }
        }
        if store.is_empty() {
            return Err(Error::invalid(
                "https to the agent needs CA certificates: set CONSUL_CACERT or CONSUL_CAPATH (no system CA bundle found)",
            ));
        }
    }
    Ok(store)
}

/// Builds the rustls configuration (ring provider, passed explicitly) and the server name for `host`.
pub(crate) fn tls_connector(tls: &AgentTls, host: &str) -> Result<TlsConnector> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal(format!("rustls configuration: {e}")))?;
    let builder = if tls.verify {
        builder.with_root_certificates(load_roots(tls)?)
    } else {
        builder.dangerous().with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    };
    let config = match (&tls.client_cert, &tls.client_key) {
        (Some(cert_path), Some(key_path)) => {
            let certs = pem_certs("client certificate", cert_path)?;
            if certs.is_empty() {
                return Err(Error::invalid(format!(
                    "agent TLS client certificate {} holds no PEM certificate",
                    cert_path.display()
                )));
            }
            let key_pem = read_file("client key", key_path)?;
            let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                Error::invalid(format!("agent TLS client key {} holds no usable private key: {e}", key_path.display()))
            })?;
            builder.with_client_auth_cert(certs, key).map_err(|e| {
                Error::invalid(format!(
                    "agent TLS client certificate {} and key {} do not fit: {e}",
                    cert_path.display(),
                    key_path.display()
                ))
            })?
        }
        (None, None) => builder.with_no_client_auth(),
        (Some(_), None) => return Err(Error::invalid("agent TLS client certificate given without a client key")),
        (None, Some(_)) => return Err(Error::invalid("agent TLS client key given without a client certificate")),
    };
    let name = tls.server_name.as_deref().unwrap_or(host);
    let bare = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')).unwrap_or(name);
    let server_name = ServerName::try_from(bare.to_string())
        .map_err(|e| Error::invalid(format!("agent TLS server name {name:?} is invalid: {e}")))?;
    Ok(TlsConnector { config: Arc::new(config), server_name })
}
