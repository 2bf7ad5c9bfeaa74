//! What maps to what, and what does not: HAProxy keywords in tables.

use super::Side;

pub(super) const TIMEOUTS: [(&str, Side); 9] = [
    ("client", Side::Front),
    ("http-request", Side::Front),
    ("http-keep-alive", Side::Front),
    ("connect", Side::Back),
    ("server", Side::Back),
    ("tunnel", Side::Back),
    ("queue", Side::Back),
    ("check", Side::Back),
    ("tarpit", Side::Both),
];

// What percore's configuration accepts, from the tables its parser uses:
// a line is converted exactly when percore would load it.
pub(super) use crate::config::rule_tables::{
    HTTP_CHECK_ACTIONS, HTTP_REQUEST_ACTIONS, HTTP_RESPONSE_ACTIONS, TCP_CHECK_ACTIONS,
};

/// Keywords with no percore equivalent yet, and what to do instead.
pub(super) const UNMAPPED: &[(&str, &str)] = &[
    ("tcp-response", "percore has no tcp-response rules"),
    (
        "reqrep",
        "removed in HAProxy 2.1: write http-request replace-header / set-path",
    ),
    (
        "reqirep",
        "removed in HAProxy 2.1: write http-request replace-header / set-path",
    ),
    (
        "reqadd",
        "removed in HAProxy 2.1: write http-request add-header",
    ),
    (
        "reqdel",
        "removed in HAProxy 2.1: write http-request del-header",
    ),
    (
        "reqidel",
        "removed in HAProxy 2.1: write http-request del-header",
    ),
    ("reqdeny", "removed in HAProxy 2.1: write http-request deny"),
    (
        "reqallow",
        "removed in HAProxy 2.1: write http-request allow",
    ),
    (
        "rsprep",
        "removed in HAProxy 2.1: write http-response replace-header",
    ),
    (
        "rspadd",
        "removed in HAProxy 2.1: write http-response add-header",
    ),
    (
        "rspdel",
        "removed in HAProxy 2.1: write http-response del-header",
    ),
    ("block", "removed in HAProxy 2.1: write http-request deny"),
    (
        "compression",
        "percore does not compress; let the servers do it",
    ),
    (
        "monitor-uri",
        "write http-request return status 200 if { path <uri> }",
    ),
    (
        "use-server",
        "percore has no use-server; route to a backend holding that server",
    ),
    (
        "fullconn",
        "percore has no dynamic maxconn (minconn/fullconn)",
    ),
    ("server-template", "write the servers out one by one"),
    ("filter", "percore has no filters"),
    ("http-after-response", "write http-response rules"),
    ("errorloc", "write an errorfile with a Location field"),
    ("errorloc302", "write an errorfile with a Location field"),
    ("errorloc303", "write an errorfile with a Location field"),
    ("errorfiles", "write one errorfile line per status"),
    ("http-error", "write an errorfile"),
    (
        "source",
        "percore connects from the address the kernel picks",
    ),
    ("description", "percore has no proxy descriptions"),
    ("id", "percore numbers proxies itself"),
    (
        "hash-balance-factor",
        "percore has no bounded-load consistent hashing",
    ),
    (
        "email-alert",
        "percore sends no e-mail; watch the [WARNING] lines",
    ),
    ("contimeout", "removed from HAProxy: write timeout connect"),
    ("clitimeout", "removed from HAProxy: write timeout client"),
    ("srvtimeout", "removed from HAProxy: write timeout server"),
];

pub(super) const OPTION_HINTS: &[(&str, &str)] = &[
    (
        "httpclose",
        "the nearest is option http-server-close (percore keeps the client side alive)",
    ),
    ("ssl-hello-chk", "write the exchange as tcp-check lines"),
    ("mysql-check", "write the exchange as tcp-check lines"),
    ("pgsql-check", "write the exchange as tcp-check lines"),
    (
        "redis-check",
        "write it as tcp-check: send PING\\r\\n, expect string +PONG",
    ),
    ("smtpchk", "write the exchange as tcp-check lines"),
    ("ldap-check", "write the exchange as tcp-check lines"),
    (
        "splice-auto",
        "percore splices tunnels unless tune.splice = false (global)",
    ),
    (
        "splice-request",
        "percore splices tunnels unless tune.splice = false (global)",
    ),
    (
        "splice-response",
        "percore splices tunnels unless tune.splice = false (global)",
    ),
    (
        "log-health-checks",
        "percore logs every state change, not every check",
    ),
];

