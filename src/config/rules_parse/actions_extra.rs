//! `http-request` / `http-response` actions added after the first rule
//! set (issue #18): `set-method`, `return` and `redirect` on responses,
//! the cookie and slash options of `redirect`, `capture`,
//! `normalize-uri`, `set-timeout`, `early-hint`, `set-log-level`. Each
//! parser reads the words after the action name and leaves the condition
//! to `finish`.

use super::{err, parse_format, Env, Parsed, Words};
use crate::log::syslog::LEVELS;
use crate::rules::edit::is_method_token;
use crate::rules::{
    CaptureRule, CaptureSide, HeaderEdit, LogLevel, Part, Redirect, RedirectCookie, RedirectTarget,
    RequestAction, SlotRef, TimeoutOverride,
};

/// `set-method <fmt>`.
pub(super) fn parse_set_method(words: &mut Words, env: &Env<'_>) -> Parsed<HeaderEdit> {
    const HINT: &str =
        "write set-method <method>, e.g. set-method POST or set-method %[req.hdr(x-method)]";
    let Some((at, text)) = words.argument() else {
        return err(words.here(), "`set-method` needs a method", HINT);
    };
    let format = parse_format(at, &text, env)?;
    // A literal method is checked now; a rendered one at run time (a value
    // that is no token leaves the method unchanged).
    if let [Part::Literal(lit)] = &format.parts[..] {
        if !is_method_token(lit) {
            return err(
                at,
                format!("invalid method `{text}` for set-method"),
                "a method is a token (letters, digits, !#$%&'*+-.^_`|~), and CONNECT cannot be set: its target and tunnel differ",
            );
        }
    }
    Ok(HeaderEdit::SetMethod(format))
}

/// `normalize-uri <kind> [full|strict]`.
pub(super) fn parse_normalize_uri(words: &mut Words) -> Parsed<HeaderEdit> {
    use crate::rules::normalize::{NormalizeUri, KINDS};
    let names: Vec<&str> = KINDS.iter().map(|(n, _)| *n).collect();
    let hint = format!("write normalize-uri <kind>, kinds: {}", names.join(", "));
    let Some((at, name)) = words.argument() else {
        return err(words.here(), "`normalize-uri` needs a kind", hint);
    };
    let Some(&(_, mut kind)) = KINDS.iter().find(|(n, _)| *n == name) else {
        return err(at, format!("unknown normalize-uri kind `{name}`"), hint);
    };
    let option = match kind {
        NormalizeUri::PathStripDotdot { .. } => "full",
        NormalizeUri::PercentDecodeUnreserved { .. } | NormalizeUri::PercentToUppercase { .. } => {
            "strict"
        }
        _ => return Ok(HeaderEdit::NormalizeUri(kind)),
    };
    if words.peek() == Some(option) {
        words.next();
        kind = match kind {
            NormalizeUri::PathStripDotdot { .. } => NormalizeUri::PathStripDotdot { full: true },
            NormalizeUri::PercentDecodeUnreserved { .. } => {
                NormalizeUri::PercentDecodeUnreserved { strict: true }
            }
            _ => NormalizeUri::PercentToUppercase { strict: true },
        };
    }
    Ok(HeaderEdit::NormalizeUri(kind))
}

/// `set-timeout server|tunnel <time>` (HAProxy's time units, `ms` by
/// default).
pub(super) fn parse_set_timeout(words: &mut Words) -> Parsed<TimeoutOverride> {
    const HINT: &str = "write set-timeout server|tunnel <time>, e.g. set-timeout server 30s";
    let Some((kat, kind)) = words.argument() else {
        return err(words.here(), "`set-timeout` needs server or tunnel", HINT);
    };
    if !matches!(kind.as_str(), "server" | "tunnel") {
        return err(
            kat,
            format!("unknown timeout `{kind}` for set-timeout"),
            "percore sets server and tunnel (HAProxy 2.6 has no other); write set-timeout server|tunnel <time>",
        );
    }
    let Some((tat, time)) = words.argument() else {
        return err(
            words.here(),
            format!("`set-timeout {kind}` needs a time"),
            HINT,
        );
    };
    let time = match crate::config::values::parse_duration(&time) {
        Ok(d) if !d.is_zero() => d,
        _ => {
            return err(
                tat,
                format!("invalid time `{time}`"),
                "a time such as 500ms, 30s, 2m (0 is refused)",
            )
        }
    };
    Ok(match kind.as_str() {
        "server" => TimeoutOverride::Server(time),
        _ => TimeoutOverride::Tunnel(time),
    })
}

