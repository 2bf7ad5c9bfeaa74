//! `global.stats-socket`: the runtime API sockets (HAProxy `stats socket
//! <path> [mode <octal>] [level user|operator|admin]`). A bare string is a
//! socket at that path with HAProxy's defaults (umask's mode, level
//! `user`); a table spells the options; a list declares several.

use std::path::PathBuf;

use super::error::{Diagnostics, Reported};
use super::model::{CliLevel, StatsSocket};
use super::reader::Node;
use super::sections::keyword;

const SOCKET_KEYS: &[&str] = &["path", "mode", "level"];
const LEVELS: [(&str, CliLevel); 3] = [
    ("user", CliLevel::User),
    ("operator", CliLevel::Operator),
    ("admin", CliLevel::Admin),
];
/// `sun_path` holds 108 bytes including the terminating NUL.
const MAX_SOCKET_PATH: usize = 107;
const SOCKET_HINT: &str = "stats-socket = \"/run/percore/admin.sock\", or \
     { path = \"/run/percore/admin.sock\", mode = \"660\", level = \"admin\" }, or a list of these";

pub(crate) fn read_stats_sockets(
    diag: &mut Diagnostics<'_>,
    node: Option<Node<'_>>,
) -> Vec<StatsSocket> {
    let elements = super::observe::one_or_many(diag, node);
    let mut sockets: Vec<StatsSocket> = Vec::new();
    for element in &elements {
        let Some(socket) = read_socket(diag, element) else {
            continue;
        };
        if sockets.iter().any(|s| s.path == socket.path) {
            diag.error(
                element.span.as_ref(),
                &element.path,
                format!("stats socket {} is declared twice", socket.path.display()),
                Some("each socket path may appear once".into()),
            );
            continue;
        }
        sockets.push(socket);
    }
    sockets
}

fn read_socket(diag: &mut Diagnostics<'_>, node: &Node<'_>) -> Option<StatsSocket> {
    let (path_node, table) = if node.is_string() {
        (node.clone(), None)
    } else if node.is_table() {
        let table = node.table(diag).ok()?;
        table.check_keys(diag, SOCKET_KEYS);
        let Some(path) = table.get("path") else {
            diag.error(
                table.span.as_ref(),
                &table.path,
                "stats socket has no path",
                Some(SOCKET_HINT.into()),
            );
            return None;
        };
        (path, Some(table))
    } else {
        diag.error(
            node.span.as_ref(),
            &node.path,
            format!(
                "expected a socket path or a table, found {}",
                node.describe()
            ),
            Some(SOCKET_HINT.into()),
        );
        return None;
    };
    let path = path_node.string(diag).ok()?;
    let mut failed = false;
    if path.value.is_empty() || path.value.len() > MAX_SOCKET_PATH || path.value.contains('\0') {
        diag.error(
            path.span.as_ref(),
            &path_node.path,
            format!(
                "stats socket path {:?} is not a usable unix socket path",
                path.value
            ),
            Some(format!(
                "1 to {MAX_SOCKET_PATH} bytes (the kernel's limit for unix socket paths)"
            )),
        );
        failed = true;
    }
    let mut socket = StatsSocket {
        path: PathBuf::from(&path.value),
        mode: None,
        level: CliLevel::User,
    };
    if let Some(table) = table {
        if let Some(n) = table.get("level") {
            match keyword(diag, &n, "stats socket level", &LEVELS) {
                Ok(level) => socket.level = level,
                Err(Reported) => failed = true,
            }
        }
        if let Some(n) = table.get("mode") {
            match read_mode(diag, &n) {
                Ok(mode) => socket.mode = Some(mode),
                Err(Reported) => failed = true,
            }
        }
    }
    (!failed).then_some(socket)
}

const MODE_HINT: &str = "an octal permission string as in HAProxy, such as \"660\" or \"0600\"";

/// HAProxy reads `mode` as octal text; a TOML integer is taken as the
/// permission bits themselves (`0o660`).
fn read_mode(diag: &mut Diagnostics<'_>, node: &Node<'_>) -> Result<u32, Reported> {
    let parsed = if node.is_integer() {
        let n = node.integer(diag)?;
        u32::try_from(n.value).ok().filter(|&m| m <= 0o7777)
    } else {
        let text = node.string(diag)?.value;
        u32::from_str_radix(&text, 8)
            .ok()
            .filter(|&m| m <= 0o7777 && !text.is_empty())
    };
    parsed.ok_or_else(|| {
        diag.error(
            node.span.as_ref(),
            &node.path,
            format!("invalid stats socket mode {}", node.describe()),
            Some(MODE_HINT.into()),
        )
    })
}
