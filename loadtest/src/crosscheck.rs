//! The cross-check of loadtest's own client against wrk, made fair: for
//! each target one proxy instance serves both clients, which alternate in
//! short rounds (loadtest then wrk, wrk then loadtest, ...) so drift on a
//! shared machine hits both alike; both run one thread pinned to the load
//! CPU, with the same connections, request bytes (wrk gets loadtest's
//! User-Agent header), source address (the kernel's, 127.0.0.1), keep-alive
//! and window length; medians are compared. Then a fixed-rate pair: wrk
//! paced by its `delay()` hook, loadtest in open loop at the rate wrk
//! achieved, where both deliver the same rate and their latency
//! percentiles can be set side by side.

use crate::http_load::{self, Mark};
use crate::suite::{result_of, Meter, RunResult, Suite, SuiteOutcome, Target};
use anyhow::{Context, Result};
use std::path::Path;
use std::time::Duration;

/// Closed-loop req/s of the two clients through a proxy must agree within
/// this fraction (|loadtest / wrk - 1|), medians over the rounds.
pub const MARGIN: f64 = 0.15;

/// Scenario names of the cross-check runs in the results.
pub const CLOSED: &str = "wrk-crosscheck";
pub const FIXED_RATE: &str = "wrk-crosscheck-rate";

/// The fixed-rate pair runs at about this share of loadtest's closed-loop
/// median for the target: loaded, but with headroom for noise.
pub const RATE_SHARE: f64 = 0.5;

/// wrk's pacing: the delay after each response that makes `connections`
/// connections offer about `rate` requests per second (whole ms, at least 1).
pub fn delay_ms_for(connections: usize, rate: f64) -> u64 {
    ((connections as f64 * 1000.0 / rate.max(1.0)).round() as u64).max(1)
}

/// Whether a loadtest / wrk ratio is within the margin.
pub fn within_margin(ratio: f64) -> bool {
    (ratio - 1.0).abs() <= MARGIN
}

