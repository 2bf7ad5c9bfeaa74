//! Which CPUs this process may run on, for validating `threads`.

/// CPU ids in this process's affinity mask, ascending.
///
/// The mask, not the machine's CPU count, is what matters: under a cpuset
/// (containers, `taskset`) CPU 0 may not be usable while CPU 5 is, and an
/// executor pinned outside the mask would fail at start.
pub fn available_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain bits, so a zeroed value is valid; the
    // kernel writes at most size_of::<cpu_set_t>() bytes into it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        // Only fails for masks wider than cpu_set_t (> 1024 CPUs); fall back
        // to the count the standard library reports.
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        return (0..n).collect();
    }
    let setsize = usize::try_from(libc::CPU_SETSIZE).unwrap_or(0);
    // SAFETY: every index is below CPU_SETSIZE, the size of the set.
    (0..setsize)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
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
