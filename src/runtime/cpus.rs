//! Which CPUs get an executor. The loader has already checked `threads`
//! against the affinity mask; this re-checks because the mask can differ
//! between `--check` and the real start.

use crate::config::Threads;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CpuError {
    #[error("global.threads = {requested} but the process may only run on {available} CPU(s) ({cpus:?}); lower threads or widen the affinity mask (taskset)")]
    TooMany {
        requested: usize,
        available: usize,
        cpus: Vec<usize>,
    },
    #[error("global.threads lists CPU {cpu}, which this process may not run on; allowed CPUs: {allowed:?}")]
    NotAllowed { cpu: usize, allowed: Vec<usize> },
}

/// Resolves `global.threads` to the CPU ids that each get one pinned executor.
pub fn resolve(threads: &Threads, allowed: &[usize]) -> Result<Vec<usize>, CpuError> {
    match threads {
        Threads::Auto => Ok(allowed.to_vec()),
        Threads::Count(n) => {
            if *n > allowed.len() {
                return Err(CpuError::TooMany {
                    requested: *n,
                    available: allowed.len(),
                    cpus: allowed.to_vec(),
                });
            }
            Ok(allowed[..*n].to_vec())
        }
        Threads::Cpus(list) => {
            for cpu in list {
                if !allowed.contains(cpu) {
                    return Err(CpuError::NotAllowed {
                        cpu: *cpu,
                        allowed: allowed.to_vec(),
                    });
                }
            }
            Ok(list.clone())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_takes_every_allowed_cpu() {
        assert_eq!(resolve(&Threads::Auto, &[2, 3]).unwrap(), vec![2, 3]);
    }

    #[test]
    fn count_takes_the_first_allowed_cpus() {
        assert_eq!(resolve(&Threads::Count(1), &[2, 3]).unwrap(), vec![2]);
        assert!(matches!(
            resolve(&Threads::Count(3), &[2, 3]),
            Err(CpuError::TooMany { requested: 3, .. })
        ));
    }

    #[test]
    fn list_must_be_within_the_affinity_mask() {
        assert_eq!(resolve(&Threads::Cpus(vec![3]), &[2, 3]).unwrap(), vec![3]);
        let err = resolve(&Threads::Cpus(vec![0]), &[2, 3]).unwrap_err();
        assert!(err.to_string().contains("CPU 0"), "{err}");
    }
}
