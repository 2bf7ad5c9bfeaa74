//! The HTTP load generator: one epoll loop (mio) on the caller's thread,
//! which main pins to the load CPU. Closed loop: every connection sends its
//! next request as soon as the previous response is complete (maximum
//! throughput). Open loop: a fixed total rate spread over the connections
//! (`pacing::Schedule`), latency measured from each request's intended send
//! time, so queueing behind a slow response is charged to the proxy
//! (coordinated omission corrected). Keep-alive reuses connections;
//! `reuse = false` opens a new connection per request and waits for the
//! server to close it (new connections per second).

use crate::hist::Latencies;
use crate::pacing::Schedule;
use anyhow::{bail, Context, Result};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::time::{Duration, Instant};

/// How long in-flight open-loop requests may take to finish after the
/// window closed before they are recorded as still waiting.
const OPEN_LOOP_GRACE: Duration = Duration::from_secs(3);
/// A run where nothing succeeds is abandoned after this many errors in a
/// row, instead of reconnecting in a tight loop until the time is up.
const MAX_CONSECUTIVE_ERRORS: u64 = 2000;
const MAX_HEAD: usize = 16 * 1024;

#[derive(Debug, Clone)]
pub struct Plan {
    pub target: SocketAddr,
    pub connections: usize,
    /// The bytes of one request, sent as is.
    pub request: Vec<u8>,
    /// Keep-alive; false opens a new connection for every request.
    pub reuse: bool,
    /// Requests per second over all connections (open loop); None for
    /// closed loop.
    pub rate: Option<f64>,
    /// Time before the measured window: connections are opened and caches
    /// warmed, nothing is recorded.
    pub warmup: Duration,
    pub duration: Duration,
    /// Source addresses, used in turn (empty: the kernel's choice), so that
    /// many connections do not run out of local ports.
    pub sources: Vec<Ipv4Addr>,
    /// Shown on the progress lines.
    pub label: String,
}

/// The moments the caller samples CPU counters at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    WindowOpens,
    WindowCloses,
}

#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Responses completed in the window (closed loop), or requests
    /// intended in the window and answered (open loop).
    pub requests: u64,
    pub errors: u64,
    pub first_errors: Vec<String>,
    /// Response body bytes received in the window.
    pub body_bytes: u64,
    /// Connections opened in the window.
    pub connects: u64,
    /// From window open to window close (for the open loop, including the
    /// grace period its last responses took).
    pub window: Duration,
    /// The nominal window length, the denominator of requests per second.
    pub duration: Duration,
    pub latencies: Latencies,
    /// Open loop: requests intended in the window still unanswered at the
    /// end of the grace period (recorded with the time they had waited).
    pub unanswered: u64,
}

impl Outcome {
    pub fn requests_per_second(&self) -> f64 {
        self.requests as f64 / self.duration.as_secs_f64().max(1e-9)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Connecting,
    Sending,
    Receiving,
    /// Open loop: waiting for the next intended send time.
    Waiting,
    /// Response complete, waiting for the server's FIN.
    Draining,
}

struct Conn {
    stream: TcpStream,
    phase: Phase,
    written: usize,
    head: Vec<u8>,
    head_done: bool,
    body_left: u64,
    /// Origin of this request's latency: intended send time (open loop),
    /// else when it was sent (or connected, without keep-alive).
    origin: Instant,
    /// Index of the current request in this connection's schedule.
    k: u64,
    server_closes: bool,
    failed_status: Option<u16>,
}

/// A parsed response head: what the client needs to find the body's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    pub length: usize,
    pub status: u16,
    pub content_length: u64,
    pub close: bool,
}

pub fn parse_response(buffer: &[u8]) -> Result<Option<ResponseHead>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut response = httparse::Response::new(&mut headers);
    let length = match response.parse(buffer).context("bad response head")? {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => return Ok(None),
    };
    let mut content_length = None;
    let mut close = response.version == Some(0);
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(header.value).unwrap_or("");
            content_length = Some(
                text.trim()
                    .parse::<u64>()
                    .with_context(|| format!("bad Content-Length {text:?}"))?,
            );
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("chunked responses are not expected from this backend");
        } else if header.name.eq_ignore_ascii_case("connection") {
            let value = String::from_utf8_lossy(header.value).to_ascii_lowercase();
            close |= value.split(',').any(|t| t.trim() == "close");
        }
    }
    let status = response.code.unwrap_or(0);
    Ok(Some(ResponseHead {
        length,
        status,
        content_length: content_length.context("response without Content-Length")?,
        close,
    }))
}