/// The median over rounds of loadtest's req/s over wrk's in the same round
/// (two adjacent runs on one proxy instance, so slow drift of a shared
/// machine cancels within each pair), and the number of pairs.
pub fn paired_ratio(outcome: &SuiteOutcome, target: Target) -> Option<(f64, usize)> {
    let rate = |tool: &str, round: usize| {
        outcome
            .runs
            .iter()
            .find(|r| {
                r.scenario == CLOSED && r.target == target && r.tool == tool && r.round == round
            })
            .map(|r| r.requests_per_second)
    };
    let mut ratios: Vec<f64> = (1..=outcome.runs.len())
        .filter_map(|round| Some(rate("loadtest", round)? / rate("wrk", round)?.max(1e-9)))
        .collect();
    let pairs = ratios.len();
    Some((crate::report::median(&mut ratios)?, pairs))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tool {
    Loadtest,
    Wrk,
}

pub fn run(suite: &mut Suite<'_>, wrk: &Path) -> Result<()> {
    let o = suite.o;
    let dir = o.config_dir.join("http");
    let rounds = o.wrk_rounds.max(1);
    let seconds = o.wrk_window.as_secs().max(1);
    eprintln!(
        "loadtest: wrk cross-check: {rounds} alternating round(s) of {seconds} s per client and \
         target, then one fixed-rate pair"
    );
    for target in suite.order(1) {
        if crate::procs::stopping() {
            anyhow::bail!("interrupted");
        }
        let quiet = suite.quiet()?;
        let proxy = match suite.start_proxy(target, CLOSED) {
            Ok(proxy) => proxy,
            Err(e) => {
                let message = format!("{CLOSED} {}: {e:#}", target.name());
                eprintln!("loadtest: {message}");
                suite.outcome.failures.push(message);
                continue;
            }
        };
        let pid = proxy.as_ref().map(crate::procs::Spawned::pid);
        let result = against(suite, wrk, &dir, target, pid, rounds, seconds, quiet);
        suite.stop_proxy(proxy, target);
        if let Err(e) = result {
            if crate::procs::stopping() {
                return Err(e);
            }
            let message = format!("{CLOSED} {}: {e:#}", target.name());
            eprintln!("loadtest: {message}");
            suite.outcome.failures.push(message);
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn against(
    suite: &mut Suite<'_>,
    wrk: &Path,
    dir: &Path,
    target: Target,
    pid: Option<u32>,
    rounds: usize,
    seconds: u64,
    quiet: Option<bool>,
) -> Result<()> {
    let o = suite.o;
    let (addr, _) = suite.addresses(target);
    let path = format!("/bytes/{}", o.small_body);
    let window = Duration::from_secs(seconds);
    let mut closed_loop = Vec::new();
    for round in 1..=rounds {
        let order = if round % 2 == 1 {
            [Tool::Loadtest, Tool::Wrk]
        } else {
            [Tool::Wrk, Tool::Loadtest]
        };
        for tool in order {
            if crate::procs::stopping() {
                anyhow::bail!("interrupted");
            }
            let mut run = match tool {
                Tool::Loadtest => ours(suite, target, pid, addr, &path, None, window)?,
                Tool::Wrk => theirs(suite, wrk, target, pid, addr, &path, None, seconds)?,
            };
            run.scenario = CLOSED.into();
            run.round = round;
            run.quiet_start = quiet;
            if tool == Tool::Loadtest {
                closed_loop.push(run.requests_per_second);
            }
            progress(&run);
            suite.outcome.runs.push(run);
        }
    }

    // Fixed rate: wrk paced first, loadtest at the rate it achieved.
    let goal = crate::suite::median(closed_loop).unwrap_or(1000.0) * RATE_SHARE;
    let delay = delay_ms_for(o.connections, goal);
    let script = dir.join(format!("wrk-pace-{delay}ms.lua"));
    std::fs::write(&script, crate::wrk::delay_script(delay))
        .with_context(|| format!("writing {}", script.display()))?;
    let mut paced = theirs(suite, wrk, target, pid, addr, &path, Some(&script), seconds)?;
    paced.scenario = FIXED_RATE.into();
    paced.round = 1;
    paced.quiet_start = quiet;
    let rate = paced.requests_per_second.max(1.0).round();
    paced.rate = Some(rate);
    progress(&paced);
    suite.outcome.runs.push(paced);
    let mut open = ours(suite, target, pid, addr, &path, Some(rate), window)?;
    open.scenario = FIXED_RATE.into();
    open.round = 1;
    open.quiet_start = quiet;
    progress(&open);
    suite.outcome.runs.push(open);
    Ok(())
}

fn progress(run: &RunResult) {
    eprintln!(
        "loadtest: {} {:<8} {:<8} round {}: {:>9.0} req/s  p50 {}  client CPU {}/req",
        run.scenario,
        run.target.name(),
        run.tool,
        run.round,
        run.requests_per_second,
        crate::hist::format_micros(run.latency.p50_us),
        run.client_us_per_request()
            .map(|us| format!("{us:.1} µs"))
            .unwrap_or_else(|| "–".into()),
    );
}

/// loadtest's client as wrk is run: the kernel's source address, a short
/// warm-up (wrk connects at once too), the same window.
fn ours(
    suite: &mut Suite<'_>,
    target: Target,
    pid: Option<u32>,
    addr: std::net::SocketAddr,
    path: &str,
    rate: Option<f64>,
    window: Duration,
) -> Result<RunResult> {
    let o = suite.o;
    let plan = http_load::Plan {
        target: addr,
        connections: o.connections,
        request: http_load::get_request(path, addr, false),
        reuse: true,
        rate,
        warmup: Duration::from_millis(300),
        duration: window,
        sources: Vec::new(),
        label: format!("{CLOSED} {} loadtest", target.name()),
    };
    let mut meter = Meter::new(o, pid, suite.backend.pid());
    let outcome = http_load::run(&plan, &mut |m| meter.mark(m))?;
    let spent = meter.spent()?;
    Ok(result_of(
        CLOSED,
        target,
        o.connections,
        rate,
        &outcome,
        spent,
    ))
}

#[allow(clippy::too_many_arguments)]
fn theirs(
    suite: &mut Suite<'_>,
    wrk: &Path,
    target: Target,
    pid: Option<u32>,
    addr: std::net::SocketAddr,
    path: &str,
    script: Option<&Path>,
    seconds: u64,
) -> Result<RunResult> {
    let o = suite.o;
    let plan = crate::wrk::Plan {
        wrk,
        cpu: o.load_cpu,
        target: addr,
        path,
        connections: o.connections,
        seconds,
        headers: vec![format!("User-Agent: {}", http_load::USER_AGENT)],
        script,
    };
    let mut meter = Meter::new(o, pid, suite.backend.pid());
    let run = crate::wrk::run(&plan, &mut |m: Mark| meter.mark(m))?;
    let spent = meter.spent()?;
    let mut result = result_of(CLOSED, target, o.connections, None, &run.outcome, spent);
    result.tool = "wrk".into();
    result.latency = run.latency;
    // wrk is a process of its own: its CPU, not loadtest's.
    result.client_cpu_seconds = run.cpu.map(|d| d.as_secs_f64());
    if !suite.outcome.commands.contains(&run.command) {
        suite.outcome.commands.push(run.command);
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacing_delay_gives_the_rate_over_the_connections() {
        // 64 connections at 6400/s: one request per connection every 10 ms.
        assert_eq!(delay_ms_for(64, 6400.0), 10);
        assert_eq!(delay_ms_for(64, 1e9), 1);
        assert_eq!(delay_ms_for(1, 0.0), 1000);
    }

    #[test]
    fn the_margin_is_symmetric_around_one() {
        assert!(within_margin(1.14));
        assert!(within_margin(0.86));
        assert!(!within_margin(1.16));
        assert!(!within_margin(0.69));
    }

    fn run(target: Target, tool: &str, round: usize, rps: f64) -> RunResult {
        let outcome = crate::http_load::Outcome {
            requests: rps as u64,
            duration: Duration::from_secs(1),
            window: Duration::from_secs(1),
            ..Default::default()
        };
        let mut r = result_of(CLOSED, target, 64, None, &outcome, Default::default());
        r.tool = tool.into();
        r.round = round;
        r
    }

    #[test]
    fn pairs_are_compared_round_by_round() {
        // The machine got twice as fast in round 2: each pair still agrees
        // (ratios 1.0, 1.1, 0.9), whatever the medians of each client.
        let outcome = SuiteOutcome {
            runs: vec![
                run(Target::Percore, "loadtest", 1, 1000.0),
                run(Target::Percore, "wrk", 1, 1000.0),
                run(Target::Percore, "wrk", 2, 2000.0),
                run(Target::Percore, "loadtest", 2, 2200.0),
                run(Target::Percore, "loadtest", 3, 900.0),
                run(Target::Percore, "wrk", 3, 1000.0),
                run(Target::Haproxy, "loadtest", 1, 500.0),
                // A round without its wrk half is not a pair.
                run(Target::Percore, "loadtest", 4, 9000.0),
            ],
            ..Default::default()
        };
        let (ratio, pairs) = paired_ratio(&outcome, Target::Percore).unwrap();
        assert_eq!(pairs, 3);
        assert!((ratio - 1.0).abs() < 1e-9, "{ratio}");
        assert_eq!(paired_ratio(&outcome, Target::Haproxy), None);
        assert_eq!(paired_ratio(&outcome, Target::Direct), None);
    }
}
