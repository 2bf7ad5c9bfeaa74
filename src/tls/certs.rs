//! Certificates as HAProxy users keep them: a PEM bundle with the chain and
//! the key in one file, a certificate whose key sits beside it in
//! `<file>.key`, an explicitly named key file, or a directory of bundles.
//! Everything is read and checked at load, so a bad file stops start-up
//! with its name instead of failing the first handshake.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::{PemObject, SectionKind};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::x509::{cert_facts, CertFacts};

/// Files HAProxy skips when it loads a directory: they accompany bundles.
const COMPANION_EXTENSIONS: &[&str] = &["key", "ocsp", "issuer", "sctl"];

/// A certificate chain and its private key, checked to belong together.
///
/// The key is kept as DER so that each core loads its own signing key:
/// sharing one would make every handshake touch a reference count that all
/// cores write.
#[derive(Clone)]
pub struct LoadedCert {
    /// The file the certificate came from (for messages).
    pub path: PathBuf,
    /// Leaf first, then the intermediates in file order.
    pub chain: Vec<CertificateDer<'static>>,
    key: Arc<PrivateKeyDer<'static>>,
    pub facts: CertFacts,
}

impl std::fmt::Debug for LoadedCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoadedCert")
            .field("path", &self.path)
            .field("names", &self.facts.names)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("{}: cannot read: {source}", path.display())]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: not valid PEM: {reason}", path.display())]
    BadPem { path: PathBuf, reason: String },
    #[error("{}: no certificate in the file", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{}: no private key in the file, nor in {}.key", path.display(), path.display())]
    NoKey { path: PathBuf },
    #[error("{}: more than one private key in the file", path.display())]
    TwoKeys { path: PathBuf },
    #[error("{}: the private key does not match the certificate", path.display())]
    KeyMismatch { path: PathBuf },
    #[error("{}: unusable private key: {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error("{}: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error("{}: directory holds no certificate bundle", path.display())]
    EmptyDirectory { path: PathBuf },
    #[error("{}: no certificate revocation list (X509 CRL) in the file", path.display())]
    NoCrl { path: PathBuf },
}

/// What a file holds: certificates in order, and its private keys.
struct PemContents {
    certs: Vec<CertificateDer<'static>>,
    keys: Vec<PrivateKeyDer<'static>>,
}

