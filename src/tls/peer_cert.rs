//! What the `ssl_c_*` fetches read of a client certificate (mTLS), read
//! once when the connection's TLS facts are built, never per request:
//! serial, subject and issuer names, validity, SHA-1 and the DER itself.
//! The DER walker is `x509`'s; names are written as OpenSSL's one-line
//! form (`/C=FR/O=Example/CN=client`), which HAProxy's `ssl_c_s_dn` gives.

use std::ops::Range;

use sha1::{Digest, Sha1};

use super::x509::{Malformed, Reader, OID, SEQUENCE, SET, VERSION_TAG};

/// A client certificate as the fetches read it. Byte ranges point into
/// `der`.
#[derive(Debug)]
pub struct PeerCert {
    der: Box<[u8]>,
    serial: Range<usize>,
    /// The validity bounds as HAProxy gives them (`None`: no sample).
    not_before: Option<Range<usize>>,
    not_after: Option<Range<usize>>,
    subject: Name,
    issuer: Name,
    sha1: [u8; 20],
}

/// A distinguished name: its one-line form and its attributes in order.
#[derive(Debug)]
struct Name {
    oneline: Box<[u8]>,
    /// (short name or dotted OID, value range in the DER).
    entries: Vec<(Box<str>, Range<usize>)>,
}

/// Attribute types by their OID's DER body, with OpenSSL's short names.
const SHORT_NAMES: [(&[u8], &str); 15] = [
    (&[0x55, 0x04, 0x03], "CN"),
    (&[0x55, 0x04, 0x06], "C"),
    (&[0x55, 0x04, 0x07], "L"),
    (&[0x55, 0x04, 0x08], "ST"),
    (&[0x55, 0x04, 0x0a], "O"),
    (&[0x55, 0x04, 0x0b], "OU"),
    (&[0x55, 0x04, 0x05], "serialNumber"),
    (&[0x55, 0x04, 0x04], "SN"),
    (&[0x55, 0x04, 0x2a], "GN"),
    (&[0x55, 0x04, 0x0c], "title"),
    (&[0x55, 0x04, 0x09], "street"),
    (&[0x55, 0x04, 0x11], "postalCode"),
    (
        &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01],
        "emailAddress",
    ),
    (
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19],
        "DC",
    ),
    (
        &[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01],
        "UID",
    ),
];

/// Where `part` (a subslice of `whole`) lies in it.
fn span(whole: &[u8], part: &[u8]) -> Range<usize> {
    let start = part.as_ptr() as usize - whole.as_ptr() as usize;
    start..start + part.len()
}

impl PeerCert {
    /// Reads a DER certificate (the one the client presented, which
    /// rustls has verified when `verify` asked for it).
    pub fn parse(der: &[u8]) -> Result<PeerCert, Malformed> {
        let certificate = Reader::new(der).expect(SEQUENCE)?;
        let mut tbs = Reader::new(Reader::new(certificate).expect(SEQUENCE)?);
        let mut element = tbs.next()?;
        if element.tag == VERSION_TAG {
            element = tbs.next()?;
        }
        // The magnitude, as OpenSSL's ASN1_INTEGER holds it (HAProxy gives
        // those bytes): without the zero DER puts before a high bit.
        let serial = match element.body {
            [0, next, ..] if *next >= 0x80 => &element.body[1..],
            body => body,
        };
        let serial = span(der, serial);
        tbs.expect(SEQUENCE)?; // signature algorithm
        let issuer = tbs.expect(SEQUENCE)?;
        let mut validity = Reader::new(tbs.expect(SEQUENCE)?);
        let not_before = haproxy_time(&validity.next()?).map(|t| span(der, t));
        let not_after = haproxy_time(&validity.next()?).map(|t| span(der, t));
        let subject = tbs.expect(SEQUENCE)?;
        Ok(PeerCert {
            der: der.into(),
            serial,
            not_before,
            not_after,
            subject: name(der, subject)?,
            issuer: name(der, issuer)?,
            sha1: Sha1::digest(der).into(),
        })
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The serial number's bytes, as DER holds them (`ssl_c_serial`).
    pub fn serial(&self) -> &[u8] {
        &self.der[self.serial.clone()]
    }

    /// notBefore as HAProxy 2.6 gives it: `YYMMDDhhmmssZ`, for years
    /// 2000 to 2049 only (no sample otherwise, as there).
    pub fn not_before(&self) -> Option<&[u8]> {
        self.not_before.clone().map(|r| &self.der[r])
    }

    pub fn not_after(&self) -> Option<&[u8]> {
        self.not_after.clone().map(|r| &self.der[r])
    }

    pub fn sha1(&self) -> &[u8] {
        &self.sha1
    }

    /// The subject (`issuer` false) or issuer name: whole, in one-line
    /// form, or the `occ`-th value of attribute `entry` (1 the first, -1
    /// the last; the short name or dotted OID, any case).
    pub fn dn(&self, issuer: bool, entry: Option<(&str, i32)>) -> Option<&[u8]> {
        let name = if issuer { &self.issuer } else { &self.subject };
        let Some((entry, occ)) = entry else {
            return Some(&name.oneline);
        };
        let mut values = name
            .entries
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(entry))
            .map(|(_, r)| &self.der[r.clone()]);
        if occ > 0 {
            values.nth(occ as usize - 1)
        } else {
            let all: usize = values.clone().count();
            all.checked_sub(occ.unsigned_abs() as usize)
                .and_then(|i| values.nth(i))
        }
    }
}

