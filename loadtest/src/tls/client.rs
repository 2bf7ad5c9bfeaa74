//! The TLS load generator: one epoll loop (mio) on the caller's thread,
//! rustls client connections driven without blocking. Closed loop only.
//!
//! - Handshakes: connect, handshake, `close_notify`, read until the proxy
//!   closes (so TLS 1.3 session tickets, sent after the handshake, are
//!   taken in), reconnect. One operation per completed handshake; rustls'
//!   `handshake_kind()` says whether it was full or resumed.
//! - Keep-alive: one handshake per connection, then requests back to back
//!   over it; one operation per complete response.
//!
//! The client does not verify the proxy's certificate (like `openssl
//! s_time`): verifying would make the client, which shares its core with
//! the backend, more expensive than the proxy it loads.

use crate::http_load::{parse_response, start_connect, Mark, Outcome};
use anyhow::{bail, Context, Result};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ClientSessionMemoryCache, Resumption, Tls12Resumption};
use rustls::crypto::{ring, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, HandshakeKind};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

const MAX_CONSECUTIVE_ERRORS: u64 = 2000;
/// How long a handshake connection may take to be closed by the proxy
/// after our `close_notify` before it is dropped (counted as an error).
const CLOSE_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    /// A new connection and full handshake per operation.
    FullHandshakes,
    /// A new connection per operation, resuming with a ticket (or TLS 1.2
    /// session) from an earlier one.
    ResumedHandshakes,
    /// Requests over established connections.
    KeepAlive,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Tls12,
    Tls13,
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub target: SocketAddr,
    pub server_name: String,
    pub connections: usize,
    pub workload: Workload,
    pub version: Version,
    /// The only suite offered (TLS 1.2: the one matching the key type).
    pub suite: rustls::SupportedCipherSuite,
    /// The request sent in keep-alive mode.
    pub request: Vec<u8>,
    pub warmup: Duration,
    pub duration: Duration,
    pub sources: Vec<Ipv4Addr>,
    pub label: String,
}

/// What a run produced: the HTTP load generator's outcome (operations in
/// `requests`), plus how the handshakes in the window went.
#[derive(Debug, Clone, Default)]
pub struct TlsOutcome {
    pub load: Outcome,
    pub full_handshakes: u64,
    pub resumed_handshakes: u64,
}

/// The cipher suite of rustls' ring provider with this IANA name (rustls
/// spells TLS 1.3's with a `TLS13_` prefix).
pub fn suite_named(name: &str) -> Option<rustls::SupportedCipherSuite> {
    let rustls_name = match name.strip_prefix("TLS_") {
        Some(rest) if !rest.contains("_WITH_") => format!("TLS13_{rest}"),
        _ => name.to_string(),
    };
    ring::ALL_CIPHER_SUITES
        .iter()
        .copied()
        .find(|s| format!("{:?}", s.suite()) == rustls_name)
}

/// Accepts any certificate and skips the signature checks: this client
/// measures the proxy, it does not need to trust it.
#[derive(Debug)]
struct NoVerification(Vec<rustls::SignatureScheme>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.clone()
    }
}

