//! The result of one check, with HAProxy's status names and the wording of
//! its log lines.

use std::time::Duration;

/// HAProxy's check statuses (the `HCHK_STATUS_*` that percore produces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    L4Ok,
    L4Timeout,
    L4Con,
    L7Ok,
    L7Timeout,
    L7Rsp,
    L7Sts,
    /// A passive check (`observe`) reported errors.
    Analyze,
}

impl Status {
    pub fn passed(self) -> bool {
        matches!(self, Status::L4Ok | Status::L7Ok)
    }

    /// The short name stats pages show (`L4CON`, `L7OK`, ...).
    pub fn code(self) -> &'static str {
        match self {
            Status::L4Ok => "L4OK",
            Status::L4Timeout => "L4TOUT",
            Status::L4Con => "L4CON",
            Status::L7Ok => "L7OK",
            Status::L7Timeout => "L7TOUT",
            Status::L7Rsp => "L7RSP",
            Status::L7Sts => "L7STS",
            Status::Analyze => "HANA",
        }
    }

    /// HAProxy's `HCHK_STATUS_*` number (`show servers state`).
    pub fn haproxy_number(self) -> u8 {
        match self {
            Status::Analyze => 4,
            Status::L4Ok => 6,
            Status::L4Timeout => 7,
            Status::L4Con => 8,
            Status::L7Timeout => 12,
            Status::L7Rsp => 13,
            Status::L7Ok => 15,
            Status::L7Sts => 17,
        }
    }

    /// The description HAProxy logs after `reason:`.
    pub fn description(self) -> &'static str {
        match self {
            Status::L4Ok => "Layer4 check passed",
            Status::L4Timeout => "Layer4 timeout",
            Status::L4Con => "Layer4 connection problem",
            Status::L7Ok => "Layer7 check passed",
            Status::L7Timeout => "Layer7 timeout",
            Status::L7Rsp => "Layer7 invalid response",
            Status::L7Sts => "Layer7 wrong status",
            Status::Analyze => "Health analyze",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub status: Status,
    /// HTTP status, for HTTP checks that got one.
    pub code: Option<u16>,
    pub info: Option<String>,
    /// `None` for passive reports, which HAProxy logs without a duration.
    pub duration: Option<Duration>,
}

impl CheckOutcome {
    pub fn new(status: Status) -> Self {
        CheckOutcome {
            status,
            code: None,
            info: None,
            duration: None,
        }
    }

    pub fn with_info(mut self, info: impl Into<String>) -> Self {
        self.info = Some(info.into());
        self
    }

    pub fn with_code(mut self, code: u16) -> Self {
        self.code = Some(code);
        self
    }

    pub fn passed(&self) -> bool {
        self.status.passed()
    }

    /// `Layer7 wrong status, code: 500, info: "Internal Server Error",
    /// check duration: 3ms`, as in HAProxy's transition lines.
    pub fn reason(&self) -> String {
        let mut text = self.status.description().to_string();
        if let Some(code) = self.code {
            text.push_str(&format!(", code: {code}"));
        }
        if let Some(info) = self.info.as_deref().filter(|i| !i.is_empty()) {
            text.push_str(&format!(", info: \"{}\"", printable(info)));
        }
        if let Some(d) = self.duration {
            text.push_str(&format!(", check duration: {}ms", d.as_millis()));
        }
        text
    }
}

/// Keeps log lines on one line whatever a server sent.
fn printable(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_control() || c == '"' {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// `Connection refused` rather than `Connection refused (os error 111)`.
pub fn describe_io_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_like_haproxy() {
        let mut o = CheckOutcome::new(Status::L7Sts)
            .with_code(500)
            .with_info("Internal Server Error");
        o.duration = Some(Duration::from_millis(3));
        assert_eq!(
            o.reason(),
            "Layer7 wrong status, code: 500, info: \"Internal Server Error\", check duration: 3ms"
        );
        let mut ok = CheckOutcome::new(Status::L4Ok);
        ok.duration = Some(Duration::ZERO);
        assert_eq!(ok.reason(), "Layer4 check passed, check duration: 0ms");
        assert!(ok.passed() && !o.passed());
        let odd = CheckOutcome::new(Status::L7Rsp).with_info("a\"b\r\n");
        assert_eq!(
            odd.reason(),
            "Layer7 invalid response, info: \"a\\\"b\\r\\n\""
        );
    }

    #[test]
    fn io_errors_lose_the_errno_suffix() {
        let e = std::io::Error::from_raw_os_error(libc::ECONNREFUSED);
        assert_eq!(describe_io_error(&e), "Connection refused");
    }
}
