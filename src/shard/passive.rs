//! Passive checks (`observe`): the proxy reports what live traffic sees,
//! per core, with one counter update per connection; only when a server
//! reaches `error-limit` consecutive errors on this core is a report sent
//! to the core that checks it.
//!
//! Calls for the session code:
//! - [`Observer::connect_failed`] / [`Observer::connect_succeeded`] after
//!   each connection attempt to a server (layer4 and layer7 modes);
//! - [`Observer::http_status`] with each response status from a server
//!   (layer7 mode: 5xx except 501 and 505 count as errors, anything else
//!   clears the count), and [`Observer::http_failed`] when no valid
//!   response came (invalid, timed out or closed early).
//!
//! Both read the [`Blame`] the session ended with: which errors count, and
//! the words of the report, come from it.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::config::{Config, Observe, ObserveLayer};
use crate::net::blame::Blame;

/// The core that checks backend `backend` when `core_count` cores run.
pub fn owner_core(backend: usize, core_count: usize) -> usize {
    backend % core_count.max(1)
}

/// The last error of a passive report, in HAProxy's analyze wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PassiveError {
    /// The connection or the response failed; the blame says how
    /// ([`Blame::analysis`]: a refused connect and a failed TLS handshake
    /// read differently).
    Failed(Blame),
    /// An HTTP answer with this 5xx status.
    Status(u16),
}

impl PassiveError {
    pub fn description(self) -> &'static str {
        match self {
            PassiveError::Failed(blame) => blame.analysis(),
            PassiveError::Status(_) => "Wrong http response",
        }
    }
}

/// A passive report delivered to a server's checker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PassiveReport {
    pub error: PassiveError,
    pub count: u32,
}

/// Where passive reports go: the health checks' router of this core
/// (`health::Router`), which hands them to the server's checker.
pub trait PassiveSink {
    /// Delivers `report` to the checker of `backend`/`server`, on `owner`,
    /// if that core runs configuration generation `generation` (the
    /// indexes name a server of that generation; another one may have
    /// other servers there).
    fn report(
        &self,
        owner: usize,
        generation: u64,
        backend: usize,
        server: usize,
        report: PassiveReport,
    );
    /// Wakes the server's checker if this core runs it.
    fn resume(&self, backend: usize, server: usize);
}

/// Per-backend pause between two "no server available" lines of one core.
const NO_SERVER_LOG_EVERY: Duration = Duration::from_secs(1);

pub struct Observer {
    /// `[backend][server]`: what is observed; empty for a backend where
    /// nothing is.
    watch: Vec<Vec<Option<Observe>>>,
    /// `[backend][server]`: consecutive errors seen by this core.
    errors: Vec<Vec<Cell<u32>>>,
    router: RefCell<Option<Rc<dyn PassiveSink>>>,
    core_count: usize,
    /// The configuration generation whose indexes the reports use.
    generation: u64,
    no_server_log: Vec<NoServerLog>,
}

#[derive(Default)]
struct NoServerLog {
    last: Cell<Option<Instant>>,
    suppressed: Cell<u64>,
}

impl Observer {
    pub fn new(config: &Config, core_count: usize, generation: u64) -> Self {
        let watch: Vec<Vec<Option<Observe>>> = config
            .backends
            .iter()
            .map(|b| {
                let observed: Vec<Option<Observe>> = b
                    .servers
                    .iter()
                    .map(|s| s.check.as_ref().and_then(|c| c.observe))
                    .collect();
                if observed.iter().any(Option::is_some) {
                    observed
                } else {
                    Vec::new()
                }
            })
            .collect();
        let errors = watch
            .iter()
            .map(|servers| servers.iter().map(|_| Cell::new(0)).collect())
            .collect();
        Observer {
            watch,
            errors,
            router: RefCell::new(None),
            core_count: core_count.max(1),
            generation,
            no_server_log: config
                .backends
                .iter()
                .map(|_| NoServerLog::default())
                .collect(),
        }
    }

    /// Called once the core's health channels are up; reports made before
    /// are dropped.
    pub fn attach(&self, router: Rc<dyn PassiveSink>) {
        *self.router.borrow_mut() = Some(router);
    }

    fn observed(&self, backend: usize, server: usize) -> Option<(Observe, &Cell<u32>)> {
        let observe = (*self.watch.get(backend)?.get(server)?)?;
        Some((observe, &self.errors[backend][server]))
    }

    fn clear(&self, backend: usize, server: usize) {
        if let Some((_, count)) = self.observed(backend, server) {
            count.set(0);
        }
    }

    fn error(&self, backend: usize, server: usize, error: PassiveError) {
        let Some((observe, count)) = self.observed(backend, server) else {
            return;
        };
        let seen = count.get() + 1;
        if seen < observe.error_limit {
            count.set(seen);
            return;
        }
        // HAProxy starts counting again after acting on the limit.
        count.set(0);
        if let Some(router) = self.router.borrow().as_ref() {
            router.report(
                owner_core(backend, self.core_count),
                self.generation,
                backend,
                server,
                PassiveReport { error, count: seen },
            );
        }
    }

