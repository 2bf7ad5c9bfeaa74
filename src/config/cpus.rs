//! Which CPUs this process may run on, for validating `threads`.

/// CPU ids in this process's affinity mask, ascending.
///
/// The mask, not the machine's CPU count, is what matters: under a cpuset
/// (containers, `taskset`) CPU 0 may not be usable while CPU 5 is, and an
/// executor pinned outside the mask would fail at start.
///
/// The first call's answer is kept for the process: it is made on the main
/// thread at start, before any executor pins itself, and a reload (read on
/// a pinned core, whose own mask is one CPU) must see the same CPUs.
pub fn available_cpus() -> Vec<usize> {
    static FIRST: std::sync::OnceLock<Vec<usize>> = std::sync::OnceLock::new();
    FIRST.get_or_init(read_mask).clone()
}

fn read_mask() -> Vec<usize> {
    // core_affinity reads the mask with sched_getaffinity(2).
    let mut ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if ids.is_empty() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        ids = (0..n).collect();
    }
    ids.sort_unstable();
    ids.dedup();
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_cpu_is_in_the_mask() {
        let cpus = available_cpus();
        assert!(!cpus.is_empty());
        assert!(cpus.windows(2).all(|w| w[0] < w[1]));
        // SAFETY: sched_getcpu has no preconditions.
        let current = unsafe { libc::sched_getcpu() };
        if let Ok(current) = usize::try_from(current) {
            assert!(cpus.contains(&current), "{current} not in {cpus:?}");
        }
    }
}