/// The User-Agent of every request (wrk is given it too, so both clients
/// send the same bytes).
pub const USER_AGENT: &str = "percore-loadtest";

/// The request line and headers every HTTP scenario sends.
pub fn get_request(path: &str, host: SocketAddr, close: bool) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: {USER_AGENT}\r\n{}\r\n",
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes()
}

/// A non-blocking connect from `source` (port chosen at connect time, so
/// one address serves every destination: IP_BIND_ADDRESS_NO_PORT).
pub fn start_connect(target: SocketAddr, source: Option<Ipv4Addr>) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    socket.set_nodelay(true)?;
    if let Some(source) = source {
        let one: libc::c_int = 1;
        // SAFETY: setsockopt reads an int we own, on a socket we own.
        let rc = unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&socket),
                libc::IPPROTO_IP,
                libc::IP_BIND_ADDRESS_NO_PORT,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        socket.bind(&SocketAddr::V4(SocketAddrV4::new(source, 0)).into())?;
    }
    match socket.connect(&target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(socket)
}

/// The token of the open loop's send timer (connection tokens are slots).
const SEND_TIMER: Token = Token(usize::MAX - 1);

/// A timerfd on CLOCK_MONOTONIC (the clock of `Instant`): nanosecond
/// wake-ups for the open loop's send times.
struct SendTimer {
    fd: std::os::fd::OwnedFd,
}

impl SendTimer {
    fn new() -> std::io::Result<SendTimer> {
        // SAFETY: timerfd_create takes no pointers; a valid fd is owned below.
        let fd = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fd was just created and is owned by nothing else.
        Ok(SendTimer {
            fd: unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) },
        })
    }

    fn fd(&self) -> std::os::fd::RawFd {
        std::os::fd::AsRawFd::as_raw_fd(&self.fd)
    }

    /// Fires once, `after` from now (at least 1 ns: zero would disarm it).
    fn arm(&self, after: Duration) -> Result<()> {
        let after = after.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                tv_nsec: libc::c_long::from(after.subsec_nanos() as i32),
            },
        };
        // SAFETY: both pointers are to structs we own (or null).
        if unsafe { libc::timerfd_settime(self.fd(), 0, &spec, std::ptr::null_mut()) } != 0 {
            return Err(std::io::Error::last_os_error()).context("timerfd_settime");
        }
        Ok(())
    }
}

struct Run<'a> {
    plan: &'a Plan,
    poll: Poll,
    conns: Vec<Option<Conn>>,
    schedules: Vec<Option<Schedule>>,
    scratch: Vec<u8>,
    outcome: Outcome,
    window_start: Instant,
    end: Instant,
    consecutive_errors: u64,
    connects_started: u64,
    /// Open loop after `end`: no new sends.
    draining: bool,
}

