//! `userlist` sections and HTTP basic authentication (`http_auth(list)`,
//! `http-request auth`).
//!
//! Passwords are crypt(3) hashes as HAProxy's `password` takes them
//! (SHA-512 `$6$`, SHA-256 `$5$`, bcrypt `$2a$`/`$2b$`/`$2y$`) or plain text
//! (`insecure-password`). A hash costs milliseconds (bcrypt: tens of them)
//! and stalls every connection of the core meanwhile (HAProxy's `crypt()`
//! is synchronous too), so each core remembers the last credentials it
//! accepted and, separately, the last ones it refused: a client retrying
//! the same wrong password costs one hash, not one per retry. Refused
//! credentials are kept as keyed hashes, never as text. Distinct wrong
//! passwords still cost one hash each.

use std::cell::{Cell, RefCell};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    /// A crypt(3) string, checked by its scheme prefix.
    Crypt(String),
    /// `insecure-password`: compared as is.
    Plain(String),
}

/// The schemes a `password` may use.
pub const CRYPT_SCHEMES: &[&str] = &["$6$", "$5$", "$2y$", "$2b$", "$2a$"];

impl Password {
    pub fn verify(&self, candidate: &[u8]) -> bool {
        match self {
            Password::Plain(p) => constant_time_eq(p.as_bytes(), candidate),
            Password::Crypt(hash) => {
                let Ok(candidate) = std::str::from_utf8(candidate) else {
                    return false;
                };
                HASHES.with(|n| n.set(n.get() + 1));
                if hash.starts_with("$6$") {
                    sha_crypt::sha512_check(candidate, hash).is_ok()
                } else if hash.starts_with("$5$") {
                    sha_crypt::sha256_check(candidate, hash).is_ok()
                } else if hash.starts_with("$2") {
                    bcrypt::verify(candidate, hash).unwrap_or(false)
                } else {
                    false
                }
            }
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub password: Password,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Userlist {
    pub name: String,
    /// Position among the configured lists (keys the per-core cache).
    pub id: usize,
    pub users: Vec<User>,
}

/// Verified `Authorization` values per core: (list id, header value).
const CACHE_SIZE: usize = 64;
/// Refused `Authorization` values remembered per core.
const REFUSED_SIZE: usize = 64;

thread_local! {
    static VERIFIED: RefCell<Vec<(usize, Box<[u8]>)>> = const { RefCell::new(Vec::new()) };
    static REFUSED: RefCell<Refused> = RefCell::new(Refused::new());
    /// crypt(3) hashes computed on this core (see the tests).
    static HASHES: Cell<u64> = const { Cell::new(0) };
}

/// A ring of keyed 64-bit hashes of (list id, `Authorization` value) that
/// failed. The key is random per core, so nobody can craft a value that
/// collides with another (a collision would only refuse a valid login
/// without hashing, never accept an invalid one).
struct Refused {
    keys: Vec<u64>,
    next: usize,
    hasher: RandomState,
}

impl Refused {
    fn new() -> Self {
        Refused {
            keys: Vec::new(),
            next: 0,
            hasher: RandomState::new(),
        }
    }

    fn key(&self, list: usize, value: &[u8]) -> u64 {
        let mut h = self.hasher.build_hasher();
        list.hash(&mut h);
        value.hash(&mut h);
        h.finish()
    }

    fn contains(&self, key: u64) -> bool {
        self.keys.contains(&key)
    }

    fn insert(&mut self, key: u64) {
        if self.keys.len() < REFUSED_SIZE {
            self.keys.push(key);
        } else {
            self.keys[self.next] = key;
            self.next = (self.next + 1) % REFUSED_SIZE;
        }
    }
}

impl Userlist {
    /// Whether an `Authorization` field value holds valid basic credentials.
    pub fn check_authorization(&self, value: &[u8]) -> bool {
        let cached = VERIFIED.with(|v| {
            v.borrow()
                .iter()
                .any(|(id, seen)| *id == self.id && **seen == *value)
        });
        if cached {
            return true;
        }
        let (key, refused) = REFUSED.with(|r| {
            let r = r.borrow();
            let key = r.key(self.id, value);
            (key, r.contains(key))
        });
        if refused {
            return false;
        }
        let ok = basic_credentials(value).is_some_and(|(user, pass)| self.verify(&user, &pass));
        if !ok {
            REFUSED.with(|r| r.borrow_mut().insert(key));
        }
        if ok {
            VERIFIED.with(|v| {
                let mut v = v.borrow_mut();
                if v.len() >= CACHE_SIZE {
                    v.remove(0);
                }
                v.push((self.id, value.into()));
            });
        }
        ok
    }

    pub fn verify(&self, user: &[u8], password: &[u8]) -> bool {
        self.users
            .iter()
            .find(|u| u.name.as_bytes() == user)
            .is_some_and(|u| u.password.verify(password))
    }
}

/// `Basic <base64(user:password)>` → (user, password).
pub fn basic_credentials(value: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let value = super::sample::trim(value);
    let space = value.iter().position(|&b| b == b' ')?;
    if !value[..space].eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = crate::http::base64::base64_decode(super::sample::trim(&value[space..]))?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    Some((decoded[..colon].to_vec(), decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_decode() {
        // "alice:s3cret"
        let (u, p) = basic_credentials(b"Basic YWxpY2U6czNjcmV0").unwrap();
        assert_eq!(
            (u.as_slice(), p.as_slice()),
            (&b"alice"[..], &b"s3cret"[..])
        );
        let (u, p) = basic_credentials(b"basic YTpi").unwrap();
        assert_eq!((u.as_slice(), p.as_slice()), (&b"a"[..], &b"b"[..]));
        assert!(basic_credentials(b"Bearer abc").is_none());
        assert!(basic_credentials(b"Basic !!!").is_none());
    }

    fn authorization(user: &str, password: &str) -> Vec<u8> {
        let raw = format!("{user}:{password}");
        let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = b"Basic ".to_vec();
        for chunk in raw.as_bytes().chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(table[((n >> (18 - 6 * i)) & 63) as usize]);
                } else {
                    out.push(b'=');
                }
            }
        }
        out
    }

    /// A retried wrong password costs no second hash; a different wrong
    /// password does; the right one is not refused because a wrong one
    /// was; the ring is bounded.
    #[test]
    fn refused_credentials_are_remembered() {
        let bc = bcrypt::hash("right", 4).unwrap();
        let list = Userlist {
            name: "l".into(),
            id: 7,
            users: vec![User {
                name: "alice".into(),
                password: Password::Crypt(bc),
            }],
        };
        let hashes = || HASHES.with(Cell::get);
        let start = hashes();
        let wrong = authorization("alice", "wrong");
        assert!(!list.check_authorization(&wrong));
        assert_eq!(hashes(), start + 1);
        for _ in 0..5 {
            assert!(!list.check_authorization(&wrong));
        }
        assert_eq!(hashes(), start + 1, "a retry is answered from the cache");
        assert!(!list.check_authorization(&authorization("alice", "other")));
        assert_eq!(hashes(), start + 2, "another wrong password is hashed");
        assert!(list.check_authorization(&authorization("alice", "right")));
        assert_eq!(hashes(), start + 3);
        // Bounded: after REFUSED_SIZE other failures the first is gone.
        for i in 0..REFUSED_SIZE {
            let other = authorization("nobody", &i.to_string());
            assert!(!list.check_authorization(&other));
        }
        REFUSED.with(|r| assert_eq!(r.borrow().keys.len(), REFUSED_SIZE));
        let before = hashes();
        assert!(!list.check_authorization(&wrong));
        assert_eq!(hashes(), before + 1, "evicted, so hashed again");
    }

    #[test]
    fn crypt_schemes_verify() {
        let sha =
            sha_crypt::sha512_simple("pw", &sha_crypt::Sha512Params::new(1000).unwrap()).unwrap();
        assert!(Password::Crypt(sha.clone()).verify(b"pw"));
        assert!(!Password::Crypt(sha).verify(b"wrong"));
        let bc = bcrypt::hash("pw", 4).unwrap().replacen("$2b$", "$2y$", 1);
        assert!(Password::Crypt(bc.clone()).verify(b"pw"));
        assert!(!Password::Crypt(bc).verify(b"nope"));
        assert!(Password::Plain("x".into()).verify(b"x"));
        assert!(!Password::Plain("x".into()).verify(b"y"));
    }
}
