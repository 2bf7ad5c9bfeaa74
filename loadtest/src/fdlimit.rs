//! The descriptor budget of a run. Both proxies reserve two descriptors per
//! `maxconn` (client and server side) and refuse to start when that does
//! not fit under RLIMIT_NOFILE's hard limit, which they inherit from
//! loadtest. So loadtest raises its own hard and soft limits before it
//! starts anything (possible with CAP_SYS_RESOURCE, up to
//! /proc/sys/fs/nr_open). When it may not, the generated configs already
//! turn strict-limits off, so both proxies warn and keep `maxconn`, and the
//! idle scenario holds as many connections as one descriptor each allows.

use anyhow::{Context, Result};

/// Descriptors a proxy reserves beyond two per `maxconn`: percore's
/// margin (`src/runtime/limits.rs`: 64 plus its listeners, four here) is
/// the larger of the two; HAProxy 2.6 asks for about 14 more with the
/// suite's config.
pub const PROXY_OVERHEAD: u64 = 64 + 8;

/// `maxconn` above the idle connection count: the proxy's own probes and
/// anything else that connects while they are held.
pub const IDLE_HEADROOM: u32 = 16;

/// Descriptors a proxy started with `maxconn` needs.
pub fn proxy_fds(maxconn: u32) -> u64 {
    2 * u64::from(maxconn) + PROXY_OVERHEAD
}

/// The largest `maxconn` both proxies accept under a hard limit.
pub fn max_maxconn(hard: u64) -> u32 {
    let usable = hard.saturating_sub(PROXY_OVERHEAD) / 2;
    u32::try_from(usable).unwrap_or(u32::MAX)
}

/// RLIMIT_NOFILE after `raise`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Budget {
    pub soft: u64,
    pub hard: u64,
    /// The hard limit before, when loadtest raised it.
    pub raised_from: Option<u64>,
    /// Why the hard limit could not be raised to what was wanted.
    pub refused: Option<String>,
}

fn get() -> Result<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error()).context("getrlimit(RLIMIT_NOFILE)");
    }
    Ok(limit)
}

