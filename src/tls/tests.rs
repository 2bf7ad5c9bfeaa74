//! Loading and selection over files the tests generate (rcgen); handshakes
//! in memory between the configurations percore builds.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::{ClientConnection, ServerConnection};

use super::*;

struct Issued {
    cert_pem: String,
    key_pem: String,
}

fn issue(names: &[&str]) -> Issued {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .unwrap();
    // Self-signed certificates with one subject would pass for each
    // other's issuer; a unique name keeps "unknown issuer" what it is.
    static SERIAL: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let unique = format!("{} #{serial}", names.join(","));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, unique);
    let cert = params.self_signed(&key).unwrap();
    Issued {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn bundle(dir: &Path, name: &str, names: &[&str]) -> PathBuf {
    let issued = issue(names);
    write(dir, name, &format!("{}{}", issued.cert_pem, issued.key_pem))
}

fn bind(certs: Vec<LoadedCert>) -> BindTls {
    BindTls {
        certs,
        alpn: vec![b"http/1.1".to_vec()],
        min_version: TlsVersion::Tls12,
        max_version: TlsVersion::Tls13,
        tls12_suites: None,
        tls13_suites: None,
        tickets: TicketSecret::generate().unwrap(),
        client_auth: None,
    }
}

/// Runs a handshake in memory; returns the server's leaf certificate as
/// the client saw it, and the server connection.
fn handshake(
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    name: &str,
) -> Result<(Vec<u8>, ServerConnection), rustls::Error> {
    let name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    let mut c = ClientConnection::new(client, name)?;
    let mut s = ServerConnection::new(server)?;
    for _ in 0..10 {
        let mut buf = Vec::new();
        c.write_tls(&mut buf).unwrap();
        s.read_tls(&mut buf.as_slice()).unwrap();
        s.process_new_packets()?;
        let mut buf = Vec::new();
        s.write_tls(&mut buf).unwrap();
        c.read_tls(&mut buf.as_slice()).unwrap();
        c.process_new_packets()?;
        if !c.is_handshaking() && !s.is_handshaking() {
            break;
        }
    }
    let leaf = c.peer_certificates().unwrap()[0].to_vec();
    Ok((leaf, s))
}

fn trusting(certs: &[&LoadedCert], sni: Option<&str>) -> Arc<rustls::ClientConfig> {
    OriginTls {
        verify: Verify::Required {
            roots: certs.iter().map(|c| c.chain[0].clone()).collect(),
        },
        sni: sni.map(str::to_string),
        client_cert: None,
    }
    .client_config()
    .unwrap()
}

#[test]
fn bundle_with_key_and_sni_selection() {
    let dir = tempfile::tempdir().unwrap();
    let provider = provider();
    let default = load_crt(
        &bundle(dir.path(), "a.pem", &["default.test"]),
        None,
        &provider,
    )
    .unwrap()
    .remove(0);
    let exact = load_crt(
        &bundle(dir.path(), "b.pem", &["www.example.com"]),
        None,
        &provider,
    )
    .unwrap()
    .remove(0);
    let wild = load_crt(
        &bundle(dir.path(), "c.pem", &["*.example.com"]),
        None,
        &provider,
    )
    .unwrap()
    .remove(0);
    let server = bind(vec![default.clone(), exact.clone(), wild.clone()])
        .server_config()
        .unwrap();
    let client = trusting(&[&default, &exact, &wild], None);
    let leaf = |name| {
        handshake(Arc::clone(&server), Arc::clone(&client), name)
            .unwrap()
            .0
    };
    assert_eq!(leaf("www.example.com"), exact.chain[0].to_vec());
    assert_eq!(leaf("api.example.com"), wild.chain[0].to_vec());
    assert_eq!(leaf("other.test"), default.chain[0].to_vec());
    let (_, conn) = handshake(Arc::clone(&server), Arc::clone(&client), "api.example.com").unwrap();
    assert_eq!(conn.server_name(), Some("api.example.com"));
}

#[test]
fn untrusted_or_misnamed_certificates_fail_verification() {
    let dir = tempfile::tempdir().unwrap();
    let provider = provider();
    let served = load_crt(&bundle(dir.path(), "s.pem", &["srv.test"]), None, &provider)
        .unwrap()
        .remove(0);
    let stranger = load_crt(&bundle(dir.path(), "o.pem", &["srv.test"]), None, &provider)
        .unwrap()
        .remove(0);
    let server = bind(vec![served.clone()]).server_config().unwrap();
    let error = handshake(
        Arc::clone(&server),
        trusting(&[&stranger], None),
        "srv.test",
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("UnknownIssuer") || error.contains("unknown issuer"),
        "{error}"
    );
    // Chain only without sni; the name too with it.
    assert!(handshake(Arc::clone(&server), trusting(&[&served], None), "x.test").is_ok());
    assert!(handshake(
        Arc::clone(&server),
        trusting(&[&served], Some("x.test")),
        "x.test"
    )
    .is_err());
    let none = OriginTls {
        verify: Verify::None,
        sni: None,
        client_cert: None,
    }
    .client_config()
    .unwrap();
    assert!(handshake(server, none, "whatever.test").is_ok());
}

#[test]
fn separate_key_files() {
    let dir = tempfile::tempdir().unwrap();
    let provider = provider();
    let issued = issue(&["k.test"]);
    let cert = write(dir.path(), "site.pem", &issued.cert_pem);
    // HAProxy's convention: the key beside the certificate.
    write(dir.path(), "site.pem.key", &issued.key_pem);
    assert_eq!(
        load_cert(&cert, None, &provider).unwrap().facts.names,
        ["k.test"]
    );
    // An explicit key file.
    let other = write(dir.path(), "cert-only.crt", &issued.cert_pem);
    let key = write(dir.path(), "private.key", &issued.key_pem);
    assert!(load_cert(&other, Some(&key), &provider).is_ok());
    assert!(matches!(
        load_cert(&other, None, &provider),
        Err(CertError::NoKey { .. })
    ));
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let provider = provider();
    let missing = dir.path().join("missing.pem");
    let e = load_crt(&missing, None, &provider).unwrap_err();
    assert!(matches!(e, CertError::Unreadable { .. }));
    assert!(e.to_string().contains("missing.pem"), "{e}");

    let a = issue(&["a.test"]);
    let b = issue(&["b.test"]);
    let mismatched = write(
        dir.path(),
        "mismatch.pem",
        &format!("{}{}", a.cert_pem, b.key_pem),
    );
    let e = load_crt(&mismatched, None, &provider).unwrap_err();
    assert!(matches!(e, CertError::KeyMismatch { .. }), "{e}");
    assert!(e.to_string().contains("mismatch.pem"));

    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    write(&empty, "ignored.key", &a.key_pem);
    let e = load_crt(&empty, None, &provider).unwrap_err();
    assert!(matches!(e, CertError::EmptyDirectory { .. }), "{e}");

    let only_key = write(dir.path(), "onlykey.pem", &a.key_pem);
    assert!(matches!(
        load_crt(&only_key, None, &provider),
        Err(CertError::NoCertificate { .. })
    ));
}

#[test]
fn a_directory_loads_every_bundle_in_name_order() {
    let dir = tempfile::tempdir().unwrap();
    bundle(dir.path(), "20-b.pem", &["b.test"]);
    bundle(dir.path(), "10-a.pem", &["a.test"]);
    let certs = load_crt(dir.path(), None, &provider()).unwrap();
    let names: Vec<_> = certs.iter().map(|c| c.facts.names[0].as_str()).collect();
    assert_eq!(names, ["a.test", "b.test"]);
}

#[test]
fn tls13_only_refuses_a_tls12_client() {
    let dir = tempfile::tempdir().unwrap();
    let cert = load_crt(&bundle(dir.path(), "a.pem", &["v.test"]), None, &provider())
        .unwrap()
        .remove(0);
    let mut settings = bind(vec![cert.clone()]);
    settings.min_version = TlsVersion::Tls13;
    let server = settings.server_config().unwrap();
    let client = rustls::ClientConfig::builder_with_provider(Arc::new(provider()))
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates({
            let mut roots = rustls::RootCertStore::empty();
            roots.add(cert.chain[0].clone()).unwrap();
            roots
        })
        .with_no_client_auth();
    assert!(handshake(server, Arc::new(client), "v.test").is_err());
}