/// `early-hint <name> <fmt>`.
pub(super) fn parse_early_hint(words: &mut Words, env: &Env<'_>) -> Parsed<RequestAction> {
    const HINT: &str = "write early-hint <name> <value>, e.g. early-hint Link \"</style.css>; rel=preload; as=style\"";
    let Some((nat, name)) = words.argument() else {
        return err(words.here(), "`early-hint` needs a header name", HINT);
    };
    let name = super::header_name(nat, &name)?;
    let Some((vat, value)) = words.argument() else {
        return err(words.here(), "`early-hint` needs a value", HINT);
    };
    let value = parse_format(vat, &value, env)?;
    super::check_literal_bytes("early-hint", vat, &value, false)?;
    Ok(RequestAction::EarlyHint { name, value })
}

/// `set-log-level <level>`: a syslog level name or `silent`.
pub(super) fn parse_log_level(words: &mut Words) -> Parsed<LogLevel> {
    const HINT: &str = "write set-log-level emerg|alert|crit|err|warning|notice|info|debug|silent";
    let Some((at, name)) = words.argument() else {
        return err(words.here(), "`set-log-level` needs a level", HINT);
    };
    if name == "silent" {
        return Ok(LogLevel::Silent);
    }
    match LEVELS.iter().position(|l| *l == name) {
        Some(severity) => Ok(LogLevel::Severity(severity as u8)),
        None => err(at, format!("unknown log level `{name}`"), HINT),
    }
}

/// HAProxy's longest capture with its default buffers (as
/// `capture-request-header`).
const MAX_CAPTURE_LEN: usize = 16384;

/// `capture <sample> len <n>` (requests) or `capture <sample> id <n>`
/// (both sides); the slot is resolved with the frontend's
/// (`resolve_capture_slots`).
pub(super) fn parse_capture(
    words: &mut Words,
    env: &Env<'_>,
    side: CaptureSide,
) -> Parsed<CaptureRule> {
    let hint = match side {
        CaptureSide::Request => "write capture <sample> len <n> or capture <sample> id <n>, e.g. capture req.hdr(user-agent) len 32",
        CaptureSide::Response => "write capture <sample> id <n> (a slot of declare-capture or capture-response-header), e.g. capture res.hdr(server) id 0",
    };
    let Some((sat, sample)) = words.argument() else {
        return err(words.here(), "`capture` needs a sample", hint);
    };
    // The sample is a fetch with converters, as inside %[...].
    let sample = parse_format(sat, &format!("%[{sample}]"), env)
        .map_err(|(at, invalid)| (at.saturating_sub(2).max(sat), invalid))?;
    let Some((kat, keyword)) = words.argument() else {
        return err(words.here(), "`capture` needs len <n> or id <n>", hint);
    };
    let Some((nat, number)) = words.argument() else {
        return err(words.here(), format!("`{keyword}` needs a number"), hint);
    };
    let number = match number.parse::<usize>() {
        Ok(n) => n,
        Err(_) => return err(nat, format!("invalid number `{number}`"), hint),
    };
    let written = match keyword.as_str() {
        "len" if side == CaptureSide::Response => {
            return err(
                kat,
                "http-response capture takes id <n>",
                "declare the slot with declare-capture = [{ type = \"response\", len = <n> }] and write capture <sample> id <n>",
            )
        }
        "len" if number == 0 || number > MAX_CAPTURE_LEN => {
            return err(nat, format!("capture len {number} is out of range"), "a len from 1 to 16384")
        }
        "len" => SlotRef::New { len: number },
        "id" => SlotRef::Id(number),
        _ => return err(kat, format!("unexpected `{keyword}`"), hint),
    };
    Ok(CaptureRule {
        side,
        sample,
        written,
        slot: 0,
        len: 0,
    })
}

/// The `capture` rules of a section, request rules first.
fn capture_rules(rules: &mut crate::rules::HttpRules) -> Vec<&mut CaptureRule> {
    let request = rules
        .request
        .iter_mut()
        .filter_map(|r| match &mut r.action {
            crate::rules::RequestAction::Capture(c) => Some(c),
            _ => None,
        });
    let response = rules
        .response
        .iter_mut()
        .filter_map(|r| match &mut r.action {
            crate::rules::ResponseAction::Capture(c) => Some(c),
            _ => None,
        });
    request.chain(response).collect()
}

