//! The few facts percore reads from a certificate itself: the DNS names it
//! is for (SAN, else the subject CN, as HAProxy does for SNI selection) and
//! when it expires. A small DER walker: rustls verifies certificates but
//! does not expose these, and a full X.509 crate would be most of the
//! dependency weight of TLS support for three fields.

/// What a certificate says about itself, for SNI selection and start-up
/// warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertFacts {
    /// subjectAltName dNSName entries, lower-cased; the subject CN when the
    /// certificate has no dNSName.
    pub names: Vec<String>,
    /// notAfter, in seconds since the Unix epoch.
    pub not_after: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed certificate: {0}")]
pub struct Malformed(pub(super) &'static str);

pub(super) const SEQUENCE: u8 = 0x30;
pub(super) const SET: u8 = 0x31;
pub(super) const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const BOOLEAN: u8 = 0x01;
const UTC_TIME: u8 = 0x17;
const GENERALIZED_TIME: u8 = 0x18;
pub(super) const VERSION_TAG: u8 = 0xa0;
const EXTENSIONS_TAG: u8 = 0xa3;
const DNS_NAME_TAG: u8 = 0x82;
/// 2.5.29.17
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];
/// 2.5.4.3
const COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];

/// One DER element: its tag and contents.
pub(super) struct Element<'a> {
    pub(super) tag: u8,
    pub(super) body: &'a [u8],
}

pub(super) struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(rest: &'a [u8]) -> Self {
        Reader { rest }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(super) fn next(&mut self) -> Result<Element<'a>, Malformed> {
        let (&tag, after_tag) = self.rest.split_first().ok_or(Malformed("truncated"))?;
        let (&first, mut after_len) = after_tag.split_first().ok_or(Malformed("truncated"))?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || after_len.len() < count {
                return Err(Malformed("bad length"));
            }
            let mut len = 0usize;
            for &b in &after_len[..count] {
                len = (len << 8) | usize::from(b);
            }
            after_len = &after_len[count..];
            len
        };
        if after_len.len() < len {
            return Err(Malformed("truncated"));
        }
        let (body, rest) = after_len.split_at(len);
        self.rest = rest;
        Ok(Element { tag, body })
    }

    pub(super) fn expect(&mut self, tag: u8) -> Result<&'a [u8], Malformed> {
        let element = self.next()?;
        if element.tag != tag {
            return Err(Malformed("unexpected element"));
        }
        Ok(element.body)
    }
}

/// Reads names and expiry from a DER certificate.
pub fn cert_facts(der: &[u8]) -> Result<CertFacts, Malformed> {
    let certificate = Reader::new(der).expect(SEQUENCE)?;
    let mut tbs = Reader::new(Reader::new(certificate).expect(SEQUENCE)?);
    let mut element = tbs.next()?;
    if element.tag == VERSION_TAG {
        element = tbs.next()?; // serial
    }
    let _serial = element;
    tbs.expect(SEQUENCE)?; // signature algorithm
    tbs.expect(SEQUENCE)?; // issuer
    let mut validity = Reader::new(tbs.expect(SEQUENCE)?);
    let _not_before = validity.next()?;
    let not_after = parse_time(&validity.next()?)?;
    let subject = tbs.expect(SEQUENCE)?;
    tbs.expect(SEQUENCE)?; // subjectPublicKeyInfo
    let mut names = Vec::new();
    while !tbs.is_empty() {
        let element = tbs.next()?;
        if element.tag == EXTENSIONS_TAG {
            san_dns_names(element.body, &mut names)?;
        }
    }
    if names.is_empty() {
        if let Some(cn) = common_name(subject)? {
            names.push(cn);
        }
    }
    Ok(CertFacts { names, not_after })
}