pub fn run(plan: &Plan, mark: &mut dyn FnMut(Mark)) -> Result<Outcome> {
    if plan.connections == 0 {
        bail!("no connections");
    }
    let start = Instant::now();
    let window_start = start + plan.warmup;
    let end = window_start + plan.duration;
    let schedules = (0..plan.connections)
        .map(|i| {
            plan.rate
                .map(|rate| Schedule::for_connection(start, rate, plan.connections, i))
        })
        .collect();
    let mut run = Run {
        plan,
        poll: Poll::new().context("creating epoll")?,
        conns: (0..plan.connections).map(|_| None).collect(),
        schedules,
        scratch: vec![0u8; 256 * 1024],
        outcome: Outcome {
            duration: plan.duration,
            ..Outcome::default()
        },
        window_start,
        end,
        consecutive_errors: 0,
        connects_started: 0,
        draining: false,
    };
    let send_timer = match plan.rate {
        Some(_) => {
            let timer = SendTimer::new().context("creating the send timer")?;
            run.poll
                .registry()
                .register(
                    &mut mio::unix::SourceFd(&timer.fd()),
                    SEND_TIMER,
                    Interest::READABLE,
                )
                .context("registering the send timer")?;
            Some(timer)
        }
        None => None,
    };
    // The send time the timer is set for (None: not armed or expired).
    let mut timer_armed_for: Option<Instant> = None;
    for slot in 0..plan.connections {
        run.open(slot, start);
    }
    let mut events = Events::with_capacity(4096);
    let mut window_open = false;
    let mut opened_at = window_start;
    let mut next_progress = start + Duration::from_secs(1);
    let mut requests_at_progress = 0u64;
    let mut grace_end = None;
    loop {
        let now = Instant::now();
        if !window_open && now >= window_start {
            mark(Mark::WindowOpens);
            window_open = true;
            opened_at = Instant::now();
        }
        if now >= end && !run.draining {
            if plan.rate.is_none() {
                break;
            }
            run.draining = true;
            grace_end = Some(now + OPEN_LOOP_GRACE);
        }
        if let Some(grace) = grace_end {
            if now >= grace || run.all_done() {
                run.record_unanswered(now);
                break;
            }
        }
        if crate::procs::stopping() {
            bail!("interrupted");
        }
        if !run.draining {
            // Slots whose connect failed synchronously.
            for slot in 0..run.conns.len() {
                if run.conns[slot].is_none() {
                    run.open(slot, now);
                }
            }
        }
        if run.consecutive_errors >= MAX_CONSECUTIVE_ERRORS {
            bail!(
                "{} consecutive errors, giving up; first: {}",
                run.consecutive_errors,
                run.outcome.first_errors.join(" / ")
            );
        }
        if now >= next_progress {
            let total = (plan.warmup + plan.duration).as_secs_f64();
            let done = run.outcome.requests;
            eprintln!(
                "loadtest:   {}: {:4.1}/{total:.0} s  {:>9.0} req/s  errors {}",
                plan.label,
                (now - start).as_secs_f64().min(total),
                (done - requests_at_progress) as f64,
                run.outcome.errors
            );
            requests_at_progress = done;
            next_progress += Duration::from_secs(1);
        }
        let mut wake = next_progress.min(if run.draining {
            grace_end.unwrap_or(end)
        } else {
            end
        });
        if !window_open {
            wake = wake.min(window_start);
        }
        if plan.rate.is_some() {
            if let Some(due) = run.send_due(now) {
                match &send_timer {
                    // epoll_wait's timeout is in whole milliseconds (mio
                    // rounds up), which would make sends up to 1 ms late,
                    // and that lateness counts as latency: the timer fd
                    // wakes the loop to the nanosecond instead.
                    Some(timer) if due < wake => {
                        if timer_armed_for != Some(due) {
                            timer.arm(due.saturating_duration_since(Instant::now()))?;
                            timer_armed_for = Some(due);
                        }
                    }
                    _ => wake = wake.min(due),
                }
            }
        }
        let timeout = wake.saturating_duration_since(Instant::now());
        if let Err(e) = run.poll.poll(&mut events, Some(timeout)) {
            if e.kind() != ErrorKind::Interrupted {
                return Err(e).context("epoll_wait");
            }
        }
        for event in events.iter() {
            match event.token() {
                // Edge-triggered: each expiry raises a new event whether
                // or not the count was read, so it is not (one syscall less).
                SEND_TIMER => timer_armed_for = None,
                Token(slot) => run.advance(slot),
            }
        }
    }
    mark(Mark::WindowCloses);
    run.outcome.window = opened_at.elapsed();
    Ok(run.outcome)
}

