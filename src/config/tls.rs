//! TLS keys: a bind written as a table (`{ addr, ssl = true, crt, ... }`,
//! HAProxy's `bind ... ssl crt ...`) and a server's `ssl = true` with
//! `verify`, `ca-file`, `sni`, `crt`. Certificates are read and checked
//! here, so a bad file stops the start with its name.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::{quoted_list, Diagnostics, Reported};
use super::model::Mode;
use super::reader::{Node, TableView};
use crate::tls::{self, BindTls, OriginTls, SuiteList, TicketSecret, TlsVersion, Verify};

pub(crate) const BIND_KEYS: &[&str] = &[
    "addr",
    "ssl",
    "crt",
    "key",
    "alpn",
    "ssl-min-ver",
    "ssl-max-ver",
    "ciphers",
    "ciphersuites",
    "verify",
    "ca-file",
    "crl-file",
];
pub(crate) const SERVER_TLS_KEYS: &[&str] = &["ssl", "verify", "ca-file", "sni", "crt", "key"];

/// ALPN names percore can serve in `mode http`.
const HTTP_ALPN: &[&str] = &["h2", "http/1.1", "http/1.0"];

fn resolve(base_dir: &Path, file: &str) -> PathBuf {
    let path = Path::new(file);
    if path.is_absolute() {
        path.to_path_buf()
    } else {
        base_dir.join(path)
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Warns about certificates past their notAfter: HAProxy starts with them
/// (clients will refuse them), and so does percore, loudly.
fn warn_expired(diag: &mut Diagnostics<'_>, node: &Node<'_>, certs: &[tls::LoadedCert]) {
    let now = now_unix();
    for cert in certs.iter().filter(|c| c.expired_at(now)) {
        diag.warn(
            node.span.as_ref(),
            &node.path,
            format!(
                "certificate {} has expired (notAfter {} s after the epoch); clients will refuse it",
                cert.path.display(),
                cert.facts.not_after
            ),
            Some("renew it".into()),
        );
    }
}

fn version(
    diag: &mut Diagnostics<'_>,
    table: &TableView<'_>,
    key: &str,
) -> Result<Option<TlsVersion>, Reported> {
    let Some(node) = table.get(key) else {
        return Ok(None);
    };
    let text = node.string(diag)?;
    tls::parse_version(&text.value).map(Some).map_err(|e| {
        diag.error(
            node.span.as_ref(),
            &node.path,
            e.to_string(),
            Some("use \"TLSv1.2\" or \"TLSv1.3\"".into()),
        )
    })
}

fn suites(
    diag: &mut Diagnostics<'_>,
    table: &TableView<'_>,
    key: &str,
    list: SuiteList,
) -> Result<Option<Vec<rustls::SupportedCipherSuite>>, Reported> {
    let Some(node) = table.get(key) else {
        return Ok(None);
    };
    let text = node.string(diag)?;
    let parsed = tls::parse_suites(&text.value, list);
    let names = quoted_list(&tls::suites::supported_names(list));
    if !parsed.unknown.is_empty() {
        return Err(diag.error(
            node.span.as_ref(),
            &node.path,
            format!("unknown cipher suite {}", quoted_list(&parsed.unknown)),
            Some(format!(
                "{key} lists {} suites; percore has {names}",
                if list == SuiteList::Tls13 {
                    "TLS 1.3"
                } else {
                    "TLS 1.2"
                }
            )),
        ));
    }
    if !parsed.unsupported.is_empty() {
        diag.warn(
            node.span.as_ref(),
            &node.path,
            format!(
                "ignored {}: not offered by percore (rustls has ECDHE with AEAD ciphers only)",
                quoted_list(&parsed.unsupported)
            ),
            None,
        );
    }
    if parsed.suites.is_empty() {
        return Err(diag.error(
            node.span.as_ref(),
            &node.path,
            "no usable cipher suite left",
            Some(format!("name at least one of {names}")),
        ));
    }
    Ok(Some(parsed.suites))
}

/// `crt` (and `key`) of a bind or server: loaded certificates, or the
/// reported error.
fn certificates(
    diag: &mut Diagnostics<'_>,
    table: &TableView<'_>,
    base_dir: &Path,
    allow_dir: bool,
) -> Result<Option<Vec<tls::LoadedCert>>, Reported> {
    let Some(node) = table.get("crt") else {
        return Ok(None);
    };
    let crt = node.string(diag)?;
    let key = match table.get("key") {
        Some(key_node) => Some(resolve(base_dir, &key_node.string(diag)?.value)),
        None => None,
    };
    let path = resolve(base_dir, &crt.value);
    let provider = tls::provider();
    let loaded = if allow_dir {
        tls::load_crt(&path, key.as_deref(), &provider)
    } else {
        tls::load_cert(&path, key.as_deref(), &provider).map(|c| vec![c])
    };
    match loaded {
        Ok(certs) => {
            warn_expired(diag, &node, &certs);
            Ok(Some(certs))
        }
        Err(e) => Err(diag.error(
            node.span.as_ref(),
            &node.path,
            e.to_string(),
            Some(cert_hint(&e).into()),
        )),
    }
}

fn cert_hint(e: &tls::CertError) -> &'static str {
    use tls::CertError as E;
    match e {
        E::Unreadable { .. } => "relative paths are relative to the configuration file",
        E::KeyMismatch { .. } => "the key must be the one the certificate was issued for",
        E::NoKey { .. } => "append the key to the PEM bundle, put it in <crt>.key, or set key",
        E::EmptyDirectory { .. } => "put PEM bundles (chain + key) in the directory",
        _ => "crt takes a PEM file with the certificate chain and its key",
    }
}

/// A table element of `bind`: its address node and TLS settings. The
/// caller parses the address like a plain string bind.
pub(crate) fn read_bind_table<'a>(
    diag: &mut Diagnostics<'_>,
    table: &TableView<'a>,
    mode: Option<Mode>,
    base_dir: &Path,
) -> (Option<Node<'a>>, Result<Option<Arc<BindTls>>, Reported>) {
    table.check_keys(
        diag,
        &[BIND_KEYS, super::sections::BIND_OPTION_KEYS].concat(),
    );
    let addr = table.get("addr");
    if addr.is_none() {
        diag.error(
            table.span.as_ref(),
            &table.path,
            "bind has no addr",
            Some("write { addr = \"127.0.0.1:8443\", ssl = true, crt = \"site.pem\" }".into()),
        );
    }
    (addr, read_bind_tls(diag, table, mode, base_dir))
}

