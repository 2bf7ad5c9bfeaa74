use super::super::format::tests::{date, tcp_record};
use super::super::format::{httplog, tcplog};
use super::super::record::{HttpLog, LogRecord};
use super::*;
use crate::net::{Blame, Cause, Stage};

const HTTPLOG: &str = "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %CC %CS %tsc %ac/%fc/%bc/%sc/%rc %sq/%bq %hr %hs %{+Q}r";
const TCPLOG: &str = "%ci:%cp [%t] %ft %b/%s %Tw/%Tc/%Tt %B %ts %ac/%fc/%bc/%sc/%rc %sq/%bq";

fn render(format: &str, record: &LogRecord<'_>) -> String {
    let custom = CustomFormat::parse_with_hostname(format, "lb1").unwrap();
    let mut out = String::new();
    custom.render(&mut out, record, Clock::utc(), None);
    out
}

fn http_record(captures: &[String]) -> LogRecord<'_> {
    let mut r = tcp_record();
    r.frontend = "http-in";
    r.backend = "static";
    r.bytes_read = 2750;
    r.http = Some(HttpLog {
        request_date: date(),
        t_idle: Duration::from_millis(2),
        t_request: Some(Duration::from_millis(10)),
        t_response: Some(Duration::from_millis(69)),
        t_active: Duration::from_millis(109),
        status: Some(200),
        request_line: "GET /a/b?q=\"x\"&r=] HTTP/1.1",
        captured_request_headers: captures,
        captured_response_headers: &[],
        captured_cookies: (None, None),
    });
    r
}

#[test]
fn haproxy_httplog_string_renders_as_httplog() {
    let captures = ["1wt.eu".to_string(), "a|b".to_string()];
    for caps in [&captures[..], &[]] {
        let r = http_record(caps);
        let mut expected = String::new();
        httplog(&mut expected, &r, Clock::utc());
        assert_eq!(render(HTTPLOG, &r), expected);
    }
}

#[test]
fn haproxy_tcplog_string_renders_as_tcplog() {
    let mut r = tcp_record();
    r.retries = 2;
    r.redispatched = true;
    r.end = Some(Blame::server(Stage::Data, Cause::Closed));
    let mut expected = String::new();
    tcplog(&mut expected, &r, Clock::utc());
    assert_eq!(render(TCPLOG, &r), expected);
}

#[test]
fn request_parts_addresses_and_misc() {
    let mut r = http_record(&[]);
    r.tls = true;
    r.unique_id = Some("7F000001:86C6_0001");
    r.request_id = 26;
    assert_eq!(
        render("%HM|%HU|%HP|%HQ|%HV|%ft|%f|%fi:%fp|%si:%sp|%ID|%H|%%|%U|%rt|%{+X}rt", &r),
        "GET|/a/b?q=#22x#22&r=]|/a/b|?q=#22x#22&r=]|HTTP/1.1|http-in~|http-in|127.0.0.1:8080|10.0.0.1:80|7F000001:86C6_0001|lb1|%|64|26|1A"
    );
    assert_eq!(render("%Th %Ti %TR %Tq %Tt %Td", &r), "0 2 10 12 5007 4923");
    assert_eq!(
        render("%{+X}ci:%{+X}cp %{+X}Ts %ms", &r),
        "7F000001:86F6 498C2996 655"
    );
    assert_eq!(
        render("%T|%t|%trg|%Ts", &r),
        "06/Feb/2009:12:14:14 +0000|06/Feb/2009:12:14:14.655|06/Feb/2009:12:14:14 +0000|1233922454"
    );
}

#[test]
fn flags_quote_and_escape() {
    let r = http_record(&[]);
    assert_eq!(render("%{+Q}HP %{+E}HQ", &r), "\"/a/b\" ?q=#22x#22&r=\\]");
    assert_eq!(render("%{+E,+Q}b %{+Q+E}s", &r), "\"static\" \"srv1\"");
    // A global default, then turned off for one variable.
    assert_eq!(render("%{+Q}o %b %{-Q}s", &r), "\"static\" srv1");
    // No value: `-`, or nothing inside quotes (as HAProxy).
    assert_eq!(render("%ID %{+Q}ID %CC", &r), "- \"\" -");
}

#[test]
fn separators_collapse_and_skip_empty_variables() {
    let r = http_record(&[]);
    assert_eq!(render("  %b   %hr %hs %s ", &r), "static srv1 ");
    assert_eq!(render("a%hr b", &r), "a b");
}

#[test]
fn tcp_session_in_an_http_format() {
    let r = tcp_record();
    assert_eq!(render("%ST %r %TR %Ta %HM", &r), "-1 - -1 -1 -");
}

#[test]
fn bad_formats_are_refused_with_position_and_hint() {
    let e = CustomFormat::parse("%ci %Xy").unwrap_err();
    assert_eq!((e.at, e.message.as_str()), (4, "unknown log variable %Xy"));
    let e = CustomFormat::parse("%ci %tS").unwrap_err();
    assert!(e.hint.starts_with("did you mean %ts?"), "{}", e.hint);
    let e = CustomFormat::parse("%{+Z}r").unwrap_err();
    assert_eq!(e.at, 2);
    assert!(
        e.message.contains("unknown log-format flag"),
        "{}",
        e.message
    );
    let e = CustomFormat::parse("%{Q}r").unwrap_err();
    assert!(
        e.message.contains("invalid log-format flag"),
        "{}",
        e.message
    );
    let e = CustomFormat::parse("%{+Q r").unwrap_err();
    assert_eq!(e.at, 1);
    let e = CustomFormat::parse("100% sure").unwrap_err();
    assert_eq!(e.at, 3);
    let e = CustomFormat::parse("%bi").unwrap_err();
    assert!(e.message.contains("not supported"), "{}", e.message);
    let e = CustomFormat::parse("%ci %[src").unwrap_err();
    assert_eq!((e.at, e.message.as_str()), (4, "`%[` without its `]`"));
    // Without a fetch context (the config compiles them with one).
    let e = CustomFormat::parse_with_hostname("%[src]", "h").unwrap_err();
    assert_eq!(e.at, 2);
    assert!(CustomFormat::parse("%ci %[src,lower] %[map(a.map)]").is_ok());
}

#[test]
fn rendering_allocates_nothing_beyond_the_buffer() {
    // Formatting writes into the given String; with enough capacity no
    // allocation happens. Checked by capacity: a reallocation would change
    // the buffer's address.
    let r = http_record(&[]);
    let custom = CustomFormat::parse_with_hostname(
        &format!("{HTTPLOG} %HM %HU %HP %HQ %HV %{{+X}}ci %T %U %Tq %Td %H %pid"),
        "lb1",
    )
    .unwrap();
    let mut out = String::with_capacity(4096);
    let ptr = out.as_ptr();
    custom.render(&mut out, &r, Clock::utc(), None);
    assert_eq!(out.as_ptr(), ptr);
    assert!(!out.is_empty());
}
