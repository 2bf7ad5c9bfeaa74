//! Access-log layouts: HAProxy's `option tcplog` and `option httplog`
//! lines, and one JSON object per line. Each appends one line (without the
//! newline) to a `String`; nothing here does I/O.

use std::fmt::Write;
use std::time::Duration;

use super::date::Clock;
use super::record::LogRecord;
use crate::config::LogFormat;
use crate::net::blame::termination_state;
use crate::rules::sample::Facts;

/// `facts`: the connection's, for a custom format's `%[...]` samples.
pub fn format_record(
    out: &mut String,
    format: &LogFormat,
    record: &LogRecord<'_>,
    clock: Clock,
    facts: Option<&Facts<'_>>,
) {
    match format {
        LogFormat::Custom(custom) => custom.render(out, record, clock, facts),
        LogFormat::Tcp => tcplog(out, record, clock),
        LogFormat::Http => match &record.http {
            Some(_) => httplog(out, record, clock),
            // A session that never carried a request (e.g. refused before
            // one arrived) is logged the tcplog way, as HAProxy does.
            None => tcplog(out, record, clock),
        },
        LogFormat::Json => json(out, record, clock),
    }
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

fn ms_or_minus(d: Option<Duration>) -> String {
    d.map_or_else(|| "-1".into(), |d| ms(d).to_string())
}

fn server_name<'a>(record: &LogRecord<'a>) -> &'a str {
    record.server.unwrap_or("<NOSRV>")
}

fn retries(record: &LogRecord<'_>) -> String {
    if record.redispatched {
        format!("+{}", record.retries)
    } else {
        record.retries.to_string()
    }
}

/// `%ac/%fc/%bc/%sc/%rc %sq/%bq`
fn counts(out: &mut String, r: &LogRecord<'_>) {
    let c = &r.conns;
    let _ = write!(
        out,
        "{}/{}/{}/{}/{} {}/{}",
        c.actconn,
        c.feconn,
        c.beconn,
        c.srv_conn,
        retries(r),
        r.srv_queue,
        r.backend_queue
    );
}

/// HAProxy's tcplog:
/// `%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq`
pub fn tcplog(out: &mut String, r: &LogRecord<'_>, clock: Clock) {
    let _ = write!(
        out,
        "{}:{} [{}] {} {}/{} {}/{}/{} {} {} ",
        r.client.ip(),
        r.client.port(),
        clock.date(r.accept_date).haproxy(),
        r.frontend,
        r.backend,
        server_name(r),
        ms_or_minus(r.t_queue),
        ms_or_minus(r.t_connect),
        ms(r.t_total),
        r.bytes_read,
        termination_state(r.end),
    );
    counts(out, r);
}

/// A captured cookie in httplog: `-` when none, escaped as the captures.
struct Cookie<'a>(Option<&'a str>);

impl std::fmt::Display for Cookie<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(c) = self.0.filter(|c| !c.is_empty()) else {
            return f.write_str("-");
        };
        let mut escaped = String::new();
        escape_into(&mut escaped, c, b"\"#{|} ");
        f.write_str(&escaped)
    }
}

/// HAProxy's httplog:
/// `%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc
/// %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r`. Captured cookies (`-`
/// without), cookie state `--` (not supported); `%hr` and `%hs` appear only
/// when the frontend has request (response) capture slots.
pub fn httplog(out: &mut String, r: &LogRecord<'_>, clock: Clock) {
    let Some(h) = &r.http else {
        return tcplog(out, r, clock);
    };
    let _ = write!(
        out,
        "{}:{} [{}] {} {}/{} {}/{}/{}/{}/{} {} {} {} {} {}-- ",
        r.client.ip(),
        r.client.port(),
        clock.date(h.request_date).haproxy(),
        r.frontend,
        r.backend,
        server_name(r),
        ms_or_minus(h.t_request),
        ms_or_minus(r.t_queue),
        ms_or_minus(r.t_connect),
        ms_or_minus(h.t_response),
        ms(h.t_active),
        h.status.map_or(-1, i32::from),
        r.bytes_read,
        Cookie(h.captured_cookies.0),
        Cookie(h.captured_cookies.1),
        termination_state(r.end),
    );
    counts(out, r);
    if !h.captured_request_headers.is_empty() {
        out.push_str(" {");
        for (i, value) in h.captured_request_headers.iter().enumerate() {
            if i > 0 {
                out.push('|');
            }
            escape_into(out, value, b"\"#{|}");
        }
        out.push('}');
    }
    if !h.captured_response_headers.is_empty() {
        out.push_str(" {");
        for (i, value) in h.captured_response_headers.iter().enumerate() {
            if i > 0 {
                out.push('|');
            }
            escape_into(out, value, b"\"#{|}");
        }
        out.push('}');
    }
    out.push_str(" \"");
    escape_into(out, h.request_line, b"\"#");
    out.push('"');
}

