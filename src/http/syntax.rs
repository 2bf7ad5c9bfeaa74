//! Byte classes and small list helpers shared by the head parsers, the
//! chunked scanner and the rewriter. Kept apart so that every place that
//! judges a byte uses the same RFC 9110/9112 definition.

/// `tchar` from RFC 9110 §5.6.2 (header names, methods, transfer codings).
const fn token_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        i += 1;
    }
    t
}

/// Bytes allowed inside a field value: HTAB, SP, VCHAR and obs-text. This
/// excludes NUL, CR, LF and every other control byte.
const fn value_table() -> [bool; 256] {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        t[i] = b == b'\t' || (b >= 0x20 && b != 0x7f);
        i += 1;
    }
    t
}

static TOKEN: [bool; 256] = token_table();
static VALUE: [bool; 256] = value_table();

#[inline]
pub(crate) fn is_token_byte(b: u8) -> bool {
    TOKEN[b as usize]
}

#[inline]
pub(crate) fn is_value_byte(b: u8) -> bool {
    VALUE[b as usize]
}

#[inline]
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_token_byte(b))
}

/// Field values are most of a head's bytes, so they are checked eight at a
/// time: a word with no byte below 0x20 and no 0x7f is valid as a whole;
/// only words holding such a byte (usually a HTAB) are looked at bytewise.
#[inline]
pub(crate) fn is_valid_value(s: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const SPACES: u64 = u64::from_ne_bytes([0x20; 8]);
    const DELS: u64 = u64::from_ne_bytes([0x7f; 8]);
    let mut words = s.chunks_exact(8);
    for w in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(w);
        let x = u64::from_ne_bytes(bytes);
        // Some byte < 0x20 (bytes >= 0x80 are masked out by !x).
        let below_space = x.wrapping_sub(SPACES) & !x & HIGHS;
        // Some byte == 0x7f.
        let d = x ^ DELS;
        let del = d.wrapping_sub(ONES) & !d & HIGHS;
        if (below_space | del) != 0 && !w.iter().all(|&b| is_value_byte(b)) {
            return false;
        }
    }
    words.remainder().iter().all(|&b| is_value_byte(b))
}

/// Request-target bytes: visible ASCII only. httparse also lets UTF-8
/// through; HAProxy refuses bytes >= 0x80 unless
/// `option accept-invalid-http-request`, and so do we.
#[inline]
pub(crate) fn is_valid_target(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| (0x21..=0x7e).contains(&b))
}

#[inline]
pub(crate) fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Elements of a comma-separated field value (RFC 9110 §5.6.1), trimmed,
/// empty elements skipped as the RFC asks recipients to do.
pub(crate) fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_class_matches_rfc() {
        for b in b"abcXYZ019!#$%&'*+-.^_`|~" {
            assert!(is_token_byte(*b), "{}", *b as char);
        }
        for b in b" \t\"(),/:;<=>?@[\\]{}\x00\x7f\x80" {
            assert!(!is_token_byte(*b), "{b:#x}");
        }
    }

    #[test]
    fn value_class_refuses_controls() {
        assert!(is_valid_value(b"text/html; q=0.9\t\x80\xff"));
        assert!(!is_valid_value(b"a\0b"));
        assert!(!is_valid_value(b"a\rb"));
        assert!(!is_valid_value(b"a\nb"));
        assert!(!is_valid_value(b"a\x7fb"));
    }

    #[test]
    fn value_check_agrees_with_bytewise_rule_everywhere() {
        // Every byte value at every position of words and remainders.
        for len in 1..=17 {
            for pos in 0..len {
                for b in 0..=255u8 {
                    let mut v = vec![b'a'; len];
                    v[pos] = b;
                    assert_eq!(
                        is_valid_value(&v),
                        is_value_byte(b),
                        "byte {b:#x} at {pos} of {len}"
                    );
                }
            }
        }
    }

    #[test]
    fn list_helpers() {
        let v: Vec<&[u8]> = list_elements(b" gzip ,, chunked ,").collect();
        assert_eq!(v, vec![&b"gzip"[..], &b"chunked"[..]]);
    }
}
