//! Latency summaries: percentiles over a set of samples.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Percentiles of a set of latency samples, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Number of samples.
    pub count: usize,
    /// Median, ms.
    pub p50_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Mean, ms.
    pub mean_ms: f64,
    /// Largest sample, ms.
    pub max_ms: f64,
}

impl Summary {
    /// Summarises `samples` (any order); `None` when there are none.
    ///
    /// Percentiles use the nearest-rank method, so p99 of fewer than 100 samples is the maximum.
    pub fn of(samples: &[Duration]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
        ms.sort_by(|a, b| a.total_cmp(b));
        let rank = |p: f64| -> f64 {
            let idx = ((p / 100.0) * ms.len() as f64).ceil() as usize;
            ms[idx.clamp(1, ms.len()) - 1]
        };
        Some(Summary {
            count: ms.len(),
            p50_ms: rank(50.0),
            p99_ms: rank(99.0),
            mean_ms: ms.iter().sum::<f64>() / ms.len() as f64,
            max_ms: ms[ms.len() - 1],
        })
    }
}

/// The median of some durations (nearest rank); `None` when empty.
pub fn median(samples: &[Duration]) -> Option<Duration> {
    let mut v = samples.to_vec();
    v.sort();
    if v.is_empty() {
        None
    } else {
        Some(v[(v.len() - 1) / 2])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        let s = Summary::of(&samples).unwrap();
        assert_eq!(s.count, 200);
        assert_eq!(s.p50_ms, 100.0);
        assert_eq!(s.p99_ms, 198.0);
        assert_eq!(s.max_ms, 200.0);
        assert!((s.mean_ms - 100.5).abs() < 1e-9);
    }

    #[test]
    fn small_and_empty_sets() {
        assert!(Summary::of(&[]).is_none());
        let s = Summary::of(&[Duration::from_millis(7)]).unwrap();
        assert_eq!((s.p50_ms, s.p99_ms), (7.0, 7.0));
        assert_eq!(median(&[3, 1, 2].map(Duration::from_secs)), Some(Duration::from_secs(2)));
        assert_eq!(median(&[]), None);
    }
}
