//! TLS for HTTPS connections: rustls trusting the bundled Mozilla roots plus
//! the certificates of `AWS_CA_BUNDLE`, where a server certificate the bundle
//! itself holds is trusted as it is (as the AWS CLI, through OpenSSL, does: a
//! self-signed `openssl req -x509` certificate is marked as a CA, which webpki
//! refuses as a server's); and the ureq connector that wraps connections in it.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{verify_server_name, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
    SignatureScheme, StreamOwned,
};
use std::fmt;
use std::io::{Read, Write};
use std::sync::{Arc, OnceLock};
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout,
    TcpConnector, Transport, TransportAdapter,
};

/// Which servers HTTPS connections trust; cheap to clone.
#[derive(Clone)]
pub struct Trust(Arc<ClientConfig>);

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Trust")
    }
}

impl Default for Trust {
    /// The bundled roots alone.
    fn default() -> Self {
        static BUNDLED: OnceLock<Trust> = OnceLock::new();
        BUNDLED
            .get_or_init(|| {
                // Fails only if ring offered no TLS version, or the bundled roots were empty.
                Trust::with_bundle(Vec::new())
                    .expect("ring and the bundled roots make a TLS config")
            })
            .clone()
    }
}

impl Trust {
    /// The bundled roots plus `bundle`: each of its certificates is trusted as
    /// a CA, and as itself when a server presents exactly that certificate.
    pub fn with_bundle(bundle: Vec<CertificateDer<'static>>) -> Result<Trust, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = BundleVerifier::new(bundle, &provider)?;
        let config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(rustls::ALL_VERSIONS)
            .map_err(|e| e.to_string())?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        Ok(Trust(Arc::new(config)))
    }

    /// A ureq connector: TCP, through a CONNECT proxy when the agent has one,
    /// then TLS with this trust for https URLs.
    pub fn connector(&self) -> impl Connector {
        ().chain(ConnectProxyConnector::default())
            .chain(TcpConnector::default())
            .chain(TlsConnector(Arc::clone(&self.0)))
    }
}

/// webpki's verification, except that a certificate the bundle holds is
/// trusted as itself when no chain leads from it to a root.
#[derive(Debug)]
struct BundleVerifier {
    bundle: Vec<CertificateDer<'static>>,
    webpki: Arc<WebPkiServerVerifier>,
}

impl BundleVerifier {
    fn new(
        bundle: Vec<CertificateDer<'static>>,
        provider: &Arc<CryptoProvider>,
    ) -> Result<BundleVerifier, String> {
        let mut roots = RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        };
        roots.add_parsable_certificates(bundle.iter().cloned());
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(BundleVerifier { bundle, webpki })
    }
}

impl ServerCertVerifier for BundleVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verdict = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            Err(rustls::Error::InvalidCertificate(e))
                if no_chain(&e) && self.bundle.iter().any(|c| c == end_entity) =>
            {
                // webpki looks at the certificate's own dates and usage before it
                // looks for a chain, so those held; its names are checked here.
                verify_server_name(&ParsedCertificate::try_from(end_entity)?, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            other => other,
        }
    }

    // The handshake's signatures are checked with the server certificate's
    // key, whichever way that certificate came to be trusted.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// Whether webpki refused a certificate only for want of a chain to a root:
/// its issuer is unknown, or it is a CA certificate (a self-signed one) used
/// as a server's.
fn no_chain(e: &CertificateError) -> bool {
    match e {
        CertificateError::UnknownIssuer => true,
        CertificateError::Other(other) => {
            other.0.downcast_ref::<webpki::Error>() == Some(&webpki::Error::CaUsedAsEndEntity)
        }
        _ => false,
    }
}

/// Wraps https connections in TLS with one client config; others pass through.
#[derive(Debug)]
struct TlsConnector(Arc<ClientConfig>);

impl<In: Transport> Connector<In> for TlsConnector {
    type Out = Either<In, TlsTransport>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(transport) = chained else {
            return Ok(None);
        };
        if !details.needs_tls() || transport.is_tls() {
            return Ok(Some(Either::A(transport)));
        }
        let host = details
            .uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| ureq::Error::Tls("the host is not a valid name for TLS"))?;
        let mut conn = ClientConnection::new(Arc::clone(&self.0), name)?;
        let mut sock = TransportAdapter::new(transport.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        conn.complete_io(&mut sock)?;
        let buffers = LazyBuffers::new(
            details.config.input_buffer_size(),
            details.config.output_buffer_size(),
        );
        Ok(Some(Either::B(TlsTransport {
            buffers,
            stream: StreamOwned { conn, sock },
        })))
    }
}

/// A TLS connection as a ureq transport.
struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TlsTransport")
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let output = &self.buffers.output()[..amount];
        self.stream.write_all(output)?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.stream.get_mut().set_timeout(timeout);
        let input = self.buffers.input_append_buf();
        let amount = self.stream.read(input)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// `openssl req -x509` with a P-256 key, for IP 127.0.0.1 only (so marked
    /// as a CA), valid from `NOT_BEFORE` to `NOT_AFTER` (Unix seconds).
    const SELF_SIGNED: &str = include_str!("../../fixtures/tls/self-signed.pem");
    const NOT_BEFORE: u64 = 1_796_094_109;
    const NOT_AFTER: u64 = 2_111_454_109;

    fn cert() -> CertificateDer<'static> {
        match ureq::tls::parse_pem(SELF_SIGNED.as_bytes()).next() {
            Some(Ok(ureq::tls::PemItem::Certificate(c))) => CertificateDer::from(c.der().to_vec()),
            _ => panic!("the fixture is one PEM certificate"),
        }
    }

    /// Verifies the fixture as the certificate of `name` at Unix time `at`.
    fn verify(bundle: Vec<CertificateDer<'static>>, name: &str, at: u64) -> Result<(), String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = BundleVerifier::new(bundle, &provider)?;
        let name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
        let now = UnixTime::since_unix_epoch(Duration::from_secs(at));
        verifier
            .verify_server_cert(&cert(), &[], &name, &[], now)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_certificate_the_bundle_holds_is_trusted_for_its_names_and_dates() {
        let during = NOT_BEFORE + 86_400;
        assert_eq!(verify(vec![cert()], "127.0.0.1", during), Ok(()));
        let e = verify(vec![cert()], "localhost", during).unwrap_err();
        assert!(e.contains("not valid for name"), "{e}");
        let e = verify(vec![cert()], "127.0.0.1", NOT_AFTER + 86_400).unwrap_err();
        assert!(e.contains("expired"), "{e}");
        let e = verify(vec![cert()], "127.0.0.1", NOT_BEFORE - 86_400).unwrap_err();
        assert!(e.contains("not valid yet"), "{e}");
    }

    #[test]
    fn a_certificate_the_bundle_lacks_is_refused() {
        let e = verify(Vec::new(), "127.0.0.1", NOT_BEFORE + 86_400).unwrap_err();
        assert!(e.contains("CaUsedAsEndEntity"), "{e}");
    }
}
