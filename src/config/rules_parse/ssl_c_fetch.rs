//! The client certificate fetches of the rule language (mTLS binds):
//! `ssl_c_used`, `ssl_c_verify`, `ssl_c_s_dn([<entry>[,<occ>]])`,
//! `ssl_c_i_dn(...)`, `ssl_c_serial`, `ssl_c_sha1`, `ssl_c_notbefore`,
//! `ssl_c_notafter`, `ssl_c_der`, `ssl_fc_has_crt` (HAProxy's grammar;
//! `crate::rules::cert_fetch`).

use super::{err, Env, Parsed};
use crate::rules::cert_fetch::CertFetch;
use crate::rules::Fetch;

const NAMES: [(&str, Option<CertFetch>); 10] = [
    ("ssl_c_used", Some(CertFetch::Used)),
    ("ssl_fc_has_crt", Some(CertFetch::HasCrt)),
    ("ssl_c_verify", Some(CertFetch::Verify)),
    ("ssl_c_serial", Some(CertFetch::Serial)),
    ("ssl_c_sha1", Some(CertFetch::Sha1)),
    ("ssl_c_notbefore", Some(CertFetch::NotBefore)),
    ("ssl_c_notafter", Some(CertFetch::NotAfter)),
    ("ssl_c_der", Some(CertFetch::Der)),
    // Take arguments.
    ("ssl_c_s_dn", None),
    ("ssl_c_i_dn", None),
];

pub(super) fn parse_ssl_c_fetch(
    at: usize,
    name: &str,
    args: &[&str],
    _env: &Env<'_>,
) -> Parsed<Fetch> {
    let args: Vec<&str> = args.iter().map(|a| a.trim()).collect();
    let fixed = NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(_, f)| f.clone());
    if let Some(fetch) = fixed {
        if !args.is_empty() {
            return err(
                at,
                format!("`{name}` takes no argument"),
                format!("write {name} alone"),
            );
        }
        return Ok(Fetch::ClientCert(fetch));
    }
    let issuer = name == "ssl_c_i_dn";
    let hint = format!(
        "write {name}, {name}(<entry>) or {name}(<entry>,<occ>): entry a short name (CN, O, OU, C...) or an OID, occ 1 the first (default), -1 the last; the <format> argument is not supported"
    );
    let entry = match args.as_slice() {
        [] => None,
        [e] if valid_entry(e) => Some(((*e).into(), 1)),
        [e, occ] if valid_entry(e) => match occ.parse::<i32>() {
            Ok(n) if n != 0 => Some(((*e).into(), n)),
            _ => {
                return err(
                    at,
                    format!("`{name}`: occurrence `{occ}` is not a non-zero integer"),
                    hint,
                )
            }
        },
        _ => {
            return err(
                at,
                format!("`{name}`: bad arguments `{}`", args.join(",")),
                hint,
            )
        }
    };
    Ok(Fetch::ClientCert(CertFetch::Dn { issuer, entry }))
}

/// An attribute short name (`CN`, `emailAddress`) or a dotted OID.
fn valid_entry(entry: &str) -> bool {
    !entry.is_empty()
        && entry
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.')
}
