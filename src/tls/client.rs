//! TLS towards servers (origination): per-server `ssl = true` with
//! `verify`, `ca-file`, `sni` and an optional client certificate.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};

use super::certs::LoadedCert;
use super::server::provider_with;

/// How the server's certificate is checked (HAProxy `verify`).
#[derive(Debug, Clone)]
pub enum Verify {
    /// Not at all (the handshake signature is still checked).
    None,
    /// Chained to one of these CAs (`ca-file`); with `sni`, also issued for
    /// that name (HAProxy checks the SNI name when `sni` is set).
    Required { roots: Vec<CertificateDer<'static>> },
}

/// A server's `ssl = true` settings after loading.
#[derive(Debug, Clone)]
pub struct OriginTls {
    pub verify: Verify,
    /// Name sent in SNI (HAProxy `sni`, a constant here).
    pub sni: Option<String>,
    /// Client certificate presented to the server (HAProxy server `crt`).
    pub client_cert: Option<LoadedCert>,
}

impl OriginTls {
    /// One core's client configuration (its own resumption cache).
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, rustls::Error> {
        let provider = Arc::new(provider_with(None, None));
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?;
        let verifier: Arc<dyn ServerCertVerifier> = match &self.verify {
            Verify::None => Arc::new(AnyCertificate(Arc::clone(&provider))),
            Verify::Required { roots } => {
                let mut store = RootCertStore::empty();
                for root in roots {
                    store.add(root.clone())?;
                }
                let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
                    .build()
                    .map_err(|e| rustls::Error::General(e.to_string()))?;
                if self.sni.is_some() {
                    webpki
                } else {
                    Arc::new(ChainOnly(webpki))
                }
            }
        };
        let builder = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let config = match &self.client_cert {
            Some(cert) => builder.with_client_auth_cert(cert.chain.clone(), cert.key_der())?,
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }

    /// The name the handshake is for: the SNI if set, else the server's
    /// address (rustls sends no SNI for an address).
    pub fn server_name(&self, addr: SocketAddr) -> ServerName<'static> {
        self.sni
            .as_ref()
            .and_then(|name| ServerName::try_from(name.clone()).ok())
            .unwrap_or_else(|| ServerName::IpAddress(addr.ip().into()))
    }
}

/// `verify required` without `sni`: the chain must lead to a configured
/// CA; which names the certificate is for is not checked (HAProxy without
/// `verifyhost`).
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// `verify none`.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
