//! What `req.ssl_hello_type`, `req.ssl_sni`, `req.ssl_ver` and
//! `req.ssl_alpn` read: the first TLS record a client sent, not
//! decrypted, not consumed (TLS passthrough routing). Bounded: only the
//! first record is looked at (as HAProxy does), every length is checked
//! against what holds it, and a malformed hello gives no sample.

/// What the bytes seen so far are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hello<'a> {
    /// The start of a TLS handshake record: more bytes are needed.
    Incomplete,
    /// Not a TLS handshake record, or a malformed one.
    NotTls,
    Record(HelloInfo<'a>),
}

/// A complete first handshake record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HelloInfo<'a> {
    /// Handshake message type: 1 ClientHello, 2 ServerHello.
    pub msg_type: u8,
    /// The hello's (legacy) version, e.g. 0x0303; the record's version
    /// for other messages.
    pub version: u16,
    /// The host name of the server_name extension.
    pub sni: Option<&'a [u8]>,
    /// The protocol name list of the ALPN extension, as sent
    /// (length-prefixed names; see [`alpn_names`]).
    pub alpn: Option<&'a [u8]>,
}

const HANDSHAKE: u8 = 0x16;
/// TLS plaintext records are at most 2^14 bytes (RFC 8446 5.1).
const MAX_RECORD: usize = 16384;

pub fn parse(data: &[u8]) -> Hello<'_> {
    match data {
        [] => Hello::Incomplete,
        [t, ..] if *t != HANDSHAKE => Hello::NotTls,
        [_, major, ..] if *major != 3 => Hello::NotTls,
        [_, _, _, hi, lo, rest @ ..] => {
            let len = usize::from(u16::from_be_bytes([*hi, *lo]));
            if len == 0 || len > MAX_RECORD {
                return Hello::NotTls;
            }
            if rest.len() < len {
                return Hello::Incomplete;
            }
            let record_version = u16::from_be_bytes([data[1], data[2]]);
            handshake(&rest[..len], record_version).map_or(Hello::NotTls, Hello::Record)
        }
        _ => Hello::Incomplete,
    }
}

/// A cursor over a byte string where every read is checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }

    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }

    /// A vector with a 1- or 2-byte length prefix.
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u8()?);
        self.take(n)
    }

    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = usize::from(self.u16()?);
        self.take(n)
    }
}

fn handshake(record: &[u8], record_version: u16) -> Option<HelloInfo<'_>> {
    let mut r = Reader(record);
    let msg_type = r.u8()?;
    let len = r.take(3)?;
    let len = usize::from(len[0]) << 16 | usize::from(len[1]) << 8 | usize::from(len[2]);
    let mut info = HelloInfo {
        msg_type,
        version: record_version,
        ..HelloInfo::default()
    };
    if msg_type != 1 {
        return Some(info);
    }
    // The whole ClientHello must be in this record to be read.
    let mut r = Reader(r.take(len)?);
    info.version = r.u16()?;
    r.take(32)?; // random
    r.vec8()?; // session id
    r.vec16()?; // cipher suites
    r.vec8()?; // compression methods
    if r.0.is_empty() {
        return Some(info); // no extensions
    }
    let mut exts = Reader(r.vec16()?);
    while !exts.0.is_empty() {
        let kind = exts.u16()?;
        let body = exts.vec16()?;
        match kind {
            0 => {
                // server_name: a list of (type, name); host_name is type 0.
                let mut list = Reader(Reader(body).vec16()?);
                while !list.0.is_empty() {
                    let name_type = list.u8()?;
                    let name = list.vec16()?;
                    if name_type == 0 && info.sni.is_none() {
                        info.sni = Some(name);
                    }
                }
            }
            16 => info.alpn = Some(Reader(body).vec16()?),
            _ => {}
        }
    }
    Some(info)
}

