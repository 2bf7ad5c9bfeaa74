//! `http-request capture <sample> len|id <n>` and `http-response capture
//! <sample> id <n>`: samples written into a frontend's capture slots, which
//! the log shows with the header captures (`%hr`, `%hs`, httplog's
//! `{...}` blocks). Slots are numbered per side as HAProxy numbers them
//! for a frontend: the header captures (`capture-request-header`,
//! `capture-response-header`), then `declare-capture` slots, then (request
//! side) one slot per `capture ... len` rule, in rule order. A backend's
//! `id` rules write the slots of the frontend that routed the request.

use std::cell::RefCell;

use super::format::Format;
use super::sample::Facts;

/// Which capture slots a rule writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureSide {
    Request,
    Response,
}

/// Where a capture rule's slot comes from, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRef {
    /// `len <n>`: a new request slot of this length.
    New { len: usize },
    /// `id <n>`: an existing slot.
    Id(usize),
}

/// One capture rule; `slot` and `len` are resolved when the frontend's
/// slots are known (`config::routing`). A backend's rule has `slot` = its
/// `id` and the longest `len`: the slot's length is the routing
/// frontend's, applied when the log reads the slots ([`Captured::slots`]).
#[derive(Debug, Clone)]
pub struct CaptureRule {
    pub side: CaptureSide,
    /// A single `%[sample]`.
    pub sample: Format,
    pub written: SlotRef,
    pub slot: usize,
    pub len: usize,
}

impl CaptureRule {
    /// Renders the sample, cut to the slot's length, into its slot.
    pub fn run(&self, facts: &Facts<'_>) {
        let mut value = Vec::new();
        self.sample.render(facts, &mut value);
        let mut value = String::from_utf8_lossy(&value).into_owned();
        truncate(&mut value, self.len);
        facts.conn.captures.write(self.side, self.slot, value);
    }
}

fn truncate(s: &mut String, len: usize) {
    let mut end = len.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
}

/// The values the rules and the response header captures wrote for the
/// current request, as (slot, value); a later write to a slot wins.
#[derive(Debug, Default, Clone)]
pub struct Captured {
    request: RefCell<Vec<(usize, String)>>,
    response: RefCell<Vec<(usize, String)>>,
    /// `capture-cookie`: `name=value` from the request's Cookie and the
    /// response's Set-Cookie (`%CC`, `%CS`).
    pub cookie: RefCell<(Option<String>, Option<String>)>,
}

impl Captured {
    /// Forgets the previous request's values (no allocation when there
    /// were none).
    pub fn clear(&self) {
        self.request.borrow_mut().clear();
        self.response.borrow_mut().clear();
        let mut cookie = self.cookie.borrow_mut();
        if cookie.0.is_some() || cookie.1.is_some() {
            *cookie = (None, None);
        }
    }

    /// `capture cookie`: the first cookie of a Cookie field (`set_cookie`:
    /// a Set-Cookie field, its first pair) whose name begins with `name`,
    /// as `name=value`, cut to `len`.
    pub fn cookie_from(value: &[u8], name: &str, len: usize, set_cookie: bool) -> Option<String> {
        let pairs: &mut dyn Iterator<Item = &[u8]> = if set_cookie {
            &mut value.split(|&b| b == b';').take(1)
        } else {
            &mut value.split(|&b| b == b';')
        };
        let pair = pairs
            .map(super::sample::trim)
            .find(|p| p.starts_with(name.as_bytes()) && p.contains(&b'='))?;
        let mut s = String::from_utf8_lossy(pair).into_owned();
        truncate(&mut s, len);
        Some(s)
    }

    pub fn write(&self, side: CaptureSide, slot: usize, value: String) {
        self.side(side).borrow_mut().push((slot, value));
    }

    fn side(&self, side: CaptureSide) -> &RefCell<Vec<(usize, String)>> {
        match side {
            CaptureSide::Request => &self.request,
            CaptureSide::Response => &self.response,
        }
    }

    /// Whether anything was written on `side`.
    pub fn any(&self, side: CaptureSide) -> bool {
        !self.side(side).borrow().is_empty()
    }

    /// The values of `side` for the log, one per slot of the frontend
    /// (`lens`: their lengths): `base` (the header captures taken from the
    /// head) with the written values over it, each cut to its slot, empty
    /// where nothing was captured. A write past the slots (a backend's
    /// `id` the frontend has no slot for) is not shown, as in HAProxy.
    pub fn slots(
        &self,
        side: CaptureSide,
        lens: impl IntoIterator<Item = usize>,
        base: &[String],
    ) -> Vec<String> {
        let lens: Vec<usize> = lens.into_iter().collect();
        let mut out: Vec<String> = base.iter().take(lens.len()).cloned().collect();
        out.resize(lens.len(), String::new());
        for (slot, value) in self.side(side).borrow().iter() {
            if let (Some(s), Some(&len)) = (out.get_mut(*slot), lens.get(*slot)) {
                s.clone_from(value);
                truncate(s, len);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_merge_header_captures_and_writes() {
        let c = Captured::default();
        assert!(!c.any(CaptureSide::Request));
        c.write(CaptureSide::Request, 2, "two".into());
        c.write(CaptureSide::Request, 0, "zero".into());
        c.write(CaptureSide::Request, 2, "again".into());
        c.write(CaptureSide::Request, 9, "out of range".into());
        let base = ["host".to_string()];
        assert_eq!(
            c.slots(CaptureSide::Request, [20, 4, 20], &base),
            ["zero", "", "again"]
        );
        // A backend's write is cut to the frontend's slot.
        assert_eq!(
            c.slots(CaptureSide::Request, [2, 1, 3], &base),
            ["ze", "", "aga"]
        );
        assert_eq!(c.slots(CaptureSide::Response, [1, 1], &[]), ["", ""]);
        c.clear();
        assert_eq!(c.slots(CaptureSide::Request, [20], &base), ["host"]);
        let cookie = |v: &str, set| Captured::cookie_from(v.as_bytes(), "SE", 12, set);
        assert_eq!(
            cookie("a=1; SESSION=abc; SE=2", false).as_deref(),
            Some("SESSION=abc")
        );
        assert_eq!(
            cookie("a=1; SESSIONID=0123456789", false).as_deref(),
            Some("SESSIONID=01")
        );
        assert_eq!(cookie("a=1", false), None);
        assert_eq!(cookie("SEEN=1; Path=/", true).as_deref(), Some("SEEN=1"));
        assert_eq!(cookie("a=1; SEEN=1", true), None);
        let mut s = "héllo".to_string();
        truncate(&mut s, 2);
        assert_eq!(s, "h");
    }
}
