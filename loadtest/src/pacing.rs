//! The open-loop schedule: a total rate spread evenly over connections,
//! each connection sending at fixed intervals from its own phase. A
//! request's latency is measured from its *intended* send time, so a
//! stalled proxy is charged for every request that should have been sent
//! while it stalled (no coordinated omission).

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    start: Instant,
    /// Offset of this connection's first send from `start`.
    phase: Duration,
    /// Time between two sends on this connection.
    interval: Duration,
}

impl Schedule {
    /// The schedule of connection `index` of `connections` that together
    /// send `rate` requests per second: every connection sends every
    /// `connections / rate` seconds, and connection i starts `i / rate`
    /// after `start`, so the sends of all connections interleave evenly.
    pub fn for_connection(start: Instant, rate: f64, connections: usize, index: usize) -> Self {
        let rate = rate.max(1e-3);
        let connections = connections.max(1);
        Schedule {
            start,
            phase: Duration::from_secs_f64(index as f64 / rate),
            interval: Duration::from_secs_f64(connections as f64 / rate),
        }
    }

    /// When request `k` (0-based) of this connection should be sent.
    pub fn intended(&self, k: u64) -> Instant {
        self.start + self.phase + self.interval.mul_f64(k as f64)
    }

    #[cfg(test)]
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_interleave_to_the_total_rate() {
        let start = Instant::now();
        let rate = 1000.0;
        let connections = 4;
        let mut sends: Vec<Instant> = (0..connections)
            .flat_map(|i| {
                let s = Schedule::for_connection(start, rate, connections, i);
                (0..250).map(move |k| s.intended(k))
            })
            .collect();
        sends.sort();
        assert_eq!(sends.len(), 1000);
        // Evenly spaced at 1 ms over the whole set, first at `start`.
        assert_eq!(sends[0], start);
        for pair in sends.windows(2) {
            let gap = pair[1] - pair[0];
            assert!(
                gap >= Duration::from_micros(999) && gap <= Duration::from_micros(1001),
                "{gap:?}"
            );
        }
        // The last of 1000 sends at 1000/s is due at 0.999 s.
        let span = *sends.last().unwrap() - start;
        assert!((span.as_secs_f64() - 0.999).abs() < 1e-6, "{span:?}");
    }

    #[test]
    fn each_connection_sends_at_its_own_interval() {
        let start = Instant::now();
        let s = Schedule::for_connection(start, 200.0, 10, 3);
        assert_eq!(s.interval(), Duration::from_millis(50));
        assert_eq!(s.intended(0) - start, Duration::from_millis(15));
        assert_eq!(s.intended(2) - start, Duration::from_millis(115));
    }

    #[test]
    fn nonsense_rates_and_counts_do_not_divide_by_zero() {
        let start = Instant::now();
        let s = Schedule::for_connection(start, 0.0, 0, 0);
        assert!(s.interval() > Duration::ZERO);
        assert_eq!(s.intended(0), start);
    }
}