fn san_dns_names(extensions: &[u8], names: &mut Vec<String>) -> Result<(), Malformed> {
    let mut list = Reader::new(Reader::new(extensions).expect(SEQUENCE)?);
    while !list.is_empty() {
        let mut extension = Reader::new(list.expect(SEQUENCE)?);
        let oid = extension.expect(OID)?;
        let mut value = extension.next()?;
        if value.tag == BOOLEAN {
            value = extension.next()?;
        }
        if oid != SUBJECT_ALT_NAME || value.tag != OCTET_STRING {
            continue;
        }
        let mut general_names = Reader::new(Reader::new(value.body).expect(SEQUENCE)?);
        while !general_names.is_empty() {
            let name = general_names.next()?;
            if name.tag == DNS_NAME_TAG {
                if let Ok(text) = std::str::from_utf8(name.body) {
                    names.push(text.to_ascii_lowercase());
                }
            }
        }
    }
    Ok(())
}

fn common_name(subject: &[u8]) -> Result<Option<String>, Malformed> {
    let mut rdns = Reader::new(subject);
    while !rdns.is_empty() {
        let mut set = Reader::new(rdns.expect(SET)?);
        while !set.is_empty() {
            let mut attribute = Reader::new(set.expect(SEQUENCE)?);
            let oid = attribute.expect(OID)?;
            let value = attribute.next()?;
            if oid == COMMON_NAME {
                return Ok(std::str::from_utf8(value.body)
                    .ok()
                    .map(str::to_ascii_lowercase));
            }
        }
    }
    Ok(None)
}

fn parse_time(element: &Element<'_>) -> Result<i64, Malformed> {
    let text = std::str::from_utf8(element.body).map_err(|_| Malformed("bad time"))?;
    let text = text.strip_suffix('Z').ok_or(Malformed("time not in UTC"))?;
    let (year, rest) = match element.tag {
        UTC_TIME if text.len() == 12 => {
            let yy = digits(&text[..2])?;
            // RFC 5280: two-digit years 50..99 are 19xx.
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, &text[2..])
        }
        GENERALIZED_TIME if text.len() == 14 => (digits(&text[..4])?, &text[4..]),
        _ => return Err(Malformed("bad time")),
    };
    let month = digits(&rest[0..2])?;
    let day = digits(&rest[2..4])?;
    let hour = digits(&rest[4..6])?;
    let minute = digits(&rest[6..8])?;
    let second = digits(&rest[8..10])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return Err(Malformed("bad time"));
    }
    Ok(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

fn digits(text: &str) -> Result<i64, Malformed> {
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Malformed("bad time"));
    }
    text.parse().map_err(|_| Malformed("bad time"))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Whether `pattern` (a certificate name, possibly `*.example.com`) covers
/// `host` (lower-case). A wildcard stands for exactly one leftmost label.
pub fn name_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    #[test]
    fn wildcards_cover_one_label() {
        assert!(name_matches("*.example.com", "www.example.com"));
        assert!(!name_matches("*.example.com", "example.com"));
        assert!(!name_matches("*.example.com", "a.b.example.com"));
        assert!(name_matches("example.com", "example.com"));
        assert!(!name_matches("example.com", "www.example.com"));
    }

    #[test]
    fn reads_names_and_expiry_of_generated_certificates() {
        let mut params =
            rcgen::CertificateParams::new(vec!["Www.Example.com".into(), "*.example.org".into()])
                .unwrap();
        params.not_after = rcgen::date_time_ymd(2031, 7, 15);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let facts = cert_facts(cert.der()).unwrap();
        assert_eq!(facts.names, vec!["www.example.com", "*.example.org"]);
        assert_eq!(facts.not_after, days_from_civil(2031, 7, 15) * 86_400);
    }

    #[test]
    fn falls_back_to_the_common_name() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "legacy.example.net");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            cert_facts(cert.der()).unwrap().names,
            vec!["legacy.example.net"]
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["a.test".into()]).unwrap();
        let der = params.self_signed(&key).unwrap().der().to_vec();
        for end in 0..der.len() {
            assert!(cert_facts(&der[..end]).is_err());
        }
        assert!(cert_facts(b"not a certificate").is_err());
    }
}
