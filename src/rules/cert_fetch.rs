//! The client certificate fetches (`ssl_c_*`, `ssl_fc_has_crt`): they read
//! the certificate the TLS facts of the connection hold
//! ([`TlsFacts::client_cert`](super::TlsFacts)), read once per connection;
//! evaluating one allocates nothing.

use super::sample::{Facts, Sample, SampleType};
use crate::tls::peer_cert::PeerCert;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CertFetch {
    /// `ssl_c_used`: the client presented a certificate.
    Used,
    /// `ssl_fc_has_crt`: the same (percore does not tell a resumed
    /// session's certificate apart).
    HasCrt,
    /// `ssl_c_verify`: 0 (a certificate that does not verify is refused
    /// in the handshake, so every connection that got here verified).
    Verify,
    /// `ssl_c_s_dn` / `ssl_c_i_dn`, whole or one entry.
    Dn {
        issuer: bool,
        entry: Option<(Box<str>, i32)>,
    },
    Serial,
    Sha1,
    NotBefore,
    NotAfter,
    Der,
}

impl CertFetch {
    pub fn sample_type(&self) -> SampleType {
        match self {
            CertFetch::Used | CertFetch::HasCrt => SampleType::Bool,
            CertFetch::Verify => SampleType::Int,
            _ => SampleType::Str,
        }
    }

    pub fn any(&self, facts: &Facts<'_>, f: &mut impl FnMut(Sample<'_>) -> bool) -> bool {
        // No sample on a connection that is not TLS, as HAProxy.
        let Some(tls) = facts.conn.tls.as_ref() else {
            return false;
        };
        let cert = tls.client_cert.as_deref();
        match self {
            CertFetch::Used | CertFetch::HasCrt => f(Sample::Bool(cert.is_some())),
            CertFetch::Verify => f(Sample::Int(0)),
            _ => cert
                .and_then(|c| self.bytes(c))
                .is_some_and(|v| f(Sample::Str(v))),
        }
    }

    fn bytes<'c>(&self, cert: &'c PeerCert) -> Option<&'c [u8]> {
        match self {
            CertFetch::Dn { issuer, entry } => {
                cert.dn(*issuer, entry.as_ref().map(|(e, occ)| (&**e, *occ)))
            }
            CertFetch::Serial => Some(cert.serial()),
            CertFetch::Sha1 => Some(cert.sha1()),
            CertFetch::NotBefore => cert.not_before(),
            CertFetch::NotAfter => cert.not_after(),
            CertFetch::Der => Some(cert.der()),
            CertFetch::Used | CertFetch::HasCrt | CertFetch::Verify => None,
        }
    }
}
