//! `http-request` / `http-response` actions added after the first rule
//! set (issue #18): `set-method`, `return` and `redirect` on responses,
//! the cookie and slash options of `redirect`. Each parser reads the words
//! after the action name and leaves the condition to `finish`.

use super::{err, parse_format, Env, Parsed, Words};
use crate::rules::edit::is_method_token;
use crate::rules::{HeaderEdit, Part, Redirect, RedirectCookie, RedirectTarget};

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
    use crate::rules::{HeaderEdit, RedirectCookie, RequestAction, ResponseAction};

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
}
