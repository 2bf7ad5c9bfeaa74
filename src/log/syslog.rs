//! Framing of one log line for its target: raw, RFC 3164 or RFC 5424.

use super::date::Date;
use crate::config::LogFraming;
use std::fmt::Write;

/// Syslog severity of access-log lines (HAProxy logs traffic at `info`).
pub const SEVERITY_INFO: u8 = 6;

/// Starts a pending line whose severity is not `info` (`set-log-level`),
/// followed by the severity digit; the writer takes both off. Log lines
/// never start with a control byte otherwise (formats escape them).
pub const LEVEL_MARK: char = '\x1f';

/// Around a pending line's structured data (`log-format-sd`), after the
/// level mark if any: `SD_MARK sd SD_MARK line`.
pub const SD_MARK: char = '\x1e';

/// A pending line's structured data (`None`: none) and text, once the
/// level mark is off.
pub fn split_sd(line: &str) -> (Option<&str>, &str) {
    let Some(rest) = line.strip_prefix(SD_MARK) else {
        return (None, line);
    };
    match rest.split_once(SD_MARK) {
        Some((sd, text)) => (Some(sd), text),
        None => (None, line),
    }
}

/// A pending line's text without its marks.
pub fn bare(line: &str) -> &str {
    split_sd(split_level(line).1).1
}

/// A pending line's severity and text.
pub fn split_level(line: &str) -> (u8, &str) {
    let b = line.as_bytes();
    match (b.first(), b.get(1)) {
        (Some(0x1f), Some(d @ b'0'..=b'7')) => (d - b'0', &line[2..]),
        _ => (SEVERITY_INFO, line),
    }
}

/// HAProxy's level names, by severity.
pub const LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

/// What stays the same for every line of one target.
#[derive(Debug, Clone)]
pub struct Framer {
    pub framing: LogFraming,
    pub facility: u8,
    pub tag: String,
    pub hostname: String,
    pub pid: u32,
}

impl Framer {
    /// Appends `line` framed for this target to `out` (no trailing newline).
    /// RFC 3164 follows HAProxy: `<PRI>TIMESTAMP TAG[PID]: MSG`, without
    /// the HOSTNAME (the syslog server records the sender). RFC 5424:
    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID - - MSG`.
    pub fn frame(&self, out: &mut String, line: &str, date: &Date) {
        let (severity, line) = split_level(line);
        let (sd, line) = split_sd(line);
        // STRUCTURED-DATA: `-` when there is none (RFC 5424 6.3).
        let sd = sd.filter(|sd| !sd.is_empty()).unwrap_or("-");
        let pri = u16::from(self.facility) * 8 + u16::from(severity);
        match self.framing {
            LogFraming::Raw => {}
            LogFraming::Rfc3164 => {
                let _ = write!(
                    out,
                    "<{pri}>{} {}[{}]: ",
                    date.rfc3164(),
                    self.tag,
                    self.pid
                );
            }
            LogFraming::Rfc5424 => {
                let host = if self.hostname.is_empty() {
                    "-"
                } else {
                    &self.hostname
                };
                let _ = write!(
                    out,
                    "<{pri}>1 {} {host} {} {} - {sd} ",
                    date.rfc3339(),
                    self.tag,
                    self.pid
                );
            }
        }
        out.push_str(line);
    }
}

/// This machine's name for RFC 5424 headers ("" if unknown).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `buf.len()` bytes into `buf`.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end])
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::date::Clock;
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn framer(framing: LogFraming) -> Framer {
        Framer {
            framing,
            facility: 16,
            tag: "percore".into(),
            hostname: "lb1".into(),
            pid: 42,
        }
    }

    #[test]
    fn structured_data_goes_in_rfc5424_only() {
        let line = "\x1f3\x1e[a@1 b=\"c\"]\x1eLOG x";
        assert_eq!(bare(line), "LOG x");
        assert_eq!(split_sd("\x1e[s]\x1eL"), (Some("[s]"), "L"));
        assert_eq!(split_sd("\x1eunclosed"), (None, "\x1eunclosed"));
        let date = crate::log::date::Clock::utc().date(std::time::SystemTime::UNIX_EPOCH);
        let mut out = String::new();
        framer(LogFraming::Rfc5424).frame(&mut out, line, &date);
        assert!(out.starts_with("<131>1 "), "{out}");
        assert!(out.ends_with(" - [a@1 b=\"c\"] LOG x"), "{out}");
        out.clear();
        framer(LogFraming::Rfc3164).frame(&mut out, line, &date);
        assert!(out.ends_with(": LOG x"), "{out}");
        out.clear();
        framer(LogFraming::Rfc5424).frame(&mut out, "\x1e\x1eLOG y", &date);
        assert!(out.ends_with(" - - LOG y"), "{out}");
    }

    #[test]
    fn a_marked_line_has_its_severity() {
        assert_eq!(split_level("\x1f3LOG a"), (3, "LOG a"));
        assert_eq!(split_level("LOG a"), (SEVERITY_INFO, "LOG a"));
        assert_eq!(split_level("\x1f"), (SEVERITY_INFO, "\x1f"));
        assert_eq!(split_level("\x1f9x"), (SEVERITY_INFO, "\x1f9x"));
    }

    #[test]
    fn frames_each_format() {
        let date = Clock::utc().date(UNIX_EPOCH + Duration::from_millis(1_233_922_454_655));
        let mut out = String::new();
        framer(LogFraming::Rfc3164).frame(&mut out, "hello", &date);
        assert_eq!(out, "<134>Feb  6 12:14:14 percore[42]: hello");
        out.clear();
        framer(LogFraming::Rfc5424).frame(&mut out, "hello", &date);
        assert_eq!(
            out,
            "<134>1 2009-02-06T12:14:14.655000+00:00 lb1 percore 42 - - hello"
        );
        out.clear();
        framer(LogFraming::Raw).frame(&mut out, "hello", &date);
        assert_eq!(out, "hello");
    }
}
