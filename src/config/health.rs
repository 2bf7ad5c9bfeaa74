//! The health-check part of the typed configuration: how a backend's
//! servers are checked (`tcp-check` / `http-check` rules, parsed and with
//! their regular expressions compiled at load) and each server's check
//! settings after `default-server` was applied.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

/// HAProxy's defaults for `inter`, `rise`, `fall` and `error-limit`.
pub const DEFAULT_INTER: Duration = Duration::from_secs(2);
pub const DEFAULT_RISE: u32 = 2;
pub const DEFAULT_FALL: u32 = 3;
pub const DEFAULT_ERROR_LIMIT: u32 = 10;

/// Active check settings of one server (HAProxy `check` and its keywords).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCheck {
    /// Pause between checks while the server is fully up or fully down
    /// (see `downinter`).
    pub inter: Duration,
    /// Pause while the server is changing state (`fastinter`, else `inter`).
    pub fastinter: Duration,
    /// Pause while the server is fully down (`downinter`, else `inter`).
    pub downinter: Duration,
    /// Consecutive successes that bring a down server up.
    pub rise: u32,
    /// Consecutive failures that bring an up server down.
    pub fall: u32,
    /// Where checks connect: the server's address with `check-addr` and
    /// `port` applied.
    pub addr: SocketAddr,
    /// Passive checks on live traffic (`observe`); `None` when off.
    pub observe: Option<Observe>,
    /// The PROXY header each check connection starts with (`PROXY
    /// UNKNOWN` / `LOCAL`: a check has no client), see
    /// `check-send-proxy`; `None`: none.
    pub send_proxy: Option<super::model::SendProxy>,
}

/// `observe`, `error-limit`, `on-error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observe {
    pub layer: ObserveLayer,
    /// Consecutive errors (per core, see docs/configuration.md) that trigger
    /// `on_error`.
    pub error_limit: u32,
    pub on_error: OnError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObserveLayer {
    /// Connection failures to the server.
    Layer4,
    /// Connection failures and HTTP 5xx answers (except 501 and 505).
    Layer7,
}

/// What `error-limit` consecutive errors do (HAProxy `on-error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Check again at `fastinter` at once; the state does not change.
    FastInter,
    /// Count as one failed check, then check at `fastinter`.
    FailCheck,
    /// Leave one check before down, count a failed check, `fastinter`.
    SuddenDeath,
    /// Mark the server down at once, then check at `fastinter`.
    MarkDown,
}

/// How a backend's servers are checked.
#[derive(Debug, Clone, Default)]
pub enum CheckKind {
    /// A TCP connection that opens passes (HAProxy's default check).
    #[default]
    Connect,
    /// `option tcp-check` with its `tcp-check` rules, in order. The first
    /// rule is always a connect (HAProxy adds an implicit one).
    TcpScript(Vec<TcpCheckRule>),
    /// `option httpchk` with `http-check` rules.
    Http(HttpCheck),
}

/// One `tcp-check` rule with its 1-based position in the configured list
/// (0 for the implicit first connect), used in check failure messages.
#[derive(Debug, Clone)]
pub struct TcpCheckRule {
    pub step: usize,
    pub action: TcpCheckAction,
}

#[derive(Debug, Clone)]
pub enum TcpCheckAction {
    /// Opens a new connection (closing the previous one): to `port` and
    /// `addr` when given, else to the server's check address.
    Connect {
        port: Option<u16>,
        addr: Option<IpAddr>,
    },
    /// `send` (text with escapes) or `send-binary` (hex), as bytes.
    Send(Vec<u8>),
    Expect(Expect),
}

/// `tcp-check expect <match> <pattern>`.
#[derive(Debug, Clone)]
pub struct Expect {
    pub pattern: Pattern,
    /// The pattern as written, for messages.
    pub text: String,
}

#[derive(Debug, Clone)]
pub enum Pattern {
    /// `string`: these bytes appear in what was received.
    String(Vec<u8>),
    /// `binary`: these bytes (written in hex) appear in what was received.
    Binary(Vec<u8>),
    /// `rstring`: the regex matches what was received.
    RString(regex::bytes::Regex),
    /// `rbinary`: the regex matches what was received written as upper-case
    /// hex, as HAProxy does (`^0500` matches bytes 05 00 at the start).
    RBinary(regex::bytes::Regex),
}

