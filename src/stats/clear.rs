//! The runtime API's `clear counters [all]` on one core's counters.
//!
//! HAProxy: without `all`, only the maximum values restart (from the
//! current ones); with `all`, every counter restarts from zero. Values
//! that describe what is open right now (`scur`) are never cleared.

use super::{BackendTimings, CoreStats};

macro_rules! restart {
    ($counters:expr, $all:expr) => {{
        let c = $counters;
        let current = c.sessions_cur;
        if $all {
            *c = Default::default();
            c.sessions_cur = current;
        }
        c.sessions_max = current;
    }};
}

impl CoreStats {
    pub fn clear(&mut self, all: bool) {
        for c in &mut self.frontends {
            restart!(c, all);
        }
        for c in &mut self.backends {
            restart!(c, all);
        }
        for c in self.servers.iter_mut().flatten() {
            restart!(c, all);
        }
        if all {
            for t in &mut self.timings {
                *t = BackendTimings::default();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::stats::{CoreStats, FrontendCounters};

    fn one_frontend() -> CoreStats {
        let mut stats = CoreStats {
            frontends: vec![FrontendCounters::default()],
            ..CoreStats::default()
        };
        let fe = &mut stats.frontends[0];
        for _ in 0..3 {
            fe.session_started();
        }
        fe.sessions_cur = 1;
        fe.bytes_in = 99;
        stats
    }

    #[test]
    fn without_all_only_peaks_restart() {
        let mut stats = one_frontend();
        stats.clear(false);
        let fe = &stats.frontends[0];
        assert_eq!(
            (fe.sessions_cur, fe.sessions_max, fe.sessions_total),
            (1, 1, 3)
        );
        assert_eq!(fe.bytes_in, 99);
    }

    #[test]
    fn all_restarts_totals_but_keeps_what_is_open() {
        let mut stats = one_frontend();
        stats.clear(true);
        let fe = &stats.frontends[0];
        assert_eq!(
            (fe.sessions_cur, fe.sessions_max, fe.sessions_total),
            (1, 1, 0)
        );
        assert_eq!(fe.bytes_in, 0);
    }
}
