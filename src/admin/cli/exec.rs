//! Running one runtime API command: resolve names, parse values, apply the
//! change on every core (over the core mesh) and word the answer as HAProxy
//! 2.6 does. Every answer is the text before the blank line that ends it.

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::Instant;

use super::command::{Kind, Spec};
use crate::admin::apply::{CoreAnswer, CoreRequest, ServerChange, ServerRef};
use crate::admin::render::{self, PageInfo, View};
use crate::admin::Collector;
use crate::config::{Balance, CliLevel, HashType};
use crate::shard::error_snapshot::{self, Direction, ErrorFilter, ErrorSnapshot};
use crate::shard::sessions::{self, SessionInfo};
use crate::shard::{CoreContext, Shard};

/// What the socket's core shares with every runtime API connection.
pub struct Cli {
    pub shard: Rc<Shard>,
    pub collector: Rc<Collector>,
    pub started: Instant,
    pub hostname: String,
    /// Local time for `show errors` dates.
    pub clock: crate::log::Clock,
    /// Lines refused for their length (logged with the running count).
    pub refused_lines: std::cell::Cell<u64>,
    /// The process's listening sockets, handed over by `_getsocks`.
    pub listeners: std::sync::Arc<crate::runtime::listener::ListenerRegistry>,
}

impl Cli {
    /// The generation commands see (the runtime API never acts on a
    /// retired one).
    fn ctx(&self) -> Rc<CoreContext> {
        self.shard.current()
    }
}

/// One connection's state.
pub struct Session {
    pub level: CliLevel,
    pub interactive: bool,
    pub quit: bool,
    /// `_getsocks` was accepted: the session's connection carries the
    /// listening sockets next ([`hand_over`]), then ends.
    pub hand_over: bool,
}

/// HAProxy's answers, word for word.
const REQUIRE_SERVER: &str = "Require 'backend/server'.\n";
const NO_BACKEND: &str = "No such backend.\n";
const NO_SERVER: &str = "No such server.\n";
const PERMISSION_DENIED: &str = "Permission denied\n";
/// HAProxy's `weight` bound.
const MAX_WEIGHT: u32 = 256;
/// The name HAProxy's messages give the runtime API as the author of a
/// change.
const BY: &str = "by 'stats socket command'";

