//! Per-core stop signalling: a soft stop (stop accepting, drain) and a hard
//! stop (cut everything), and the one-shot [`Event`] they and generation
//! changes are made of. How signals reach a core is `runtime::signals`.

use glommio::sync::Semaphore;

/// A one-shot broadcast: every waiter wakes when it fires. Built on a closed
/// glommio semaphore because a closed semaphore fails every pending and
/// future acquire, which is exactly "wake everyone, forever".
pub struct Event {
    sem: Semaphore,
}

impl Event {
    pub fn new() -> Self {
        Event {
            sem: Semaphore::new(0),
        }
    }

    pub fn fire(&self) {
        self.sem.close();
    }

    pub fn is_fired(&self) -> bool {
        self.sem.try_acquire(1).is_err()
    }

    pub async fn wait(&self) {
        // Never succeeds while open (no permits are ever signalled), so it
        // returns only once closed.
        let _ = self.sem.acquire(1).await;
    }
}

impl Default for Event {
    fn default() -> Self {
        Self::new()
    }
}

pub struct Stop {
    pub soft: Event,
    pub hard: Event,
}

impl Stop {
    pub fn new() -> Self {
        Stop {
            soft: Event::new(),
            hard: Event::new(),
        }
    }
}

impl Default for Stop {
    fn default() -> Self {
        Self::new()
    }
}
