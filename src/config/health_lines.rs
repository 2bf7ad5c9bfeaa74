//! `tcp-check` and `http-check` rules written as HAProxy lines
//! (`"send-binary 05020001"`, `"expect status 200-399"`): tokenizing with
//! HAProxy's quoting and escapes, and parsing into the typed rules. Pure
//! functions; the loader attaches positions to the errors.

use std::net::IpAddr;

use super::error::did_you_mean;
use super::health::{
    Expect, HttpCheck, HttpExpect, HttpTest, Pattern, StatusSet, TcpCheckAction, TcpCheckRule,
};
use super::rules_parse::lexer::Words;
use super::values::Invalid;

fn invalid(message: impl Into<String>, hint: impl Into<String>) -> Invalid {
    Invalid {
        message: message.into(),
        hint: Some(hint.into()),
    }
}

fn text(word: &[u8]) -> String {
    String::from_utf8_lossy(word).into_owned()
}

/// The words of one check line; an error loses its offset (the loader
/// points at the rule).
fn words_of(line: &str) -> Result<Words, Invalid> {
    Words::new(line).map_err(|(_, e)| e)
}

/// The `tcp-check` actions percore has (also what `convert` maps).
pub(crate) const TCP_CHECK_ACTIONS: &[&str] =
    &["connect", "send", "send-binary", "expect", "comment"];
const TCP_CHECK_HINT: &str =
    "tcp-check rules: \"connect [port <n>] [addr <ip>]\", \"send <text>\", \
     \"send-binary <hex>\", \"expect string|binary|rstring|rbinary <pattern>\", \"comment <text>\"";

