//! The chunked body scanner.
//!
//! Properties, for any bytes (the first picks default or tiny limits):
//! - fed in one piece, or in two pieces split at any point, the scanner
//!   reaches the same verdict: same error, or the same bytes consumed,
//!   the same payload bytes and the same end of message;
//! - consumed bytes never exceed the input, payload never exceeds them;
//! - the payload of a complete body, written again as one canonical
//!   chunk, scans to the same payload.

use crate::http::{ChunkedError, ChunkedLimits, ChunkedScanner, Segment};

#[derive(Debug, PartialEq, Eq)]
struct Verdict {
    consumed: usize,
    payload: Vec<u8>,
    done: bool,
}

/// Feeds `pieces` one after the other, as reads from a socket would
/// deliver them; stops at the end of the message.
fn feed(limits: ChunkedLimits, pieces: &[&[u8]]) -> Result<Verdict, ChunkedError> {
    let mut scanner = ChunkedScanner::new(limits);
    let mut verdict = Verdict {
        consumed: 0,
        payload: Vec::new(),
        done: false,
    };
    for piece in pieces {
        let mut at = 0;
        while at < piece.len() {
            match scanner.step(&piece[at..])? {
                Segment::Data(n) => {
                    assert!(
                        n > 0 && at + n <= piece.len(),
                        "Data({n}) at {at} of {}",
                        piece.len()
                    );
                    verdict.payload.extend_from_slice(&piece[at..at + n]);
                    at += n;
                }
                Segment::Framing(n) => {
                    assert!(
                        n > 0 && at + n <= piece.len(),
                        "Framing({n}) at {at} of {}",
                        piece.len()
                    );
                    at += n;
                }
                Segment::Done => break,
            }
        }
        verdict.consumed += at;
        if scanner.is_done() {
            verdict.done = true;
            break;
        }
    }
    Ok(verdict)
}

pub fn chunked(data: &[u8]) {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let limits = if selector & 1 == 0 {
        ChunkedLimits::default()
    } else {
        ChunkedLimits {
            max_line_bytes: 8,
            max_trailer_bytes: 32,
        }
    };
    let whole = feed(limits, &[body]);
    if let Ok(v) = &whole {
        assert!(v.consumed <= body.len());
        assert!(v.payload.len() <= v.consumed);
        // `scan` agrees with `step`.
        let scan = ChunkedScanner::new(limits)
            .scan(body)
            .unwrap_or_else(|e| panic!("scan fails ({e}) where step did not"));
        assert_eq!(
            (scan.consumed, scan.data, scan.done),
            (v.consumed, v.payload.len(), v.done)
        );
    }
    let step = if body.len() <= 512 {
        1
    } else {
        body.len() / 256
    };
    for cut in (1..body.len()).step_by(step.max(1)) {
        let split = feed(limits, &[&body[..cut], &body[cut..]]);
        assert_eq!(split, whole, "split at {cut} of {}", body.len());
    }
    if let Ok(Verdict {
        done: true,
        payload,
        ..
    }) = &whole
    {
        let mut canonical = Vec::new();
        if !payload.is_empty() {
            canonical.extend_from_slice(format!("{:x}\r\n", payload.len()).as_bytes());
            canonical.extend_from_slice(payload);
            canonical.extend_from_slice(b"\r\n");
        }
        canonical.extend_from_slice(b"0\r\n\r\n");
        let again = feed(ChunkedLimits::default(), &[&canonical])
            .unwrap_or_else(|e| panic!("canonical chunked body refused: {e}"));
        assert!(again.done);
        assert_eq!(&again.payload, payload);
        assert_eq!(again.consumed, canonical.len());
    }
}