fn read_bind_tls(
    diag: &mut Diagnostics<'_>,
    table: &TableView<'_>,
    mode: Option<Mode>,
    base_dir: &Path,
) -> Result<Option<Arc<BindTls>>, Reported> {
    let ssl = match table.get("ssl") {
        Some(node) => node.bool(diag)?.value,
        None => false,
    };
    if !ssl {
        let tls_key = BIND_KEYS[2..].iter().find_map(|k| table.get(k));
        if let Some(node) = tls_key {
            return Err(diag.error(
                node.span.as_ref(),
                &node.path,
                "TLS setting on a bind without ssl = true",
                Some("add ssl = true to this bind (HAProxy `bind ... ssl crt ...`)".into()),
            ));
        }
        return Ok(None);
    }
    let certs = certificates(diag, table, base_dir, true);
    let min = version(diag, table, "ssl-min-ver");
    let max = version(diag, table, "ssl-max-ver");
    let tls12 = suites(diag, table, "ciphers", SuiteList::Tls12);
    let tls13 = suites(diag, table, "ciphersuites", SuiteList::Tls13);
    let alpn = read_alpn(diag, table, mode);
    let client_auth = read_client_auth(diag, table, base_dir);
    let certs = match certs? {
        Some(certs) => certs,
        None => return Err(diag.error(
            table.span.as_ref(),
            &table.path,
            "ssl = true needs a certificate",
            Some(
                "add crt = \"site.pem\" (chain and key in one PEM file, or a directory of them)"
                    .into(),
            ),
        )),
    };
    let min = min?.unwrap_or(TlsVersion::Tls12);
    let max = max?.unwrap_or(TlsVersion::Tls13);
    if min > max {
        let node = table.get("ssl-min-ver");
        return Err(diag.error(
            node.as_ref().and_then(|n| n.span.as_ref()),
            &format!("{}.ssl-min-ver", table.path),
            "ssl-min-ver is above ssl-max-ver",
            None,
        ));
    }
    // Same bind address, same secret, across reloads.
    let bind_name = table
        .get("addr")
        .and_then(|n| n.string_quiet())
        .unwrap_or_default();
    let tickets = TicketSecret::for_bind(&bind_name)
        .map_err(|e| diag.error(table.span.as_ref(), &table.path, e.to_string(), None))?;
    let settings = BindTls {
        certs,
        alpn: alpn?,
        min_version: min,
        max_version: max,
        tls12_suites: tls12?,
        tls13_suites: tls13?,
        tickets,
        client_auth: client_auth?,
    };
    // Build once here: whatever rustls refuses is refused at load, not on
    // a core at start.
    settings.server_config().map_err(|e| {
        diag.error(
            table.span.as_ref(),
            &table.path,
            format!("TLS settings refused: {e}"),
            None,
        )
    })?;
    Ok(Some(Arc::new(settings)))
}