/// The names of an ALPN list (`HelloInfo::alpn`); stops at a malformed
/// entry.
pub fn alpn_names(list: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut r = Reader(list);
    std::iter::from_fn(move || r.vec8())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A ClientHello record with `sni` and `alpn`, as a client sends it.
    pub(crate) fn client_hello(sni: Option<&str>, alpn: &[&str]) -> Vec<u8> {
        let mut exts = Vec::new();
        if let Some(name) = sni {
            let mut entry = vec![0u8];
            entry.extend_from_slice(&(name.len() as u16).to_be_bytes());
            entry.extend_from_slice(name.as_bytes());
            let mut list = (entry.len() as u16).to_be_bytes().to_vec();
            list.extend_from_slice(&entry);
            exts.extend_from_slice(&0u16.to_be_bytes());
            exts.extend_from_slice(&(list.len() as u16).to_be_bytes());
            exts.extend_from_slice(&list);
        }
        if !alpn.is_empty() {
            let mut names = Vec::new();
            for a in alpn {
                names.push(a.len() as u8);
                names.extend_from_slice(a.as_bytes());
            }
            let mut body = (names.len() as u16).to_be_bytes().to_vec();
            body.extend_from_slice(&names);
            exts.extend_from_slice(&16u16.to_be_bytes());
            exts.extend_from_slice(&(body.len() as u16).to_be_bytes());
            exts.extend_from_slice(&body);
        }
        let mut hello = vec![3, 3];
        hello.extend_from_slice(&[7u8; 32]);
        hello.push(0); // session id
        hello.extend_from_slice(&[0, 2, 0x13, 0x01]); // one suite
        hello.extend_from_slice(&[1, 0]); // null compression
        hello.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        hello.extend_from_slice(&exts);
        let mut hs = vec![1];
        hs.extend_from_slice(&(hello.len() as u32).to_be_bytes()[1..]);
        hs.extend_from_slice(&hello);
        let mut record = vec![0x16, 3, 1];
        record.extend_from_slice(&(hs.len() as u16).to_be_bytes());
        record.extend_from_slice(&hs);
        record
    }

    #[test]
    fn sni_alpn_and_version() {
        let rec = client_hello(Some("a.example"), &["h2", "http/1.1"]);
        let Hello::Record(info) = parse(&rec) else {
            panic!("{:?}", parse(&rec));
        };
        assert_eq!(info.msg_type, 1);
        assert_eq!(info.version, 0x0303);
        assert_eq!(info.sni, Some(&b"a.example"[..]));
        let names: Vec<&[u8]> = alpn_names(info.alpn.unwrap()).collect();
        assert_eq!(names, vec![&b"h2"[..], b"http/1.1"]);
        let rec = client_hello(None, &[]);
        let Hello::Record(bare) = parse(&rec) else {
            panic!()
        };
        assert_eq!((bare.sni, bare.alpn), (None, None));
    }

    #[test]
    fn incomplete_until_the_record_is_there() {
        let rec = client_hello(Some("a.example"), &[]);
        for cut in 0..rec.len() {
            assert_eq!(parse(&rec[..cut]), Hello::Incomplete, "{cut}");
        }
    }

    #[test]
    fn hostile_records_give_nothing() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Hello::NotTls);
        assert_eq!(parse(&[0x16, 2, 0]), Hello::NotTls);
        assert_eq!(parse(&[0x16, 3, 1, 0xff, 0xff]), Hello::NotTls);
        // Every length inside the hello one byte too long.
        let rec = client_hello(Some("a.example"), &["h2"]);
        for i in 5..rec.len() {
            let mut bad = rec.clone();
            bad[i] = bad[i].wrapping_add(1);
            // Whatever it parses as, it must not panic nor read outside.
            let _ = parse(&bad);
        }
        // A ClientHello longer than its record.
        let mut bad = rec.clone();
        bad[7] = bad[7].wrapping_add(1);
        assert_eq!(parse(&bad), Hello::NotTls);
    }
}
