//! The last invalid request of each frontend and the last invalid response
//! of each backend, for the runtime API's `show errors` (HAProxy's error
//! snapshots: `struct error_snapshot`, `proxy->invalid_req|invalid_rep`).
//!
//! Each core keeps its own slots (one per frontend, one per backend); the
//! runtime API merges the cores' snapshots and keeps the newest event per
//! proxy and direction. Nothing is copied on the success path: a capture
//! happens where a head is refused (a 400 for a request, a 502 for a
//! response), and copies at most [`capture_limit`] bytes of what was
//! received, into a buffer the slot keeps and reuses.

use std::cell::{Cell, RefCell};
use std::fmt::Write;
use std::net::SocketAddr;
use std::time::SystemTime;

use crate::config::Config;
use crate::http::locate::error_position;
use crate::http::HeadError;
use crate::log::Clock;

use super::CoreContext;

/// Most bytes kept per event: `tune.bufsize` (all HAProxy keeps, as its
/// snapshot is one buffer) but never more than 16 KiB, so that a large
/// `tune.bufsize` does not make every frontend and backend of every core
/// hold that much.
pub const MAX_CAPTURE: usize = 16 << 10;

/// Bytes kept per event for a given `tune.bufsize`.
pub fn capture_limit(bufsize: usize) -> usize {
    bufsize.min(MAX_CAPTURE)
}

/// Which message was invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A client's request, kept by its frontend.
    Request,
    /// A server's response, kept by its backend.
    Response,
}

/// One refused head. Plain data, sent across cores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedError {
    pub when: SystemTime,
    pub direction: Direction,
    /// Process-wide event number (HAProxy's `event #`): the capturing
    /// core's own count `n` as `n * cores + core`, so no two cores give
    /// the same number and no counter is shared.
    pub event: u64,
    pub frontend: usize,
    /// A request error's backend is only known once it was routed (never
    /// for a refused head: `<NONE>`, as HAProxy).
    pub backend: Option<usize>,
    pub server: Option<usize>,
    pub client: SocketAddr,
    /// Offset of the fault in `bytes` (`http::locate`).
    pub position: usize,
    /// The received bytes from the start of the head, at most
    /// [`capture_limit`] of them.
    pub bytes: Vec<u8>,
}

/// What one core has captured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorSnapshot {
    /// Events this core captured since start (HAProxy's "Total events
    /// captured" is the sum over cores).
    pub captured: u64,
    pub errors: Vec<CapturedError>,
}

/// The per-core slots (`CoreContext::error_snapshots`).
pub struct ErrorSnapshots {
    core_index: u64,
    core_count: u64,
    limit: usize,
    captured: Cell<u64>,
    /// One per frontend.
    requests: RefCell<Vec<Option<CapturedError>>>,
    /// One per backend.
    responses: RefCell<Vec<Option<CapturedError>>>,
}

/// Where a refused head came from.
#[derive(Debug, Clone, Copy)]
pub struct ErrorSource {
    pub frontend: usize,
    pub backend: Option<usize>,
    pub server: Option<usize>,
    pub client: SocketAddr,
}

impl ErrorSnapshots {
    pub fn new(config: &Config, core_index: usize, core_count: usize) -> Self {
        ErrorSnapshots {
            core_index: core_index as u64,
            core_count: core_count.max(1) as u64,
            limit: capture_limit(config.global.tune.bufsize),
            captured: Cell::new(0),
            requests: RefCell::new(vec![None; config.frontends.len()]),
            responses: RefCell::new(vec![None; config.backends.len()]),
        }
    }

    /// A client sent a request head the parser refused with `err`; `buf`
    /// holds what was received from the start of that head.
    pub fn request(&self, from: ErrorSource, buf: &[u8], err: HeadError) {
        self.capture(
            Direction::Request,
            from,
            buf,
            error_position(buf, err, true),
        );
    }

    /// A server sent a response head the parser refused with `err`
    /// (`from.backend` names the backend that keeps it).
    pub fn response(&self, from: ErrorSource, buf: &[u8], err: HeadError) {
        self.capture(
            Direction::Response,
            from,
            buf,
            error_position(buf, err, false),
        );
    }

