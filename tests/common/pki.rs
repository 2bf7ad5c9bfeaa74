//! A certificate authority made for one test (rcgen): its certificate,
//! and whatever the test has it sign, are PEM files in a temporary
//! directory; nothing is committed.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CertificateRevocationListParams,
    DistinguishedName, DnType, IsCa, Issuer, KeyIdMethod, KeyPair, RevokedCertParams, SerialNumber,
};

pub struct TestCa {
    dir: tempfile::TempDir,
    cert: Certificate,
    issuer: Issuer<'static, KeyPair>,
}

impl TestCa {
    /// A CA named `O=percore tests, CN=<name>`, its certificate in
    /// `ca.pem` of its directory.
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name = DistinguishedName::new();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "percore tests");
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.self_signed(&key).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).unwrap();
        TestCa {
            dir,
            cert,
            issuer: Issuer::new(params, key),
        }
    }

    /// The directory of the CA's files (the test may write its own there).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate (PEM), what clients and `ca-file` trust.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn ca_cert(&self) -> &Certificate {
        &self.cert
    }

    /// `params` signed by the CA with a new key: (certificate, key).
    pub fn sign(&self, params: CertificateParams) -> (Certificate, KeyPair) {
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert, key)
    }

    /// A revocation list naming `serial`, written to `ca.crl`.
    pub fn crl(&self, serial: u8) -> PathBuf {
        let params = CertificateRevocationListParams {
            this_update: rcgen::date_time_ymd(2024, 1, 1),
            next_update: rcgen::date_time_ymd(2099, 1, 1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from_slice(&[serial]),
                revocation_time: rcgen::date_time_ymd(2024, 6, 1),
                reason_code: None,
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer).unwrap();
        let path = self.dir.path().join("ca.crl");
        std::fs::write(&path, crl.pem().unwrap()).unwrap();
        path
    }
}

/// A self-signed certificate for `names` (its subject alternative names;
/// the first is also its common name), with its key.
pub fn self_signed(names: &[&str]) -> (Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let mut params =
        CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).unwrap();
    params.distinguished_name.push(DnType::CommonName, names[0]);
    let cert = params.self_signed(&key).unwrap();
    (cert, key)
}

/// [`self_signed`] written at `path` as one PEM bundle, the certificate
/// then the key (what a `crt` takes); returns `path`.
pub fn write_self_signed_bundle(path: &Path, names: &[&str]) -> PathBuf {
    let (cert, key) = self_signed(names);
    std::fs::write(path, format!("{}{}", cert.pem(), key.serialize_pem())).unwrap();
    path.to_path_buf()
}
