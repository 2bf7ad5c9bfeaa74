//! Protocol versions and cipher suites by the names HAProxy users write:
//! OpenSSL's (`ECDHE-RSA-AES128-GCM-SHA256`), IANA's
//! (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`, `TLS_AES_128_GCM_SHA256`) and
//! rustls' (`TLS13_AES_128_GCM_SHA256`).

use rustls::crypto::ring::cipher_suite as ring_suites;
use rustls::SupportedCipherSuite;

/// A TLS protocol version as written in `ssl-min-ver` / `ssl-max-ver`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

/// Why a version name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    #[error("{0} is not supported: percore speaks TLS 1.2 and TLS 1.3 only")]
    Obsolete(String),
    #[error("unknown TLS version \"{0}\"")]
    Unknown(String),
}

/// HAProxy's names: `SSLv3`, `TLSv1.0` ... `TLSv1.3`.
pub fn parse_version(text: &str) -> Result<TlsVersion, VersionError> {
    match text {
        "TLSv1.2" => Ok(TlsVersion::Tls12),
        "TLSv1.3" => Ok(TlsVersion::Tls13),
        "SSLv3" | "TLSv1.0" | "TLSv1.1" => Err(VersionError::Obsolete(text.to_string())),
        _ => Err(VersionError::Unknown(text.to_string())),
    }
}

/// The rustls protocol versions from `min` to `max`.
pub fn protocol_versions(
    min: TlsVersion,
    max: TlsVersion,
) -> Vec<&'static rustls::SupportedProtocolVersion> {
    let mut versions = Vec::new();
    if min <= TlsVersion::Tls13 && max >= TlsVersion::Tls13 {
        versions.push(&rustls::version::TLS13);
    }
    if min <= TlsVersion::Tls12 && max >= TlsVersion::Tls12 {
        versions.push(&rustls::version::TLS12);
    }
    versions
}

/// Every suite percore offers, with the names it is known by.
const SUITES: &[(SupportedCipherSuite, &[&str])] = &[
    (
        ring_suites::TLS13_AES_256_GCM_SHA384,
        &["TLS_AES_256_GCM_SHA384", "TLS13_AES_256_GCM_SHA384"],
    ),
    (
        ring_suites::TLS13_AES_128_GCM_SHA256,
        &["TLS_AES_128_GCM_SHA256", "TLS13_AES_128_GCM_SHA256"],
    ),
    (
        ring_suites::TLS13_CHACHA20_POLY1305_SHA256,
        &[
            "TLS_CHACHA20_POLY1305_SHA256",
            "TLS13_CHACHA20_POLY1305_SHA256",
        ],
    ),
    (
        ring_suites::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        &[
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        ],
    ),
    (
        ring_suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        &[
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        ],
    ),
    (
        ring_suites::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        &[
            "ECDHE-ECDSA-CHACHA20-POLY1305",
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        ],
    ),
    (
        ring_suites::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        &[
            "ECDHE-RSA-AES256-GCM-SHA384",
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        ],
    ),
    (
        ring_suites::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        &[
            "ECDHE-RSA-AES128-GCM-SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        ],
    ),
    (
        ring_suites::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
        &[
            "ECDHE-RSA-CHACHA20-POLY1305",
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        ],
    ),
];

/// Whether a list is `ciphers` (TLS 1.2) or `ciphersuites` (TLS 1.3), as
/// in HAProxy, where each applies to its protocol only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SuiteList {
    Tls12,
    Tls13,
}

/// The outcome of reading a `ciphers`/`ciphersuites` list.
#[derive(Debug, Default)]
pub struct ParsedSuites {
    pub suites: Vec<SupportedCipherSuite>,
    /// Names of real suites rustls does not implement (CBC, DHE, RSA key
    /// exchange...): skipped with a warning, as OpenSSL skips names it
    /// cannot use, so that copied Mozilla lists keep working.
    pub unsupported: Vec<String>,
    /// Names nobody knows (typos): an error.
    pub unknown: Vec<String>,
}

/// Parses a colon-separated list. `!`/`-` exclusions and OpenSSL keywords
/// (`HIGH`, `aNULL`) are not interpreted: they count as unsupported.
pub fn parse_suites(text: &str, list: SuiteList) -> ParsedSuites {
    let mut parsed = ParsedSuites::default();
    for name in text.split([':', ',', ' ']).filter(|n| !n.is_empty()) {
        let found = SUITES
            .iter()
            .find(|(_, names)| names.iter().any(|n| n.eq_ignore_ascii_case(name)));
        match found {
            Some((suite, _)) if is_tls13(*suite) == (list == SuiteList::Tls13) => {
                if !parsed.suites.contains(suite) {
                    parsed.suites.push(*suite);
                }
            }
            Some(_) => parsed.unknown.push(name.to_string()),
            None if looks_like_openssl_cipher(name, list) => {
                parsed.unsupported.push(name.to_string())
            }
            None => parsed.unknown.push(name.to_string()),
        }
    }
    parsed
}