/// A plain client configuration that accepts the proxy's throwaway
/// certificate (the soak checks bytes, not trust): default suites and
/// groups, no client authentication.
pub fn accept_any_config() -> Result<Arc<ClientConfig>> {
    let provider = Arc::new(ring::default_provider());
    let schemes = provider
        .signature_verification_algorithms
        .supported_schemes();
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS versions")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerification(schemes)))
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// One client configuration for the whole run: the session store is
/// shared by every connection, so tickets one connection receives are
/// used by the next ones. Only X25519 is offered for key exchange (plus
/// P-256 for TLS 1.2, see below), so both proxies do the same one.
pub fn client_config(plan: &Plan) -> Result<Arc<ClientConfig>> {
    let mut provider: CryptoProvider = ring::default_provider();
    provider.cipher_suites = vec![plan.suite];
    // TLS 1.2 with an ECDSA certificate also needs the certificate's curve
    // in the client's groups (RFC 8422 5.1); X25519 stays first, and is
    // what both servers pick.
    provider.kx_groups = match plan.version {
        Version::Tls13 => vec![ring::kx_group::X25519],
        Version::Tls12 => vec![ring::kx_group::X25519, ring::kx_group::SECP256R1],
    };
    let schemes = provider
        .signature_verification_algorithms
        .supported_schemes();
    let versions: &[&rustls::SupportedProtocolVersion] = match plan.version {
        Version::Tls12 => &[&rustls::version::TLS12],
        Version::Tls13 => &[&rustls::version::TLS13],
    };
    let mut config = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(versions)
        .context("client TLS versions")?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(NoVerification(schemes)))
        .with_no_client_auth();
    config.resumption = match plan.workload {
        Workload::FullHandshakes => Resumption::disabled(),
        Workload::ResumedHandshakes | Workload::KeepAlive => {
            Resumption::store(Arc::new(ClientSessionMemoryCache::new(256)))
                .tls12_resumption(Tls12Resumption::SessionIdOrTickets)
        }
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Handshaking,
    /// `close_notify` sent; reading until the proxy closes.
    Closing,
    /// Keep-alive: a request is out, its response is being read.
    Receiving,
}

struct Conn {
    stream: TcpStream,
    tls: ClientConnection,
    phase: Phase,
    origin: Instant,
    head: Vec<u8>,
    head_done: bool,
    body_left: u64,
    closing_since: Option<Instant>,
}

struct Run<'a> {
    plan: &'a Plan,
    config: Arc<ClientConfig>,
    name: ServerName<'static>,
    poll: Poll,
    conns: Vec<Option<Conn>>,
    plain: Vec<u8>,
    outcome: TlsOutcome,
    window_start: Instant,
    end: Instant,
    consecutive_errors: u64,
    connects_started: u64,
}

pub fn run(plan: &Plan, mark: &mut dyn FnMut(Mark)) -> Result<TlsOutcome> {
    if plan.connections == 0 {
        bail!("no connections");
    }
    let name = ServerName::try_from(plan.server_name.clone())
        .with_context(|| format!("bad server name {:?}", plan.server_name))?;
    let start = Instant::now();
    let window_start = start + plan.warmup;
    let end = window_start + plan.duration;
    let mut run = Run {
        plan,
        config: client_config(plan)?,
        name,
        poll: Poll::new().context("creating epoll")?,
        conns: (0..plan.connections).map(|_| None).collect(),
        plain: vec![0u8; 64 * 1024],
        outcome: TlsOutcome {
            load: Outcome {
                duration: plan.duration,
                ..Outcome::default()
            },
            ..TlsOutcome::default()
        },
        window_start,
        end,
        consecutive_errors: 0,
        connects_started: 0,
    };
    for slot in 0..plan.connections {
        run.open(slot);
    }
    let mut events = Events::with_capacity(4096);
    let mut window_open = false;
    let mut opened_at = window_start;
    let mut next_progress = start + Duration::from_secs(1);
    let mut done_at_progress = 0u64;
    loop {
        let now = Instant::now();
        if !window_open && now >= window_start {
            mark(Mark::WindowOpens);
            window_open = true;
            opened_at = Instant::now();
        }
        if now >= end {
            break;
        }
        if crate::procs::stopping() {
            bail!("interrupted");
        }
        for slot in 0..run.conns.len() {
            let stale = run.conns[slot]
                .as_ref()
                .and_then(|c| c.closing_since)
                .is_some_and(|since| now - since > CLOSE_WAIT);
            if stale {
                run.replace(slot, Some("proxy did not close after close_notify".into()));
            } else if run.conns[slot].is_none() {
                run.open(slot);
            }
        }
        if run.consecutive_errors >= MAX_CONSECUTIVE_ERRORS {
            bail!(
                "{} consecutive errors, giving up; first: {}",
                run.consecutive_errors,
                run.outcome.load.first_errors.join(" / ")
            );
        }
        if now >= next_progress {
            let total = (plan.warmup + plan.duration).as_secs_f64();
            let done = run.outcome.load.requests;
            eprintln!(
                "loadtest:   {}: {:4.1}/{total:.0} s  {:>9.0} ops/s  errors {}",
                plan.label,
                (now - start).as_secs_f64().min(total),
                (done - done_at_progress) as f64,
                run.outcome.load.errors
            );
            done_at_progress = done;
            next_progress += Duration::from_secs(1);
        }
        let mut wake = next_progress.min(end);
        if !window_open {
            wake = wake.min(window_start);
        }
        let timeout = wake.saturating_duration_since(Instant::now());
        if let Err(e) = run.poll.poll(&mut events, Some(timeout)) {
            if e.kind() != ErrorKind::Interrupted {
                return Err(e).context("epoll_wait");
            }
        }
        for event in events.iter() {
            run.advance(event.token().0);
        }
    }
    mark(Mark::WindowCloses);
    run.outcome.load.window = opened_at.elapsed();
    Ok(run.outcome)
}

