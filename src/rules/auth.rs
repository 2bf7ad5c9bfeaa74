//! `userlist` sections and HTTP basic authentication (`http_auth(list)`,
//! `http-request auth`).
//!
//! Passwords are crypt(3) hashes as HAProxy's `password` takes them
//! (SHA-512 `$6$`, SHA-256 `$5$`, bcrypt `$2a$`/`$2b$`/`$2y$`) or plain text
//! (`insecure-password`). A hash costs milliseconds (bcrypt: tens of them)
//! and would stall every connection of the core, so each core remembers
//! the last credentials it verified for each list (successes only; a
//! failure costs the full hash every time, which also slows guessing).

use std::cell::RefCell;

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

thread_local! {
    static VERIFIED: RefCell<Vec<(usize, Box<[u8]>)>> = const { RefCell::new(Vec::new()) };
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
        let ok = basic_credentials(value).is_some_and(|(user, pass)| self.verify(&user, &pass));
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
