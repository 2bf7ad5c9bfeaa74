//! Parsers for the scalar value syntaxes: durations, addresses, names and
//! the HAProxy keywords for mode and balance. Pure functions, no document
//! access, so they are tested directly.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

#[cfg(test)]
use super::model::Balance;
use super::model::Mode;

/// A parse failure: what is wrong, and how to write it instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Invalid {
    pub message: String,
    pub hint: Option<String>,
}

impl Invalid {
    fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Invalid {
            message: message.into(),
            hint: Some(hint.into()),
        }
    }
}

pub(crate) const DURATION_HINT: &str = "write a whole number followed by a unit: \
     us, ms, s, m, h, d (e.g. \"500ms\", \"30s\", \"1h\"); a bare number means milliseconds";

const UNITS: [(&str, u64); 6] = [
    ("us", 1),
    ("ms", 1_000),
    ("s", 1_000_000),
    ("m", 60_000_000),
    ("h", 3_600_000_000),
    ("d", 86_400_000_000),
];

/// HAProxy time syntax: `<digits><unit>`, no unit meaning milliseconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, Invalid> {
    let bad = || Invalid::new(format!("invalid duration \"{text}\""), DURATION_HINT);
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_end);
    if digits.is_empty() {
        return Err(bad());
    }
    let number: u64 = digits.parse().map_err(|_| bad())?;
    let micros_per_unit = if unit.is_empty() {
        1_000
    } else {
        UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, micros)| *micros)
            .ok_or_else(bad)?
    };
    number
        .checked_mul(micros_per_unit)
        .map(Duration::from_micros)
        .ok_or_else(|| Invalid::new(format!("duration \"{text}\" is too large"), DURATION_HINT))
}

/// Bare-integer durations are milliseconds, as in HAProxy.
pub(crate) fn duration_from_millis(ms: i64) -> Result<Duration, Invalid> {
    u64::try_from(ms)
        .map(Duration::from_millis)
        .map_err(|_| Invalid::new(format!("invalid duration {ms}: negative"), DURATION_HINT))
}

const BIND_HINT: &str = "write IPv4:port (\"127.0.0.1:8000\"), [IPv6]:port (\"[::1]:8000\") \
     or :port for all IPv4 addresses; host names are not accepted here";

/// A listening address. `:80` and `*:80` mean every IPv4 address, as in
/// HAProxy; `[::]:80` is the IPv6 wildcard.
pub(crate) fn parse_bind(text: &str) -> Result<SocketAddr, Invalid> {
    let expanded = if let Some(port) = text.strip_prefix("*:") {
        format!("0.0.0.0:{port}")
    } else if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_string()
    };
    let addr: SocketAddr = expanded
        .parse()
        .map_err(|_| Invalid::new(format!("invalid bind address \"{text}\""), BIND_HINT))?;
    if addr.port() == 0 {
        return Err(Invalid::new(
            format!("bind address \"{text}\" has port 0"),
            "give the port to listen on explicitly",
        ));
    }
    Ok(addr)
}

/// Resolves a host name to addresses; injectable so tests need no DNS.
pub(crate) type Resolver<'r> = &'r dyn Fn(&str, u16) -> std::io::Result<Vec<SocketAddr>>;

pub(crate) fn system_resolver(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    (host, port).to_socket_addrs().map(Iterator::collect)
}

const SERVER_ADDR_HINT: &str = "write host:port, IPv4:port or [IPv6]:port, \
     e.g. \"127.0.0.1:8080\" or \"db.internal:5432\"";

/// A server address. Host names are resolved once, here, and the first
/// address is kept: the data path never waits on DNS.
pub(crate) fn parse_server_addr(text: &str, resolve: Resolver<'_>) -> Result<SocketAddr, Invalid> {
    let bad = || {
        Invalid::new(
            format!("invalid server address \"{text}\""),
            SERVER_ADDR_HINT,
        )
    };
    let addr = match text.parse::<SocketAddr>() {
        Ok(addr) => addr,
        Err(_) => {
            let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
            let port: u16 = port.parse().map_err(|_| bad())?;
            let host_ok = !host.is_empty()
                && host
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
            if !host_ok {
                return Err(bad());
            }
            let resolved = resolve(host, port).map_err(|e| {
                Invalid::new(
                    format!("cannot resolve server host \"{host}\": {e}"),
                    "host names are resolved once when the configuration is loaded; \
                     use an IP address or fix name resolution",
                )
            })?;
            resolved.into_iter().next().ok_or_else(|| {
                Invalid::new(
                    format!("server host \"{host}\" resolved to no address"),
                    "use an IP address",
                )
            })?
        }
    };
    if addr.port() == 0 {
        return Err(Invalid::new(
            format!("server address \"{text}\" has port 0"),
            "give the server's port explicitly",
        ));
    }
    Ok(addr)
}

