//! What the soak counted, and the report it writes.

use super::*;

#[derive(Debug, Default)]
pub(super) struct Tally {
    /// (operation, outcome) → count.
    pub(super) outcomes: BTreeMap<(String, String), u64>,
    pub(super) complete_transfers: u64,
    pub(super) complete_bytes: u64,
    pub(super) aborted_transfers: u64,
    pub(super) aborted_bytes_verified: u64,
    pub(super) failures: Vec<String>,
    pub(super) kills: u64,
    pub(super) restarts: u64,
    pub(super) reloads: u64,
    pub(super) reload_ms_max: f64,
    pub(super) slowloris: u64,
    pub(super) slowloris_408: u64,
    pub(super) slowloris_cut_max: Duration,
    pub(super) silent: u64,
    pub(super) silent_cut_max: Duration,
}

impl Tally {
    pub(super) fn record(&mut self, op: &str, result: &OpResult) {
        let label = match result {
            Ok(Outcome::Done { bytes }) => {
                self.complete_transfers += 1;
                self.complete_bytes += bytes;
                "ok".to_string()
            }
            Ok(Outcome::Refused(status)) => status.to_string(),
            Ok(Outcome::Aborted { verified }) => {
                self.aborted_transfers += 1;
                self.aborted_bytes_verified += verified;
                "aborted (server killed)".to_string()
            }
            Ok(Outcome::Retry) => "keep-alive closed, retried".to_string(),
            Err(f) => {
                if self.failures.len() < 50 {
                    self.failures.push(format!("{op}: {}", f.describe()));
                }
                match f {
                    Failure::Corrupt(_) => "CORRUPT",
                    Failure::Hang(_) => "HANG",
                    Failure::Unexpected(_) => "UNEXPECTED",
                }
                .to_string()
            }
        };
        *self.outcomes.entry((op.to_string(), label)).or_default() += 1;
    }

    pub(super) fn fail(&mut self, what: String) {
        if self.failures.len() < 50 {
            self.failures.push(what);
        }
    }
}

pub(super) type Shared = Arc<Mutex<Tally>>;

pub(super) fn lock(t: &Shared) -> std::sync::MutexGuard<'_, Tally> {
    t.lock().unwrap_or_else(|e| e.into_inner())
}

pub(super) fn render(
    o: &Options,
    t: &Tally,
    start: (usize, u64),
    peak: (usize, u64),
    after: (usize, u64),
    load_seconds: f64,
    elapsed: Duration,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{BEGIN}");
    let _ = writeln!(out, "## Soak with faults\n");
    let _ = writeln!(
        out,
        "`loadtest soak --duration {}s --clients {}` ({} s of load, {:.0} s in all; \
         proxy on CPUs {:?}, both CPUs shared with the clients and backends). \
         Faults: a backend SIGKILLed and restarted every {:?}, a reload every {:?}, \
         slowloris and silent connections throughout, requests to a server that \
         stalls {:?} ms then resets.\n",
        o.duration.as_secs(),
        o.clients,
        load_seconds,
        elapsed.as_secs_f64(),
        o.cpus,
        o.fault_every,
        o.reload_every,
        STALLS_MS,
    );
    let _ = writeln!(out, "| operation | outcome | count |");
    let _ = writeln!(out, "|---|---|---:|");
    for ((op, outcome), n) in &t.outcomes {
        let _ = writeln!(out, "| {op} | {outcome} | {n} |");
    }
    let _ = writeln!(
        out,
        "\n- Completed transfers: {}, {} bytes, every byte checked and intact.",
        t.complete_transfers, t.complete_bytes
    );
    let _ = writeln!(
        out,
        "- Transfers cut because their server was killed: {}; the {} bytes received before the cut were checked and intact.",
        t.aborted_transfers, t.aborted_bytes_verified
    );
    let _ = writeln!(
        out,
        "- Backends killed: {}, restarted: {}. Reloads applied: {} (longest {:.1} ms).",
        t.kills, t.restarts, t.reloads, t.reload_ms_max
    );
    let _ = writeln!(
        out,
        "- Slowloris connections: {} cut by the proxy ({} with 408), the slowest after {:.1} s (timeout http-request {} s). Silent connections: {} closed, the slowest after {:.1} s.",
        t.slowloris,
        t.slowloris_408,
        t.slowloris_cut_max.as_secs_f64(),
        TIMEOUT_HTTP_REQUEST.as_secs(),
        t.silent,
        t.silent_cut_max.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "- Proxy descriptors: {} at the start, {} at the peak, {} after (allowed: start + {FD_MARGIN}).",
        start.0, peak.0, after.0
    );
    let _ = writeln!(
        out,
        "- Proxy RSS: {:.1} MiB at the start, {:.1} MiB at the peak, {:.1} MiB after (allowed: start + {} MiB).",
        start.1 as f64 / 1024.0,
        peak.1 as f64 / 1024.0,
        after.1 as f64 / 1024.0,
        RSS_MARGIN_KIB / 1024
    );
    if t.failures.is_empty() {
        let _ = writeln!(
            out,
            "- Verdict: **pass** (no crash, no hang, no corrupted byte, no undocumented outcome)."
        );
    } else {
        let _ = writeln!(out, "- Verdict: **FAIL**:");
        for f in &t.failures {
            let _ = writeln!(out, "  - {f}");
        }
    }
    let _ = writeln!(out, "{END}");
    out
}
