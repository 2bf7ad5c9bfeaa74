//! Reload in place: re-read the configuration file and apply it on every
//! core, two steps over the core mesh (prepare everywhere, then commit
//! everywhere), so a configuration that cannot be applied on one core is
//! applied on none. Triggered by SIGHUP, SIGUSR2 or the runtime API's
//! `reload`; runs on core 0. Reloads (and runtime API commands) take the
//! collector's change lock in turn, so one arriving while another is
//! applied waits for it and is not lost.

use std::sync::Arc;
use std::time::Instant;

use super::apply::{CoreAnswer, CoreRequest};
use super::Collector;
use crate::config::diff::Changes;
use crate::shard::Shard;

/// How a reload ended, in lines for the log and the runtime API.
#[derive(Debug)]
pub struct ReloadOutcome {
    pub applied: bool,
    pub lines: Vec<String>,
}

/// Re-reads the file the running configuration came from and applies it.
/// Never stops the process: a bad file leaves the running configuration
/// serving, with every error logged. systemd hears `RELOADING=1` before
/// and `READY=1` after, whatever the result (src/notify.rs).
pub async fn reload(shard: &Shard, collector: &Collector) -> ReloadOutcome {
    crate::notify::reloading();
    let outcome = reload_file(shard, collector).await;
    crate::notify::reloaded(
        outcome.applied,
        outcome.lines.last().map_or("", String::as_str),
    );
    outcome
}

async fn reload_file(shard: &Shard, collector: &Collector) -> ReloadOutcome {
    let _turn = collector.change_lock().await;
    let began = Instant::now();
    let running = shard.current();
    let path = running.config.source.clone();
    let config = match crate::config::load(&path) {
        Ok(config) => Arc::new(config),
        Err(errors) => {
            let mut lines: Vec<String> = errors.to_string().lines().map(str::to_owned).collect();
            lines.push(format!(
                "reload refused: configuration {} is invalid; still serving the running one",
                path.display()
            ));
            for line in &lines {
                eprintln!("[ALERT] {line}");
            }
            return ReloadOutcome {
                applied: false,
                lines,
            };
        }
    };
    for w in &config.warnings {
        eprintln!("[WARNING] {w}");
    }
    let generation = running.generation + 1;
    let changes = Changes::between(&running.config, &config);
    let prepared = collector
        .ask_all(
            shard,
            CoreRequest::PrepareReload {
                generation,
                config: Arc::clone(&config),
            },
        )
        .await;
    let mut failures: Vec<String> = prepared
        .answers
        .iter()
        .filter_map(|a| match a {
            CoreAnswer::Failed(line) => Some(line.clone()),
            _ => None,
        })
        .collect();
    if prepared.missing > 0 {
        failures.push(format!("{} core(s) did not answer", prepared.missing));
    }
    if !failures.is_empty() {
        collector
            .ask_all(shard, CoreRequest::AbortReload { generation })
            .await;
        failures.push("reload refused; still serving the running configuration".into());
        for line in &failures {
            eprintln!("[ALERT] {line}");
        }
        return ReloadOutcome {
            applied: false,
            lines: failures,
        };
    }
    let committed = collector
        .ask_all(shard, CoreRequest::CommitReload { generation })
        .await;
    let mut lines = changes.lines();
    for answer in &committed.answers {
        if let CoreAnswer::Failed(line) = answer {
            lines.push(format!("warning: {line}"));
        }
    }
    if committed.missing > 0 {
        lines.push(format!(
            "warning: {} core(s) did not confirm the switch",
            committed.missing
        ));
    }
    if !changes.global_ignored.is_empty() {
        lines.push(format!(
            "not applied by a reload (restart to change): {}",
            changes.global_ignored.join(", ")
        ));
    }
    let took = began.elapsed();
    lines.push(format!(
        "reload {generation} applied on {} core(s) in {:.1} ms{}",
        committed.answers.len(),
        took.as_secs_f64() * 1000.0,
        if changes.lines().is_empty() {
            " (no frontend, backend or server changed)"
        } else {
            ""
        }
    ));
    for line in &lines {
        eprintln!("[NOTICE] {line}");
    }
    ReloadOutcome {
        applied: true,
        lines,
    }
}