pub async fn run(cli: &Cli, session: &mut Session, spec: &Spec, args: &[String]) -> String {
    if session.level < spec.level {
        return PERMISSION_DENIED.into();
    }
    let arg = |i: usize| args.get(i).map(String::as_str);
    // One command at a time across cores, and never during a reload
    // (which takes the same turn itself): names resolved here stay valid
    // until every core has applied the command.
    let _turn = if spec.kind == Kind::Reload {
        None
    } else {
        cli.collector.change_lock().await
    };
    match spec.kind {
        Kind::Help => super::command::help(args),
        Kind::Prompt => {
            session.interactive = !session.interactive;
            String::new()
        }
        Kind::Quit => {
            session.quit = true;
            String::new()
        }
        Kind::LowerToUser => {
            session.level = session.level.min(CliLevel::User);
            String::new()
        }
        Kind::LowerToOperator => {
            session.level = session.level.min(CliLevel::Operator);
            String::new()
        }
        Kind::Reload => {
            // HAProxy's master CLI answers `Success=1` or `Success=0`, a
            // `--` line, then the start-up messages of the new process.
            let outcome = crate::admin::reload::reload(&cli.shard, &cli.collector).await;
            let mut out = format!("Success={}\n--\n", u8::from(outcome.applied));
            for line in outcome.lines {
                out.push_str(&line);
                out.push('\n');
            }
            out
        }
        Kind::ShowCliLevel => format!("{}\n", session.level.name()),
        Kind::GetSocks => {
            session.hand_over = true;
            String::new()
        }
        Kind::ShowBackend => {
            let mut out = String::from("# name\n");
            for b in &cli.ctx().config.backends {
                out.push_str(&b.name);
                out.push('\n');
            }
            out
        }
        Kind::ShowServersState => {
            let config = &cli.ctx().config;
            let backends: Vec<usize> = match arg(0) {
                None => (0..config.backends.len()).collect(),
                Some(name) => match config.backends.iter().position(|b| b.name == name) {
                    Some(b) => vec![b],
                    None => return "Can't find backend.\n".into(),
                },
            };
            let (snapshot, _) = cli.collector.collect(&cli.shard).await;
            super::servers_state::render(config, &snapshot, &backends)
        }
        Kind::ShowStat => {
            let words: Vec<&str> = args.iter().map(String::as_str).collect();
            let cmd = match render::show_stat::ShowStat::parse(&words) {
                Ok(cmd) => cmd,
                Err(e) => return format!("{e}\n"),
            };
            let render = |view: &View<'_>| render::show_stat::show_stat(view, &cmd);
            with_view(cli, render)
                .await
                .unwrap_or_else(|e| format!("{e}\n"))
        }
        Kind::ShowInfo => {
            let words: Vec<&str> = args.iter().map(String::as_str).collect();
            let cmd = render::info::ShowInfo::parse(&words);
            with_view(cli, |view| render::info::show_info(view, cmd)).await
        }
        Kind::ShowSess => {
            let answers = cli
                .collector
                .ask_all(&cli.shard, CoreRequest::Sessions)
                .await;
            let all: Vec<SessionInfo> = answers
                .answers
                .into_iter()
                .flat_map(|a| match a {
                    CoreAnswer::Sessions(list) => list,
                    _ => Vec::new(),
                })
                .collect();
            sessions::render_show_sess(Instant::now(), &all, &cli.shard.configs())
        }
        Kind::ShowErrors => {
            let mut filter = ErrorFilter::default();
            for word in args.iter().take(2) {
                match word.as_str() {
                    "request" => filter.direction = Some(Direction::Request),
                    "response" => filter.direction = Some(Direction::Response),
                    "-1" if filter.proxy.is_none() => {}
                    name => match error_snapshot::proxy_iid(&cli.ctx().config, name) {
                        Some(iid) => filter.proxy = Some(iid),
                        None => return "No such proxy.\n".into(),
                    },
                }
            }
            let answers = cli.collector.ask_all(&cli.shard, CoreRequest::Errors).await;
            let cores: Vec<ErrorSnapshot> = answers
                .answers
                .into_iter()
                .filter_map(|a| match a {
                    CoreAnswer::Errors(e) => Some(*e),
                    _ => None,
                })
                .collect();
            error_snapshot::render_show_errors(
                std::time::SystemTime::now(),
                &cli.clock,
                &cores,
                &cli.ctx().config,
                &filter,
            )
        }
        Kind::ShutdownSession => {
            let Some(text) = arg(0) else {
                return "Session pointer expected (use 'show sess').\n".into();
            };
            let digits = text.strip_prefix("0x").unwrap_or(text);
            let Ok(uid) = u64::from_str_radix(digits, 16) else {
                return "No such session (use 'show sess').\n".into();
            };
            let answers = cli
                .collector
                .ask_all(&cli.shard, CoreRequest::ShutdownSession(uid))
                .await;
            if count(answers.answers) > 0 {
                String::new()
            } else {
                "No such session (use 'show sess').\n".into()
            }
        }
        Kind::ShutdownSessionsServer => match resolve_server(cli, arg(0)) {
            Err(e) => e.into(),
            Ok(at) => {
                cli.collector
                    .ask_all(
                        &cli.shard,
                        CoreRequest::ShutdownServerSessions {
                            backend: cli.ctx().config.backends[at.backend].name.clone(),
                            server: cli.ctx().config.backends[at.backend].servers[at.server]
                                .name
                                .clone(),
                        },
                    )
                    .await;
                String::new()
            }
        },
        Kind::GetWeight => match resolve_server(cli, arg(0)) {
            Err(e) => e.into(),
            Ok(at) => {
                let ctx = cli.ctx();
                let rt = ctx.backends[at.backend].borrow();
                format!(
                    "{} (initial {})\n",
                    rt.server_weight(at.server),
                    rt.server_initial_weight(at.server)
                )
            }
        },
        Kind::SetWeight => match resolve_server(cli, arg(0)) {
            Err(e) => e.into(),
            Ok(at) => set_weight(cli, at, arg(1)).await,
        },
        Kind::SetServer => match resolve_server(cli, arg(0)) {
            Err(e) => e.into(),
            Ok(at) => set_server(cli, at, &args[1..]).await,
        },
        Kind::DisableServer | Kind::EnableServer | Kind::DisableHealth | Kind::EnableHealth => {
            match resolve_server(cli, arg(0)) {
                Err(e) => e.into(),
                Ok(at) => {
                    let change = match spec.kind {
                        Kind::DisableServer => ServerChange::Maint,
                        Kind::EnableServer => ServerChange::Ready,
                        Kind::DisableHealth => ServerChange::ChecksOff(true),
                        _ => ServerChange::ChecksOff(false),
                    };
                    apply(cli, CoreRequest::Server(at, change)).await
                }
            }
        }
        Kind::SetMaxconnServer => match resolve_server(cli, arg(0)) {
            Err(e) => e.into(),
            Ok(at) => match arg(1) {
                None => "Require <maxconn>.\n".into(),
                Some(text) => match text.parse::<u32>() {
                    Ok(m) => apply(cli, CoreRequest::Server(at, ServerChange::Maxconn(m))).await,
                    Err(_) if text.starts_with('-') => "Value out of range.\n".into(),
                    Err(_) => "maxconn string empty or preceded by garbage\n".into(),
                },
            },
        },
        Kind::SetMaxconnFrontend => {
            let Some(name) = arg(0) else {
                return "A frontend name is expected.\n".into();
            };
            let Some(frontend) = cli
                .ctx()
                .config
                .frontends
                .iter()
                .position(|f| f.name == name)
            else {
                return "No such frontend.\n".into();
            };
            match arg(1).map(str::parse::<i64>) {
                None | Some(Err(_)) => "Integer value expected.\n".into(),
                Some(Ok(v)) => match u32::try_from(v) {
                    Ok(maxconn) => {
                        apply(cli, CoreRequest::FrontendMaxconn { frontend, maxconn }).await
                    }
                    Err(_) => "Value out of range.\n".into(),
                },
            }
        }
        Kind::ShowTable => super::stick_table::show(cli, args).await,
        Kind::ClearTable => super::stick_table::clear(cli, args).await,
        Kind::SetTable => super::stick_table::set(cli, args).await,
        Kind::ShowAcl => super::acls::show(&cli.ctx().config, args),
        Kind::PrepareAcl | Kind::PrepareMap => {
            let acl = spec.kind == Kind::PrepareAcl;
            match super::maps::prepare(&cli.ctx().config, args, acl) {
                Ok((request, ver)) => {
                    let failed = apply(cli, request).await;
                    if failed.is_empty() {
                        format!("New version created: {ver}\n")
                    } else {
                        failed
                    }
                }
                Err(message) => message,
            }
        }
        Kind::CommitAcl | Kind::CommitMap => {
            let acl = spec.kind == Kind::CommitAcl;
            match super::maps::commit(&cli.ctx().config, args, acl) {
                Ok(request) => apply(cli, request).await,
                Err(message) => message,
            }
        }
        Kind::GetAcl => super::lookup::get(&cli.ctx().config, args, true),
        Kind::GetMap => super::lookup::get(&cli.ctx().config, args, false),
        Kind::AddAcl | Kind::DelAcl | Kind::ClearAcl => {
            match super::acls::change(&cli.ctx().config, spec.kind, args) {
                Ok(request) => apply(cli, request).await,
                Err(message) => message,
            }
        }
        Kind::ShowMap => super::maps::show(&cli.ctx().config, args),
        Kind::AddMap | Kind::SetMap | Kind::DelMap | Kind::ClearMap => {
            match super::maps::change(&cli.ctx().config, spec.kind, args) {
                Ok(request) => apply(cli, request).await,
                Err(message) => message,
            }
        }
        Kind::ClearCounters => {
            let all = arg(0) == Some("all");
            if all && session.level < CliLevel::Admin {
                return PERMISSION_DENIED.into();
            }
            apply(cli, CoreRequest::ClearCounters { all }).await
        }
    }
}

