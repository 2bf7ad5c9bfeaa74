//! The request body fetches of the rule language: `req.body`,
//! `req.body_len`, `req.body_size`, `req.body_param([<name>[,i]])`.
//! They read what `option http-buffer-request` waited for (HAProxy's
//! grammar and semantics; `crate::rules::body_fetch`).

use super::{err, Env, Parsed};
use crate::rules::body_fetch::BodyFetch;
use crate::rules::Fetch;

pub(super) fn parse_body_fetch(
    at: usize,
    name: &str,
    args: &[&str],
    env: &Env<'_>,
) -> Parsed<Fetch> {
    if env.response {
        return err(
            at,
            format!("`{name}` is a request fetch"),
            "use it in http-request rules (with http-buffer-request = true)",
        );
    }
    let args: Vec<&str> = args.iter().map(|a| a.trim()).collect();
    let fetch = match name {
        "req.body_param" => match args.as_slice() {
            [] => BodyFetch::Param {
                name: None,
                ignore_case: false,
            },
            [n] if !n.is_empty() => BodyFetch::Param {
                name: Some((*n).into()),
                ignore_case: false,
            },
            [n, "i"] if !n.is_empty() => BodyFetch::Param {
                name: Some((*n).into()),
                ignore_case: true,
            },
            _ => {
                return err(
                    at,
                    format!("`{name}`: bad arguments `{}`", args.join(",")),
                    "write req.body_param, req.body_param(<name>) or req.body_param(<name>,i)",
                )
            }
        },
        _ if !args.is_empty() => {
            return err(
                at,
                format!("`{name}` takes no argument"),
                format!("write {name} alone"),
            )
        }
        "req.body" => BodyFetch::Body,
        "req.body_len" => BodyFetch::Len,
        _ => BodyFetch::Size,
    };
    Ok(Fetch::Body(fetch))
}
