//! The consistent-hash ring of `hash-type consistent`: every usable server
//! owns points on a 64-bit circle in proportion to its weight; a key goes
//! to the owner of the first point at or after its hash. Adding or removing
//! a server moves only the keys of its own points, about 1/N of them.

/// Points per unit of weight: enough that weights of 1 still spread keys
/// evenly (HAProxy scales weights the same way for its chash tree).
const POINTS_PER_WEIGHT: u64 = 64;

#[derive(Debug, Default, Clone)]
pub(crate) struct Ring {
    /// (point, server index), sorted by point.
    points: Vec<(u64, usize)>,
}

impl Ring {
    /// `servers`: (index, name, weight) of the servers balancing draws from.
    /// Points derive from names, so every core and every restart builds the
    /// same ring, and a server keeps its points when others come and go.
    pub(crate) fn build<'a>(servers: impl Iterator<Item = (usize, &'a str, u32)>) -> Self {
        let mut points = Vec::new();
        for (index, name, weight) in servers {
            let base = name_hash(name);
            for replica in 0..u64::from(weight) * POINTS_PER_WEIGHT {
                points.push((
                    super::select::mix64(base ^ replica.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
                    index,
                ));
            }
        }
        points.sort_unstable();
        Ring { points }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// Servers in ring order from `hash` on, each point's owner (repeats
    /// included); the caller takes the first it can use.
    pub(crate) fn walk(&self, hash: u64) -> impl Iterator<Item = usize> + '_ {
        let start = self.points.partition_point(|&(p, _)| p < hash);
        let len = self.points.len();
        (0..len).map(move |i| self.points[(start + i) % len].1)
    }
}

fn name_hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    super::select::mix64(h)
}
