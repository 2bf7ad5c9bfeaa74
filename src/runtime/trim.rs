//! Gives memory freed on a quiet core back to the system.
//!
//! mimalloc returns a freed page to the OS only after `purge_delay`
//! (10 ms), and only when the thread that owns it next frees nearby: a
//! core that goes quiet after a burst keeps the burst's memory resident.
//! An edge node sees exactly that: 10,000 clients connect, and (before the
//! first read no longer waited) each got a task for its first 100 ms, then
//! waited parked in a ~300-byte place (`runtime::parking`); the tasks'
//! memory, freed at once, stayed resident.
//! Measured with `loadtest idle` (10,000 connections, docs/benchmarks.md):
//! 2,688 bytes per idle connection and 2,018 per idle keep-alive session
//! without this; 853 and 946 with it (HAProxy 2.6: 1,136 and 1,137).
//!
//! Every `TRIM_EVERY` a core collects its heap. A quiet core (fewer than
//! `QUIET_EVENTS` socket events since the last look) forces the purge of
//! everything free; a busy one only does the purges whose delay ran out,
//! so that memory it is about to reuse is not handed back and faulted in
//! again.

use std::time::Duration;

use crate::net::readiness::Readiness;

/// How often a core looks.
const TRIM_EVERY: Duration = Duration::from_millis(500);
/// Socket events per look under which a core counts as quiet (200 a
/// second: a few idle clients waking, no real traffic).
const QUIET_EVENTS: u64 = 100;

extern "C" {
    /// mimalloc's `mi_collect`: frees what the calling thread's heap can
    /// free; `force`: also purges free memory whose delay has not run out.
    fn mi_collect(force: bool);
}

/// Starts this core's trim task (for the executor's lifetime).
pub fn start() {
    let Ok(readiness) = Readiness::current() else {
        return;
    };
    glommio::spawn_local(async move {
        let mut seen = readiness.collected();
        loop {
            glommio::timer::sleep(TRIM_EVERY).await;
            let now = readiness.collected();
            let quiet = now - seen < QUIET_EVENTS;
            seen = now;
            // SAFETY: mi_collect takes no pointers and may be called from
            // any thread at any time; it touches only mimalloc's own state
            // (the calling thread's heap and the process's arenas).
            // mimalloc is linked whether or not it is the global allocator
            // (the tests use the system one); then it has nothing to do.
            unsafe { mi_collect(quiet) };
        }
    })
    .detach();
}
