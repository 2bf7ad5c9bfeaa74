//! `set-var(<scope>.<name>) <expr>`, `set-var-fmt(<scope>.<name>)
//! <format>` and `unset-var(<scope>.<name>)` in `http-request`,
//! `http-response` and `tcp-request` rules.

use std::sync::Arc;

use super::rules_parse::conv::{parse_converters, split_chain};
use super::rules_parse::{parse_fetch, parse_format, Env, Located, Words};
use super::values::Invalid;
use crate::rules::convert_ops::ValType;
use crate::rules::vars::{SetVar, SetVarRef, VarName, VarValue};

type Parsed<T> = Result<T, Located>;

fn err<T>(at: usize, message: impl Into<String>, hint: impl Into<String>) -> Parsed<T> {
    Err((
        at,
        Invalid {
            message: message.into(),
            hint: Some(hint.into()),
        },
    ))
}

const HINT: &str = "write set-var(<scope>.<name>) <fetch>[,<converter>...], \
     set-var-fmt(<scope>.<name>) <format> or unset-var(<scope>.<name>); \
     scopes proc, sess, txn, req, res";

pub(super) fn is_var_action(action: &str) -> bool {
    ["set-var(", "set-var-fmt(", "unset-var("]
        .iter()
        .any(|p| action.starts_with(p))
}

pub(super) fn parse_set_var(
    at: usize,
    action: &str,
    words: &mut Words,
    env: &Env<'_>,
) -> Parsed<SetVarRef> {
    let Some((kind, rest)) = action.split_once('(') else {
        return err(at, format!("`{action}`: missing the variable"), HINT);
    };
    let Some(inner) = rest.strip_suffix(')') else {
        return err(at + action.len(), format!("`{action}`: missing `)`"), HINT);
    };
    if inner.contains(',') {
        return err(
            at + kind.len() + 1,
            format!(
                "`{action}`: set-var conditions (ifexists, ifgt...) are not supported by percore"
            ),
            HINT,
        );
    }
    let Some(var) = VarName::parse(inner) else {
        return err(
            at + kind.len() + 1,
            format!("`{inner}` is not a variable name"),
            HINT,
        );
    };
    let value = match kind {
        "unset-var" => None,
        _ => {
            let Some((vat, text)) = words.argument() else {
                return err(words.here(), format!("`{kind}` needs a value"), HINT);
            };
            Some(if kind == "set-var-fmt" {
                VarValue::Format(parse_format(vat, &text, env)?)
            } else {
                let pieces = split_chain(&text);
                let (fetch, suffix) = parse_fetch(vat, pieces[0].1.trim(), env)?;
                if suffix.is_some() {
                    return err(
                        vat,
                        format!("`{}` is a match, not a fetch", pieces[0].1),
                        "write the plain fetch, e.g. set-var(txn.p) path,lower",
                    );
                }
                let (converters, _) =
                    parse_converters(vat, &pieces[1..], ValType::of(fetch.sample_type()), env)?;
                VarValue::Expr { fetch, converters }
            })
        }
    };
    Ok(Arc::new(SetVar { var, value }))
}

#[cfg(test)]
mod tests {
    use super::super::rules_parse::{parse_tcp_request, TcpLine};
    use super::*;
    use crate::rules::vars::{Scope, Vars};
    use crate::rules::{ConnFacts, TcpRules};
    use std::path::Path;

    fn env() -> Env<'static> {
        Env {
            acls: &[],
            userlists: &[],
            base_dir: Path::new("."),
            backends: &[],
            response: false,
            payload: false,
            maps: Box::leak(Box::default()),
            servers: &[],
            frontends: &[],
            section: None,
            tables: &[],
            own_table: None,
        }
    }

    #[test]
    fn tcp_content_rules_set_variables_from_the_payload() {
        let mut rules = TcpRules::default();
        for line in [
            "content set-var(sess.first) req.payload(0,3),upper",
            "content set-var(txn.len) req.len",
            "content accept if { var(sess.first) -m str GET }",
            "content reject",
        ] {
            match parse_tcp_request(line, &env()) {
                Ok(TcpLine::Content(rule)) => rules.content.push(rule),
                other => panic!("{line}: {other:?}"),
            }
        }
        let conn = ConnFacts {
            src: "10.0.0.1:1".parse().unwrap(),
            dst: "10.0.0.2:2".parse().unwrap(),
            tls: None,
            pp: None,
            stick: Default::default(),
            vars: Default::default(),
            live: Default::default(),
            unique_id: Default::default(),
            captures: Default::default(),
            log_level: Default::default(),
            timeouts: Default::default(),
            early_hints: Default::default(),
        };
        let step = rules.content(0, &[], &conn, b"get / HTTP/1.0\r\n", true);
        assert!(matches!(
            step,
            crate::rules::tcp_request::ContentStep::Accept
        ));
        let first = VarName::parse("sess.first").unwrap();
        assert_eq!(
            conn.vars.get(&first, |s| format!("{s:?}")).as_deref(),
            Some("Str([71, 69, 84])")
        );
        let len = VarName::parse("txn.len").unwrap();
        assert!(conn.vars.get(&len, |_| ()).is_some());
        let conn2 = ConnFacts {
            vars: Default::default(),
            live: Default::default(),
            unique_id: Default::default(),
            captures: Default::default(),
            log_level: Default::default(),
            timeouts: Default::default(),
            early_hints: Default::default(),
            ..conn.clone()
        };
        let step = rules.content(0, &[], &conn2, b"POST", true);
        assert!(matches!(
            step,
            crate::rules::tcp_request::ContentStep::Reject
        ));
    }

    #[test]
    fn proc_variables_are_per_core() {
        let (a, b) = (Vars::default(), Vars::default());
        let p = VarName::parse("proc.x").unwrap();
        assert_eq!(p.scope, Scope::Proc);
        a.set(&p, crate::rules::vars::Stored::Int(7));
        // Another connection on the same core sees it...
        assert_eq!(b.get(&p, |s| format!("{s:?}")).as_deref(), Some("Int(7)"));
        // ...another core (thread) does not.
        let seen = std::thread::spawn(move || Vars::default().get(&p, |_| ()).is_some())
            .join()
            .unwrap();
        assert!(!seen);
    }
}
