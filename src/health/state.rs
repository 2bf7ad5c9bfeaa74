//! One server's check history as HAProxy keeps it: a single `health`
//! counter from 0 to `rise + fall - 1`; the server is up while it is at
//! least `rise`. Failures walk it down, successes up, and reaching an end
//! snaps it to that end, so `fall` consecutive failures take a fully up
//! server down and `rise` consecutive successes bring a down one up.

use std::time::Duration;

use crate::config::ServerCheck;

/// A change of the server's state caused by one result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Up,
    Down,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Health {
    health: u32,
    rise: u32,
    fall: u32,
}

impl Health {
    /// HAProxy starts a checked server up but fragile: at `rise`, so the
    /// first failed check takes it down, while the first success makes it
    /// fully up.
    pub fn new(rise: u32, fall: u32) -> Self {
        let rise = rise.max(1);
        Health {
            health: rise,
            rise,
            fall: fall.max(1),
        }
    }

    /// Where a previous generation's checker left the counter (a reload
    /// carries it over, so a down server still needs `rise` successes).
    pub fn resumed(rise: u32, fall: u32, counter: u32) -> Self {
        let mut health = Health::new(rise, fall);
        health.health = counter.min(health.max());
        health
    }

    fn max(&self) -> u32 {
        self.rise + self.fall - 1
    }

    pub fn is_up(&self) -> bool {
        self.health >= self.rise
    }

    /// Counts one check result.
    pub fn record(&mut self, passed: bool) -> Option<Transition> {
        let was_up = self.is_up();
        if passed {
            if self.health < self.max() {
                self.health += 1;
                if self.health >= self.rise {
                    self.health = self.max();
                }
            }
        } else if self.health > 0 {
            self.health -= 1;
            if self.health < self.rise {
                self.health = 0;
            }
        }
        match (was_up, self.is_up()) {
            (false, true) => Some(Transition::Up),
            (true, false) => Some(Transition::Down),
            _ => None,
        }
    }

    /// `on-error mark-down`: down at once.
    pub fn mark_down(&mut self) -> Option<Transition> {
        if self.is_up() {
            self.health = self.rise;
        }
        self.record(false)
    }

    /// `on-error sudden-death`: one failed check from down, and that check
    /// counted.
    pub fn sudden_death(&mut self) -> Option<Transition> {
        if self.health > self.rise {
            self.health = self.rise + 1;
        }
        self.record(false)
    }

    /// The pause before the next check: `inter` when fully up, `downinter`
    /// when fully down, `fastinter` in between (HAProxy's `srv_getinter`).
    pub fn interval(&self, check: &ServerCheck) -> Duration {
        if self.health == self.max() {
            check.inter
        } else if self.health == 0 {
            check.downinter
        } else {
            check.fastinter
        }
    }

    /// `health/rise|fall` as HAProxy's stats show it, e.g. `2/3` while
    /// going down.
    pub fn counter(&self) -> u32 {
        self.health
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(h: &mut Health, results: &[bool]) -> Vec<Option<Transition>> {
        results.iter().map(|&r| h.record(r)).collect()
    }

    #[test]
    fn starts_up_and_the_first_failure_takes_it_down() {
        let mut h = Health::new(2, 3);
        assert!(h.is_up());
        assert_eq!(h.record(false), Some(Transition::Down));
    }

    #[test]
    fn fall_failures_take_a_fully_up_server_down() {
        let mut h = Health::new(2, 3);
        assert_eq!(h.record(true), None);
        assert_eq!(
            run(&mut h, &[false, false, false]),
            [None, None, Some(Transition::Down)]
        );
        // A success in between restores full health.
        let mut h = Health::new(2, 3);
        h.record(true);
        assert_eq!(
            run(&mut h, &[false, false, true, false, false]),
            [None, None, None, None, None]
        );
        assert!(h.is_up());
    }

    #[test]
    fn rise_successes_bring_it_back() {
        let mut h = Health::new(2, 3);
        h.record(false);
        assert_eq!(run(&mut h, &[true, true]), [None, Some(Transition::Up)]);
        // A failure while rising starts over.
        let mut h = Health::new(3, 2);
        h.record(false);
        assert_eq!(
            run(&mut h, &[true, true, false, true, true, true]),
            [None, None, None, None, None, Some(Transition::Up)]
        );
    }

    #[test]
    fn rise_and_fall_of_one() {
        let mut h = Health::new(1, 1);
        assert_eq!(h.record(false), Some(Transition::Down));
        assert_eq!(h.record(true), Some(Transition::Up));
    }

    #[test]
    fn passive_actions() {
        let mut h = Health::new(2, 3);
        h.record(true);
        assert_eq!(h.mark_down(), Some(Transition::Down));
        assert_eq!(h.mark_down(), None);
        let mut h = Health::new(2, 3);
        h.record(true);
        assert_eq!(h.sudden_death(), None);
        assert_eq!(h.record(false), Some(Transition::Down));
    }

    #[test]
    fn interval_follows_the_state() {
        let check = ServerCheck {
            inter: Duration::from_secs(2),
            fastinter: Duration::from_secs(1),
            downinter: Duration::from_secs(5),
            rise: 2,
            fall: 3,
            addr: "127.0.0.1:1".parse().unwrap(),
            observe: None,
            send_proxy: None,
        };
        let mut h = Health::new(2, 3);
        assert_eq!(h.interval(&check), check.fastinter, "fragile start");
        h.record(true);
        assert_eq!(h.interval(&check), check.inter);
        h.record(false);
        assert_eq!(h.interval(&check), check.fastinter);
        h.record(false);
        h.record(false);
        assert_eq!(h.interval(&check), check.downinter);
        assert_eq!(h.counter(), 0);
    }
}