/// Bind `verify none|optional|required`, `ca-file`, `crl-file` (mTLS).
fn read_client_auth(
    diag: &mut Diagnostics<'_>,
    table: &TableView<'_>,
    base_dir: &Path,
) -> Result<Option<tls::ClientAuth>, Reported> {
    let optional = match table.get("verify") {
        None => None,
        Some(node) => match node.string(diag)?.value.as_str() {
            "none" => None,
            "optional" => Some(true),
            "required" => Some(false),
            other => {
                return Err(diag.error(
                    node.span.as_ref(),
                    &node.path,
                    format!("unknown verify mode \"{other}\""),
                    Some("use \"none\", \"optional\" or \"required\"".into()),
                ))
            }
        },
    };
    let roots = match table.get("ca-file") {
        None => None,
        Some(node) => {
            let file = node.string(diag)?;
            let roots = tls::load_ca_file(&resolve(base_dir, &file.value)).map_err(|e| {
                diag.error(
                    node.span.as_ref(),
                    &node.path,
                    e.to_string(),
                    Some(
                        "ca-file takes PEM certificates of the CAs client certificates chain to"
                            .into(),
                    ),
                )
            })?;
            Some((roots, node))
        }
    };
    let crls = match table.get("crl-file") {
        None => None,
        Some(node) => {
            let file = node.string(diag)?;
            let crls = tls::load_crl_file(&resolve(base_dir, &file.value)).map_err(|e| {
                diag.error(
                    node.span.as_ref(),
                    &node.path,
                    e.to_string(),
                    Some("crl-file takes PEM revocation lists (-----BEGIN X509 CRL-----)".into()),
                )
            })?;
            Some((crls, node))
        }
    };
    match (optional, roots) {
        (Some(optional), Some((roots, _))) => Ok(Some(tls::ClientAuth {
            roots,
            crls: crls.map(|(c, _)| c).unwrap_or_default(),
            optional,
        })),
        (Some(_), None) => Err(diag.error(
            table.span.as_ref(),
            &table.path,
            "verify asks for client certificates but no ca-file is given",
            Some("set ca-file = \"clients-ca.pem\", the CAs client certificates chain to (HAProxy refuses this too)".into()),
        )),
        (None, roots) => {
            // HAProxy accepts these with `verify none` and asks for no
            // certificate; said here, since it is likely a mistake.
            if let Some(node) = roots.map(|(_, n)| n).or(crls.map(|(_, n)| n)) {
                diag.warn(
                    node.span.as_ref(),
                    &node.path,
                    "no client certificate is asked for without verify = \"optional\" or \"required\"",
                    Some("add verify = \"required\" (HAProxy's default is verify none)".into()),
                );
            }
            Ok(None)
        }
    }
}

