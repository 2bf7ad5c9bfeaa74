//! What a server connection starts with, as servers and `default-server`
//! tables set it: the PROXY protocol keys `send-proxy`, `send-proxy-v2`
//! (HAProxy's server options of the same names) and `check-send-proxy`,
//! and `proto` (HAProxy's server `proto h2`: the HTTP/2 preface), listed
//! with the `default-server` keys (`health_read::DEFAULT_SERVER_KEYS`).
//! (`accept-proxy` and a bind's `proto` are bind options, read with the
//! binds.)

use super::error::{Diagnostics, Reported};
use super::model::{SendProxy, ServerProto};
use super::reader::TableView;
use super::sections::optional;

/// The keys as written in one place; `None` = not written there.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProxySettings {
    /// `Some(None)`: written and off.
    send: Option<Option<SendProxy>>,
    check_send: Option<bool>,
    proto: Option<ServerProto>,
}

impl ProxySettings {
    /// The `default-server` table of a `[defaults]` or `[[backend]]`
    /// section (its keys are checked with the check keys).
    pub(crate) fn read_default_server(diag: &mut Diagnostics<'_>, section: &TableView<'_>) -> Self {
        match section.get("default-server").map(|n| n.table(diag)) {
            Some(Ok(table)) => Self::read(diag, &table),
            _ => ProxySettings::default(),
        }
    }

    /// `send-proxy-v2 = true` and `send-proxy = true` in one place is a
    /// contradiction; `false` for either turns off what a
    /// `default-server` set.
    pub(crate) fn read(diag: &mut Diagnostics<'_>, table: &TableView<'_>) -> Self {
        let flag = |diag: &mut Diagnostics<'_>, key: &str| {
            optional(table, key, |n| n.bool(diag))
                .ok()
                .flatten()
                .map(|l| l.value)
        };
        let v1 = flag(diag, "send-proxy");
        let v2 = flag(diag, "send-proxy-v2");
        let send = match (v1, v2) {
            (Some(true), Some(true)) => {
                if let Some(node) = table.get("send-proxy-v2") {
                    diag.error(
                        node.span.as_ref(),
                        &node.path,
                        "send-proxy and send-proxy-v2 are both set",
                        Some(
                            "a server connection starts with one PROXY header: keep one of them"
                                .into(),
                        ),
                    );
                }
                None
            }
            (_, Some(true)) => Some(Some(SendProxy::V2)),
            (Some(true), _) => Some(Some(SendProxy::V1)),
            (None, None) => None,
            _ => Some(None),
        };
        ProxySettings {
            send,
            check_send: flag(diag, "check-send-proxy"),
            proto: read_proto(diag, table),
        }
    }

    pub(crate) fn over(&self, base: &ProxySettings) -> ProxySettings {
        ProxySettings {
            send: self.send.or(base.send),
            check_send: self.check_send.or(base.check_send),
            proto: self.proto.or(base.proto),
        }
    }

    /// What a server's traffic starts with.
    pub(crate) fn send(&self) -> Option<SendProxy> {
        self.send.flatten()
    }

    /// The protocol its traffic speaks (health checks stay HTTP/1).
    pub(crate) fn proto(&self) -> ServerProto {
        self.proto.unwrap_or_default()
    }

    /// What its health checks start with. HAProxy: checks send the
    /// header when the traffic does and the check goes to the server's
    /// own address and port (`check_elsewhere` false), or always with
    /// `check-send-proxy` (in the server's version, v1 if it has none).
    pub(crate) fn check(&self, check_elsewhere: bool) -> Option<SendProxy> {
        let forced = self.check_send == Some(true);
        match self.send() {
            Some(v) if forced || !check_elsewhere => Some(v),
            None if forced => Some(SendProxy::V1),
            _ => None,
        }
    }
}

/// A server's `proto`: `"h2"` (HTTP/2 with prior knowledge, or by ALPN
/// over `ssl`) or `"h1"`; `None` when not written (or wrong: reported).
fn read_proto(diag: &mut Diagnostics<'_>, table: &TableView<'_>) -> Option<ServerProto> {
    let node = table.get("proto")?;
    let value = node.string(diag).ok()?.value;
    match value.as_str() {
        "h2" => Some(ServerProto::H2),
        "h1" => Some(ServerProto::Http1),
        other => {
            diag.error(
                node.span.as_ref(),
                &node.path,
                format!("unknown server proto \"{other}\""),
                Some("use \"h2\" (HTTP/2 to this server) or \"h1\" (HTTP/1.1)".into()),
            );
            None
        }
    }
}

/// Reads a server's keys over the inherited ones.
pub(crate) fn read_server_proxy(
    diag: &mut Diagnostics<'_>,
    server: &TableView<'_>,
    inherited: &ProxySettings,
) -> Result<ProxySettings, Reported> {
    let errors = diag.errors.len();
    let own = ProxySettings::read(diag, server);
    if diag.errors.len() > errors {
        return Err(Reported);
    }
    Ok(own.over(inherited))
}
