//! Routing keywords: `http-request`/`http-response`, `balance`, `cookie`.

use super::keywords::*;
use super::*;
use crate::convert::lexer::Line;
use crate::convert::words;
use crate::convert::{Problem, Val};

impl State<'_> {
    pub(super) fn http_rule(&mut self, line: &Line, problems: &mut Vec<Problem>) {
        let kw = line.word(0);
        let action = line.word(1);
        if action == "use-service" && line.word(2) == "prometheus-exporter" {
            self.prometheus = Some(line.clone());
            return;
        }
        let supported = if kw == "http-request" {
            HTTP_REQUEST_ACTIONS
        } else {
            HTTP_RESPONSE_ACTIONS
        };
        // `sc-inc-gpc0(0)` carries its counter in the action's name.
        // `set-var(txn.x)`: the action's name is before its parenthesis.
        let name = action.split('(').next().unwrap_or_default();
        if !supported.contains(&name) {
            problems.push(line.problem(
                format!("percore has no {kw} {action}"),
                format!("percore's {kw} actions: {}", supported.join(", ")),
            ));
            return;
        }
        let rule = words::join(&line.words[1..]);
        let side = self.rules_side();
        self.add(side, pushed(&[&kw], Val::str(rule), line), problems);
    }

    /// `tcp-request inspect-delay|connection|content ...`: percore's list
    /// takes the line without its keyword, on frontends.
    pub(super) fn tcp_rule(&mut self, line: &Line, problems: &mut Vec<Problem>) {
        let kind = line.word(1);
        let action = line.word(2);
        let stick = ["track-sc0", "track-sc1", "track-sc2"].contains(&action.as_str())
            || action.starts_with("sc-inc-gpc0(")
            || action.starts_with("sc-set-gpt0(");
        // `set-var(sess.x) <expr>` in connection and content rules.
        let var_action = action.contains('(')
            && matches!(
                action.split('(').next().unwrap_or_default(),
                "set-var" | "set-var-fmt" | "unset-var"
            );
        let supported = match kind.as_str() {
            "inspect-delay" => true,
            "connection" => {
                matches!(action.as_str(), "accept" | "reject")
                    || stick
                    || (action == "expect-proxy" && line.word(3) == "layer4")
                    || var_action
            }
            "content" => matches!(action.as_str(), "accept" | "reject") || stick || var_action,
            _ => false,
        };
        if !supported {
            problems.push(line.problem(
                format!("percore has no tcp-request {kind} {action}"),
                "percore's tcp-request rules: inspect-delay, connection accept|reject|expect-proxy \
                 layer4|track-sc0..2|sc-inc-gpc0|sc-set-gpt0|set-var|set-var-fmt|unset-var, \
                 content accept|reject|track-sc0..2|sc-inc-gpc0|sc-set-gpt0|set-var|set-var-fmt|unset-var",
            ));
            return;
        }
        if self.kind == Kind::Backend {
            problems.push(line.problem(
                "percore's tcp-request rules are on frontends",
                "move the rule to the frontends that route here",
            ));
            return;
        }
        let rule = words::join(&line.words[1..]);
        self.add(
            Side::Front,
            pushed(&["tcp-request"], Val::str(rule), line),
            problems,
        );
    }

    /// `stick-table <def>` (the table keeps its section's name) and
    /// `stick on|match|store-request|store-response ...` (backends).
    pub(super) fn stick(&mut self, line: &Line, problems: &mut Vec<Problem>) {
        let rest = words::join(&line.words[1..]);
        if line.word(0) == "stick-table" {
            // A listen section's table goes to its frontend, where its
            // track-sc rules find it by default.
            let side = self.rules_side();
            self.add(
                side,
                entry(&["stick-table"], Val::str(rest), line),
                problems,
            );
            return;
        }
        if self.kind == Kind::Frontend {
            problems.push(line.problem(
                "stick rules belong to backends",
                "move the line to the backend whose servers it chooses",
            ));
            return;
        }
        let mut rule = line.words[1..].to_vec();
        let named = rule.iter().any(|w| w.as_slice() == b"table");
        if self.kind == Kind::Listen && !named {
            // The table is on the listen's frontend half: name it, before
            // the condition.
            let at = rule
                .iter()
                .position(|w| w.as_slice() == b"if" || w.as_slice() == b"unless")
                .unwrap_or(rule.len());
            rule.splice(at..at, [b"table".to_vec(), self.name.clone().into_bytes()]);
        }
        let rule = words::join(&rule);
        self.add(
            Side::Back,
            pushed(&["stick"], Val::str(rule), line),
            problems,
        );
    }

    pub(super) fn balance(&mut self, line: &Line, problems: &mut Vec<Problem>) {
        let algo = line.word(1);
        let rest: Vec<String> = (2..line.len()).map(|i| line.word(i)).collect();
        let value = match algo.as_str() {
            "roundrobin" | "static-rr" | "leastconn" | "first" | "source" if rest.is_empty() => {
                Some(algo.clone())
            }
            a if a == "random" || a.starts_with("random(") => Some(algo.clone()),
            "uri" => Some(
                std::iter::once(algo.clone())
                    .chain(rest)
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            "url_param" => {
                if line.len() > 3 {
                    problems.push(line.problem(
                        "percore hashes the query parameter only (no check_post)",
                        format!("balance url_param {}", line.word(2)),
                    ));
                }
                Some(format!("url_param {}", line.word(2)))
            }
            a if a.starts_with("hdr(") => {
                if !rest.is_empty() {
                    problems.push(line.problem(
                        "percore has no balance hdr() use_domain_only",
                        format!("balance {a}"),
                    ));
                }
                Some(algo.clone())
            }
            _ => None,
        };
        match value {
            Some(v) => self.add(Side::Back, entry(&["balance"], Val::str(v), line), problems),
            None => problems.push(line.problem(
                format!("percore has no balance {}", line.word(1)),
                "roundrobin, static-rr, leastconn, first, source, random, uri, url_param, hdr()",
            )),
        }
    }

    pub(super) fn cookie(&mut self, line: &Line, problems: &mut Vec<Problem>) {
        let mut kept = vec![line.word(1)];
        let mut has_mode = false;
        let mut i = 2;
        while i < line.len() {
            let w = line.word(i);
            match w.as_str() {
                "insert" | "rewrite" | "prefix" => {
                    has_mode = true;
                    kept.push(w);
                }
                "indirect" | "nocache" => kept.push(w),
                other => {
                    problems.push(line.problem(
                        format!("percore has no cookie option `{other}`"),
                        "cookie <name> insert|rewrite|prefix [indirect] [nocache]",
                    ));
                    if matches!(other, "domain" | "maxidle" | "maxlife" | "attr") {
                        i += 1;
                    }
                }
            }
            i += 1;
        }
        if !has_mode {
            problems.push(line.problem(
                "percore needs the cookie mode (HAProxy's passive mode has no equivalent)",
                "cookie <name> insert|rewrite|prefix",
            ));
            return;
        }
        self.add(
            Side::Back,
            entry(&["cookie"], Val::str(kept.join(" ")), line),
            problems,
        );
    }
}