/// `_getsocks` (binary upgrade): sends every listening socket of the
/// process on the session's connection `conn`
/// ([`crate::runtime::handover`]). Sends copies made under the registry's
/// lock, so that a core closing a listener meanwhile cannot invalidate a
/// descriptor being sent.
pub fn hand_over(cli: &Cli, conn: std::os::fd::BorrowedFd<'_>) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let sockets = cli.listeners.snapshot()?;
    let list: Vec<(SocketAddr, std::os::fd::RawFd)> = sockets
        .iter()
        .map(|(addr, fd)| (*addr, fd.as_raw_fd()))
        .collect();
    crate::runtime::handover::send_listeners(conn, &list)?;
    eprintln!(
        "[NOTICE] runtime API: {} listening socket(s) handed over ({})",
        list.len(),
        crate::runtime::handover::COMMAND
    );
    Ok(())
}

fn count(answers: Vec<CoreAnswer>) -> usize {
    answers
        .into_iter()
        .map(|a| match a {
            CoreAnswer::Count(n) => n,
            _ => 0,
        })
        .sum()
}

/// Renders from every core's merged counters, as the stats page does.
async fn with_view<T>(cli: &Cli, render: impl FnOnce(&View<'_>) -> T) -> T {
    let (snapshot, ctx) = cli.collector.collect(&cli.shard).await;
    let info = PageInfo::now(
        cli.started,
        ctx.core_count,
        cli.hostname.clone(),
        &ctx.config,
    );
    render(&View {
        config: &ctx.config,
        snapshot: &snapshot,
        info: &info,
    })
}

/// `<backend>/<server>` to typed ids, with HAProxy's messages.
fn resolve_server(cli: &Cli, arg: Option<&str>) -> Result<ServerRef, &'static str> {
    let (backend, server) = arg
        .and_then(|a| a.split_once('/'))
        .filter(|(b, s)| !b.is_empty() && !s.is_empty())
        .ok_or(REQUIRE_SERVER)?;
    let config = &cli.ctx().config;
    let b = config
        .backends
        .iter()
        .position(|be| be.name == backend)
        .ok_or(NO_BACKEND)?;
    let s = config.backends[b]
        .servers
        .iter()
        .position(|srv| srv.name == server)
        .ok_or(NO_SERVER)?;
    Ok(ServerRef {
        backend: b,
        server: s,
    })
}