fn read_alpn(
    diag: &mut Diagnostics<'_>,
    table: &TableView<'_>,
    mode: Option<Mode>,
) -> Result<Vec<Vec<u8>>, Reported> {
    let Some(node) = table.get("alpn") else {
        // Advertise only what percore speaks: HTTP/1.1 in mode http;
        // nothing in mode tcp, where the server decides.
        return Ok(match mode {
            Some(Mode::Http) => vec![b"http/1.1".to_vec()],
            _ => Vec::new(),
        });
    };
    // HAProxy writes `alpn h2,http/1.1`; a list or that string both work.
    let names: Vec<(String, Node<'_>)> = if node.is_array() {
        let mut names = Vec::new();
        for element in node.array(diag)? {
            names.push((element.string(diag)?.value, element));
        }
        names
    } else {
        let text = node.string(diag)?.value;
        text.split(',')
            .map(|n| (n.trim().to_string(), node.clone()))
            .collect()
    };
    let mut protocols = Vec::new();
    for (name, at) in names {
        if name.is_empty() || name.len() > 255 {
            return Err(diag.error(
                at.span.as_ref(),
                &at.path,
                format!("invalid ALPN protocol name \"{name}\""),
                None,
            ));
        }
        if mode == Some(Mode::Http) && !HTTP_ALPN.contains(&name.as_str()) {
            return Err(diag.error(
                at.span.as_ref(),
                &at.path,
                format!("mode http cannot serve ALPN protocol \"{name}\""),
                Some(
                    "percore speaks HTTP/2 and HTTP/1.x: advertise \"h2\" and/or \"http/1.1\""
                        .into(),
                ),
            ));
        }
        protocols.push(name.into_bytes());
    }
    Ok(protocols)
}

/// A server's TLS keys; `Ok(None)` without `ssl = true`.
pub(crate) fn read_server_tls(
    diag: &mut Diagnostics<'_>,
    table: &TableView<'_>,
    base_dir: &Path,
) -> Result<Option<Arc<OriginTls>>, Reported> {
    let ssl = match table.get("ssl") {
        Some(node) => node.bool(diag)?.value,
        None => false,
    };
    if !ssl {
        if let Some(node) = SERVER_TLS_KEYS[1..].iter().find_map(|k| table.get(k)) {
            return Err(diag.error(
                node.span.as_ref(),
                &node.path,
                "TLS setting on a server without ssl = true",
                Some("add ssl = true to this server".into()),
            ));
        }
        return Ok(None);
    }
    let verify_required = match table.get("verify") {
        None => Ok(true),
        Some(node) => node.string(diag).and_then(|v| match v.value.as_str() {
            "required" => Ok(true),
            "none" => Ok(false),
            other => Err(diag.error(
                node.span.as_ref(),
                &node.path,
                format!("unknown verify mode \"{other}\""),
                Some("use \"required\" or \"none\"".into()),
            )),
        }),
    };
    let roots = match table.get("ca-file") {
        None => Ok(None),
        Some(node) => node.string(diag).and_then(|file| {
            tls::load_ca_file(&resolve(base_dir, &file.value))
                .map(Some)
                .map_err(|e| {
                    diag.error(
                        node.span.as_ref(),
                        &node.path,
                        e.to_string(),
                        Some("ca-file takes PEM certificates of the CAs to trust".into()),
                    )
                })
        }),
    };
    let sni = match table.get("sni") {
        None => Ok(None),
        Some(node) => node.string(diag).and_then(|name| {
            match rustls::pki_types::ServerName::try_from(name.value.as_str()) {
                Ok(_) => Ok(Some(name.value)),
                Err(_) => Err(diag.error(
                    node.span.as_ref(),
                    &node.path,
                    format!("\"{}\" is not a valid SNI host name", name.value),
                    None,
                )),
            }
        }),
    };
    let client_cert = certificates(diag, table, base_dir, false);
    let verify = match (verify_required?, roots?) {
        (false, _) => Verify::None,
        (true, Some(roots)) => Verify::Required { roots },
        (true, None) => {
            return Err(diag.error(
                table.span.as_ref(),
                &table.path,
                "verify is required by default but no ca-file is given",
                Some(
                    "set ca-file = \"ca.pem\", or verify = \"none\" if you trust the network (HAProxy asks the same)"
                        .into(),
                ),
            ))
        }
    };
    let settings = OriginTls {
        verify,
        sni: sni?,
        client_cert: client_cert?.and_then(|mut certs| certs.pop()),
    };
    settings.client_config().map_err(|e| {
        diag.error(
            table.span.as_ref(),
            &table.path,
            format!("TLS settings refused: {e}"),
            None,
        )
    })?;
    Ok(Some(Arc::new(settings)))
}
