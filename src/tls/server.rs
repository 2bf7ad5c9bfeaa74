//! A TLS bind (termination): its settings as loaded, and the rustls
//! configuration each core builds from them.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer};
use rustls::server::{ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite};

use super::certs::LoadedCert;
use super::resolve::SniResolver;
use super::suites::{protocol_versions, TlsVersion};
use super::tickets::{RotatingTicketer, TicketSecret};

/// Session IDs each core remembers for stateful resumption (clients that
/// do not take tickets); HAProxy's `tune.ssl.cachesize` default, per core.
pub const SESSION_CACHE_PER_CORE: usize = 20_000;

/// `bind = [{ addr, ssl = true, crt, ... }]` after loading.
#[derive(Debug, Clone)]
pub struct BindTls {
    /// In configuration order; the first is served to clients without SNI
    /// or asking for an unknown name.
    pub certs: Vec<LoadedCert>,
    /// Protocols offered in ALPN, most preferred first; empty = no ALPN.
    pub alpn: Vec<Vec<u8>>,
    pub min_version: TlsVersion,
    pub max_version: TlsVersion,
    /// `ciphers` (TLS 1.2); `None` = every suite percore has.
    pub tls12_suites: Option<Vec<SupportedCipherSuite>>,
    /// `ciphersuites` (TLS 1.3); `None` = every suite percore has.
    pub tls13_suites: Option<Vec<SupportedCipherSuite>>,
    pub tickets: TicketSecret,
    /// `verify optional|required` with `ca-file` (mTLS); `None`: no
    /// client certificate is asked for (`verify none`, the default).
    pub client_auth: Option<ClientAuth>,
}

/// How client certificates are checked (HAProxy bind `verify`, `ca-file`,
/// `crl-file`).
#[derive(Debug, Clone)]
pub struct ClientAuth {
    /// The CAs a client certificate must chain to.
    pub roots: Vec<CertificateDer<'static>>,
    /// Revocation lists: a revoked client certificate is refused (the
    /// client's own certificate is checked, as OpenSSL's CRL_CHECK).
    pub crls: Vec<CertificateRevocationListDer<'static>>,
    /// `verify optional`: a client without a certificate is let in (one
    /// with a certificate that does not verify is still refused).
    pub optional: bool,
}

impl ClientAuth {
    fn verifier(
        &self,
        provider: Arc<CryptoProvider>,
    ) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, rustls::Error> {
        let mut store = RootCertStore::empty();
        for root in &self.roots {
            store.add(root.clone())?;
        }
        let mut builder = WebPkiClientVerifier::builder_with_provider(Arc::new(store), provider);
        if !self.crls.is_empty() {
            builder = builder
                .with_crls(self.crls.iter().cloned())
                .only_check_end_entity_revocation()
                // A CA without a list (an intermediate) is not a refusal.
                .allow_unknown_revocation_status();
        }
        if self.optional {
            builder = builder.allow_unauthenticated();
        }
        builder
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))
    }
}

/// The crypto provider restricted to the configured suites.
pub(crate) fn provider_with(
    tls12: Option<&[SupportedCipherSuite]>,
    tls13: Option<&[SupportedCipherSuite]>,
) -> CryptoProvider {
    let mut provider = super::provider();
    let all = std::mem::take(&mut provider.cipher_suites);
    let (all13, all12): (Vec<_>, Vec<_>) = all
        .into_iter()
        .partition(|s| matches!(s, SupportedCipherSuite::Tls13(_)));
    provider.cipher_suites = tls13.map_or(all13, <[_]>::to_vec);
    provider
        .cipher_suites
        .extend(tls12.map_or(all12, <[_]>::to_vec));
    provider
}

impl BindTls {
    /// One core's server configuration: own keys, own session cache, own
    /// ticketer (with the bind's shared secret), so that handshakes touch
    /// nothing another core writes.
    pub fn server_config(&self) -> Result<Arc<ServerConfig>, rustls::Error> {
        let provider = Arc::new(provider_with(
            self.tls12_suites.as_deref(),
            self.tls13_suites.as_deref(),
        ));
        let mut named = Vec::with_capacity(self.certs.len());
        for cert in &self.certs {
            let key = Arc::new(cert.certified_key(&provider)?);
            named.push((cert.facts.names.clone(), key));
        }
        let default = named
            .first()
            .map(|(_, key)| Arc::clone(key))
            .ok_or(rustls::Error::NoCertificatesPresented)?;
        let resolver = SniResolver::new(default, named);
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&protocol_versions(self.min_version, self.max_version))?;
        let builder = match &self.client_auth {
            None => builder.with_no_client_auth(),
            Some(auth) => builder.with_client_cert_verifier(auth.verifier(provider)?),
        };
        let mut config = builder.with_cert_resolver(Arc::new(resolver));
        config.alpn_protocols = self.alpn.clone();
        config.session_storage = ServerSessionMemoryCache::new(SESSION_CACHE_PER_CORE);
        config.ticketer = Arc::new(RotatingTicketer::new(self.tickets.clone()));
        // The suite order is the server's (HAProxy's prefer-server-ciphers).
        config.ignore_client_order = true;
        Ok(Arc::new(config))
    }
}
