//! WebSocket echo round trips at a fixed rate: one thread per connection
//! (tungstenite, blocking), each sending on its own `pacing::Schedule` and
//! waiting for the echo. Latency runs from the intended send time, so a
//! late echo delays the next send without hiding it (coordinated omission
//! corrected, as in the HTTP open loop).

use crate::hist::Latencies;
use crate::http_load::{Mark, Outcome};
use crate::pacing::Schedule;
use anyhow::{bail, Context, Result};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tungstenite::Message;

const IO_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct Plan {
    pub target: SocketAddr,
    pub connections: usize,
    pub rate: f64,
    pub message_size: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub label: String,
}

struct ThreadResult {
    latencies: Latencies,
    messages: u64,
    bytes: u64,
}

pub fn run(plan: &Plan, mark: &mut dyn FnMut(Mark)) -> Result<Outcome> {
    // Connect everyone first, so handshakes are not in the window.
    let mut sockets = Vec::with_capacity(plan.connections);
    for i in 0..plan.connections {
        let stream = TcpStream::connect_timeout(&plan.target, IO_TIMEOUT)
            .with_context(|| format!("connecting to {}", plan.target))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let url = format!("ws://{}/echo", plan.target);
        let (socket, _) = tungstenite::client(url.as_str(), stream).map_err(|e| {
            anyhow::anyhow!("WebSocket handshake {} of {}: {e}", i + 1, plan.connections)
        })?;
        sockets.push(socket);
    }
    let start = Instant::now() + Duration::from_millis(20);
    let window_start = start + plan.warmup;
    let end = window_start + plan.duration;
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(i, mut socket)| {
            let schedule = Schedule::for_connection(start, plan.rate, plan.connections, i);
            let size = plan.message_size.max(8);
            let done = Arc::clone(&done);
            std::thread::Builder::new().name(format!("ws-{i}")).spawn(
                move || -> Result<ThreadResult> {
                    let mut result = ThreadResult {
                        latencies: Latencies::new(),
                        messages: 0,
                        bytes: 0,
                    };
                    let mut payload = vec![0x5au8; size];
                    let mut k = 0u64;
                    loop {
                        let intended = schedule.intended(k);
                        if intended >= end || crate::procs::stopping() {
                            break;
                        }
                        let now = Instant::now();
                        if intended > now {
                            std::thread::sleep(intended - now);
                        }
                        payload[..8].copy_from_slice(&k.to_le_bytes());
                        socket
                            .send(Message::Binary(payload.clone()))
                            .with_context(|| format!("sending message {k}"))?;
                        loop {
                            match socket.read().with_context(|| format!("echo of {k}"))? {
                                Message::Binary(echo) => {
                                    if echo.len() != size || echo[..8] != k.to_le_bytes() {
                                        bail!("echo of message {k} differs");
                                    }
                                    break;
                                }
                                Message::Close(_) => bail!("closed by peer"),
                                _ => {}
                            }
                        }
                        if intended >= window_start {
                            result.latencies.record(intended.elapsed());
                            result.messages += 1;
                            result.bytes += size as u64;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        k += 1;
                    }
                    let _ = socket.close(None);
                    Ok(result)
                },
            )
        })
        .collect::<std::io::Result<_>>()
        .context("starting WebSocket threads")?;

    let sleep_until = |at: Instant| {
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
    };
    sleep_until(window_start);
    mark(Mark::WindowOpens);
    let opened = Instant::now();
    let mut last = 0;
    let total = (plan.warmup + plan.duration).as_secs_f64();
    while Instant::now() < end && !crate::procs::stopping() {
        std::thread::sleep(
            Duration::from_secs(1).min(end.saturating_duration_since(Instant::now())),
        );
        let now_done = done.load(Ordering::Relaxed);
        eprintln!(
            "loadtest:   {}: {:4.1}/{total:.0} s  {:>9.0} msg/s",
            plan.label,
            (Instant::now() - start).as_secs_f64().min(total),
            (now_done - last) as f64
        );
        last = now_done;
    }
    let mut outcome = Outcome {
        duration: plan.duration,
        ..Outcome::default()
    };
    for worker in workers {
        match worker.join() {
            Ok(Ok(r)) => {
                outcome.latencies.merge(&r.latencies)?;
                outcome.requests += r.messages;
                outcome.body_bytes += r.bytes;
            }
            Ok(Err(e)) => {
                outcome.errors += 1;
                if outcome.first_errors.len() < 5 {
                    outcome.first_errors.push(format!("{e:#}"));
                }
            }
            Err(_) => bail!("a WebSocket thread panicked"),
        }
    }
    mark(Mark::WindowCloses);
    outcome.window = opened.elapsed();
    if outcome.errors > 0 && outcome.requests == 0 {
        bail!(
            "every WebSocket connection failed: {}",
            outcome.first_errors.join(" / ")
        );
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_at_the_scheduled_count() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap();
        std::thread::spawn(move || crate::http_backend::serve_websocket(listener));
        let plan = Plan {
            target,
            connections: 3,
            rate: 300.0,
            message_size: 64,
            warmup: Duration::from_millis(100),
            duration: Duration::from_millis(500),
            label: "ws".into(),
        };
        let mut marks = Vec::new();
        let out = run(&plan, &mut |m| marks.push(m)).unwrap();
        assert_eq!(marks, vec![Mark::WindowOpens, Mark::WindowCloses]);
        assert_eq!(out.errors, 0, "{:?}", out.first_errors);
        // 300/s for 0.5 s: 150 messages intended in the window.
        assert_eq!(out.requests, 150);
        assert_eq!(out.latencies.count(), 150);
        assert_eq!(out.body_bytes, 150 * 64);
    }
}