/// Numbers the capture slots of a frontend's `capture` rules (see
/// `rules::capture`): a `len` rule adds a request slot after the header
/// captures and the `declare-capture` ones; an `id` rule takes the length
/// of the slot it names. The first `id` naming no slot is the error.
pub(crate) fn resolve_capture_slots(
    log: &mut crate::config::FrontendLog,
    rules: &mut crate::rules::HttpRules,
) -> Result<(), (String, String)> {
    let mut captures = capture_rules(rules);
    // `len` rules first: an `id` may name the slot of a later one.
    for c in captures.iter_mut() {
        if let SlotRef::New { len } = c.written {
            c.slot = log.captures.len() + log.declared.request.len();
            c.len = len;
            log.declared.request.push(len);
        }
    }
    for c in captures {
        let SlotRef::Id(id) = c.written else { continue };
        let (headers, declared, side) = match c.side {
            CaptureSide::Request => (&log.captures, &log.declared.request, "request"),
            CaptureSide::Response => (&log.response_captures, &log.declared.response, "response"),
        };
        let len = match id.checked_sub(headers.len()) {
            None => headers.get(id).map(|h| h.len),
            Some(d) => declared.get(d).copied(),
        };
        let Some(len) = len else {
            return Err((
                format!(
                    "capture id {id}: the frontend has {} {side} capture slots",
                    headers.len() + declared.len()
                ),
                format!(
                    "slots are numbered from 0: the capture-{side}-header entries, then declare-capture = [{{ type = \"{side}\", len = <n> }}] entries{}",
                    if side == "request" { ", then capture ... len <n> rules" } else { "" }
                ),
            ));
        };
        c.slot = id;
        c.len = len;
    }
    Ok(())
}

/// The `capture` rules of a backend, as HAProxy has them: an `id` rule
/// writes slot `id` of the frontend that routed the request, which only
/// the request knows (a backend may be reached from frontends with other
/// slots). Its value is kept up to the longest slot and cut to the
/// frontend's slot when the log reads it; a frontend without that slot
/// shows nothing. A `len` rule declares a frontend slot: refused, as
/// HAProxy does ("proxy has no frontend capability").
pub(crate) fn resolve_backend_capture_slots(
    rules: &mut crate::rules::HttpRules,
) -> Result<(), (String, String)> {
    for c in capture_rules(rules) {
        let SlotRef::Id(id) = c.written else {
            return Err((
                "capture ... len in a backend: the slot it declares would belong to a frontend".into(),
                "write the rule in the frontends that route here, or declare-capture = [{ type = \"request\", len = <n> }] in them and capture <sample> id <n> here".into(),
            ));
        };
        c.slot = id;
        c.len = MAX_CAPTURE_LEN;
    }
    Ok(())
}

/// The `redirect` options `append-slash`, `set-cookie NAME[=value]` and
/// `clear-cookie NAME[=]` (`option` read at `at`).
pub(super) fn redirect_option(
    at: usize,
    option: &str,
    words: &mut Words,
    redirect: &mut Redirect,
) -> Parsed<()> {
    if option == "append-slash" {
        redirect.append_slash = true;
        return Ok(());
    }
    let hint = format!("write {option} NAME[=value], e.g. {option} SEEN=1");
    let Some((cat, cookie)) = words.argument() else {
        return err(words.here(), format!("`{option}` needs a cookie"), hint);
    };
    if redirect.cookie.is_some() {
        return err(
            at,
            "a redirect sets or clears one cookie",
            "keep one set-cookie or clear-cookie (HAProxy keeps the last one)",
        );
    }
    let (name, value) = cookie.split_once('=').unwrap_or((&cookie, ""));
    // RFC 6265 4.1.1: a name is a token, a value cookie-octets.
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let octet = |b: u8| (0x21..0x7f).contains(&b) && !b"\",;\\".contains(&b);
    if name.is_empty() || !name.bytes().all(token) {
        return err(cat, format!("invalid cookie name `{name}`"), hint);
    }
    if let Some(bad) = value.bytes().position(|b| !octet(b)) {
        return err(
            cat + name.len() + 1 + bad,
            format!("invalid character in cookie value `{value}`"),
            "a cookie value has no spaces, quotes, commas, semicolons or backslashes",
        );
    }
    redirect.cookie = Some(match option {
        "set-cookie" => RedirectCookie::Set(cookie.into()),
        _ => RedirectCookie::Clear(cookie.into()),
    });
    Ok(())
}

