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
use crate::shard::{offload, Shard};

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
    // Read, checked and compared with the running configuration on a
    // helper thread: for a large file that is most of a reload's time, and
    // this core goes on serving meanwhile.
    let read = {
        let (path, running) = (path.clone(), Arc::clone(&running.config));
        offload::run("reload", crate::config::cpus::available_cpus(), move || {
            crate::config::load(&path).map(|config| {
                let changes = Changes::between(&running, &config);
                (Arc::new(config), changes)
            })
        })
        .await
    };
    let (config, changes) = match read {
        Ok(Ok(read)) => read,
        Ok(Err(errors)) => {
            let mut lines: Vec<String> = errors.to_string().lines().map(str::to_owned).collect();
            lines.push(format!(
                "reload refused: configuration {} is invalid; still serving the running one",
                path.display()
            ));
            return refused(lines);
        }
        Err(e) => return refused(vec![e.to_string(), "reload refused".into()]),
    };
    for w in &config.warnings {
        eprintln!("[WARNING] {w}");
    }
    let read_in = began.elapsed();
    let generation = running.generation + 1;
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
        return refused(failures);
    }
    let prepared_at = began.elapsed();
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
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    // The parts: the file (off the cores), preparing on every core (TLS,
    // new sockets), the switch on every core (what holds their traffic).
    lines.push(format!(
        "reload {generation} applied on {} core(s) in {:.1} ms (file read and compared in \
         {:.1} ms, cores prepared in {:.1} ms, switched in {:.1} ms){}",
        committed.answers.len(),
        ms(took),
        ms(read_in),
        ms(prepared_at.saturating_sub(read_in)),
        ms(took.saturating_sub(prepared_at)),
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

/// A reload that changes nothing; its lines are logged as alerts.
fn refused(lines: Vec<String>) -> ReloadOutcome {
    for line in &lines {
        eprintln!("[ALERT] {line}");
    }
    ReloadOutcome {
        applied: false,
        lines,
    }
}
