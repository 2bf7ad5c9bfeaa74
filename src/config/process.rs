//! `[global]` keys about the process itself: `user`, `group`, `chroot`,
//! `setcap`, `pidfile` (HAProxy's keywords of the same names).
//!
//! Read here for their shape only. Whether the user exists, the directory
//! is one, or the pidfile's directory is there, is checked at start-up by
//! `runtime::privileges`, with the [`Origin`] kept here for the message:
//! a reload runs as the unprivileged user, possibly inside the chroot,
//! where those checks would fail for a file that is correct.

use std::path::PathBuf;

use super::error::{Diagnostics, Reported};
use super::model::{Account, Capability, Origin, Process, Written};
use super::reader::{Node, TableView};

/// HAProxy 2.9's `setcap` names and the capability numbers of
/// `linux/capability.h`.
pub const CAPABILITIES: &[(&str, Capability)] = &[
    ("cap_net_bind_service", Capability(10)),
    ("cap_net_admin", Capability(12)),
    ("cap_net_raw", Capability(13)),
];

const ACCOUNT_HINT: &str = "a name from the system's user or group database, such as \"percore\", \
     or a numeric id such as 65534";
const SETCAP_HINT: &str =
    "setcap = \"cap_net_bind_service\" (several: comma-separated or a list); known: \
     cap_net_bind_service, cap_net_admin, cap_net_raw";

pub(crate) fn read_process(diag: &mut Diagnostics<'_>, table: &TableView<'_>) -> Process {
    let mut process = Process::default();
    if let Some(node) = table.get("user") {
        process.user = read_account(diag, &node, "user");
    }
    if let Some(node) = table.get("group") {
        process.group = read_account(diag, &node, "group");
    }
    if let Some(node) = table.get("chroot") {
        process.chroot = read_path(diag, &node, "chroot directory");
    }
    if let Some(node) = table.get("pidfile") {
        process.pidfile = read_path(diag, &node, "pidfile");
    }
    if let Some(node) = table.get("setcap") {
        process.setcap = read_setcap(diag, &node).unwrap_or_default();
    }
    process
}

impl Process {
    /// The keys whose values differ from `other`'s (where they were
    /// written does not count): a reload cannot apply them.
    pub fn changed_keys(&self, other: &Process) -> Vec<&'static str> {
        fn value<T>(w: &Option<Written<T>>) -> Option<&T> {
            w.as_ref().map(|w| &w.value)
        }
        [
            ("user", value(&self.user) != value(&other.user)),
            ("group", value(&self.group) != value(&other.group)),
            ("chroot", value(&self.chroot) != value(&other.chroot)),
            ("pidfile", value(&self.pidfile) != value(&other.pidfile)),
            ("setcap", self.setcap != other.setcap),
        ]
        .into_iter()
        .filter_map(|(key, changed)| changed.then_some(key))
        .collect()
    }
}

fn origin(diag: &Diagnostics<'_>, node: &Node<'_>) -> Origin {
    Origin(diag.locate(node.span.as_ref(), &node.path, String::new(), None))
}

/// A name, a numeric id written as an integer, or digits in a string
/// (HAProxy has `uid`/`gid` for those; one key reads better in TOML).
fn read_account(
    diag: &mut Diagnostics<'_>,
    node: &Node<'_>,
    what: &str,
) -> Option<Written<Account>> {
    let account = if node.is_integer() {
        let id = node
            .integer_in::<u32>(diag, 0..=i64::from(u32::MAX - 1))
            .ok()?;
        Account::Id(id.value)
    } else if node.is_string() {
        let text = node.string(diag).ok()?.value;
        if text.is_empty() || text.contains(['\0', ':', '\n']) {
            diag.error(
                node.span.as_ref(),
                &node.path,
                format!("{text:?} is not a usable {what} name"),
                Some(ACCOUNT_HINT.into()),
            );
            return None;
        }
        match text.parse::<u32>() {
            Ok(id) if id != u32::MAX => Account::Id(id),
            _ => Account::Name(text),
        }
    } else {
        diag.error(
            node.span.as_ref(),
            &node.path,
            format!("expected a {what} name or id, found {}", node.describe()),
            Some(ACCOUNT_HINT.into()),
        );
        return None;
    };
    Some(Written {
        value: account,
        at: origin(diag, node),
    })
}