/// Applies on every core; the answer is empty (HAProxy's success) unless
/// a core did not confirm in time.
async fn apply(cli: &Cli, request: CoreRequest) -> String {
    let answers = cli.collector.ask_all(&cli.shard, request).await;
    if answers.missing == 0 {
        String::new()
    } else {
        format!(
            "Applied on {} of {} cores: {} did not confirm in time.\n",
            answers.answers.len(),
            cli.ctx().core_count,
            answers.missing
        )
    }
}

async fn set_server(cli: &Cli, at: ServerRef, args: &[String]) -> String {
    let arg = |i: usize| args.get(i).map(String::as_str);
    match arg(0) {
        Some("state") => {
            let change = match arg(1) {
                Some("ready") => ServerChange::Ready,
                Some("drain") => ServerChange::Drain,
                Some("maint") => ServerChange::Maint,
                _ => {
                    return "'set server <srv> state' expects 'ready', 'drain' and 'maint'.\n"
                        .into()
                }
            };
            apply(cli, CoreRequest::Server(at, change)).await
        }
        Some("weight") => set_weight(cli, at, arg(1)).await,
        Some("addr") => set_addr(cli, at, arg(1), arg(2).zip(arg(3))).await,
        _ => "usage: set server <backend>/<server> addr | state | weight\n".into(),
    }
}