fn read_pem(path: &Path) -> Result<PemContents, CertError> {
    let bytes = std::fs::read(path).map_err(|source| CertError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let mut contents = PemContents {
        certs: Vec::new(),
        keys: Vec::new(),
    };
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(&bytes) {
        let (kind, der) = section.map_err(|e| CertError::BadPem {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        match kind {
            SectionKind::Certificate => contents.certs.push(CertificateDer::from(der)),
            SectionKind::RsaPrivateKey | SectionKind::PrivateKey | SectionKind::EcPrivateKey => {
                let key = PrivateKeyDer::try_from(der).map_err(|reason| CertError::BadKey {
                    path: path.to_path_buf(),
                    reason: reason.to_string(),
                })?;
                contents.keys.push(key);
            }
            // DH parameters, OCSP responses and the like are not used.
            _ => {}
        }
    }
    Ok(contents)
}

fn single_key(
    path: &Path,
    mut keys: Vec<PrivateKeyDer<'static>>,
) -> Result<Option<PrivateKeyDer<'static>>, CertError> {
    if keys.len() > 1 {
        return Err(CertError::TwoKeys {
            path: path.to_path_buf(),
        });
    }
    Ok(keys.pop())
}

/// Loads one certificate: `path` holds the chain and usually the key; the
/// key comes from `key_path` if given, else from the bundle, else from
/// `<path>.key` as HAProxy looks for it.
pub fn load_cert(
    path: &Path,
    key_path: Option<&Path>,
    provider: &CryptoProvider,
) -> Result<LoadedCert, CertError> {
    let PemContents { certs, keys } = read_pem(path)?;
    if certs.is_empty() {
        return Err(CertError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    let (key, key_file) = match key_path {
        Some(key_path) => {
            let from_file = single_key(key_path, read_pem(key_path)?.keys)?;
            (from_file, key_path.to_path_buf())
        }
        None => match single_key(path, keys)? {
            Some(key) => (Some(key), path.to_path_buf()),
            None => {
                let beside = PathBuf::from(format!("{}.key", path.display()));
                if beside.exists() {
                    (single_key(&beside, read_pem(&beside)?.keys)?, beside)
                } else {
                    (None, path.to_path_buf())
                }
            }
        },
    };
    let key = key.ok_or_else(|| CertError::NoKey {
        path: key_file.clone(),
    })?;
    let facts = cert_facts(&certs[0]).map_err(|e| CertError::BadCertificate {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let loaded = LoadedCert {
        path: path.to_path_buf(),
        chain: certs,
        key: Arc::new(key),
        facts,
    };
    // Checked once here so that no core can fail to build its own copy.
    loaded.certified_key(provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => CertError::KeyMismatch { path: key_file },
        other => CertError::BadKey {
            path: key_file,
            reason: other.to_string(),
        },
    })?;
    Ok(loaded)
}

/// Loads `path`: a bundle file, or every bundle in a directory (sorted by
/// name; `.key`, `.ocsp`, `.issuer` and `.sctl` companions skipped).
pub fn load_crt(
    path: &Path,
    key_path: Option<&Path>,
    provider: &CryptoProvider,
) -> Result<Vec<LoadedCert>, CertError> {
    let metadata = std::fs::metadata(path).map_err(|source| CertError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    if !metadata.is_dir() {
        return Ok(vec![load_cert(path, key_path, provider)?]);
    }
    let unreadable = |source| CertError::Unreadable {
        path: path.to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(path).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let file = entry.path();
        let companion = file
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| COMPANION_EXTENSIONS.contains(&e));
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !companion && !hidden && file.is_file() {
            files.push(file);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(CertError::EmptyDirectory {
            path: path.to_path_buf(),
        });
    }
    files
        .iter()
        .map(|file| load_cert(file, None, provider))
        .collect()
}

/// Loads every certificate of a CA file (for verifying peers).
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let certs = read_pem(path)?.certs;
    if certs.is_empty() {
        return Err(CertError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// The revocation lists of a PEM file (bind `crl-file`).
pub fn load_crl_file(
    path: &Path,
) -> Result<Vec<rustls::pki_types::CertificateRevocationListDer<'static>>, CertError> {
    let bytes = std::fs::read(path).map_err(|source| CertError::Unreadable {
        path: path.to_path_buf(),
        source,
    })?;
    let mut crls = Vec::new();
    for section in <(SectionKind, Vec<u8>)>::pem_slice_iter(&bytes) {
        let (kind, der) = section.map_err(|e| CertError::BadPem {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        if kind == SectionKind::Crl {
            crls.push(der.into());
        }
    }
    if crls.is_empty() {
        return Err(CertError::NoCrl {
            path: path.to_path_buf(),
        });
    }
    Ok(crls)
}

impl LoadedCert {
    /// A fresh signing key and chain for one core's TLS configuration.
    pub fn certified_key(&self, provider: &CryptoProvider) -> Result<CertifiedKey, rustls::Error> {
        let signing = provider
            .key_provider
            .load_private_key(self.key.as_ref().clone_key())?;
        let certified = CertifiedKey::new(self.chain.clone(), signing);
        match certified.keys_match() {
            Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
                Ok(certified)
            }
            Err(e) => Err(e),
        }
    }

    /// The key as DER, for building a client configuration.
    pub fn key_der(&self) -> PrivateKeyDer<'static> {
        self.key.as_ref().clone_key()
    }

    /// Whether the certificate's notAfter is before `now` (Unix seconds).
    pub fn expired_at(&self, now: i64) -> bool {
        self.facts.not_after < now
    }
}