impl Run<'_> {
    fn in_window(&self, at: Instant) -> bool {
        at >= self.window_start && at < self.end
    }

    fn open(&mut self, slot: usize) {
        let now = Instant::now();
        let sources = &self.plan.sources;
        let source = (!sources.is_empty())
            .then(|| sources[(self.connects_started as usize) % sources.len()]);
        self.connects_started += 1;
        let mut stream = match start_connect(self.plan.target, source) {
            Ok(socket) => TcpStream::from_std(std::net::TcpStream::from(socket)),
            Err(e) => return self.error(format!("connect: {e}")),
        };
        if let Err(e) = self.poll.registry().register(
            &mut stream,
            Token(slot),
            Interest::READABLE | Interest::WRITABLE,
        ) {
            return self.error(format!("epoll register: {e}"));
        }
        let tls = match ClientConnection::new(Arc::clone(&self.config), self.name.clone()) {
            Ok(tls) => tls,
            Err(e) => return self.error(format!("TLS client: {e}")),
        };
        if self.in_window(now) {
            self.outcome.load.connects += 1;
        }
        self.conns[slot] = Some(Conn {
            stream,
            tls,
            phase: Phase::Handshaking,
            origin: now,
            head: Vec::new(),
            head_done: false,
            body_left: 0,
            closing_since: None,
        });
    }

    fn error(&mut self, message: String) {
        self.outcome.load.errors += 1;
        self.consecutive_errors += 1;
        if self.outcome.load.first_errors.len() < 5 {
            self.outcome.load.first_errors.push(message);
        }
    }

    fn replace(&mut self, slot: usize, failure: Option<String>) {
        if let Some(mut conn) = self.conns[slot].take() {
            let _ = self.poll.registry().deregister(&mut conn.stream);
        }
        if let Some(message) = failure {
            self.error(message);
        }
        if Instant::now() < self.end {
            self.open(slot);
        }
    }

    /// Moves the connection in `slot` as far as its socket allows.
    fn advance(&mut self, slot: usize) {
        let Some(mut conn) = self.conns[slot].take() else {
            return;
        };
        match self.drive(&mut conn) {
            Ok(true) => self.conns[slot] = Some(conn),
            Ok(false) => {
                self.conns[slot] = Some(conn);
                self.replace(slot, None);
            }
            Err(message) => {
                self.conns[slot] = Some(conn);
                self.replace(slot, Some(message));
            }
        }
    }

    /// Ok(true): keep the connection; Ok(false): done with it (the proxy
    /// closed after our close_notify); Err: failed.
    fn drive(&mut self, conn: &mut Conn) -> Result<bool, String> {
        loop {
            while conn.tls.wants_write() {
                match conn.tls.write_tls(&mut conn.stream) {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => return Err(format!("write: {e}")),
                }
            }
            let eof = match conn.tls.read_tls(&mut conn.stream) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    if conn.tls.wants_write() {
                        continue;
                    }
                    return Ok(true);
                }
                // A reset after close_notify still ends the connection.
                Err(_) if conn.phase == Phase::Closing => return Ok(false),
                Err(e) => return Err(format!("read: {e}")),
            };
            let state = conn.tls.process_new_packets();
            if let Err(e) = state {
                // Send the alert rustls queued, then give up.
                let _ = conn.tls.write_tls(&mut conn.stream);
                return Err(format!("TLS: {e}"));
            }
            if conn.phase == Phase::Handshaking && !conn.tls.is_handshaking() {
                self.handshake_done(conn)?;
            }
            if conn.phase == Phase::Receiving {
                self.read_responses(conn)?;
            }
            if eof {
                return match conn.phase {
                    Phase::Closing => Ok(false),
                    _ => Err("proxy closed the connection".into()),
                };
            }
        }
    }

    fn handshake_done(&mut self, conn: &mut Conn) -> Result<(), String> {
        let now = Instant::now();
        match self.plan.workload {
            Workload::KeepAlive => {
                conn.phase = Phase::Receiving;
                send_request(&self.plan.request, conn, now)
            }
            Workload::FullHandshakes | Workload::ResumedHandshakes => {
                if self.in_window(now) {
                    self.outcome.load.requests += 1;
                    self.outcome.load.latencies.record(now - conn.origin);
                    match conn.tls.handshake_kind() {
                        Some(HandshakeKind::Resumed) => self.outcome.resumed_handshakes += 1,
                        _ => self.outcome.full_handshakes += 1,
                    }
                }
                self.consecutive_errors = 0;
                conn.tls.send_close_notify();
                conn.phase = Phase::Closing;
                conn.closing_since = Some(now);
                Ok(())
            }
        }
    }

    /// Reads the plaintext rustls has; each complete response is counted
    /// and followed by the next request.
    fn read_responses(&mut self, conn: &mut Conn) -> Result<(), String> {
        loop {
            let n = match conn.tls.reader().read(&mut self.plain) {
                Ok(0) => return Err("proxy sent close_notify".into()),
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(format!("TLS read: {e}")),
            };
            let mut data = &self.plain[..n];
            while !data.is_empty() {
                if !conn.head_done {
                    conn.head.extend_from_slice(data);
                    data = &[];
                    let head = match parse_response(&conn.head) {
                        Ok(Some(head)) => head,
                        Ok(None) if conn.head.len() > 16 * 1024 => {
                            return Err("response head too long".into())
                        }
                        Ok(None) => break,
                        Err(e) => return Err(format!("{e:#}")),
                    };
                    if head.status != 200 {
                        return Err(format!("status {}", head.status));
                    }
                    conn.head_done = true;
                    let extra = conn.head.len() - head.length;
                    conn.body_left = head.content_length;
                    let take = (extra as u64).min(conn.body_left);
                    conn.body_left -= take;
                    if take > 0 && self.in_window(Instant::now()) {
                        self.outcome.load.body_bytes += take;
                    }
                    if extra as u64 > take {
                        return Err("data after the response (pipelining not expected)".into());
                    }
                } else {
                    let take = (data.len() as u64).min(conn.body_left);
                    conn.body_left -= take;
                    data = &data[take as usize..];
                    if take > 0 && self.in_window(Instant::now()) {
                        self.outcome.load.body_bytes += take;
                    }
                    if !data.is_empty() {
                        return Err("data after the response (pipelining not expected)".into());
                    }
                }
                if conn.head_done && conn.body_left == 0 {
                    let now = Instant::now();
                    if self.in_window(now) {
                        self.outcome.load.requests += 1;
                        self.outcome.load.latencies.record(now - conn.origin);
                    }
                    self.consecutive_errors = 0;
                    send_request(&self.plan.request, conn, now)?;
                }
            }
        }
    }
}