impl Pattern {
    /// Whether `received` satisfies the pattern.
    pub fn matches(&self, received: &[u8]) -> bool {
        match self {
            Pattern::String(needle) | Pattern::Binary(needle) => contains(received, needle),
            Pattern::RString(re) => re.is_match(received),
            Pattern::RBinary(re) => re.is_match(hex_upper(received).as_bytes()),
        }
    }

    pub fn keyword(&self) -> &'static str {
        match self {
            Pattern::String(_) => "string",
            Pattern::Binary(_) => "binary",
            Pattern::RString(_) => "rstring",
            Pattern::RBinary(_) => "rbinary",
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

/// Upper-case hex dump, the form HAProxy matches `rbinary` against.
pub fn hex_upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// `option httpchk` with `http-check send` and `http-check expect`.
#[derive(Debug, Clone)]
pub struct HttpCheck {
    pub method: String,
    pub uri: String,
    /// `HTTP/1.0` or `HTTP/1.1`.
    pub version: String,
    /// Sent in this order, after the request line.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// All must pass, in order. Empty means HAProxy's default: any 2xx or
    /// 3xx status.
    pub expects: Vec<HttpExpect>,
}

impl Default for HttpCheck {
    /// HAProxy's `option httpchk` alone: `OPTIONS / HTTP/1.0`.
    fn default() -> Self {
        HttpCheck {
            method: "OPTIONS".into(),
            uri: "/".into(),
            version: "HTTP/1.0".into(),
            headers: Vec::new(),
            body: Vec::new(),
            expects: Vec::new(),
        }
    }
}

impl HttpCheck {
    /// Whether any expectation looks at the body (then it is read).
    pub fn needs_body(&self) -> bool {
        self.expects
            .iter()
            .any(|e| matches!(e.test, HttpTest::String(_) | HttpTest::RString(_)))
    }
}

/// One `http-check expect` rule.
#[derive(Debug, Clone)]
pub struct HttpExpect {
    pub test: HttpTest,
    /// The rule as written after `expect`, for messages.
    pub text: String,
}

#[derive(Debug, Clone)]
pub enum HttpTest {
    /// `status 200`, `status 200,204`, `status 200-399` (or combinations).
    Status(StatusSet),
    /// `rstatus <regex>` on the three status digits.
    RStatus(regex::bytes::Regex),
    /// `string <text>` in the body.
    String(Vec<u8>),
    /// `rstring <regex>` on the body.
    RString(regex::bytes::Regex),
}

/// Status codes and ranges, e.g. `200,204,300-399`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSet(pub Vec<RangeInclusive<u16>>);

impl StatusSet {
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|r| r.contains(&status))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_anywhere_in_the_received_bytes() {
        let s = Pattern::String(b"+PONG".to_vec());
        assert!(s.matches(b"junk+PONG\r\n"));
        assert!(!s.matches(b"+PON"));
        let b = Pattern::Binary(vec![0x05, 0x00]);
        assert!(b.matches(&[0x01, 0x05, 0x00]));
        assert!(!b.matches(&[0x05, 0xff]));
        let r = Pattern::RString(regex::bytes::Regex::new(r"^\+OK").unwrap());
        assert!(r.matches(b"+OK ready"));
        assert!(!r.matches(b"-ERR +OK"));
        let rb = Pattern::RBinary(regex::bytes::Regex::new("^05(00|02)").unwrap());
        assert!(rb.matches(&[0x05, 0x02, 0xAA]));
        assert!(!rb.matches(&[0x05, 0xff]));
    }

    #[test]
    fn hex_dump_is_upper_case() {
        assert_eq!(hex_upper(&[0x00, 0xab, 0x5f]), "00AB5F");
    }

    #[test]
    fn status_sets() {
        let set = StatusSet(vec![200..=200, 300..=399]);
        assert!(set.contains(200) && set.contains(301) && !set.contains(204));
    }
}
