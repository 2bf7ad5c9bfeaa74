//! Latency histograms in microseconds (hdrhistogram, 3 significant digits,
//! 1 µs to 10 min), and the summary the report and the JSON carry. Each
//! connection or thread records into its own histogram; they are merged at
//! the end, so recording never synchronises.

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::time::Duration;

const HIGHEST_MICROS: u64 = 600_000_000;

#[derive(Debug, Clone)]
pub struct Latencies {
    histogram: Histogram<u64>,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new()
    }
}

impl Latencies {
    pub fn new() -> Latencies {
        Latencies {
            // Bounds are constants that hdrhistogram accepts (low >= 1,
            // high >= 2 * low, sigfig <= 5), so this cannot fail.
            histogram: Histogram::new_with_bounds(1, HIGHEST_MICROS, 3)
                .unwrap_or_else(|_| unreachable!("constant histogram bounds are valid")),
        }
    }

    /// Records one latency; values beyond the range are clamped to it
    /// (a 10-minute request is reported as 10 minutes, not dropped).
    pub fn record(&mut self, latency: Duration) {
        let micros = (latency.as_micros() as u64).clamp(1, HIGHEST_MICROS);
        self.histogram.saturating_record(micros);
    }

    pub fn merge(&mut self, other: &Latencies) -> Result<()> {
        self.histogram
            .add(&other.histogram)
            .context("merging latency histograms")
    }

    #[cfg(test)]
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    pub fn summary(&self) -> Percentiles {
        let h = &self.histogram;
        if h.is_empty() {
            return Percentiles::default();
        }
        Percentiles {
            count: h.len(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
}

/// "850 µs", "12.3 ms", "1.20 s": three significant digits are what the
/// histogram keeps.
pub fn format_micros(micros: u64) -> String {
    if micros < 1000 {
        format!("{micros} µs")
    } else if micros < 1_000_000 {
        let ms = micros as f64 / 1000.0;
        if ms < 10.0 {
            format!("{ms:.2} ms")
        } else if ms < 100.0 {
            format!("{ms:.1} ms")
        } else {
            format!("{ms:.0} ms")
        }
    } else {
        format!("{:.2} s", micros as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(values_us: impl IntoIterator<Item = u64>) -> Latencies {
        let mut l = Latencies::new();
        for v in values_us {
            l.record(Duration::from_micros(v));
        }
        l
    }

    #[test]
    fn merged_histograms_equal_one_that_saw_everything() {
        let a = filled(1..=500);
        let b = filled(501..=1000);
        let mut merged = Latencies::new();
        merged.merge(&a).unwrap();
        merged.merge(&b).unwrap();
        let all = filled(1..=1000);
        assert_eq!(merged.summary(), all.summary());
        let s = merged.summary();
        assert_eq!(s.count, 1000);
        assert_eq!(s.p50_us, 500);
        assert_eq!(s.p99_us, 990);
        assert_eq!(s.max_us, 1000);
        assert!((s.mean_us - 500.5).abs() < 1.0);
    }

    #[test]
    fn merging_is_order_independent_and_empty_is_neutral() {
        let a = filled([100, 200, 300]);
        let b = filled([5_000, 7_000]);
        let mut ab = Latencies::new();
        ab.merge(&a).unwrap();
        ab.merge(&b).unwrap();
        let mut ba = b.clone();
        ba.merge(&Latencies::new()).unwrap();
        ba.merge(&a).unwrap();
        assert_eq!(ab.summary(), ba.summary());
        assert_eq!(Latencies::new().summary(), Percentiles::default());
    }

    #[test]
    fn tail_percentiles_see_a_rare_outlier() {
        // 9,980 fast and 20 slow: p99 is fast, p99.9 is slow.
        let mut l = filled(std::iter::repeat_n(100, 9_980));
        for _ in 0..20 {
            l.record(Duration::from_millis(50));
        }
        let s = l.summary();
        assert_eq!(s.p99_us, 100);
        assert!(s.p999_us >= 49_900, "{s:?}");
        assert!(s.max_us >= 49_900);
    }

    #[test]
    fn out_of_range_values_are_clamped_not_lost() {
        let mut l = Latencies::new();
        l.record(Duration::ZERO);
        l.record(Duration::from_secs(3600));
        let s = l.summary();
        assert_eq!(s.count, 2);
        assert!(s.max_us >= HIGHEST_MICROS - HIGHEST_MICROS / 1000);
    }

    #[test]
    fn micros_are_formatted_for_people() {
        assert_eq!(format_micros(850), "850 µs");
        assert_eq!(format_micros(1_234), "1.23 ms");
        assert_eq!(format_micros(12_340), "12.3 ms");
        assert_eq!(format_micros(123_400), "123 ms");
        assert_eq!(format_micros(1_200_000), "1.20 s");
    }
}
