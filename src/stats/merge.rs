//! Adding one core's counters into another's. `*_max` fields add up too:
//! cores are independent, so the process-wide peak is at most the sum of
//! per-core peaks (the value shown is that bound).

use super::counters::{BackendCounters, FrontendCounters, ServerCounters};
use super::CoreStats;
use crate::config::diff::IndexMap;

/// `a.f += b.f` for each listed `u64` field, and element-wise for arrays.
macro_rules! add {
    ($a:ident, $b:ident; $($f:ident),* ; [$($arr:ident),*]) => {
        $( $a.$f += $b.$f; )*
        $( for (x, y) in $a.$arr.iter_mut().zip($b.$arr.iter()) { *x += *y; } )*
    };
}

impl FrontendCounters {
    pub fn merge(&mut self, b: &FrontendCounters) {
        let a = self;
        add!(a, b; sessions_total, sessions_cur, sessions_max, bytes_in, bytes_out,
            requests_total, denied_requests, denied_responses, request_errors,
            ssl_failed_handshakes, proxy_errors, denied_connections, denied_sessions,
            streams_refused, connection_protocol_errors; [responses]);
    }
}

impl BackendCounters {
    pub fn merge(&mut self, b: &BackendCounters) {
        let a = self;
        add!(a, b; sessions_total, sessions_cur, sessions_max, bytes_in, bytes_out,
            requests_total, denied_requests, denied_responses, conn_errors, ssl_failed_handshakes,
            response_errors,
            retries, redispatches, queue_timeouts, no_server, client_aborts, server_aborts;
            [responses]);
    }
}

impl ServerCounters {
    pub fn merge(&mut self, b: &ServerCounters) {
        let a = self;
        add!(a, b; sessions_total, sessions_cur, sessions_max, bytes_in, bytes_out,
            conn_errors, ssl_failed_handshakes, response_errors, retries, redispatches,
            client_aborts, server_aborts;
            [responses]);
    }
}

impl CoreStats {
    /// Adds another core's counters and histograms into this one. Both come
    /// from the same configuration, so the shapes match.
    pub fn merge(&mut self, other: &CoreStats) {
        for (a, b) in self.frontends.iter_mut().zip(&other.frontends) {
            a.merge(b);
        }
        for (a, b) in self.backends.iter_mut().zip(&other.backends) {
            a.merge(b);
        }
        for (sa, sb) in self.servers.iter_mut().zip(&other.servers) {
            for (a, b) in sa.iter_mut().zip(sb) {
                a.merge(b);
            }
        }
        for (a, b) in self.timings.iter_mut().zip(&other.timings) {
            a.merge(b);
        }
    }
}

impl CoreStats {
    /// Adds the counters of another generation's configuration: `map`
    /// says which of this configuration's entries each of `other`'s is
    /// (entries gone from this configuration are dropped).
    pub fn add_mapped(&mut self, other: &CoreStats, map: &IndexMap) {
        for (b, to) in other.frontends.iter().zip(&map.frontends) {
            if let Some(a) = to.and_then(|i| self.frontends.get_mut(i)) {
                a.merge(b);
            }
        }
        for (old, to) in map.backends.iter().enumerate() {
            let Some(to) = *to else { continue };
            if let (Some(a), Some(b)) = (self.backends.get_mut(to), other.backends.get(old)) {
                a.merge(b);
            }
            if let (Some(a), Some(b)) = (self.timings.get_mut(to), other.timings.get(old)) {
                a.merge(b);
            }
            let (Some(servers), Some(from)) = (map.servers.get(old), other.servers.get(old)) else {
                continue;
            };
            for (b, to_server) in from.iter().zip(servers) {
                let a = to_server.and_then(|s| self.servers.get_mut(to)?.get_mut(s));
                if let Some(a) = a {
                    a.merge(b);
                }
            }
        }
    }

    /// Sessions open now count as none (a new generation: its sessions
    /// are still counted by the generation that accepted them).
    pub fn zero_current(&mut self) {
        for c in &mut self.frontends {
            c.sessions_cur = 0;
        }
        for c in &mut self.backends {
            c.sessions_cur = 0;
        }
        for c in self.servers.iter_mut().flatten() {
            c.sessions_cur = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::BackendTimings;
    use super::*;
    use std::time::Duration;

    /// Every field distinct and non-zero, so a field left out of `add!`
    /// shows up as a mismatch.
    fn numbered() -> CoreStats {
        let mut n = 0u64;
        let mut next = || {
            n += 1;
            n
        };
        CoreStats {
            frontends: vec![FrontendCounters {
                sessions_total: next(),
                sessions_cur: next(),
                sessions_max: next(),
                bytes_in: next(),
                bytes_out: next(),
                requests_total: next(),
                responses: [next(), next(), next(), next(), next(), next()],
                denied_requests: next(),
                denied_responses: next(),
                request_errors: next(),
                ssl_failed_handshakes: next(),
                proxy_errors: next(),
                denied_connections: next(),
                denied_sessions: next(),
                streams_refused: next(),
                connection_protocol_errors: next(),
            }],
            backends: vec![BackendCounters {
                sessions_total: next(),
                sessions_cur: next(),
                sessions_max: next(),
                bytes_in: next(),
                bytes_out: next(),
                requests_total: next(),
                responses: [next(), next(), next(), next(), next(), next()],
                denied_requests: next(),
                denied_responses: next(),
                conn_errors: next(),
                ssl_failed_handshakes: next(),
                response_errors: next(),
                retries: next(),
                redispatches: next(),
                queue_timeouts: next(),
                no_server: next(),
                client_aborts: next(),
                server_aborts: next(),
            }],
            servers: vec![vec![ServerCounters {
                sessions_total: next(),
                sessions_cur: next(),
                sessions_max: next(),
                bytes_in: next(),
                bytes_out: next(),
                responses: [next(), next(), next(), next(), next(), next()],
                conn_errors: next(),
                ssl_failed_handshakes: next(),
                response_errors: next(),
                retries: next(),
                redispatches: next(),
                client_aborts: next(),
                server_aborts: next(),
            }]],
            // Histograms are checked on their own below; their Debug output
            // holds configuration numbers that must not double.
            timings: Vec::new(),
        }
    }

    /// Doubles every counter by hand.
    fn doubled(s: &CoreStats) -> String {
        // Debug output lists every field; doubling each number in it is the
        // expected merge of a value with itself.
        let text = format!("{s:?}");
        let mut out = String::new();
        let mut digits = String::new();
        for c in text.chars().chain(std::iter::once(' ')) {
            if c.is_ascii_digit() {
                digits.push(c);
            } else {
                if !digits.is_empty() {
                    let v: u64 = digits.parse().unwrap();
                    out.push_str(&(2 * v).to_string());
                    digits.clear();
                }
                out.push(c);
            }
        }
        out.pop();
        out
    }

    #[test]
    fn merge_adds_every_counter() {
        let mut a = numbered();
        let b = a.clone();
        let expected = doubled(&a);
        a.merge(&b);
        assert_eq!(format!("{a:?}"), expected);
        assert_eq!(a.accepted(), 2);
    }

    #[test]
    fn merge_adds_histograms() {
        let mut a = CoreStats {
            timings: vec![BackendTimings::default()],
            ..Default::default()
        };
        a.timings[0].connect.record(Duration::from_millis(3));
        let b = a.clone();
        a.merge(&b);
        assert_eq!(a.timings[0].connect.count(), 2);
        assert_eq!(a.timings[0].connect.sum_us(), 6000);
    }
}