    /// A connection to the server could not be established.
    /// Wakes the server's checker if this core runs it: its checks were
    /// paused (maintenance, `disable health`) and may run again.
    pub fn resume_checks(&self, backend: usize, server: usize) {
        if let Some(router) = self.router.borrow().as_ref() {
            router.resume(backend, server);
        }
    }

    /// `blame`: what the attempt failed for (refused, timed out, TLS).
    pub fn connect_failed(&self, backend: usize, server: usize, blame: Blame) {
        self.error(backend, server, PassiveError::Failed(blame));
    }

    /// A connection to the server was established. Clears the count in
    /// `observe layer4` (in layer7 mode only HTTP answers clear it).
    pub fn connect_succeeded(&self, backend: usize, server: usize) {
        if let Some((observe, count)) = self.observed(backend, server) {
            if observe.layer == ObserveLayer::Layer4 {
                count.set(0);
            }
        }
    }

    /// The status of a response from the server (`observe layer7`).
    pub fn http_status(&self, backend: usize, server: usize, status: u16) {
        let Some((observe, _)) = self.observed(backend, server) else {
            return;
        };
        if observe.layer != ObserveLayer::Layer7 {
            return;
        }
        if (500..600).contains(&status) && status != 501 && status != 505 {
            self.error(backend, server, PassiveError::Status(status));
        } else {
            self.clear(backend, server);
        }
    }

    /// A request ended with `end`: counts it when the server let it down
    /// before a valid response head (`observe layer7`,
    /// [`Blame::server_failed_response`]).
    pub fn http_failed(&self, backend: usize, server: usize, end: Blame) {
        if !end.server_failed_response() {
            return;
        }
        if let Some((observe, _)) = self.observed(backend, server) {
            if observe.layer == ObserveLayer::Layer7 {
                self.error(backend, server, PassiveError::Failed(end));
            }
        }
    }

    /// A client was turned away because the backend has no usable server.
    /// Logged at most once a second per backend and core, with how many
    /// were not logged in between.
    pub fn no_server(
        &self,
        frontend: &str,
        backend: usize,
        backend_name: &str,
        client: SocketAddr,
    ) {
        let Some(log) = self.no_server_log.get(backend) else {
            return;
        };
        let now = Instant::now();
        if log
            .last
            .get()
            .is_some_and(|t| now.duration_since(t) < NO_SERVER_LOG_EVERY)
        {
            log.suppressed.set(log.suppressed.get() + 1);
            return;
        }
        let more = log.suppressed.replace(0);
        log.last.set(Some(now));
        let more = if more > 0 {
            format!(" ({more} more since the last message)")
        } else {
            String::new()
        };
        eprintln!(
            "[WARNING] frontend {frontend}: backend {backend_name} has no server available; closed the connection from {client}{more}"
        );
    }

    /// Consecutive errors this core has counted for a server (for stats).
    pub fn consecutive_errors(&self, backend: usize, server: usize) -> u32 {
        self.observed(backend, server).map_or(0, |(_, c)| c.get())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::net::blame::{Cause, Stage};

    /// owner, generation, backend, server, report.
    type Sent = (usize, u64, usize, usize, PassiveReport);

    #[derive(Default)]
    struct Recorded(RefCell<Vec<Sent>>);

    impl PassiveSink for Rc<Recorded> {
        fn report(&self, owner: usize, generation: u64, b: usize, s: usize, r: PassiveReport) {
            self.0.borrow_mut().push((owner, generation, b, s, r));
        }
        fn resume(&self, _: usize, _: usize) {}
    }

    /// Reports carry the generation whose indexes they use, so a core on
    /// another generation (around a reload) can tell them apart.
    #[test]
    fn a_report_names_its_configuration_generation() {
        let text = r#"
[defaults]
mode = "tcp"
timeout = { connect = "5s", client = "30s", server = "30s" }
[[frontend]]
name = "f"
bind = ["127.0.0.1:18001"]
default_backend = "b0"
[[backend]]
name = "b0"
servers = [{ name = "s", addr = "127.0.0.1:9" }]
[[backend]]
name = "b1"
servers = [
  { name = "s0", addr = "127.0.0.1:9" },
  { name = "s1", addr = "127.0.0.1:9", check = true, observe = "layer4", error-limit = 2 },
]
"#;
        let no_dns = |_: &str, _: u16| -> std::io::Result<Vec<SocketAddr>> {
            Err(std::io::ErrorKind::NotFound.into())
        };
        let config = match crate::config::load_with(text, Path::new("p.toml"), &[0, 1], &no_dns) {
            Ok(config) => config,
            Err(e) => panic!("{e}"),
        };
        let observer = Observer::new(&config, 2, 7);
        let sink = Rc::new(Recorded::default());
        observer.attach(Rc::new(Rc::clone(&sink)));
        let refused = Blame::server(Stage::Connect, Cause::Refused);
        for _ in 0..2 {
            observer.connect_failed(1, 1, refused);
        }
        let report = PassiveReport {
            error: PassiveError::Failed(refused),
            count: 2,
        };
        assert_eq!(*sink.0.borrow(), [(1, 7, 1, 1, report)]);
    }
}
