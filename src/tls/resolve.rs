//! Certificate selection by SNI, as HAProxy does it for a `crt` list: the
//! name the client asked for is matched against each certificate's SAN
//! (or CN) names, exact names first, then wildcards; a client without SNI,
//! or asking for a name no certificate has, gets the first certificate.

use std::collections::HashMap;
use std::sync::Arc;

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// One core's resolver; it owns its keys (see `LoadedCert`).
#[derive(Debug)]
pub struct SniResolver {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Keyed by the part after `*.`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
}

impl SniResolver {
    /// `certs` with their names, in configuration order; the first is the
    /// default. A name listed twice keeps its first certificate.
    pub fn new(default: Arc<CertifiedKey>, certs: Vec<(Vec<String>, Arc<CertifiedKey>)>) -> Self {
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        for (names, key) in certs {
            for name in names {
                match name.strip_prefix("*.") {
                    Some(suffix) => wildcard
                        .entry(suffix.to_string())
                        .or_insert_with(|| Arc::clone(&key)),
                    None => exact.entry(name).or_insert_with(|| Arc::clone(&key)),
                };
            }
        }
        SniResolver {
            exact,
            wildcard,
            default,
        }
    }

    /// The certificate for a requested name (already lower-case: rustls
    /// normalises SNI).
    pub fn pick(&self, sni: Option<&str>) -> &Arc<CertifiedKey> {
        let Some(name) = sni else {
            return &self.default;
        };
        if let Some(key) = self.exact.get(name) {
            return key;
        }
        name.split_once('.')
            .and_then(|(_, parent)| self.wildcard.get(parent))
            .unwrap_or(&self.default)
    }
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(self.pick(client_hello.server_name())))
    }
}