fn is_tls13(suite: SupportedCipherSuite) -> bool {
    matches!(suite, SupportedCipherSuite::Tls13(_))
}

/// Real OpenSSL names and cipher-string keywords, which must not be taken
/// for typos: the parts are from OpenSSL's naming scheme.
fn looks_like_openssl_cipher(name: &str, list: SuiteList) -> bool {
    let bare = name.trim_start_matches(['!', '-', '+']);
    if name != bare || bare.starts_with('@') {
        return true;
    }
    const KEYWORDS: &[&str] = &[
        "HIGH",
        "MEDIUM",
        "LOW",
        "DEFAULT",
        "ALL",
        "COMPLEMENTOFDEFAULT",
        "aNULL",
        "eNULL",
        "NULL",
        "EXPORT",
        "MD5",
        "RC4",
        "DES",
        "3DES",
        "PSK",
        "SRP",
        "SHA1",
        "kRSA",
        "aRSA",
        "aECDSA",
        "DSS",
        "CAMELLIA",
        "SEED",
        "IDEA",
        "AESCCM",
        "CCM",
    ];
    if KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(bare)) {
        return true;
    }
    match list {
        SuiteList::Tls13 => {
            bare.starts_with("TLS_AES_128_CCM") || bare.starts_with("TLS_SHA384_SHA384")
        }
        SuiteList::Tls12 => {
            let upper = bare.to_ascii_uppercase();
            let known_part = [
                "AES", "CHACHA20", "CAMELLIA", "ARIA", "DES", "RC4", "SEED", "CCM",
            ]
            .iter()
            .any(|p| upper.contains(p));
            let known_kx = ["ECDHE-", "DHE-", "EDH-", "ADH-", "AECDH-", "PSK-", "SRP-"]
                .iter()
                .any(|p| upper.starts_with(p))
                || upper.starts_with("AES")
                || upper.starts_with("TLS_");
            known_part && (known_kx || upper.starts_with("DES") || upper.starts_with("RC4"))
        }
    }
}

/// The names percore accepts, for hints.
pub fn supported_names(list: SuiteList) -> Vec<&'static str> {
    SUITES
        .iter()
        .filter(|(suite, _)| is_tls13(*suite) == (list == SuiteList::Tls13))
        .map(|(_, names)| names[0])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mozilla_intermediate_keeps_the_aead_suites_and_skips_dhe() {
        let text = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:\
ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:\
ECDHE-RSA-CHACHA20-POLY1305:DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384";
        let parsed = parse_suites(text, SuiteList::Tls12);
        assert_eq!(parsed.suites.len(), 6);
        assert_eq!(
            parsed.suites[0],
            ring_suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
        );
        assert_eq!(
            parsed.unsupported,
            vec!["DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384"]
        );
        assert!(parsed.unknown.is_empty());
    }

    #[test]
    fn iana_and_rustls_names_for_tls13() {
        let parsed = parse_suites(
            "TLS_CHACHA20_POLY1305_SHA256:TLS13_AES_128_GCM_SHA256",
            SuiteList::Tls13,
        );
        assert_eq!(
            parsed.suites,
            vec![
                ring_suites::TLS13_CHACHA20_POLY1305_SHA256,
                ring_suites::TLS13_AES_128_GCM_SHA256
            ]
        );
    }

    #[test]
    fn typos_and_wrong_list_are_unknown() {
        let parsed = parse_suites("bogus-name:TLS_AES_128_GCM_SHA256", SuiteList::Tls12);
        assert!(parsed.suites.is_empty());
        assert_eq!(parsed.unknown.len(), 2);
        assert_eq!(
            parse_suites("bogus", SuiteList::Tls13).unknown,
            vec!["bogus"]
        );
        assert_eq!(
            parse_suites("HIGH:!aNULL", SuiteList::Tls12)
                .unsupported
                .len(),
            2
        );
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("TLSv1.3"), Ok(TlsVersion::Tls13));
        assert!(matches!(
            parse_version("TLSv1.1"),
            Err(VersionError::Obsolete(_))
        ));
        assert!(matches!(
            parse_version("tls13"),
            Err(VersionError::Unknown(_))
        ));
        assert_eq!(
            protocol_versions(TlsVersion::Tls13, TlsVersion::Tls13).len(),
            1
        );
        assert_eq!(
            protocol_versions(TlsVersion::Tls12, TlsVersion::Tls13).len(),
            2
        );
    }
}