pub(crate) const NAME_HINT: &str = "names use letters, digits and - _ . : (as in HAProxy)";

/// HAProxy's proxy and server name alphabet; keeps names safe to print in
/// logs and stats without quoting.
pub(crate) fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

pub(crate) const MODES: [(&str, Mode); 2] = [("tcp", Mode::Tcp), ("http", Mode::Http)];

#[cfg(test)]
pub(crate) const BALANCES: [(&str, Balance); 6] = [
    ("roundrobin", Balance::RoundRobin),
    ("static-rr", Balance::StaticRr),
    ("leastconn", Balance::LeastConn),
    ("first", Balance::First),
    ("source", Balance::Source),
    ("random", Balance::Random),
];

/// Looks a keyword up in a `(spelling, value)` table; the error lists them.
pub(crate) fn keyword<T: Copy>(text: &str, what: &str, table: &[(&str, T)]) -> Result<T, Invalid> {
    table
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, v)| *v)
        .ok_or_else(|| {
            let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            Invalid::new(
                format!("unknown {what} \"{text}\""),
                format!("one of {}", super::error::quoted_list(&names)),
            )
        })
}

pub(crate) fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Tcp => "tcp",
        Mode::Http => "http",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    #[test]
    fn durations_accept_haproxy_units_and_bare_milliseconds() {
        let cases = [
            ("100us", Duration::from_micros(100)),
            ("500ms", Duration::from_millis(500)),
            ("5s", Duration::from_secs(5)),
            ("1m", Duration::from_secs(60)),
            ("1h", Duration::from_secs(3600)),
            ("1d", Duration::from_secs(86_400)),
            ("250", Duration::from_millis(250)),
            ("0s", Duration::ZERO),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_duration(text), Ok(expected), "{text}");
        }
        assert_eq!(duration_from_millis(1500), Ok(Duration::from_millis(1500)));
    }

    #[test]
    fn durations_reject_garbage_with_the_unit_list() {
        for text in [
            "",
            "s",
            "-5s",
            "5 sec",
            "1.5s",
            "5S",
            "5ss",
            "99999999999999999999d",
        ] {
            let err = parse_duration(text).expect_err(text);
            assert!(err
                .hint
                .as_deref()
                .unwrap_or("")
                .contains("us, ms, s, m, h, d"));
        }
        assert!(duration_from_millis(-1).is_err());
        assert!(parse_duration("18446744073709551615d")
            .expect_err("overflow")
            .message
            .contains("too large"));
    }

    #[test]
    fn binds_accept_haproxy_spellings() {
        let v4 = |a: [u8; 4], p| SocketAddr::new(IpAddr::V4(Ipv4Addr::from(a)), p);
        assert_eq!(parse_bind("127.0.0.1:15432"), Ok(v4([127, 0, 0, 1], 15432)));
        assert_eq!(parse_bind(":80"), Ok(v4([0, 0, 0, 0], 80)));
        assert_eq!(parse_bind("*:80"), Ok(v4([0, 0, 0, 0], 80)));
        assert_eq!(parse_bind("[::1]:80"), Ok("[::1]:80".parse().unwrap()));
        for bad in [
            "localhost:80",
            "127.0.0.1",
            "127.0.0.1:0",
            "::1:80",
            "",
            ":",
            ":99999",
        ] {
            assert!(parse_bind(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn server_addresses_resolve_names_once_through_the_resolver() {
        let resolver = |host: &str, port: u16| {
            if host == "db.internal" {
                Ok(vec![SocketAddr::from(([10, 0, 0, 7], port))])
            } else {
                Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such host",
                ))
            }
        };
        assert_eq!(
            parse_server_addr("db.internal:5432", &resolver),
            Ok(SocketAddr::from(([10, 0, 0, 7], 5432)))
        );
        assert_eq!(
            parse_server_addr("[::1]:5432", &resolver),
            Ok("[::1]:5432".parse().unwrap())
        );
        let err = parse_server_addr("nowhere:1", &resolver).expect_err("unresolvable");
        assert!(err.message.contains("\"nowhere\""), "{err:?}");
        for bad in ["nowhere", "x:port", ":80", "a b:80", "1.2.3.4:0", "::1:80"] {
            assert!(parse_server_addr(bad, &resolver).is_err(), "{bad}");
        }
    }

    #[test]
    fn keywords_list_the_accepted_spellings() {
        assert_eq!(
            keyword("leastconn", "balance", &BALANCES),
            Ok(Balance::LeastConn)
        );
        let err = keyword("least_conn", "balance", &BALANCES).expect_err("bad");
        assert!(err.hint.unwrap().contains("\"static-rr\""));
        assert!(is_valid_name("pg-1.a:b_c"));
        assert!(!is_valid_name("") && !is_valid_name("a b") && !is_valid_name("é"));
    }
}