    fn capture(&self, direction: Direction, from: ErrorSource, buf: &[u8], position: usize) {
        let (slots, index) = match direction {
            Direction::Request => (&self.requests, Some(from.frontend)),
            Direction::Response => (&self.responses, from.backend),
        };
        let mut slots = slots.borrow_mut();
        let Some(slot) = index.and_then(|i| slots.get_mut(i)) else {
            return;
        };
        let n = self.captured.get();
        self.captured.set(n + 1);
        let kept = &buf[..buf.len().min(self.limit)];
        // The previous event's buffer is reused: a client that sends bad
        // requests in a loop costs a copy each time, no allocation.
        let mut bytes = slot.take().map(|e| e.bytes).unwrap_or_default();
        bytes.clear();
        bytes.extend_from_slice(kept);
        *slot = Some(CapturedError {
            when: SystemTime::now(),
            direction,
            event: n * self.core_count + self.core_index,
            frontend: from.frontend,
            backend: from.backend,
            server: from.server,
            client: from.client,
            position,
            bytes,
        });
    }

    pub fn snapshot(&self) -> ErrorSnapshot {
        let requests = self.requests.borrow();
        let responses = self.responses.borrow();
        ErrorSnapshot {
            captured: self.captured.get(),
            errors: requests
                .iter()
                .chain(responses.iter())
                .flatten()
                .cloned()
                .collect(),
        }
    }
}

/// This core's captured errors.
pub fn snapshot_errors(ctx: &CoreContext) -> ErrorSnapshot {
    ctx.error_snapshots.snapshot()
}

/// The number `show errors` gives frontend `f` (`#n`): the stats CSV's
/// `iid`, frontends first from 1, then backends.
pub fn frontend_iid(frontend: usize) -> usize {
    frontend + 1
}

/// See [`frontend_iid`].
pub fn backend_iid(config: &Config, backend: usize) -> usize {
    config.frontends.len() + backend + 1
}

/// HAProxy's proxy argument of `show errors`: a proxy name (frontends
/// first, then backends), else a number taken as a proxy id even if no
/// proxy has it (HAProxy then shows no event). `None` (neither a name nor a
/// number above 0): HAProxy answers "No such proxy.".
pub fn proxy_iid(config: &Config, arg: &str) -> Option<usize> {
    if let Some(f) = config.frontends.iter().position(|f| f.name == arg) {
        return Some(frontend_iid(f));
    }
    if let Some(b) = config.backends.iter().position(|b| b.name == arg) {
        return Some(backend_iid(config, b));
    }
    arg.parse().ok().filter(|&iid: &usize| iid > 0)
}

/// `show errors [<proxy>] [request|response]`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorFilter {
    /// Events kept by the proxy with this id ([`proxy_iid`]) or whose
    /// other end it is (a backend's response errors show under their
    /// frontend too, as in HAProxy).
    pub proxy: Option<usize>,
    pub direction: Option<Direction>,
}

/// HAProxy 2.6's `show errors` over the snapshots of every core: for each
/// frontend (its last invalid request) then each backend (its last invalid
/// response), the newest event of all cores.
///
/// ```text
/// Total events captured on [03/Dec/2026:10:22:28.602] : 2
///  
/// [03/Dec/2026:10:22:28.589] frontend fe_http (#4): invalid request
///   backend <NONE> (#-1), server <NONE> (#-1), event #0, src 127.0.0.1:37168
///   buffer starts at 0 (including 0 out), 16345 free,
///   len 39, wraps at 16384, error at position 28
///   
///   00000  GET / HTTP/1.1\r\n
///   00016  Host: a\r\n
/// ```
///
/// Same lines, spelling and dump as HAProxy (`dump_text_line`: 70 bytes of
/// text per line, `+` marks a continued line, `\r \n \t \e \\` and
/// `\xHH` escapes). Differences: HAProxy then prints its HTTP/1 mux's
/// internal state (`H1 connection flags`, `H1 msg state`, `H1 chunk len`
/// lines), which percore has no equivalent for and leaves out; percore's
/// receive buffer does not wrap, so the buffer always starts at 0 with 0
/// out, and "wraps at" is its size, `tune.bufsize`. Dates are local time,
/// through `clock`. Proxy numbers (`#n`) are the stats CSV's `iid`, server
/// numbers its `sid`.
pub fn render_show_errors(
    now: SystemTime,
    clock: &Clock,
    cores: &[ErrorSnapshot],
    config: &Config,
    filter: &ErrorFilter,
) -> String {
    let total: u64 = cores.iter().map(|c| c.captured).sum();
    let mut out = format!(
        "Total events captured on [{}] : {total}\n",
        clock.date(now).haproxy()
    );
    let newest = |direction: Direction, index: usize| {
        cores
            .iter()
            .flat_map(|c| &c.errors)
            .filter(|e| {
                e.direction == direction
                    && match direction {
                        Direction::Request => e.frontend == index,
                        Direction::Response => e.backend == Some(index),
                    }
            })
            .max_by_key(|e| (e.when, e.event))
    };
    let requests = (0..config.frontends.len()).filter_map(|f| newest(Direction::Request, f));
    let responses = (0..config.backends.len()).filter_map(|b| newest(Direction::Response, b));
    for e in requests.chain(responses) {
        if shown(e, filter, config) {
            render_event(&mut out, e, clock, config);
        }
    }
    out
}

