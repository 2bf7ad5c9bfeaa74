//! The cross-check: wrk (a C load generator; Debian package `wrk`) against
//! the same target, connections and duration as loadtest's own closed loop,
//! so the report can say how far the two agree.

use crate::hist::Percentiles;
use crate::http_load::{Mark, Outcome};
use crate::procs::{SpawnSpec, Spawned};
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub struct WrkRun {
    pub outcome: Outcome,
    pub latency: Percentiles,
    pub command: String,
}

/// What wrk printed, in numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct WrkReport {
    pub requests: u64,
    pub seconds: f64,
    pub requests_per_second: f64,
    pub errors: u64,
    pub p50_us: Option<u64>,
    pub p90_us: Option<u64>,
    pub p99_us: Option<u64>,
}

/// "2.40ms", "850.00us", "1.02s", "1.5m" in microseconds.
fn micros(text: &str) -> Option<u64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number.parse().ok()?;
    let factor = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        _ => return None,
    };
    Some((value * factor).round() as u64)
}

pub fn parse(output: &str) -> Result<WrkReport> {
    let mut requests = None;
    let mut seconds = None;
    let mut rate = None;
    let mut errors = 0u64;
    let (mut p50, mut p90, mut p99) = (None, None, None);
    for line in output.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [n, "requests", "in", time, ..] => {
                requests = n.parse().ok();
                seconds = micros(time.trim_end_matches(',')).map(|us| us as f64 / 1e6);
            }
            ["Requests/sec:", value] => rate = value.parse().ok(),
            ["Socket", "errors:", rest @ ..] => {
                errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            ["Non-2xx", "or", "3xx", "responses:", n] => errors += n.parse::<u64>().unwrap_or(0),
            ["50%", v] => p50 = micros(v),
            ["90%", v] => p90 = micros(v),
            ["99%", v] => p99 = micros(v),
            _ => {}
        }
    }
    match (requests, seconds, rate) {
        (Some(requests), Some(seconds), Some(requests_per_second)) => Ok(WrkReport {
            requests,
            seconds,
            requests_per_second,
            errors,
            p50_us: p50,
            p90_us: p90,
            p99_us: p99,
        }),
        _ => bail!("wrk output without a request count and rate: {output:?}"),
    }
}

pub fn run(
    wrk: &Path,
    cpu: usize,
    target: SocketAddr,
    path: &str,
    connections: usize,
    duration: Duration,
    mark: &mut dyn FnMut(Mark),
) -> Result<WrkRun> {
    let seconds = duration.as_secs().max(1);
    let mut child = Spawned::spawn(SpawnSpec {
        name: "wrk",
        cpu: Some(cpu),
        program: wrk,
        args: vec![
            "-t1".into(),
            format!("-c{connections}").into(),
            format!("-d{seconds}s").into(),
            "--latency".into(),
            format!("http://{target}{path}").into(),
        ],
        log: None,
        capture_stdout: true,
    })?;
    let command = child.command_line().to_string();
    mark(Mark::WindowOpens);
    let mut output = String::new();
    child
        .take_stdout()
        .context("wrk stdout")?
        .read_to_string(&mut output)
        .context("reading wrk's output")?;
    mark(Mark::WindowCloses);
    let status = child.stop()?;
    if !status.success() {
        bail!("`{command}` failed ({status}): {output}");
    }
    let report = parse(&output)?;
    let outcome = Outcome {
        requests: report.requests,
        errors: report.errors,
        duration: Duration::from_secs_f64(report.seconds.max(1e-3)),
        window: Duration::from_secs_f64(report.seconds.max(1e-3)),
        ..Outcome::default()
    };
    let latency = Percentiles {
        count: report.requests,
        p50_us: report.p50_us.unwrap_or(0),
        p90_us: report.p90_us.unwrap_or(0),
        p99_us: report.p99_us.unwrap_or(0),
        ..Percentiles::default()
    };
    Ok(WrkRun {
        outcome,
        latency,
        command,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "Running 5s test @ http://127.0.0.1:24011/bytes/100
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     2.50ms    1.00ms  20.00ms   90.00%
    Req/Sec    25.00k     1.00k   27.00k    80.00%
  Latency Distribution
     50%  850.00us
     75%    2.80ms
     90%    3.20ms
     99%    1.02s
  125000 requests in 5.00s, 20.00MB read
  Socket errors: connect 1, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 10
Requests/sec:  25000.50
Transfer/sec:      4.00MB
";

    #[test]
    fn wrk_output_is_parsed() {
        let r = parse(SAMPLE).unwrap();
        assert_eq!(r.requests, 125_000);
        assert_eq!(r.seconds, 5.0);
        assert_eq!(r.requests_per_second, 25000.5);
        assert_eq!(r.errors, 16);
        assert_eq!(r.p50_us, Some(850));
        assert_eq!(r.p90_us, Some(3200));
        assert_eq!(r.p99_us, Some(1_020_000));
        assert!(parse("wrk: connection refused").is_err());
    }

    #[test]
    fn wrk_against_the_backend_when_installed() {
        let Some(wrk) = crate::procs::which("wrk") else {
            eprintln!("wrk not installed; skipped");
            return;
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || crate::http_backend::serve(listener));
        let mut marks = Vec::new();
        let run = run(
            &wrk,
            0,
            addr,
            "/bytes/100",
            4,
            Duration::from_secs(1),
            &mut |m| marks.push(m),
        )
        .unwrap();
        assert_eq!(marks, vec![Mark::WindowOpens, Mark::WindowCloses]);
        assert!(run.outcome.requests > 0);
        assert_eq!(run.outcome.errors, 0);
        assert!(run.command.contains("wrk -t1 -c4 -d1s --latency"));
    }
}
