//! Latency distributions: one HdrHistogram per measure and backend, per
//! core. Recording is an index computation and one increment; merging cores
//! adds the bucket counts, so merged quantiles are exact to the histogram's
//! resolution (1%), unlike averaging per-core averages.

use hdrhistogram::Histogram;
use std::time::Duration;

/// Values are microseconds from 1 µs to one hour, two significant digits
/// (1% resolution, about 26 KiB per histogram). Longer values are counted
/// at the top.
const HIGHEST_US: u64 = 3_600_000_000;
const SIGFIG: u8 = 2;

/// Empty until the first value: a histogram is about 26 KiB, and most
/// backends of a large configuration see no traffic on a given core (or in
/// a given generation), so allocating them up front would cost memory at
/// start and a page-zeroing pause at every reload.
#[derive(Debug, Clone, Default)]
pub struct LatencyHisto {
    hist: Option<Box<Histogram<u64>>>,
    /// Exact sum, for averages and Prometheus `_sum` (the histogram alone
    /// only knows values to its resolution).
    sum_us: u64,
}

/// Fixed, valid bounds: creation cannot fail; if it ever did the histogram
/// would stay empty rather than panic.
fn new_histogram() -> Option<Box<Histogram<u64>>> {
    Histogram::new_with_bounds(1, HIGHEST_US, SIGFIG)
        .ok()
        .map(Box::new)
}

impl PartialEq for LatencyHisto {
    fn eq(&self, other: &Self) -> bool {
        // An unallocated histogram equals an allocated empty one.
        let same = match (&self.hist, &other.hist) {
            (Some(a), Some(b)) => a == b,
            (Some(h), None) | (None, Some(h)) => h.is_empty(),
            (None, None) => true,
        };
        self.sum_us == other.sum_us && same
    }
}

impl Eq for LatencyHisto {}

impl LatencyHisto {
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        if self.hist.is_none() {
            self.hist = new_histogram();
        }
        if let Some(h) = &mut self.hist {
            h.saturating_record(us.max(1));
        }
        self.sum_us = self.sum_us.saturating_add(us);
    }

    pub fn merge(&mut self, other: &LatencyHisto) {
        match (&mut self.hist, &other.hist) {
            // Same bounds on both sides: addition cannot fail.
            (Some(a), Some(b)) => {
                let _ = a.add(b.as_ref());
            }
            (None, Some(b)) if !b.is_empty() => self.hist = Some(b.clone()),
            _ => {}
        }
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }

    pub fn count(&self) -> u64 {
        self.hist.as_ref().map_or(0, |h| h.len())
    }

    pub fn sum_us(&self) -> u64 {
        self.sum_us
    }

    /// Mean in microseconds; 0 when empty.
    pub fn mean_us(&self) -> u64 {
        self.sum_us.checked_div(self.count()).unwrap_or(0)
    }

    /// Value at quantile `q` (0.0..=1.0) in microseconds; 0 when empty.
    pub fn quantile_us(&self, q: f64) -> u64 {
        match &self.hist {
            Some(h) if !h.is_empty() => h.value_at_quantile(q),
            _ => 0,
        }
    }

    /// Largest value recorded, in microseconds (to the resolution).
    pub fn max_us(&self) -> u64 {
        self.hist.as_ref().map_or(0, |h| h.max())
    }

    /// Values recorded that are <= `le_us` (to the histogram's resolution):
    /// a cumulative Prometheus bucket.
    pub fn count_le(&self, le_us: u64) -> u64 {
        match &self.hist {
            Some(h) if !h.is_empty() => h.count_between(0, le_us),
            _ => 0,
        }
    }
}

/// The latency histograms of one backend on one core.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct BackendTimings {
    /// Successful connection establishment to a server.
    pub connect: LatencyHisto,
    /// From connected to the first byte from the server (mode tcp), or to
    /// the response head (mode http).
    pub response: LatencyHisto,
    /// Whole session (tcp) or request (http), accept to close.
    pub total: LatencyHisto,
}

impl BackendTimings {
    pub fn merge(&mut self, other: &BackendTimings) {
        self.connect.merge(&other.connect);
        self.response.merge(&other.response);
        self.total.merge(&other.total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_merges_counts_and_exact_sums() {
        let mut a = LatencyHisto::default();
        for ms in 1..=100 {
            a.record(Duration::from_millis(ms));
        }
        let mut b = LatencyHisto::default();
        b.record(Duration::from_secs(2));
        a.merge(&b);
        assert_eq!(a.count(), 101);
        assert_eq!(a.sum_us(), 5_050_000 + 2_000_000);
        let p50 = a.quantile_us(0.5);
        assert!((50_000..=51_500).contains(&p50), "{p50}");
        assert_eq!(a.count_le(10_000), 10);
        assert_eq!(a.count_le(HIGHEST_US), 101);
        assert!(a.max_us() >= 2_000_000);
    }

    #[test]
    fn out_of_range_values_saturate_instead_of_failing() {
        let mut h = LatencyHisto::default();
        h.record(Duration::ZERO);
        h.record(Duration::from_secs(10 * 3600));
        assert_eq!(h.count(), 2);
        assert_eq!(h.count_le(1), 1);
    }

    #[test]
    fn empty_histograms_answer_zero() {
        let h = LatencyHisto::default();
        assert_eq!((h.count(), h.mean_us(), h.quantile_us(0.99)), (0, 0, 0));
    }

    #[test]
    fn a_histogram_is_allocated_by_its_first_value_only() {
        let mut empty = LatencyHisto::default();
        assert!(empty.hist.is_none());
        empty.merge(&LatencyHisto::default());
        assert!(empty.hist.is_none(), "merging nothing allocates nothing");
        assert_eq!(empty, LatencyHisto::default());

        let mut recorded = LatencyHisto::default();
        recorded.record(Duration::from_millis(7));
        empty.merge(&recorded);
        assert_eq!(empty.count(), 1);
        assert_eq!(empty, recorded);
    }
}
