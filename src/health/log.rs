//! HAProxy-style state change lines on stderr, written by the core that
//! checks the backend.

use super::outcome::CheckOutcome;
use super::state::Transition;

/// Usable servers left in a backend after a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remaining {
    pub active: usize,
    pub backup: usize,
}

/// `[WARNING] Server app/s1 is DOWN, reason: Layer4 connection problem,
/// info: "Connection refused", check duration: 0ms. 1 active and 0 backup
/// servers left.`
pub fn transition_line(
    backend: &str,
    server: &str,
    is_backup: bool,
    transition: Transition,
    outcome: &CheckOutcome,
    remaining: Remaining,
) -> String {
    let (state, tail) = match transition {
        Transition::Up => ("UP", "online"),
        Transition::Down => ("DOWN", "left"),
    };
    format!(
        "[WARNING] {}Server {backend}/{server} is {state}, reason: {}. {} active and {} backup servers {tail}.",
        if is_backup { "Backup " } else { "" },
        outcome.reason(),
        remaining.active,
        remaining.backup,
    )
}

/// HAProxy's alert when the last server of a backend goes down.
pub fn no_server_line(backend: &str) -> String {
    format!("[ALERT] backend {backend} has no server available!")
}

#[cfg(test)]
mod tests {
    use super::super::outcome::Status;
    use super::*;
    use std::time::Duration;

    #[test]
    fn lines_match_haproxy() {
        let mut down = CheckOutcome::new(Status::L7Sts).with_code(500);
        down.duration = Some(Duration::from_millis(3));
        assert_eq!(
            transition_line(
                "app",
                "s1",
                false,
                Transition::Down,
                &down,
                Remaining {
                    active: 1,
                    backup: 0
                }
            ),
            "[WARNING] Server app/s1 is DOWN, reason: Layer7 wrong status, code: 500, check duration: 3ms. 1 active and 0 backup servers left."
        );
        let mut up = CheckOutcome::new(Status::L4Ok);
        up.duration = Some(Duration::ZERO);
        assert_eq!(
            transition_line(
                "app",
                "b1",
                true,
                Transition::Up,
                &up,
                Remaining {
                    active: 2,
                    backup: 1
                }
            ),
            "[WARNING] Backup Server app/b1 is UP, reason: Layer4 check passed, check duration: 0ms. 2 active and 1 backup servers online."
        );
        assert_eq!(
            no_server_line("app"),
            "[ALERT] backend app has no server available!"
        );
    }
}