/// HAProxy's `server_parse_weight_change_request`.
async fn set_weight(cli: &Cli, at: ServerRef, arg: Option<&str>) -> String {
    let Some(text) = arg else {
        return "Require <weight> or <weight%>.\n".into();
    };
    let (initial, static_lb) = {
        let ctx = cli.ctx();
        let rt = ctx.backends[at.backend].borrow();
        let static_lb = match rt.balance() {
            Balance::StaticRr => true,
            Balance::Source | Balance::Uri | Balance::UrlParam | Balance::Hdr => {
                cli.ctx().config.backends[at.backend]
                    .balance_params
                    .hash_type
                    != HashType::Consistent
            }
            _ => false,
        };
        (rt.server_initial_weight(at.server), static_lb)
    };
    let weight = if let Some(pct) = text.strip_suffix('%') {
        match pct.parse::<i64>() {
            Ok(p) if p < 0 => return "Relative weight must be positive.\n".into(),
            Ok(p) => (i64::from(initial) * p / 100).min(i64::from(MAX_WEIGHT)) as u32,
            Err(_) => return "Empty weight string empty or preceded by garbage\n".into(),
        }
    } else {
        match text.parse::<i64>() {
            Ok(w) if (0..=i64::from(MAX_WEIGHT)).contains(&w) => w as u32,
            Ok(_) => return "Absolute weight can only be between 0 and 256 inclusive.\n".into(),
            Err(_) => return "Empty weight string empty or preceded by garbage\n".into(),
        }
    };
    // Map-based algorithms precompute a table from the weights: HAProxy
    // refuses anything but "off" and "as configured" there.
    if static_lb && weight != 0 && weight != initial {
        return "Backend is using a static LB algorithm and only accepts weights '0%' and '100%'.\n"
            .into();
    }
    apply(cli, CoreRequest::Server(at, ServerChange::Weight(weight))).await
}

/// HAProxy's `srv_update_addr_port` wording.
async fn set_addr(
    cli: &Cli,
    at: ServerRef,
    addr: Option<&str>,
    port: Option<(&str, &str)>,
) -> String {
    let Some(addr) = addr else {
        return "set server <b>/<s> addr requires an address and optionally a port.\n".into();
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return format!("Invalid addr '{addr}' {BY}\n");
    };
    let current = cli.ctx().backends[at.backend]
        .borrow()
        .server_addr(at.server);
    let mut parts = Vec::new();
    if ip == current.ip() {
        parts.push("no need to change the addr".to_string());
    } else {
        parts.push(format!("IP changed from '{}' to '{ip}'", current.ip()));
    }
    let mut new_port = current.port();
    if let Some((_, text)) = port.filter(|(k, _)| *k == "port") {
        match text.parse::<u16>() {
            Ok(p) if p == current.port() => parts.push("no need to change the port".into()),
            Ok(p) => {
                parts.push(format!("port changed from '{}' to '{p}'", current.port()));
                new_port = p;
            }
            Err(_) => {
                parts.push(format!("problem converting port '{text}' to an int"));
                return format!("{} {BY}\n", parts.join(", "));
            }
        }
    }
    let target = SocketAddr::new(ip, new_port);
    let mut out = format!("{} {BY}\n", parts.join(", "));
    if target != current {
        let failed = apply(cli, CoreRequest::Server(at, ServerChange::Addr(target))).await;
        out.push_str(&failed);
    }
    out
}