/// HAProxy's log escaping: listed bytes, controls and non-ASCII bytes
/// become `#XX`, so a line stays one line and fields stay parseable.
fn escape_into(out: &mut String, value: &str, special: &[u8]) {
    for b in value.bytes() {
        if b.is_ascii_graphic() && !special.contains(&b) || b == b' ' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "#{b:02X}");
        }
    }
}

/// A JSON string literal (RFC 8259 escaping).
pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_ms(out: &mut String, key: &str, d: Option<Duration>) {
    let _ = write!(out, ",\"{key}\":");
    match d {
        Some(d) => {
            let _ = write!(out, "{}", ms(d));
        }
        None => out.push_str("-1"),
    }
}

/// One JSON object with every field named; timers in milliseconds, -1 for
/// a phase not reached (as in the text formats).
pub fn json(out: &mut String, r: &LogRecord<'_>, clock: Clock) {
    out.push_str("{\"client_ip\":");
    json_str(out, &r.client.ip().to_string());
    let _ = write!(out, ",\"client_port\":{},\"accept_date\":", r.client.port());
    json_str(out, &clock.date(r.accept_date).rfc3339());
    out.push_str(",\"frontend\":");
    json_str(out, r.frontend);
    out.push_str(",\"backend\":");
    json_str(out, r.backend);
    out.push_str(",\"server\":");
    match r.server {
        Some(s) => json_str(out, s),
        None => out.push_str("null"),
    }
    json_ms(out, "tw", r.t_queue);
    json_ms(out, "tc", r.t_connect);
    json_ms(out, "tt", Some(r.t_total));
    let c = &r.conns;
    let _ = write!(
        out,
        ",\"bytes_read\":{},\"bytes_uploaded\":{},\"termination_state\":\"{}\",\
         \"actconn\":{},\"feconn\":{},\"beconn\":{},\"srv_conn\":{},\"retries\":{},\
         \"redispatched\":{},\"srv_queue\":{},\"backend_queue\":{}",
        r.bytes_read,
        r.bytes_uploaded,
        termination_state(r.end),
        c.actconn,
        c.feconn,
        c.beconn,
        c.srv_conn,
        r.retries,
        r.redispatched,
        r.srv_queue,
        r.backend_queue
    );
    // Who failed and where, beyond the two characters (percore's own).
    if let Some(blame) = r.end {
        // Plain ASCII words, nothing to escape; written in place.
        let _ = write!(out, ",\"error\":\"{blame}\"");
    }
    if let Some(h) = &r.http {
        out.push_str(",\"request_date\":");
        json_str(out, &clock.date(h.request_date).rfc3339());
        json_ms(out, "treq", h.t_request);
        json_ms(out, "tr", h.t_response);
        json_ms(out, "ta", Some(h.t_active));
        let _ = write!(out, ",\"status\":{}", h.status.map_or(-1, i32::from));
        out.push_str(",\"request\":");
        json_str(out, h.request_line);
        for (key, values) in [
            ("captured_request_headers", h.captured_request_headers),
            ("captured_response_headers", h.captured_response_headers),
        ] {
            let _ = write!(out, ",\"{key}\":[");
            for (i, v) in values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_str(out, v);
            }
            out.push(']');
        }
    }
    out.push('}');
}

#[cfg(test)]
pub(super) mod tests {
    use super::super::record::{ConnCounts, HttpLog};
    use super::*;
    use crate::net::{Blame, Cause, Stage};
    use std::time::{SystemTime, UNIX_EPOCH};

    pub fn date() -> SystemTime {
        // 2009-02-06T12:14:14.655Z
        UNIX_EPOCH + Duration::from_millis(1_233_922_454_655)
    }