fn set(soft: u64, hard: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit reads a struct we own.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The kernel's ceiling for RLIMIT_NOFILE.
fn nr_open() -> Option<u64> {
    std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Raises the hard limit to at least `wanted` when it is lower (and the
/// kernel and our capabilities allow), then the soft limit to the hard one.
/// Every process loadtest starts afterwards inherits both.
pub fn raise(wanted: u64) -> Result<Budget> {
    let before = get()?;
    let mut refused = None;
    let mut raised_from = None;
    let mut hard = before.rlim_max;
    if hard < wanted {
        let ceiling = nr_open().unwrap_or(wanted);
        let target = wanted.min(ceiling);
        if target < wanted {
            refused = Some(format!("/proc/sys/fs/nr_open is {ceiling}"));
        }
        if target > hard {
            match set(target, target) {
                Ok(()) => {
                    raised_from = Some(hard);
                    hard = target;
                }
                Err(e) => {
                    refused = Some(format!(
                        "setrlimit: {e}{}",
                        if e.raw_os_error() == Some(libc::EPERM) {
                            "; raising the hard limit needs CAP_SYS_RESOURCE, which this \
                             process does not have"
                        } else {
                            ""
                        }
                    ))
                }
            }
        }
    }
    if get()?.rlim_cur < hard {
        set(hard, hard).context("setrlimit(RLIMIT_NOFILE) soft to hard")?;
    }
    let after = get()?;
    Ok(Budget {
        soft: after.rlim_cur,
        hard: after.rlim_max,
        raised_from,
        refused,
    })
}

/// What a run can hold: `maxconn` for both proxies and the idle count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub maxconn: u32,
    pub idle_connections: usize,
    /// Set when the limit forced fewer than asked for.
    pub shortfall: Option<String>,
}

/// Fits `wanted` (maxconn) and the idle count under `hard`.
pub fn plan(hard: u64, wanted: u32, idle: usize, refused: Option<&str>) -> Plan {
    let fits = max_maxconn(hard);
    if wanted <= fits {
        let idle_fits = wanted.saturating_sub(IDLE_HEADROOM) as usize;
        return Plan {
            maxconn: wanted,
            idle_connections: idle.min(idle_fits),
            shortfall: (idle > idle_fits).then(|| {
                format!("maxconn {wanted} leaves room for {idle_fits} idle connections, not {idle}")
            }),
        };
    }
    // Both proxies run with strict-limits off (percore `strict-limits =
    // false`, HAProxy `no strict-limits`): they warn and keep `maxconn`.
    // An idle client connection holds one descriptor in the proxy (no
    // server side until a request), so the idle count fits if the hard
    // limit covers one per connection.
    let one_each = hard.saturating_sub(PROXY_OVERHEAD + u64::from(IDLE_HEADROOM));
    let idle_fits = usize::try_from(one_each)
        .unwrap_or(usize::MAX)
        .min(wanted.saturating_sub(IDLE_HEADROOM) as usize)
        .min(idle);
    Plan {
        maxconn: wanted,
        idle_connections: idle_fits,
        shortfall: Some(format!(
            "RLIMIT_NOFILE's hard limit is {hard} and could not be raised to {} ({}); \
             both proxies run with strict-limits off and warn at start (two descriptors \
             per maxconn do not fit), and this run holds {idle_fits} idle connections{} \
             (one descriptor each in the proxy)",
            proxy_fds(wanted),
            refused.unwrap_or("not tried"),
            if idle_fits < idle {
                format!(" instead of {idle}")
            } else {
                String::new()
            }
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_descriptors_per_connection_plus_the_proxies_margin() {
        assert_eq!(proxy_fds(10_016), 20_104);
        assert_eq!(max_maxconn(20_104), 10_016);
        assert_eq!(max_maxconn(20_000), 9_964);
        assert!(proxy_fds(max_maxconn(20_000)) <= 20_000);
        assert_eq!(max_maxconn(10), 0);
    }

    #[test]
    fn enough_descriptors_hold_every_idle_connection() {
        let p = plan(1 << 20, 10_016, 10_000, None);
        assert_eq!(p.maxconn, 10_016);
        assert_eq!(p.idle_connections, 10_000);
        assert_eq!(p.shortfall, None);
    }

    #[test]
    fn a_low_hard_limit_keeps_maxconn_and_one_descriptor_per_idle_connection() {
        let p = plan(20_000, 10_016, 10_000, Some("setrlimit: EPERM"));
        assert_eq!(p.maxconn, 10_016);
        assert_eq!(p.idle_connections, 10_000);
        let why = p.shortfall.unwrap();
        assert!(why.contains("20000"), "{why}");
        assert!(why.contains("strict-limits off"), "{why}");
        assert!(why.contains("setrlimit: EPERM"), "{why}");
        let p = plan(8_000, 10_016, 10_000, Some("setrlimit: EPERM"));
        assert_eq!(p.idle_connections, 8_000 - 72 - 16);
        assert!(p.shortfall.unwrap().contains("instead of 10000"));
    }

    #[test]
    fn a_small_maxconn_caps_the_idle_count() {
        let p = plan(1 << 20, 5_000, 10_000, None);
        assert_eq!(p.maxconn, 5_000);
        assert_eq!(p.idle_connections, 4_984);
        assert!(p.shortfall.unwrap().contains("maxconn 5000 leaves room"));
        let p = plan(1 << 20, 5_000, 2_000, None);
        assert_eq!(
            (p.maxconn, p.idle_connections, p.shortfall),
            (5_000, 2_000, None)
        );
    }

    #[test]
    fn raising_to_what_we_have_changes_nothing_but_the_soft_limit() {
        let now = get().unwrap();
        let budget = raise(now.rlim_max).unwrap();
        assert_eq!(budget.hard, now.rlim_max);
        assert_eq!(budget.soft, now.rlim_max);
        assert_eq!(budget.raised_from, None);
        assert_eq!(budget.refused, None);
    }
}
