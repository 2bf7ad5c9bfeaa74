//! Table keys: what a sample becomes in a table of a given type, how a
//! key is written (`show table`, `clear table ... key`), and which core
//! owns it.

use std::fmt;
use std::hash::Hasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::def::{Fnv, KeyType};
use crate::rules::Sample;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    Ip(IpAddr),
    Int(i64),
    Str(Box<[u8]>),
}

impl Key {
    /// `sample` as a key of a `key_type` table (HAProxy's sample casts);
    /// `None` when it has no such form (an IPv6 address in a `type ip`
    /// table, a non-numeric string in an `integer` one).
    pub fn from_sample(sample: Sample<'_>, key_type: KeyType) -> Option<Key> {
        match key_type {
            KeyType::Ip => match sample {
                Sample::Ip(IpAddr::V4(a)) => Some(Key::Ip(IpAddr::V4(a))),
                Sample::Ip(IpAddr::V6(a)) => a.to_ipv4_mapped().map(|a| Key::Ip(IpAddr::V4(a))),
                Sample::Str(s) => parse_ip(s).and_then(|a| match a {
                    IpAddr::V4(_) => Some(Key::Ip(a)),
                    IpAddr::V6(_) => None,
                }),
                Sample::Int(_) | Sample::Bool(_) => None,
            },
            KeyType::Ipv6 => match sample {
                Sample::Ip(IpAddr::V4(a)) => Some(Key::Ip(IpAddr::V6(a.to_ipv6_mapped()))),
                Sample::Ip(a) => Some(Key::Ip(a)),
                Sample::Str(s) => parse_ip(s).map(|a| match a {
                    IpAddr::V4(a) => Key::Ip(IpAddr::V6(a.to_ipv6_mapped())),
                    a => Key::Ip(a),
                }),
                Sample::Int(_) | Sample::Bool(_) => None,
            },
            KeyType::Integer => match sample {
                Sample::Int(n) => Some(Key::Int(n)),
                Sample::Bool(b) => Some(Key::Int(i64::from(b))),
                Sample::Str(s) => std::str::from_utf8(s)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                    .map(Key::Int),
                Sample::Ip(IpAddr::V4(a)) => Some(Key::Int(i64::from(u32::from(a)))),
                Sample::Ip(IpAddr::V6(_)) => None,
            },
            KeyType::String { len } => {
                let text: Vec<u8> = match sample {
                    Sample::Str(s) => s.to_vec(),
                    Sample::Int(n) => n.to_string().into_bytes(),
                    Sample::Ip(a) => a.to_string().into_bytes(),
                    Sample::Bool(b) => u8::from(b).to_string().into_bytes(),
                };
                let cut = text.len().min(len);
                Some(Key::Str(text[..cut].into()))
            }
        }
    }

    /// A key as written on the runtime API.
    pub fn parse(text: &str, key_type: KeyType) -> Option<Key> {
        Key::from_sample(Sample::Str(text.as_bytes()), key_type)
    }

    /// The core that holds this key's entry when `cores` cores run: the
    /// same on every core, whichever accepted the connection.
    pub fn owner(&self, cores: usize) -> usize {
        let mut h = Fnv::default();
        match self {
            Key::Ip(IpAddr::V4(a)) => h.write(&a.octets()),
            Key::Ip(IpAddr::V6(a)) => h.write(&a.octets()),
            Key::Int(n) => h.write(&n.to_le_bytes()),
            Key::Str(s) => h.write(s),
        }
        // Fold the high bits in: FNV's low bits alone mix poorly.
        let v = h.finish();
        ((v ^ (v >> 32)) % cores.max(1) as u64) as usize
    }
}

fn parse_ip(s: &[u8]) -> Option<IpAddr> {
    let s = std::str::from_utf8(s).ok()?;
    s.parse::<Ipv4Addr>()
        .map(IpAddr::V4)
        .or_else(|_| s.parse::<Ipv6Addr>().map(IpAddr::V6))
        .ok()
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Ip(a) => write!(f, "{a}"),
            Key::Int(n) => write!(f, "{n}"),
            Key::Str(s) => write!(f, "{}", String::from_utf8_lossy(s)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_become_keys_of_the_table_type() {
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(
            Key::from_sample(Sample::Ip(mapped), KeyType::Ip),
            Some(Key::Ip(v4))
        );
        assert_eq!(
            Key::from_sample(Sample::Ip("::1".parse().unwrap()), KeyType::Ip),
            None
        );
        assert_eq!(
            Key::from_sample(Sample::Ip(v4), KeyType::Ipv6),
            Some(Key::Ip(mapped))
        );
        assert_eq!(
            Key::from_sample(Sample::Str(b"abcdef"), KeyType::String { len: 3 }),
            Some(Key::Str((*b"abc").into()))
        );
        assert_eq!(Key::parse("42", KeyType::Integer), Some(Key::Int(42)));
        assert_eq!(Key::parse("x", KeyType::Integer), None);
        assert_eq!(
            Key::parse("10.0.0.1", KeyType::Ip).unwrap().to_string(),
            "10.0.0.1"
        );
    }

    #[test]
    fn owners_spread_over_cores() {
        let owners: std::collections::HashSet<usize> = (0..64)
            .map(|i| Key::Str(format!("key-{i}").into_bytes().into()).owner(2))
            .collect();
        assert_eq!(owners.len(), 2);
        assert_eq!(Key::Int(7).owner(1), 0);
    }
}