fn shown(e: &CapturedError, filter: &ErrorFilter, config: &Config) -> bool {
    if filter.direction.is_some_and(|d| d != e.direction) {
        return false;
    }
    let Some(iid) = filter.proxy else {
        return true;
    };
    iid == frontend_iid(e.frontend) || e.backend.is_some_and(|b| iid == backend_iid(config, b))
}

fn render_event(out: &mut String, e: &CapturedError, clock: &Clock, config: &Config) {
    let fe_name = config
        .frontends
        .get(e.frontend)
        .map_or("?", |f| f.name.as_str());
    let fe_iid = frontend_iid(e.frontend);
    let be = e
        .backend
        .and_then(|b| config.backends.get(b).map(|be| (b, be)));
    let (be_name, be_iid) = match be {
        Some((b, be)) => (be.name.as_str(), backend_iid(config, b) as i64),
        None => ("<NONE>", -1),
    };
    let srv = be
        .zip(e.server)
        .and_then(|((_, be), s)| be.servers.get(s).map(|srv| (s, srv)));
    let (srv_name, srv_id) = match srv {
        Some((s, srv)) => (srv.name.as_str(), s as i64 + 1),
        None => ("<NONE>", -1),
    };
    let _ = write!(out, " \n[{}]", clock.date(e.when).haproxy());
    let _ = match e.direction {
        Direction::Request => write!(
            out,
            " frontend {fe_name} (#{fe_iid}): invalid request\n  backend {be_name} (#{be_iid})"
        ),
        Direction::Response => write!(
            out,
            " backend {be_name} (#{be_iid}): invalid response\n  frontend {fe_name} (#{fe_iid})"
        ),
    };
    let bufsize = config.global.tune.bufsize;
    let len = e.bytes.len();
    let _ = write!(
        out,
        ", server {srv_name} (#{srv_id}), event #{}, src {}:{}\n  \
         buffer starts at 0 (including 0 out), {} free,\n  \
         len {len}, wraps at {bufsize}, error at position {}\n  \n",
        e.event,
        e.client.ip(),
        e.client.port(),
        bufsize.saturating_sub(len),
        e.position,
    );
    dump_text(out, &e.bytes);
}

/// HAProxy's `dump_text_line` over all of `buf`: lines of at most 80
/// columns (`  <offset:05> ` then up to 70 columns of text), split after
/// each LF; a line cut for length continues with `+` after its offset.
pub fn dump_text(out: &mut String, buf: &[u8]) {
    const WIDTH: usize = 80;
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut ptr = 0;
    let mut line_start = 0;
    while ptr < buf.len() {
        let mark = if ptr == line_start { ' ' } else { '+' };
        let _ = write!(out, "  {ptr:05}{mark} ");
        // Columns of this output line so far (HAProxy counts from the start
        // of its output chunk, which holds just this line).
        let mut col = 9;
        while ptr < buf.len() {
            let c = buf[ptr];
            let escaped = match c {
                b'\t' => Some('t'),
                b'\n' => Some('n'),
                b'\r' => Some('r'),
                0x1b => Some('e'),
                b'\\' => Some('\\'),
                _ => None,
            };
            if (0x20..0x7f).contains(&c) && c != b'\\' {
                if col > WIDTH - 2 {
                    break;
                }
                out.push(c as char);
                col += 1;
            } else if let Some(letter) = escaped {
                if col > WIDTH - 3 {
                    break;
                }
                out.push('\\');
                out.push(letter);
                col += 2;
            } else {
                if col > WIDTH - 5 {
                    break;
                }
                out.push_str("\\x");
                out.push(HEX[usize::from(c >> 4)] as char);
                out.push(HEX[usize::from(c & 0xf)] as char);
                col += 4;
            }
            ptr += 1;
            if c == b'\n' {
                line_start = ptr;
                break;
            }
        }
        out.push('\n');
    }
}

#[cfg(test)]
mod tests;