/// Parses the `tcp-check` list; `lines` yields each rule's text. Errors
/// come back with the index of the bad rule. An implicit `connect` is put
/// first when the rules do not start with one, as HAProxy does.
pub(crate) fn parse_tcp_check(
    lines: &[String],
) -> Result<Vec<TcpCheckRule>, Vec<(usize, Invalid)>> {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for (index, line) in lines.iter().enumerate() {
        match parse_tcp_check_line(line) {
            Ok(Some(action)) => rules.push(TcpCheckRule {
                step: index + 1,
                action,
            }),
            Ok(None) => {}
            Err(e) => errors.push((index, e)),
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if !matches!(
        rules.first(),
        Some(TcpCheckRule {
            action: TcpCheckAction::Connect { .. },
            ..
        })
    ) {
        rules.insert(
            0,
            TcpCheckRule {
                step: 0,
                action: TcpCheckAction::Connect {
                    port: None,
                    addr: None,
                },
            },
        );
    }
    Ok(rules)
}

/// One rule; `None` for a rule that only documents (`comment`).
pub(crate) fn parse_tcp_check_line(line: &str) -> Result<Option<TcpCheckAction>, Invalid> {
    let mut words = words_of(line)?;
    let Some(action) = words.next_text() else {
        return Err(invalid("empty tcp-check rule", TCP_CHECK_HINT));
    };
    let parsed = match action.as_str() {
        "connect" => parse_connect(&mut words)?,
        "send" => {
            let data = words.required("send", "text")?;
            trailing_comment(&mut words, "send")?;
            TcpCheckAction::Send(data)
        }
        "send-binary" => {
            let hex = words.required("send-binary", "hex string")?;
            let data = parse_hex(&text(&hex))?;
            trailing_comment(&mut words, "send-binary")?;
            TcpCheckAction::Send(data)
        }
        "expect" => TcpCheckAction::Expect(parse_tcp_expect(&mut words)?),
        "comment" => {
            words.required("comment", "text")?;
            return Ok(None);
        }
        "send-lf" | "send-binary-lf" | "set-var" | "set-var-fmt" | "unset-var" => {
            return Err(invalid(
                format!("tcp-check {action} is not supported by percore"),
                TCP_CHECK_HINT,
            ))
        }
        other => {
            let hint = match did_you_mean(other, TCP_CHECK_ACTIONS) {
                Some(near) => format!("did you mean `{near}`? {TCP_CHECK_HINT}"),
                None => TCP_CHECK_HINT.to_string(),
            };
            return Err(invalid(format!("unknown tcp-check action `{other}`"), hint));
        }
    };
    Ok(Some(parsed))
}

/// `comment <text>` may close any rule; anything else left over is an error.
fn trailing_comment(words: &mut Words, rule: &str) -> Result<(), Invalid> {
    match words.next_text() {
        None => Ok(()),
        Some(w) if w == "comment" => {
            words.required("comment", "text")?;
            trailing_comment(words, rule)
        }
        Some(w) => Err(invalid(
            format!("unexpected `{w}` after the {rule} rule"),
            "quote data that contains spaces, e.g. send \"PING now\"",
        )),
    }
}

fn parse_connect(words: &mut Words) -> Result<TcpCheckAction, Invalid> {
    let mut port = None;
    let mut addr = None;
    while let Some(option) = words.next_text() {
        match option.as_str() {
            "port" => port = Some(parse_port(&text(&words.required("port", "port")?))?),
            "addr" => {
                let value = text(&words.required("addr", "IP address")?);
                addr = Some(value.parse::<IpAddr>().map_err(|_| {
                    invalid(
                        format!("invalid connect address \"{value}\""),
                        "write an IPv4 or IPv6 address without port (use `port` for the port)",
                    )
                })?);
            }
            // Checks always close with a reset (HAProxy's default linger
            // behaviour for checks), and `default` is what no option means.
            "default" | "linger" => {}
            "comment" => {
                words.required("comment", "text")?;
            }
            other => {
                return Err(invalid(
                    format!("unsupported tcp-check connect option `{other}`"),
                    "percore supports: connect [port <n>] [addr <ip>] [comment <text>]",
                ))
            }
        }
    }
    Ok(TcpCheckAction::Connect { port, addr })
}

pub(crate) fn parse_port(value: &str) -> Result<u16, Invalid> {
    match value.parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(invalid(
            format!("invalid port \"{value}\""),
            "a port is a number from 1 to 65535",
        )),
    }
}

const EXPECT_HINT: &str = "write expect string <text>, expect binary <hex>, \
     expect rstring <regex> or expect rbinary <regex>";

fn parse_tcp_expect(words: &mut Words) -> Result<Expect, Invalid> {
    let Some(kind) = words.next_text() else {
        return Err(invalid(
            "`expect` needs a match type and a pattern",
            EXPECT_HINT,
        ));
    };
    if kind == "!" {
        return Err(invalid(
            "negated expect (`expect !`) is not supported by percore",
            EXPECT_HINT,
        ));
    }
    let pattern_word = words.required(&format!("expect {kind}"), "pattern");
    let pattern = match kind.as_str() {
        "string" => Pattern::String(pattern_word?),
        "binary" => Pattern::Binary(parse_hex(&text(&pattern_word?))?),
        "rstring" => Pattern::RString(bytes_regex(&text(&pattern_word?))?),
        "rbinary" => Pattern::RBinary(hex_regex(&text(&pattern_word?))?),
        "min-recv" | "comment" | "ok-status" | "error-status" | "tout-status" | "on-success"
        | "on-error" | "status-code" | "string-lf" | "binary-lf" => {
            return Err(invalid(
                format!("tcp-check expect option `{kind}` is not supported by percore"),
                EXPECT_HINT,
            ))
        }
        other => {
            return Err(invalid(
                format!("unknown tcp-check expect match `{other}`"),
                EXPECT_HINT,
            ))
        }
    };
    let text_form = match &pattern {
        Pattern::String(bytes) => text(bytes),
        Pattern::Binary(bytes) => super::health::hex_upper(bytes),
        Pattern::RString(re) => re.as_str().to_string(),
        Pattern::RBinary(re) => re.as_str().to_string(),
    };
    trailing_comment(words, "expect")?;
    Ok(Expect {
        pattern,
        text: text_form,
    })
}

/// Hex digits in pairs, as `send-binary` and `expect binary` take them.
pub(crate) fn parse_hex(hex: &str) -> Result<Vec<u8>, Invalid> {
    const HINT: &str = "write bytes as pairs of hex digits, e.g. 05020001";
    if hex.is_empty() {
        return Err(invalid("empty hex string", HINT));
    }
    if let Some((at, c)) = hex.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(invalid(
            format!("invalid hex string \"{hex}\": `{c}` at offset {at} is not a hex digit"),
            HINT,
        ));
    }
    if !hex.len().is_multiple_of(2) {
        return Err(invalid(
            format!(
                "invalid hex string \"{hex}\": odd number of digits ({})",
                hex.len()
            ),
            HINT,
        ));
    }
    Ok(hex
        .as_bytes()
        .chunks(2)
        .map(|pair| {
            let digit = |b: u8| char::from(b).to_digit(16).unwrap_or(0) as u8;
            digit(pair[0]) * 16 + digit(pair[1])
        })
        .collect())
}