impl Run<'_> {
    fn in_window(&self, at: Instant) -> bool {
        at >= self.window_start && at < self.end
    }

    fn open(&mut self, slot: usize, now: Instant) {
        let source = (!self.plan.sources.is_empty())
            .then(|| self.plan.sources[(self.connects_started as usize) % self.plan.sources.len()]);
        self.connects_started += 1;
        let mut stream = match start_connect(self.plan.target, source) {
            Ok(socket) => TcpStream::from_std(std::net::TcpStream::from(socket)),
            Err(e) => {
                self.error(format!("connect: {e}"));
                return;
            }
        };
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            self.error(format!("epoll register: {e}"));
            return;
        }
        if self.in_window(now) {
            self.outcome.connects += 1;
        }
        let k = self.conns[slot].as_ref().map_or(0, |c| c.k);
        self.conns[slot] = Some(Conn {
            stream,
            phase: Phase::Connecting,
            written: 0,
            head: Vec::new(),
            head_done: false,
            body_left: 0,
            origin: now,
            k,
            server_closes: false,
            failed_status: None,
        });
    }

    fn error(&mut self, message: String) {
        self.outcome.errors += 1;
        self.consecutive_errors += 1;
        if self.outcome.first_errors.len() < 5 {
            self.outcome.first_errors.push(message);
        }
    }

    /// Drops the connection in `slot` and opens a new one (unless the run
    /// is draining), keeping its place in the schedule.
    fn replace(&mut self, slot: usize, failure: Option<String>) {
        let k = match self.conns[slot].take() {
            Some(mut conn) => {
                let _ = self.poll.registry().deregister(&mut conn.stream);
                conn.k
            }
            None => 0,
        };
        if let Some(message) = failure {
            self.error(message);
        }
        let now = Instant::now();
        if self.draining && self.plan.rate.is_some() {
            // Keep the index so the unanswered requests are still counted.
            if let Some(schedule) = self.schedules[slot] {
                if schedule.intended(k) < self.end {
                    self.open(slot, now);
                    if let Some(conn) = self.conns[slot].as_mut() {
                        conn.k = k;
                    }
                }
            }
            return;
        }
        self.open(slot, now);
        if let Some(conn) = self.conns[slot].as_mut() {
            conn.k = k;
        }
    }

    /// Open loop: starts every request whose time has come; returns the
    /// earliest future send time.
    fn send_due(&mut self, now: Instant) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        for slot in 0..self.conns.len() {
            let Some(schedule) = self.schedules[slot] else {
                continue;
            };
            let Some(conn) = self.conns[slot].as_mut() else {
                continue;
            };
            if conn.phase != Phase::Waiting {
                continue;
            }
            let due = schedule.intended(conn.k);
            if self.draining && due >= self.end {
                continue;
            }
            if due <= now {
                conn.origin = due;
                conn.phase = Phase::Sending;
                self.advance(slot);
            } else {
                earliest = Some(earliest.map_or(due, |e: Instant| e.min(due)));
            }
        }
        earliest
    }

    fn all_done(&self) -> bool {
        self.conns
            .iter()
            .zip(&self.schedules)
            .all(|(conn, schedule)| match (conn, schedule) {
                (Some(conn), Some(schedule)) => {
                    conn.phase == Phase::Waiting && schedule.intended(conn.k) >= self.end
                }
                _ => true,
            })
    }

    /// End of the grace period: every request intended in the window and
    /// not answered is recorded with the time it has waited so far.
    fn record_unanswered(&mut self, now: Instant) {
        for (conn, schedule) in self.conns.iter().zip(&self.schedules) {
            let (Some(conn), Some(schedule)) = (conn, schedule) else {
                continue;
            };
            let mut k = conn.k;
            while schedule.intended(k) < self.end {
                let intended = schedule.intended(k);
                if intended >= self.window_start {
                    self.outcome.latencies.record(now - intended);
                    self.outcome.unanswered += 1;
                }
                k += 1;
            }
        }
    }

    fn advance(&mut self, slot: usize) {
        loop {
            let Some(conn) = self.conns.get_mut(slot).and_then(Option::as_mut) else {
                return;
            };
            match conn.phase {
                Phase::Waiting => return,
                Phase::Connecting => match conn.stream.take_error() {
                    Ok(Some(e)) | Err(e) => {
                        return self.replace(slot, Some(format!("connect: {e}")))
                    }
                    Ok(None) => match conn.stream.peer_addr() {
                        Ok(_) => {
                            conn.phase = if self.schedules[slot].is_some() {
                                Phase::Waiting
                            } else {
                                Phase::Sending
                            };
                            if conn.phase == Phase::Waiting {
                                return;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::NotConnected => return,
                        Err(e) => return self.replace(slot, Some(format!("connect: {e}"))),
                    },
                },
                Phase::Sending => {
                    let request = &self.plan.request;
                    match conn.stream.write(&request[conn.written..]) {
                        Ok(n) => {
                            conn.written += n;
                            if conn.written == request.len() {
                                // No read now: the response can only come
                                // after the request, and its arrival raises
                                // a fresh edge. Reading here would cost a
                                // syscall per request that returns EAGAIN.
                                conn.phase = Phase::Receiving;
                                return;
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => return self.replace(slot, Some(format!("send: {e}"))),
                    }
                }
                Phase::Receiving | Phase::Draining => {
                    let n = match conn.stream.read(&mut self.scratch) {
                        Ok(n) => n,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(e) => return self.replace(slot, Some(format!("receive: {e}"))),
                    };
                    if conn.phase == Phase::Draining {
                        if n == 0 {
                            self.consecutive_errors = 0;
                            return self.replace(slot, None);
                        }
                        return self.replace(slot, Some("data after the response".into()));
                    }
                    if n == 0 {
                        return self.replace(slot, Some("closed before the response ended".into()));
                    }
                    if let Err(message) = self.receive(slot, n) {
                        return self.replace(slot, Some(message));
                    }
                }
            }
        }
    }

    /// Takes `n` bytes from the scratch buffer into the current response.
    fn receive(&mut self, slot: usize, n: usize) -> Result<(), String> {
        let now = Instant::now();
        let in_window = self.in_window(now);
        let Some(conn) = self.conns[slot].as_mut() else {
            return Ok(());
        };
        let mut body = n as u64;
        if !conn.head_done {
            conn.head.extend_from_slice(&self.scratch[..n]);
            match parse_response(&conn.head) {
                Ok(None) if conn.head.len() > MAX_HEAD => {
                    return Err("response head too large".into())
                }
                Ok(None) => return Ok(()),
                Ok(Some(head)) => {
                    conn.head_done = true;
                    conn.body_left = head.content_length;
                    conn.server_closes = head.close;
                    if head.status != 200 {
                        conn.failed_status = Some(head.status);
                    }
                    body = (conn.head.len() - head.length) as u64;
                }
                Err(e) => return Err(format!("{e:#}")),
            }
        }
        if body > conn.body_left {
            return Err("more bytes than the response announced".into());
        }
        conn.body_left -= body;
        if in_window {
            self.outcome.body_bytes += body;
        }
        if conn.body_left > 0 {
            return Ok(());
        }
        // Response complete.
        let origin = conn.origin;
        let failed = conn.failed_status.take();
        conn.head.clear();
        conn.head_done = false;
        conn.written = 0;
        let k = conn.k;
        conn.k += 1;
        if let Some(status) = failed {
            return Err(format!("status {status}"));
        }
        self.consecutive_errors = 0;
        let counted = match self.schedules[slot] {
            Some(schedule) => {
                let intended = schedule.intended(k);
                intended >= self.window_start && intended < self.end
            }
            None => in_window,
        };
        if counted {
            self.outcome.requests += 1;
            self.outcome.latencies.record(now - origin);
        }
        if !self.plan.reuse || conn.server_closes {
            conn.phase = Phase::Draining;
            return Ok(());
        }
        match self.schedules[slot] {
            Some(_) => conn.phase = Phase::Waiting,
            None => {
                conn.origin = now;
                conn.phase = Phase::Sending;
            }
        }
        Ok(())
    }
}

/// Opens `count` connections with blocking connects (sources in turn) and
/// returns them open and idle.
pub fn open_idle(
    target: SocketAddr,
    count: usize,
    sources: &[Ipv4Addr],
    label: &str,
) -> Result<Vec<std::net::TcpStream>> {
    let mut held = Vec::with_capacity(count);
    let mut next_progress = Instant::now() + Duration::from_secs(1);
    for i in 0..count {
        if crate::procs::stopping() {
            bail!("interrupted");
        }
        let source = (!sources.is_empty()).then(|| sources[i % sources.len()]);
        let socket = start_connect(target, source)
            .with_context(|| format!("connection {} of {count}", i + 1))?;
        socket.set_nonblocking(false)?;
        // A non-blocking connect in progress: wait for it to finish.
        let stream = std::net::TcpStream::from(socket);
        wait_connected(&stream).with_context(|| format!("connection {} of {count}", i + 1))?;
        held.push(stream);
        if Instant::now() >= next_progress {
            eprintln!("loadtest:   {label}: {} of {count} connected", i + 1);
            next_progress += Duration::from_secs(1);
        }
    }
    Ok(held)
}

/// Sends `request` on a blocking connection and reads the whole response
/// (head and `Content-Length` body): one request served, the connection
/// left open as a keep-alive client leaves it. Returns the status.
pub fn request_once(stream: &std::net::TcpStream, request: &[u8]) -> Result<u16> {
    let mut stream = stream;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request).context("sending the request")?;
    let mut buffer = Vec::with_capacity(512);
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(head) = parse_response(&buffer)? {
            let whole = head.length as u64 + head.content_length;
            if buffer.len() as u64 >= whole {
                return Ok(head.status);
            }
        }
        let n = stream.read(&mut chunk).context("reading the response")?;
        if n == 0 {
            bail!("connection closed before the whole response");
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

fn wait_connected(stream: &std::net::TcpStream) -> Result<()> {
    let mut pollfd = libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(stream),
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one pollfd we own; a 10 s upper bound.
    let rc = unsafe { libc::poll(&mut pollfd, 1, 10_000) };
    if rc == 0 {
        bail!("connect timed out");
    }
    if rc < 0 {
        return Err(std::io::Error::last_os_error()).context("poll");
    }
    if let Some(e) = stream.take_error()? {
        return Err(e).context("connect");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_heads_give_the_body_length() {
        let head = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nxyz").unwrap();
        assert_eq!(
            head,
            Some(ResponseHead {
                length: 40,
                status: 200,
                content_length: 100,
                close: false
            })
        );
        let head =
            parse_response(b"HTTP/1.1 503 X\r\ncontent-length: 0\r\nConnection: close\r\n\r\n")
                .unwrap()
                .unwrap();
        assert!(head.close);
        assert_eq!(head.status, 503);
        assert_eq!(parse_response(b"HTTP/1.1 200 OK\r\nConte").unwrap(), None);
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").is_err());
    }

    fn backend() -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || crate::http_backend::serve(listener));
        addr
    }

    fn plan(target: SocketAddr, reuse: bool, rate: Option<f64>, size: u64) -> Plan {
        Plan {
            target,
            connections: 4,
            request: get_request(&format!("/bytes/{size}"), target, !reuse),
            reuse,
            rate,
            warmup: Duration::from_millis(200),
            duration: Duration::from_millis(800),
            sources: vec![Ipv4Addr::new(127, 0, 0, 1)],
            label: "test".into(),
        }
    }

    #[test]
    fn closed_loop_keep_alive_counts_whole_responses() {
        let target = backend();
        let mut marks = Vec::new();
        let out = run(&plan(target, true, None, 1000), &mut |m| marks.push(m)).unwrap();
        assert_eq!(marks, vec![Mark::WindowOpens, Mark::WindowCloses]);
        assert_eq!(out.errors, 0, "{:?}", out.first_errors);
        assert!(out.requests > 0);
        assert_eq!(out.latencies.count(), out.requests);
        // Every counted response had its 1000 bytes (bytes of responses
        // straddling the window edges may add a partial one each side).
        assert!(out.body_bytes >= (out.requests - 8) * 1000);
        assert!(out.body_bytes <= (out.requests + 8) * 1000);
        assert_eq!(out.connects, 0, "keep-alive opens nothing in the window");
    }

    #[test]
    fn closed_loop_without_keep_alive_opens_a_connection_per_request() {
        let target = backend();
        let out = run(&plan(target, false, None, 10), &mut |_| {}).unwrap();
        assert_eq!(out.errors, 0, "{:?}", out.first_errors);
        assert!(out.requests > 0);
        // One connect per completed request, give or take those in flight.
        assert!(out.connects + 8 >= out.requests && out.connects <= out.requests + 8);
    }

    #[test]
    fn open_loop_sends_the_scheduled_count() {
        let target = backend();
        // 500/s over 0.8 s: 400 intended in the window, all answered.
        let out = run(&plan(target, true, Some(500.0), 100), &mut |_| {}).unwrap();
        assert_eq!(out.errors, 0, "{:?}", out.first_errors);
        assert_eq!(out.requests + out.unanswered, 400);
        assert_eq!(out.latencies.count(), 400);
    }

    #[test]
    fn a_refusing_target_is_an_error_not_a_result() {
        // Bound but not listening: connects are refused.
        let socket = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = socket.local_addr().unwrap();
        drop(socket);
        let mut p = plan(target, false, None, 10);
        p.duration = Duration::from_secs(20);
        let err = run(&p, &mut |_| {}).unwrap_err();
        assert!(format!("{err:#}").contains("consecutive errors"), "{err:#}");
    }

    #[test]
    fn idle_connections_stay_open() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap();
        let held = open_idle(target, 50, &[Ipv4Addr::new(127, 0, 0, 2)], "t").unwrap();
        assert_eq!(held.len(), 50);
        assert!(held
            .iter()
            .all(|s| s.local_addr().unwrap().ip() == Ipv4Addr::new(127, 0, 0, 2)));
    }
}