/// Server options that take one argument (HAProxy 2.6), to skip the
/// argument of those percore does not support.
pub(super) const SERVER_ARG_OPTIONS: &[&str] = &[
    "agent-addr",
    "agent-inter",
    "agent-port",
    "agent-send",
    "alpn",
    "ca-file",
    "check-alpn",
    "check-proto",
    "check-sni",
    "ciphers",
    "ciphersuites",
    "cookie",
    "crl-file",
    "crt",
    "downinter",
    "error-limit",
    "fall",
    "fastinter",
    "hash-key",
    "id",
    "init-addr",
    "inter",
    "log-proto",
    "max-reuse",
    "maxconn",
    "maxqueue",
    "minconn",
    "namespace",
    "npn",
    "observe",
    "on-error",
    "on-marked-down",
    "on-marked-up",
    "pool-low-conn",
    "pool-max-conn",
    "pool-purge-delay",
    "port",
    "proto",
    "proxy-v2-options",
    "redir",
    "resolve-net",
    "resolve-opts",
    "resolve-prefer",
    "resolvers",
    "rise",
    "shard",
    "slowstart",
    "sni",
    "socks4",
    "source",
    "ssl-max-ver",
    "ssl-min-ver",
    "tcp-ut",
    "track",
    "usesrc",
    "verify",
    "verifyhost",
    "weight",
    "ws",
    "addr",
    "set-proxy-v2-tlv-fmt",
];

/// Bind options that take one argument.
pub(super) const BIND_ARG_OPTIONS: &[&str] = &[
    "alpn",
    "backlog",
    "ca-file",
    "ca-sign-file",
    "ca-sign-pass",
    "ca-verify-file",
    "ciphers",
    "ciphersuites",
    "client-sigalgs",
    "crl-file",
    "crt",
    "crt-list",
    "curves",
    "ecdhe",
    "expose-fd",
    "gid",
    "group",
    "id",
    "interface",
    "label",
    "level",
    "maxconn",
    "mode",
    "mss",
    "name",
    "namespace",
    "nice",
    "npn",
    "process",
    "proto",
    "severity-output",
    "shards",
    "sigalgs",
    "ssl-max-ver",
    "ssl-min-ver",
    "tcp-ut",
    "thread",
    "tls-ticket-keys",
    "uid",
    "user",
    "verify",
    "accept-netscaler-cip",
];

/// Server options percore reads: HAProxy keyword → (percore key, kind).
#[derive(Clone, Copy)]
pub(super) enum Arg {
    Flag,
    Int,
    Text,
}
pub(super) const SERVER_OPTIONS: &[(&str, &str, Arg)] = &[
    ("weight", "weight", Arg::Int),
    ("maxconn", "maxconn", Arg::Int),
    ("backup", "backup", Arg::Flag),
    ("disabled", "disabled", Arg::Flag),
    ("cookie", "cookie", Arg::Text),
    ("check", "check", Arg::Flag),
    ("inter", "inter", Arg::Text),
    ("fastinter", "fastinter", Arg::Text),
    ("downinter", "downinter", Arg::Text),
    ("rise", "rise", Arg::Int),
    ("fall", "fall", Arg::Int),
    ("port", "port", Arg::Int),
    ("addr", "check-addr", Arg::Text),
    ("observe", "observe", Arg::Text),
    ("error-limit", "error-limit", Arg::Int),
    ("on-error", "on-error", Arg::Text),
    ("ssl", "ssl", Arg::Flag),
    ("verify", "verify", Arg::Text),
    ("ca-file", "ca-file", Arg::Text),
    ("crt", "crt", Arg::Text),
];