fn regex_error(pattern: &str, e: regex::Error) -> Invalid {
    let detail = e.to_string().replace('\n', " ");
    invalid(
        format!("invalid regular expression \"{pattern}\": {detail}"),
        "regular expressions use the Rust `regex` syntax (close to PCRE without \
         look-around or back-references)",
    )
}

fn bytes_regex(pattern: &str) -> Result<regex::bytes::Regex, Invalid> {
    crate::rules::pattern::build_regex(pattern, false).map_err(|e| regex_error(pattern, e))
}

/// `rbinary` patterns match an upper-case hex dump; they may be written
/// in either case.
fn hex_regex(pattern: &str) -> Result<regex::bytes::Regex, Invalid> {
    crate::rules::pattern::build_regex(pattern, true).map_err(|e| regex_error(pattern, e))
}

/// The `http-check` actions percore has.
pub(crate) const HTTP_CHECK_ACTIONS: &[&str] = &["send", "expect", "comment"];
const HTTP_CHECK_HINT: &str = "http-check rules: \"send [meth <method>] [uri <uri>] \
     [ver HTTP/1.0|HTTP/1.1] [hdr <name> <value>]... [body <text>]\", \
     \"expect status <codes>|rstatus <regex>|string <text>|rstring <regex>\", \"comment <text>\"";

/// Parses the `http-check` list into one check; errors carry the index of
/// the bad rule.
pub(crate) fn parse_http_check(lines: &[String]) -> Result<HttpCheck, Vec<(usize, Invalid)>> {
    let mut check = HttpCheck::default();
    let mut errors = Vec::new();
    let mut sent = false;
    for (index, line) in lines.iter().enumerate() {
        let result = (|| {
            let mut words = words_of(line)?;
            let Some(action) = words.next_text() else {
                return Err(invalid("empty http-check rule", HTTP_CHECK_HINT));
            };
            match action.as_str() {
                "send" => {
                    if sent {
                        return Err(invalid(
                            "a second http-check send rule",
                            "one check sends one request: put every option on one send rule",
                        ));
                    }
                    sent = true;
                    parse_http_send(&mut words, &mut check)
                }
                "expect" => {
                    check.expects.push(parse_http_expect(&mut words)?);
                    Ok(())
                }
                "comment" => words.required("comment", "text").map(|_| ()),
                "connect" | "send-state" | "disable-on-404" | "set-var" | "set-var-fmt"
                | "unset-var" => Err(invalid(
                    format!("http-check {action} is not supported by percore"),
                    HTTP_CHECK_HINT,
                )),
                other => {
                    let hint = match did_you_mean(other, HTTP_CHECK_ACTIONS) {
                        Some(near) => format!("did you mean `{near}`? {HTTP_CHECK_HINT}"),
                        None => HTTP_CHECK_HINT.to_string(),
                    };
                    Err(invalid(
                        format!("unknown http-check action `{other}`"),
                        hint,
                    ))
                }
            }
        })();
        if let Err(e) = result {
            errors.push((index, e));
        }
    }
    if errors.is_empty() {
        Ok(check)
    } else {
        Err(errors)
    }
}