/// `http-response redirect`: only `location`, as the request's path and
/// host that `prefix` and `scheme` would reuse are gone once the response
/// comes (percore does not keep them).
pub(super) fn response_redirect(at: usize, redirect: Redirect) -> Parsed<Redirect> {
    match redirect.target {
        RedirectTarget::Location(_) => Ok(redirect),
        _ => err(
            at,
            "http-response redirect takes a location",
            "write redirect location <url> [code <code>] ...; prefix and scheme redirects are http-request rules",
        ),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::{parse_http_request, parse_http_response, Env};
    use super::{resolve_backend_capture_slots, resolve_capture_slots, MAX_CAPTURE_LEN};
    use crate::rules::{HeaderEdit, RedirectCookie, RequestAction, ResponseAction, SlotRef};

    fn env(response: bool) -> Env<'static> {
        Env {
            acls: &[],
            userlists: &[],
            base_dir: Path::new("."),
            backends: &[],
            response,
            payload: false,
            tables: &[],
            own_table: None,
            maps: Box::leak(Box::default()),
            servers: &[],
            frontends: &[],
            section: None,
        }
    }

    fn request(line: &str) -> RequestAction {
        match parse_http_request(line, &env(false)) {
            Ok(rule) => rule.action,
            Err((at, i)) => panic!("{line}: {at}: {}", i.message),
        }
    }

    /// (offset, message) of a refused line.
    fn refused(line: &str, response: bool) -> (usize, String) {
        let e = env(response);
        let result = if response {
            parse_http_response(line, &e).map(|_| ())
        } else {
            parse_http_request(line, &e).map(|_| ())
        };
        match result {
            Ok(()) => panic!("expected an error for {line}"),
            Err((at, i)) => {
                assert!(i.hint.is_some(), "{line}: no hint");
                (at, i.message)
            }
        }
    }

    #[test]
    fn set_method() {
        assert!(matches!(
            request("set-method POST"),
            RequestAction::Edit(HeaderEdit::SetMethod(_))
        ));
        assert!(matches!(
            request("set-method %[req.hdr(x-m)] if { path /m }"),
            RequestAction::Edit(HeaderEdit::SetMethod(_))
        ));
        assert_eq!(
            refused("set-method", false),
            (10, "`set-method` needs a method".into())
        );
        assert_eq!(refused("set-method \"GE T\"", false).0, 11);
        let (at, message) = refused("set-method CONNECT", false);
        assert_eq!(at, 11);
        assert!(message.contains("invalid method"), "{message}");
        assert_eq!(refused("set-method G%", false).0, 12);
        assert!(refused("set-method GET", true).1.contains("unknown"));
    }

    #[test]
    fn redirect_options() {
        let RequestAction::Redirect(r) =
            request("redirect prefix /new code 301 append-slash set-cookie SEEN=1")
        else {
            panic!("not a redirect");
        };
        assert!(r.append_slash);
        assert!(matches!(r.cookie, Some(RedirectCookie::Set(ref c)) if &**c == "SEEN=1"));
        let RequestAction::Redirect(r) = request("redirect location /x clear-cookie SEEN=") else {
            panic!("not a redirect");
        };
        assert!(matches!(r.cookie, Some(RedirectCookie::Clear(ref c)) if &**c == "SEEN="));
        assert_eq!(refused("redirect location /x set-cookie", false).0, 31);
        assert_eq!(
            refused("redirect location /x set-cookie \"a b\"", false).0,
            32
        );
        assert_eq!(refused("redirect location /x set-cookie =1", false).0, 32);
        assert_eq!(
            refused("redirect location /x set-cookie A=b;c", false).0,
            35
        );
        let (at, message) = refused("redirect location /x set-cookie A clear-cookie B", false);
        assert_eq!(at, 34);
        assert!(message.contains("one cookie"), "{message}");
    }

    #[test]
    fn response_return_and_redirect() {
        let e = env(true);
        let rule = parse_http_response(
            "return status 503 content-type text/plain lf-string \"down %[status]\" if { status 500 }",
            &e,
        )
        .map_err(|(at, i)| format!("{at}: {}", i.message))
        .unwrap();
        assert!(matches!(rule.action, ResponseAction::Return(ref r) if r.status == 503));
        let rule = parse_http_response("redirect location /maintenance code 303", &e)
            .map_err(|(at, i)| format!("{at}: {}", i.message))
            .unwrap();
        assert!(matches!(rule.action, ResponseAction::Redirect(ref r) if r.code == 303));
        let (at, message) = refused("redirect prefix /p", true);
        assert_eq!(at, 0);
        assert!(message.contains("takes a location"), "{message}");
        assert_eq!(refused("return status 99", true).0, 14);
        assert_eq!(refused("return string x", true).0, 15);
        assert_eq!(refused("redirect location /x code 200", true).0, 26);
    }

    #[test]
    fn normalize_uri() {
        use crate::rules::normalize::NormalizeUri;
        assert!(matches!(
            request("normalize-uri path-strip-dotdot full"),
            RequestAction::Edit(HeaderEdit::NormalizeUri(NormalizeUri::PathStripDotdot {
                full: true
            }))
        ));
        assert!(matches!(
            request("normalize-uri fragment-strip if { path_beg /a }"),
            RequestAction::Edit(HeaderEdit::NormalizeUri(NormalizeUri::FragmentStrip))
        ));
        assert_eq!(refused("normalize-uri", false).0, 13);
        let (at, message) = refused("normalize-uri path-strip-dots", false);
        assert_eq!(at, 14);
        assert!(message.contains("unknown normalize-uri kind"), "{message}");
        for (line, kind) in [
            (
                "normalize-uri percent-to-uppercase strict",
                NormalizeUri::PercentToUppercase { strict: true },
            ),
            (
                "normalize-uri percent-decode-unreserved strict if { path_beg /a }",
                NormalizeUri::PercentDecodeUnreserved { strict: true },
            ),
            (
                "normalize-uri percent-decode-unreserved",
                NormalizeUri::PercentDecodeUnreserved { strict: false },
            ),
        ] {
            assert!(
                matches!(request(line), RequestAction::Edit(HeaderEdit::NormalizeUri(k)) if k == kind),
                "{line}"
            );
        }
        // Each option belongs to its kinds.
        assert_eq!(
            refused("normalize-uri percent-to-uppercase full", false).0,
            35
        );
        assert_eq!(
            refused("normalize-uri path-strip-dotdot strict", false).0,
            32
        );
        assert_eq!(refused("normalize-uri path-strip-dot full", false).0, 29);
        assert!(refused("normalize-uri path-strip-dot", true)
            .1
            .contains("unknown"));
    }

    #[test]
    fn set_timeout() {
        use crate::rules::TimeoutOverride;
        use std::time::Duration;
        assert!(matches!(
            request("set-timeout server 5s if { path_beg /slow }"),
            RequestAction::SetTimeout(TimeoutOverride::Server(d)) if d == Duration::from_secs(5)
        ));
        assert!(matches!(
            request("set-timeout tunnel 250"),
            RequestAction::SetTimeout(TimeoutOverride::Tunnel(d)) if d == Duration::from_millis(250)
        ));
        assert_eq!(refused("set-timeout", false).0, 11);
        let (at, message) = refused("set-timeout client 5s", false);
        assert_eq!(at, 12);
        assert!(message.contains("unknown timeout"), "{message}");
        assert_eq!(refused("set-timeout server", false).0, 18);
        assert_eq!(refused("set-timeout server 5x", false).0, 19);
        assert_eq!(refused("set-timeout server 0", false).0, 19);
        assert!(refused("set-timeout server 5s", true).1.contains("unknown"));
    }

    #[test]
    fn early_hint() {
        assert!(matches!(
            request("early-hint Link \"</a.css>; rel=preload\" if { path / }"),
            RequestAction::EarlyHint { .. }
        ));
        assert_eq!(refused("early-hint", false).0, 10);
        assert_eq!(refused("early-hint Link", false).0, 15);
        assert_eq!(refused("early-hint \"a b\" x", false).0, 11);
        assert_eq!(refused("early-hint Content-Length 3", false).0, 11);
        let (at, message) = refused("early-hint Link \"a\\x01\"", false);
        assert_eq!(at, 16);
        assert_eq!(message, "`early-hint` value holds a control character");
        assert_eq!(refused("early-hint Link %ci", false).0, 16);
        assert!(refused("early-hint Link x", true).1.contains("unknown"));
    }

    #[test]
    fn set_log_level() {
        use crate::rules::LogLevel;
        assert!(matches!(
            request("set-log-level silent if { path /health }"),
            RequestAction::SetLogLevel(LogLevel::Silent)
        ));
        assert!(matches!(
            request("set-log-level err"),
            RequestAction::SetLogLevel(LogLevel::Severity(3))
        ));
        assert!(parse_http_response("set-log-level debug", &env(true)).is_ok());
        assert_eq!(refused("set-log-level", false).0, 13);
        let (at, message) = refused("set-log-level loud", false);
        assert_eq!(at, 14);
        assert!(message.contains("unknown log level"), "{message}");
        assert_eq!(refused("set-log-level info x", true).0, 19);
    }

    #[test]
    fn capture_lines() {
        let RequestAction::Capture(c) = request("capture req.hdr(host),lower len 12") else {
            panic!("not a capture");
        };
        assert_eq!(c.written, SlotRef::New { len: 12 });
        assert!(matches!(
            request("capture path id 3"),
            RequestAction::Capture(_)
        ));
        assert_eq!(
            refused("capture", false),
            (7, "`capture` needs a sample".into())
        );
        assert_eq!(refused("capture pth len 3", false).0, 8);
        assert_eq!(refused("capture req.hdr(x),nope len 3", false).0, 19);
        assert_eq!(refused("capture path", false).0, 12);
        assert_eq!(refused("capture path len", false).0, 16);
        assert_eq!(refused("capture path len x", false).0, 17);
        assert_eq!(refused("capture path len 0", false).0, 17);
        assert_eq!(refused("capture path len 16385", false).0, 17);
        assert_eq!(refused("capture path size 3", false).0, 13);
        let (at, message) = refused("capture res.hdr(server) len 3", true);
        assert_eq!(at, 24);
        assert!(message.contains("takes id"), "{message}");
        assert!(parse_http_response("capture res.hdr(server) id 0", &env(true)).is_ok());
    }

    #[test]
    fn capture_slots_are_numbered_per_frontend() {
        use crate::config::{FrontendLog, HeaderCapture};
        use crate::rules::{HttpRules, Rule};
        let mut log = FrontendLog::off();
        log.captures.push(HeaderCapture {
            name: "Host".into(),
            len: 20,
        });
        log.declared.request.push(8);
        let mut rules = HttpRules::default();
        for line in [
            "capture path id 1",
            "capture path len 5",
            "capture path id 2",
        ] {
            rules.request.push(Rule {
                action: request(line),
                cond: None,
            });
        }
        assert!(resolve_capture_slots(&mut log, &mut rules).is_ok());
        let slots: Vec<(usize, usize)> = rules
            .request
            .iter()
            .map(|r| match &r.action {
                RequestAction::Capture(c) => (c.slot, c.len),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(slots, [(1, 8), (2, 5), (2, 5)]);
        assert_eq!(log.declared.request, [8, 5]);
        // A response id past the slots.
        let mut log = FrontendLog::off();
        let mut rules = HttpRules::default();
        let e = env(true);
        let rule = parse_http_response("capture res.hdr(server) id 0", &e)
            .map_err(|(_, i)| i.message)
            .unwrap();
        rules.response.push(rule);
        let (message, hint) = resolve_capture_slots(&mut log, &mut rules).unwrap_err();
        assert!(message.contains("0 response capture slots"), "{message}");
        assert!(hint.contains("declare-capture"), "{hint}");
    }

    /// A backend's `id` rules keep their id (the routing frontend's slot)
    /// and the longest length; a `len` rule is refused.
    #[test]
    fn backend_captures_take_the_frontends_slots() {
        use crate::rules::{HttpRules, Rule};
        let mut rules = HttpRules::default();
        rules.request.push(Rule {
            action: request("capture path id 7"),
            cond: None,
        });
        let rule = parse_http_response("capture status id 2", &env(true))
            .map_err(|(_, i)| i.message)
            .unwrap();
        rules.response.push(rule);
        assert!(resolve_backend_capture_slots(&mut rules).is_ok());
        let RequestAction::Capture(c) = &rules.request[0].action else {
            unreachable!()
        };
        assert_eq!((c.slot, c.len), (7, MAX_CAPTURE_LEN));
        let ResponseAction::Capture(c) = &rules.response[0].action else {
            unreachable!()
        };
        assert_eq!((c.slot, c.len), (2, MAX_CAPTURE_LEN));
        rules.request.push(Rule {
            action: request("capture path len 3"),
            cond: None,
        });
        let (message, hint) = resolve_backend_capture_slots(&mut rules).unwrap_err();
        assert!(message.contains("len in a backend"), "{message}");
        assert!(hint.contains("declare-capture"), "{hint}");
    }
}
