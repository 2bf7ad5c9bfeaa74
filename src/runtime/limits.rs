//! File-descriptor budget: refuse to start when `maxconn` cannot be honoured.

use thiserror::Error;

#[derive(Debug, Error)]
#[error("global.maxconn = {maxconn} needs about {needed} file descriptors but the hard limit is {hard} (ulimit -Hn); raise the limit, lower maxconn, or set global strict-limits = false to run with fewer")]
pub struct FdLimitError {
    pub maxconn: u32,
    pub needed: u64,
    pub hard: u64,
}

/// Descriptors needed for `maxconn` proxied connections: two sockets per
/// connection, two descriptors per pooled pipe, the listeners, and a margin
/// for the executors' own rings, eventfds and the log.
pub fn fds_needed(maxconn: u32, pipes: u64, listeners: u64) -> u64 {
    2 * u64::from(maxconn) + 2 * pipes + listeners + 64
}

/// Raises the soft RLIMIT_NOFILE to what is needed (as HAProxy does), or
/// fails when even the hard limit is too low.
pub fn ensure_fd_limit(maxconn: u32, needed: u64) -> Result<u64, FdLimitError> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Ok(0);
    }
    if lim.rlim_cur >= needed {
        return Ok(lim.rlim_cur);
    }
    if lim.rlim_max < needed {
        return Err(FdLimitError {
            maxconn,
            needed,
            hard: lim.rlim_max,
        });
    }
    let raised = libc::rlimit {
        rlim_cur: needed,
        rlim_max: lim.rlim_max,
    };
    // SAFETY: setrlimit reads the struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(FdLimitError {
            maxconn,
            needed,
            hard: lim.rlim_cur,
        });
    }
    Ok(needed)
}

/// `strict-limits = false`: takes whatever the hard limit allows (at most
/// `needed`) and returns the soft limit now in force. Past it, accepts fail
/// with EMFILE and the accept loop pauses, as HAProxy does.
pub fn fit_fd_limit(needed: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 0;
    }
    let target = needed.min(lim.rlim_max);
    if target <= lim.rlim_cur {
        return lim.rlim_cur;
    }
    let raised = libc::rlimit {
        rlim_cur: target,
        rlim_max: lim.rlim_max,
    };
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return lim.rlim_cur;
    }
    target
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_counts_two_sockets_per_connection() {
        assert_eq!(fds_needed(1000, 0, 0), 2064);
        assert_eq!(fds_needed(1000, 10, 2), 2086);
    }

    #[test]
    fn impossible_budget_is_refused_with_the_numbers() {
        let err = ensure_fd_limit(u32::MAX, u64::MAX).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("maxconn"), "{msg}");
        assert!(msg.contains("ulimit"), "{msg}");
    }
}