fn read_path(diag: &mut Diagnostics<'_>, node: &Node<'_>, what: &str) -> Option<Written<PathBuf>> {
    let text = node.string(diag).ok()?.value;
    if text.is_empty() || text.contains('\0') {
        diag.error(
            node.span.as_ref(),
            &node.path,
            format!("{text:?} is not a usable {what} path"),
            Some("an absolute path such as \"/var/empty\"".into()),
        );
        return None;
    }
    Some(Written {
        value: PathBuf::from(text),
        at: origin(diag, node),
    })
}

/// `"cap_net_bind_service,cap_net_admin"` as HAProxy writes it, or a list.
fn read_setcap(diag: &mut Diagnostics<'_>, node: &Node<'_>) -> Result<Vec<Capability>, Reported> {
    let mut names: Vec<(String, Node<'_>)> = Vec::new();
    if node.is_array() {
        for element in node.array(diag)? {
            let text = element.string(diag)?.value;
            names.push((text, element));
        }
    } else {
        let text = node.string(diag)?.value;
        for name in text.split(',') {
            names.push((name.trim().to_string(), node.clone()));
        }
    }
    let mut caps: Vec<Capability> = Vec::new();
    let mut failed = None;
    for (name, at) in names {
        match CAPABILITIES
            .iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(&name))
        {
            Some((_, cap)) if !caps.contains(cap) => caps.push(*cap),
            Some(_) => {}
            None => {
                failed = Some(diag.error(
                    at.span.as_ref(),
                    &at.path,
                    format!("unknown or unsupported capability {name:?}"),
                    Some(SETCAP_HINT.into()),
                ));
            }
        }
    }
    failed.map_or(Ok(caps), Err)
}

#[cfg(test)]
mod tests {
    use crate::config::{load_with, Account, Capability};
    use std::path::Path;

    fn global(extra: &str) -> Result<crate::config::Config, crate::config::ConfigErrors> {
        let text = format!(
            "[global]\nthreads = 1\n{extra}\n\n[[frontend]]\nname = \"fe\"\nbind = [\"127.0.0.1:1\"]\n\
             default_backend = \"be\"\nmode = \"tcp\"\ntimeout = {{ client = \"1s\" }}\n\n\
             [[backend]]\nname = \"be\"\nmode = \"tcp\"\n\
             timeout = {{ connect = \"1s\", server = \"1s\" }}\n\
             servers = [{{ name = \"s\", addr = \"127.0.0.1:2\" }}]\n"
        );
        load_with(&text, Path::new("p.toml"), &[0], &|_, _| {
            Err(std::io::Error::other("no DNS in unit tests"))
        })
    }

    #[test]
    fn names_and_ids_are_read_with_their_place() {
        let config = global(
            "user = \"nobody\"\ngroup = 65534\nchroot = \"/var/empty\"\npidfile = \"/run/p.pid\"\n\
             setcap = \"cap_net_bind_service, CAP_NET_RAW\"",
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let p = &config.global.process;
        let user = p.user.as_ref().expect("user");
        assert_eq!(user.value, Account::Name("nobody".into()));
        assert_eq!(
            user.at.error("x".into(), None).to_string(),
            "p.toml:3:8: global.user: x"
        );
        assert_eq!(
            p.group.as_ref().map(|g| &g.value),
            Some(&Account::Id(65534))
        );
        assert_eq!(p.setcap, vec![Capability(10), Capability(13)]);
        let digits = global("user = \"1000\"").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            digits.global.process.user.map(|u| u.value),
            Some(Account::Id(1000))
        );
    }

    #[test]
    fn bad_shapes_are_located_errors() {
        for (extra, column, needle) in [
            ("user = \"\"", 8, "not a usable user name"),
            ("group = true", 9, "expected a group name or id"),
            ("user = -1", 8, ""),
            ("chroot = \"\"", 10, "not a usable chroot directory path"),
            (
                "setcap = \"cap_sys_module\"",
                10,
                "unknown or unsupported capability",
            ),
            ("setcap = [\"cap_net_raw\", 3]", 26, ""),
        ] {
            let errors = global(extra).expect_err(extra);
            let first = &errors.0[0];
            assert_eq!(
                (first.line, first.column),
                (Some(3), Some(column)),
                "{first}"
            );
            assert!(first.message.contains(needle), "{first}");
        }
    }
}