fn is_token(word: &str) -> bool {
    !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn parse_http_send(words: &mut Words, check: &mut HttpCheck) -> Result<(), Invalid> {
    while let Some(option) = words.next_text() {
        match option.as_str() {
            "meth" => {
                let method = text(&words.required("meth", "method")?);
                if !is_token(&method) {
                    return Err(invalid(
                        format!("invalid method \"{method}\""),
                        "a method is a token such as GET, HEAD or OPTIONS",
                    ));
                }
                check.method = method;
            }
            "uri" => {
                let uri = text(&words.required("uri", "uri")?);
                if uri.bytes().any(|b| b <= b' ' || b == 0x7f) {
                    return Err(invalid(
                        format!("invalid uri {uri:?}"),
                        "the uri may not contain spaces or control characters",
                    ));
                }
                check.uri = uri;
            }
            "ver" => {
                let version = text(&words.required("ver", "version")?);
                if version != "HTTP/1.0" && version != "HTTP/1.1" {
                    return Err(invalid(
                        format!("unsupported HTTP version \"{version}\""),
                        "write ver HTTP/1.0 or ver HTTP/1.1",
                    ));
                }
                check.version = version;
            }
            "hdr" => {
                let name = text(&words.required("hdr", "header name")?);
                let value = words.required("hdr", "header name and a value")?;
                if !is_token(&name) {
                    return Err(invalid(
                        format!("invalid header name \"{name}\""),
                        "header names are tokens such as Host or X-Check",
                    ));
                }
                if value.iter().any(|&b| b == b'\r' || b == b'\n' || b == 0) {
                    return Err(invalid(
                        format!("header {name}: value contains CR, LF or NUL"),
                        "a header value is one line",
                    ));
                }
                check.headers.push((name, text(&value)));
            }
            "body" => check.body = words.required("body", "text")?,
            "comment" => {
                words.required("comment", "text")?;
            }
            "uri-lf" | "body-lf" => {
                return Err(invalid(
                    format!("http-check send {option} is not supported by percore"),
                    HTTP_CHECK_HINT,
                ))
            }
            other => return Err(invalid(
                format!("unknown http-check send option `{other}`"),
                "options: meth <method>, uri <uri>, ver <version>, hdr <name> <value>, body <text>",
            )),
        }
    }
    Ok(())
}

const HTTP_EXPECT_HINT: &str = "write expect status 200, expect status 200-399, \
     expect status 200,204, expect rstatus ^2, expect string <text> or expect rstring <regex>";

fn parse_http_expect(words: &mut Words) -> Result<HttpExpect, Invalid> {
    let Some(kind) = words.next_text() else {
        return Err(invalid("`expect` needs a match type", HTTP_EXPECT_HINT));
    };
    if kind == "!" {
        return Err(invalid(
            "negated expect (`expect !`) is not supported by percore",
            HTTP_EXPECT_HINT,
        ));
    }
    let value = match kind.as_str() {
        "status" | "rstatus" | "string" | "rstring" => {
            words.required(&format!("expect {kind}"), "pattern")?
        }
        "hdr" | "fhdr" | "min-recv" | "comment" | "ok-status" | "error-status" | "tout-status"
        | "on-success" | "on-error" | "status-code" | "string-lf" => {
            return Err(invalid(
                format!("http-check expect {kind} is not supported by percore"),
                HTTP_EXPECT_HINT,
            ))
        }
        other => {
            return Err(invalid(
                format!("unknown http-check expect match `{other}`"),
                HTTP_EXPECT_HINT,
            ))
        }
    };
    let value_text = text(&value);
    let test = match kind.as_str() {
        "status" => HttpTest::Status(parse_status_set(&value_text)?),
        "rstatus" => HttpTest::RStatus(bytes_regex(&value_text)?),
        "string" => HttpTest::String(value),
        _ => HttpTest::RString(bytes_regex(&value_text)?),
    };
    trailing_comment(words, "expect")?;
    Ok(HttpExpect {
        test,
        text: format!("{kind} {value_text}"),
    })
}

/// `200`, `200-399`, `200,204,300-399`.
pub(crate) fn parse_status_set(spec: &str) -> Result<StatusSet, Invalid> {
    let bad = |item: &str| {
        invalid(
            format!("invalid status \"{item}\" in \"{spec}\""),
            "statuses are codes from 100 to 599, ranges such as 200-399, \
             or a comma-separated list of both",
        )
    };
    let code = |item: &str, s: &str| match s.parse::<u16>() {
        Ok(c) if (100..=599).contains(&c) => Ok(c),
        _ => Err(bad(item)),
    };
    let mut ranges = Vec::new();
    for item in spec.split(',') {
        let range = match item.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi) = (code(item, lo)?, code(item, hi)?);
                if lo > hi {
                    return Err(bad(item));
                }
                lo..=hi
            }
            None => {
                let c = code(item, item)?;
                c..=c
            }
        };
        ranges.push(range);
    }
    Ok(StatusSet(ranges))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socks5_like_script() {
        let lines: Vec<String> = [
            "connect port 1080",
            "send-binary 05020001",
            "expect binary 0500",
            "send PING\\r\\n",
            "expect string +PONG",
            "expect rstring ^\\+OK",
            "expect rbinary ^05",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let rules = parse_tcp_check(&lines).unwrap();
        assert_eq!(rules.len(), 7);
        assert!(matches!(
            rules[0].action,
            TcpCheckAction::Connect {
                port: Some(1080),
                addr: None
            }
        ));
        match &rules[1].action {
            TcpCheckAction::Send(data) => assert_eq!(data, &[5, 2, 0, 1]),
            other => panic!("{other:?}"),
        }
        match &rules[3].action {
            TcpCheckAction::Send(data) => assert_eq!(data, b"PING\r\n"),
            other => panic!("{other:?}"),
        }
        match &rules[5].action {
            TcpCheckAction::Expect(e) => assert!(e.pattern.matches(b"+OK")),
            other => panic!("{other:?}"),
        }
        assert_eq!(rules[4].step, 5);
    }

    #[test]
    fn implicit_connect_comes_first() {
        let rules = parse_tcp_check(&["send x".to_string()]).unwrap();
        assert!(matches!(rules[0].action, TcpCheckAction::Connect { .. }));
        assert_eq!(rules[0].step, 0);
        assert_eq!(rules[1].step, 1);
        let only = parse_tcp_check(&[]).unwrap();
        assert_eq!(only.len(), 1);
    }

    #[test]
    fn tcp_check_errors_name_the_problem() {
        let cases = [
            ("sned x", "unknown tcp-check action `sned`"),
            ("send-binary 0502000", "odd number of digits"),
            ("send-binary 05zz", "`z` at offset 2"),
            ("expect rstring (", "invalid regular expression"),
            ("expect bytes 00", "unknown tcp-check expect match `bytes`"),
            ("expect ! string x", "negated expect"),
            ("connect port 0", "invalid port"),
            ("connect port 99999", "invalid port"),
            ("connect ssl", "unsupported tcp-check connect option `ssl`"),
            ("send a b", "unexpected `b`"),
            ("send", "`send` needs text"),
            ("send-lf %[src]", "not supported"),
            ("", "empty tcp-check rule"),
        ];
        for (line, wanted) in cases {
            let err = parse_tcp_check_line(line).expect_err(line);
            assert!(err.message.contains(wanted), "{line}: {err:?}");
        }
        let errs = parse_tcp_check(&["send x".into(), "bad".into(), "send-binary 1".into()])
            .expect_err("two bad rules");
        assert_eq!(errs.iter().map(|(i, _)| *i).collect::<Vec<_>>(), [1, 2]);
    }

    #[test]
    fn http_check_lines() {
        let check = parse_http_check(&[
            "send meth GET uri /generate_204 ver HTTP/1.1 hdr Host example.com hdr X-A \"b c\""
                .to_string(),
            "expect status 204".to_string(),
            "expect rstring ^$".to_string(),
        ])
        .unwrap();
        assert_eq!(check.method, "GET");
        assert_eq!(check.uri, "/generate_204");
        assert_eq!(check.version, "HTTP/1.1");
        assert_eq!(
            check.headers,
            [
                ("Host".to_string(), "example.com".to_string()),
                ("X-A".to_string(), "b c".to_string())
            ]
        );
        assert_eq!(check.expects.len(), 2);
        assert!(check.needs_body());
        let default = parse_http_check(&[]).unwrap();
        assert_eq!(default.method, "OPTIONS");
        assert_eq!(default.version, "HTTP/1.0");
        assert!(!default.needs_body());
    }

    #[test]
    fn http_check_errors() {
        let cases = [
            ("send meth G@T", "invalid method"),
            ("send ver HTTP/2", "unsupported HTTP version"),
            ("send hdr Host", "needs header name and a value"),
            ("send foo bar", "unknown http-check send option `foo`"),
            ("expect status 2xx", "invalid status \"2xx\""),
            ("expect status 399-200", "invalid status"),
            ("expect status 600", "invalid status"),
            ("expect hdr name x", "not supported"),
            ("expect rstatus (", "invalid regular expression"),
            ("expct status 200", "did you mean"),
        ];
        for (line, wanted) in cases {
            let errs = parse_http_check(&[line.to_string()]).expect_err(line);
            let text = format!("{} {:?}", errs[0].1.message, errs[0].1.hint);
            assert!(text.contains(wanted), "{line}: {text}");
        }
        let twice = parse_http_check(&["send meth GET".into(), "send uri /".into()])
            .expect_err("two sends");
        assert_eq!(twice[0].0, 1);
    }

    #[test]
    fn status_sets_parse_lists_and_ranges() {
        let set = parse_status_set("200,204,300-399").unwrap();
        assert!(set.contains(204) && set.contains(302) && !set.contains(201));
    }
}