    pub fn tcp_record() -> LogRecord<'static> {
        LogRecord {
            client: "127.0.0.1:34550".parse().unwrap(),
            frontend_addr: Some("127.0.0.1:8080".parse().unwrap()),
            tls: false,
            server_addr: Some("10.0.0.1:80".parse().unwrap()),
            unique_id: None,
            request_id: 0,
            accept_date: date(),
            frontend: "px-tcp",
            backend: "px-tcp",
            server: Some("srv1"),
            t_queue: Some(Duration::ZERO),
            t_connect: Some(Duration::from_millis(3)),
            t_total: Duration::from_millis(5007),
            bytes_read: 212,
            bytes_uploaded: 64,
            end: None,
            conns: ConnCounts {
                actconn: 4,
                feconn: 3,
                beconn: 2,
                srv_conn: 1,
            },
            retries: 0,
            redispatched: false,
            srv_queue: 0,
            backend_queue: 0,
            http: None,
        }
    }

    #[test]
    fn tcplog_matches_haproxy_layout() {
        let mut out = String::new();
        tcplog(&mut out, &tcp_record(), Clock::utc());
        assert_eq!(
            out,
            "127.0.0.1:34550 [06/Feb/2009:12:14:14.655] px-tcp px-tcp/srv1 0/3/5007 212 -- 4/3/2/1/0 0/0"
        );
    }

    #[test]
    fn tcplog_marks_unreached_phases_and_redispatch() {
        let mut r = tcp_record();
        r.server = None;
        r.t_connect = None;
        r.end = Some(Blame::server(Stage::Connect, Cause::Refused));
        r.retries = 3;
        r.redispatched = true;
        r.backend_queue = 7;
        let mut out = String::new();
        tcplog(&mut out, &r, Clock::utc());
        assert!(
            out.ends_with("px-tcp px-tcp/<NOSRV> 0/-1/5007 212 SC 4/3/2/1/+3 0/7"),
            "{out}"
        );
    }

    #[test]
    fn httplog_from_a_constructed_record() {
        let captures = vec!["1wt.eu".to_string(), String::new(), "a|b\"c".to_string()];
        let mut r = tcp_record();
        r.frontend = "http-in";
        r.backend = "static";
        r.bytes_read = 2750;
        r.http = Some(HttpLog {
            request_date: date(),
            t_idle: Duration::ZERO,
            t_request: Some(Duration::from_millis(10)),
            t_response: Some(Duration::from_millis(69)),
            t_active: Duration::from_millis(109),
            status: Some(200),
            request_line: "GET /index.html?q=\"x\" HTTP/1.1",
            captured_request_headers: &captures,
            captured_response_headers: &[],
            captured_cookies: (None, None),
        });
        let mut out = String::new();
        format_record(&mut out, &LogFormat::Http, &r, Clock::utc(), None);
        assert_eq!(
            out,
            "127.0.0.1:34550 [06/Feb/2009:12:14:14.655] http-in static/srv1 10/0/3/69/109 200 2750 - - ---- 4/3/2/1/0 0/0 {1wt.eu||a#7Cb#22c} \"GET /index.html?q=#22x#22 HTTP/1.1\""
        );

        // No captures configured: no `{}` block; no response: -1.
        if let Some(h) = &mut r.http {
            h.captured_request_headers = &[];
            h.status = None;
            h.t_response = None;
        }
        r.end = Some(Blame::server(Stage::Data, Cause::Closed));
        out.clear();
        httplog(&mut out, &r, Clock::utc());
        assert!(
            out.ends_with("10/0/3/-1/109 -1 2750 - - SD-- 4/3/2/1/0 0/0 \"GET /index.html?q=#22x#22 HTTP/1.1\""),
            "{out}"
        );
    }

    #[test]
    fn httplog_without_a_request_falls_back_to_tcplog() {
        let mut a = String::new();
        format_record(&mut a, &LogFormat::Http, &tcp_record(), Clock::utc(), None);
        let mut b = String::new();
        tcplog(&mut b, &tcp_record(), Clock::utc());
        assert_eq!(a, b);
    }

    #[test]
    fn json_names_every_field_and_escapes() {
        let mut r = tcp_record();
        r.frontend = "fe\"1";
        let mut out = String::new();
        json(&mut out, &r, Clock::utc());
        assert!(out.starts_with("{\"client_ip\":\"127.0.0.1\",\"client_port\":34550,\"accept_date\":\"2009-02-06T12:14:14.655000+00:00\",\"frontend\":\"fe\\\"1\""), "{out}");
        assert!(out.contains("\"tw\":0,\"tc\":3,\"tt\":5007,\"bytes_read\":212,\"bytes_uploaded\":64,\"termination_state\":\"--\""), "{out}");
        assert!(
            out.ends_with("\"srv_queue\":0,\"backend_queue\":0}"),
            "{out}"
        );
        assert!(!out.contains("\"error\""), "{out}");

        // A failed session says who failed and where, in words.
        r.end = Some(Blame::server(Stage::Tls, Cause::Handshake));
        out.clear();
        json(&mut out, &r, Clock::utc());
        assert!(out.contains("\"termination_state\":\"SC\","), "{out}");
        assert!(
            out.ends_with("\"backend_queue\":0,\"error\":\"server tls: handshake failed\"}"),
            "{out}"
        );
        let mut s = String::new();
        json_str(&mut s, "a\u{1}\n\\");
        assert_eq!(s, "\"a\\u0001\\n\\\\\"");
    }
}