const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;

/// A validity time the way HAProxy 2.6 reads it (`ssl_sock_get_time`): a
/// UTCTime whose year is below 50 as written, a GeneralizedTime of the
/// 20xx century without its first two digits; nothing otherwise (a
/// UTCTime of 1950-1999 included).
fn haproxy_time<'a>(element: &super::x509::Element<'a>) -> Option<&'a [u8]> {
    let body = element.body;
    match element.tag {
        UTC_TIME if body.len() >= 10 && body[0] < b'5' => Some(body),
        GENERALIZED_TIME if body.len() >= 12 && body.starts_with(b"20") => Some(&body[2..]),
        _ => None,
    }
}

fn name(der: &[u8], rdns_body: &[u8]) -> Result<Name, Malformed> {
    let mut oneline = Vec::new();
    let mut entries = Vec::new();
    let mut rdns = Reader::new(rdns_body);
    while !rdns.is_empty() {
        let mut set = Reader::new(rdns.expect(SET)?);
        while !set.is_empty() {
            let mut attribute = Reader::new(set.expect(SEQUENCE)?);
            let oid = attribute.expect(OID)?;
            let value = attribute.next()?.body;
            let short: Box<str> = SHORT_NAMES
                .iter()
                .find(|(o, _)| *o == oid)
                .map_or_else(|| dotted(oid).into(), |(_, n)| (*n).into());
            oneline.push(b'/');
            oneline.extend_from_slice(short.as_bytes());
            oneline.push(b'=');
            for &b in value {
                // OpenSSL's one-line form escapes what is not printable.
                if (0x20..0x7f).contains(&b) {
                    oneline.push(b);
                } else {
                    oneline.extend_from_slice(format!("\\x{b:02X}").as_bytes());
                }
            }
            entries.push((short, span(der, value)));
        }
    }
    Ok(Name {
        oneline: oneline.into(),
        entries,
    })
}

/// An OID's dotted form (`1.2.3.4`).
fn dotted(oid: &[u8]) -> String {
    let mut arcs: Vec<u64> = Vec::new();
    let mut value: u64 = 0;
    for &b in oid {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if arcs.is_empty() {
                let first = (value / 40).min(2);
                arcs.push(first);
                arcs.push(value - first * 40);
            } else {
                arcs.push(value);
            }
            value = 0;
        }
    }
    let parts: Vec<String> = arcs.iter().map(u64::to_string).collect();
    parts.join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_fetches_give() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CountryName, "FR");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "client-1");
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x12, 0x34]));
        params.not_before = rcgen::date_time_ymd(2024, 1, 2);
        params.not_after = rcgen::date_time_ymd(2034, 5, 6);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let peer = PeerCert::parse(cert.der()).unwrap();
        assert_eq!(
            peer.dn(false, None),
            Some(&b"/C=FR/O=Example/CN=client-1"[..])
        );
        assert_eq!(peer.dn(true, None), peer.dn(false, None));
        assert_eq!(peer.dn(false, Some(("cn", 1))), Some(&b"client-1"[..]));
        assert_eq!(peer.dn(false, Some(("CN", -1))), Some(&b"client-1"[..]));
        assert_eq!(peer.dn(false, Some(("CN", 2))), None);
        assert_eq!(peer.dn(false, Some(("OU", 1))), None);
        assert_eq!(peer.serial(), &[0x12, 0x34]);
        assert_eq!(peer.not_before(), Some(&b"240102000000Z"[..]));
        assert_eq!(peer.not_after(), Some(&b"340506000000Z"[..]));
        assert_eq!(peer.der(), cert.der().as_ref());
        assert_eq!(peer.sha1(), Sha1::digest(cert.der()).as_slice());
    }

    #[test]
    fn times_and_serials_as_haproxy_gives_them() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x8f]));
        // rcgen writes 1975 as UTCTime and 2055 as GeneralizedTime.
        params.not_before = rcgen::date_time_ymd(1975, 1, 1);
        params.not_after = rcgen::date_time_ymd(2055, 3, 4);
        let key = rcgen::KeyPair::generate().unwrap();
        let peer = PeerCert::parse(params.self_signed(&key).unwrap().der()).unwrap();
        assert_eq!(peer.serial(), &[0x8f]);
        assert_eq!(peer.not_before(), None);
        assert_eq!(peer.not_after(), Some(&b"550304000000Z"[..]));
        params.not_after = rcgen::date_time_ymd(2150, 1, 1);
        let peer = PeerCert::parse(params.self_signed(&key).unwrap().der()).unwrap();
        assert_eq!(peer.not_after(), None);
    }

    #[test]
    fn unknown_attributes_are_named_by_their_oid() {
        assert_eq!(
            dotted(&[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37]),
            "1.3.6.1.4.1.311"
        );
        assert_eq!(dotted(&[0x55, 0x04, 0x03]), "2.5.4.3");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["a.test".into()]).unwrap();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        for end in 0..der.len() {
            assert!(PeerCert::parse(&der[..end]).is_err());
        }
    }
}
