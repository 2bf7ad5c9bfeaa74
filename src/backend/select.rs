//! Building blocks of the balance algorithms that need no backend state:
//! the weight map shared by `static-rr` and `source`, the client address
//! hash, and the per-core PRNG for `random`.

use std::net::IpAddr;

/// Expands `(server, weight)` pairs into a sequence in which each server
/// appears in proportion to its weight, spread out rather than in runs
/// (the order a smooth weighted round robin would produce). Weights are
/// divided by their gcd first, so equal weights give one entry per server.
///
/// `static-rr` walks this map with a cursor; `source` indexes it with a hash,
/// which is HAProxy's map-based hashing: the result depends only on the set
/// of servers and their weights, so every core computes the same map.
pub(crate) fn weight_map(servers: &[(usize, u32)]) -> Vec<usize> {
    let divisor = servers
        .iter()
        .map(|&(_, w)| w)
        .filter(|&w| w > 0)
        .fold(0, gcd)
        .max(1);
    let weights: Vec<i64> = servers
        .iter()
        .map(|&(_, w)| i64::from(w / divisor))
        .collect();
    let total: i64 = weights.iter().sum();
    let mut current = vec![0i64; servers.len()];
    let mut map = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for k in 0..servers.len() {
            current[k] += weights[k];
            if current[k] > current[best] {
                best = k;
            }
        }
        current[best] -= total;
        map.push(servers[best].0);
    }
    map
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Hash of the client's IP address (never its port), for `balance source`.
/// IPv4-mapped IPv6 addresses hash like the IPv4 address, so a dual-stack
/// listener does not split one client across two servers.
pub(crate) fn hash_client_ip(ip: IpAddr) -> u64 {
    let folded = match ip.to_canonical() {
        IpAddr::V4(v4) => u64::from(u32::from(v4)),
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            (bits as u64) ^ ((bits >> 64) as u64).rotate_left(29) ^ (1 << 63)
        }
    };
    mix64(folded)
}

/// A full-avalanche 64-bit finalizer (the splitmix64 output function): nearby
/// addresses, which are common among clients, land far apart.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xorshift64* generator: tiny, fast, and good enough to pick servers. One
/// per backend per core, so no synchronisation.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        // The state must never be zero; mixing also decorrelates adjacent
        // seeds (core 0, core 1, ...).
        Rng(mix64(seed.wrapping_add(0x9e37_79b9_7f4a_7c15)).max(1))
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..bound` (`bound > 0`), without modulo bias.
    pub(crate) fn below(&mut self, bound: u64) -> u64 {
        debug_assert!(bound > 0);
        // Lemire's multiply-shift; the bias for bounds this small
        // (total weight <= 256 * servers) is negligible.
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn map_is_proportional_and_reduced() {
        let map = weight_map(&[(0, 30), (1, 10), (2, 20)]);
        assert_eq!(map.len(), 6);
        assert_eq!(map.iter().filter(|&&s| s == 0).count(), 3);
        assert_eq!(map.iter().filter(|&&s| s == 1).count(), 1);
        assert_eq!(map.iter().filter(|&&s| s == 2).count(), 2);
    }

    #[test]
    fn map_is_interleaved() {
        assert_eq!(
            weight_map(&[(0, 5), (1, 1), (2, 1)]),
            vec![0, 0, 1, 0, 2, 0, 0]
        );
        assert_eq!(weight_map(&[(4, 1), (7, 1)]), vec![4, 7]);
    }

    #[test]
    fn map_of_nothing_is_empty() {
        assert!(weight_map(&[]).is_empty());
    }

    #[test]
    fn hash_ignores_ipv4_mapping() {
        let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7));
        let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 7).to_ipv6_mapped());
        assert_eq!(hash_client_ip(v4), hash_client_ip(mapped));
        let v6 = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7));
        assert_ne!(hash_client_ip(v4), hash_client_ip(v6));
    }

    #[test]
    fn rng_below_stays_in_bounds_and_covers_range() {
        let mut rng = Rng::new(0);
        let mut seen = [0u32; 7];
        for _ in 0..7000 {
            let v = rng.below(7);
            assert!(v < 7);
            seen[v as usize] += 1;
        }
        assert!(seen.iter().all(|&n| n > 700), "{seen:?}");
    }

    #[test]
    fn rng_seeds_differ() {
        let a: Vec<u64> = (0..4)
            .scan(Rng::new(0), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..4)
            .scan(Rng::new(1), |r, _| Some(r.next_u64()))
            .collect();
        assert_ne!(a, b);
    }
}