fn send_request(request: &[u8], conn: &mut Conn, now: Instant) -> Result<(), String> {
    conn.origin = now;
    conn.head.clear();
    conn.head_done = false;
    conn.body_left = 0;
    conn.tls
        .writer()
        .write_all(request)
        .map_err(|e| format!("TLS write: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suites_by_iana_name() {
        for name in [
            "TLS_AES_128_GCM_SHA256",
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        ] {
            assert!(suite_named(name).is_some(), "{name}");
        }
        assert!(suite_named("TLS_AES_128_CCM_SHA256").is_none());
    }

    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::PrivateKeyDer;
    use std::net::TcpListener;

    /// A blocking rustls server on 127.0.0.1 with tickets (TLS 1.3) and a
    /// session cache (TLS 1.2): answers each request with a 2-byte 200 and
    /// closes after the client's close_notify. One thread per connection.
    fn tls_server(bundle: &std::path::Path) -> SocketAddr {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(bundle)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(bundle).unwrap();
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS12, &rustls::version::TLS13])
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap();
        config.ticketer = ring::Ticketer::new().unwrap();
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { return };
                let config = Arc::clone(&config);
                std::thread::spawn(move || {
                    let conn = rustls::ServerConnection::new(config).unwrap();
                    let mut tls = rustls::StreamOwned::new(conn, tcp);
                    let mut buf = [0u8; 4096];
                    loop {
                        match tls.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) if buf[..n].starts_with(b"GET ") => {
                                let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                                if tls.write_all(reply).is_err() {
                                    break;
                                }
                            }
                            Ok(_) => {}
                        }
                    }
                    tls.conn.send_close_notify();
                    let _ = tls.conn.complete_io(&mut tls.sock);
                });
            }
        });
        addr
    }

    fn plan(addr: SocketAddr, workload: Workload, version: Version) -> Plan {
        Plan {
            target: addr,
            server_name: "bench.test".into(),
            connections: 4,
            workload,
            version,
            suite: suite_named(match version {
                Version::Tls13 => "TLS_AES_128_GCM_SHA256",
                Version::Tls12 => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
            })
            .unwrap(),
            request: b"GET / HTTP/1.1\r\nHost: bench.test\r\n\r\n".to_vec(),
            warmup: Duration::from_millis(200),
            duration: Duration::from_millis(500),
            sources: Vec::new(),
            label: "test".into(),
        }
    }

    /// Over real sockets: full runs never resume, resumed runs do (TLS 1.3
    /// tickets taken after the handshake, TLS 1.2 sessions), keep-alive
    /// counts responses. Needs the openssl command for the certificate.
    #[test]
    fn handshakes_are_counted_full_or_resumed_and_requests_complete() {
        let dir = std::env::temp_dir().join(format!("loadtest-tls-{}", std::process::id()));
        let (bundle, _) =
            crate::tls::setup::make_certificate(&dir, crate::tls::setup::KeyType::EcdsaP256)
                .unwrap();
        let addr = tls_server(&bundle);
        let mut marks = Vec::new();
        let full = run(
            &plan(addr, Workload::FullHandshakes, Version::Tls13),
            &mut |m| marks.push(m),
        )
        .unwrap();
        assert_eq!(marks, [Mark::WindowOpens, Mark::WindowCloses]);
        assert_eq!(full.load.errors, 0, "{:?}", full.load.first_errors);
        assert!(full.full_handshakes > 0);
        assert_eq!(full.resumed_handshakes, 0);
        assert_eq!(full.load.requests, full.full_handshakes);
        for version in [Version::Tls13, Version::Tls12] {
            let resumed = run(
                &plan(addr, Workload::ResumedHandshakes, version),
                &mut |_| {},
            )
            .unwrap();
            assert_eq!(resumed.load.errors, 0, "{:?}", resumed.load.first_errors);
            assert!(resumed.resumed_handshakes > 0, "{version:?}: none resumed");
            // Only the first connections of the warm-up have no ticket yet.
            assert!(
                resumed.full_handshakes * 10 <= resumed.resumed_handshakes,
                "{version:?}: {} full, {} resumed",
                resumed.full_handshakes,
                resumed.resumed_handshakes
            );
        }
        let keepalive = run(
            &plan(addr, Workload::KeepAlive, Version::Tls13),
            &mut |_| {},
        )
        .unwrap();
        assert_eq!(
            keepalive.load.errors, 0,
            "{:?}",
            keepalive.load.first_errors
        );
        assert!(keepalive.load.requests > 0);
        assert_eq!(keepalive.load.body_bytes, 2 * keepalive.load.requests);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
