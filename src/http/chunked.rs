//! Streaming validator for chunked bodies (RFC 9112 §7.1).
//!
//! The proxy forwards chunked bodies as they are, so this does not decode
//! into a new buffer: it walks the bytes the caller already holds, tells
//! which are chunk data and which are framing, and where the message ends.
//! Input may be split anywhere, even inside a size line. Chunk data is
//! skipped in O(1); only framing bytes are looked at one by one.
//!
//! Strictness (against smuggling through parsers that disagree):
//! - size lines and the CRLF after data must end in CRLF; a bare LF is an
//!   error (HAProxy 2.6 tolerates it; a backend may not agree on where the
//!   line ends, and we forward the bytes unchanged).
//! - sizes are hex only, must fit in u64; the whole size line (size plus
//!   extensions) is capped at `max_line_bytes`.
//! - extensions `;name[=value]` are accepted (value may be quoted), with
//!   no control byte other than HTAB.
//! - trailer fields must be `token ":" value` lines; no obs-fold; their
//!   total size is capped at `max_trailer_bytes`.

use thiserror::Error;

use super::syntax::{is_token_byte, is_value_byte};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkedLimits {
    /// Longest accepted chunk-size line, extensions included, CRLF excluded.
    pub max_line_bytes: usize,
    /// Largest accepted trailer section (all trailer lines with CRLFs).
    pub max_trailer_bytes: usize,
}

impl Default for ChunkedLimits {
    fn default() -> Self {
        ChunkedLimits {
            max_line_bytes: 4096,
            max_trailer_bytes: super::head::DEFAULT_BUFSIZE - super::head::MAXREWRITE,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ChunkedError {
    #[error("chunk size is not hexadecimal")]
    InvalidSize,
    #[error("chunk size overflows")]
    SizeOverflow,
    #[error("chunk size line too long")]
    SizeLineTooLong,
    #[error("invalid chunk extension")]
    InvalidExtension,
    #[error("chunk line not terminated by CRLF")]
    InvalidLineEnding,
    #[error("missing CRLF after chunk data")]
    MissingDataCrlf,
    #[error("invalid trailer field")]
    InvalidTrailer,
    #[error("trailer section too large")]
    TrailersTooLarge,
}

/// What one `step` found at the start of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Segment {
    /// This many bytes of chunk payload.
    Data(usize),
    /// This many bytes of framing (size lines, CRLFs, trailers); if the
    /// scanner is done afterwards they ended the message.
    Framing(usize),
    /// The message has already ended; nothing consumed.
    Done,
}

/// Totals of one `scan` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scan {
    /// Bytes of the input that belong to this message (data + framing).
    pub consumed: usize,
    /// Of those, bytes of chunk payload.
    pub data: usize,
    /// The message ended within the consumed bytes.
    pub done: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// First hex digit of a size line.
    SizeStart,
    /// More hex digits.
    Size,
    /// Spaces/tabs after the digits (BWS before `;` or CR).
    SizeBws,
    /// Inside extensions, outside quotes.
    Ext,
    /// Inside a quoted extension value.
    ExtQuoted,
    /// After a backslash in a quoted value.
    ExtQuotedEscape,
    /// CR of the size line seen.
    SizeLf,
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final CRLF).
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    FinalLf,
    Done,
}

#[derive(Debug, Clone)]
pub struct ChunkedScanner {
    limits: ChunkedLimits,
    state: State,
    /// Size being read, then the data still expected for this chunk.
    remaining: u64,
    line_bytes: usize,
    trailer_bytes: usize,
}

impl Default for ChunkedScanner {
    fn default() -> Self {
        Self::new(ChunkedLimits::default())
    }
}

impl ChunkedScanner {
    pub fn new(limits: ChunkedLimits) -> Self {
        ChunkedScanner {
            limits,
            state: State::SizeStart,
            remaining: 0,
            line_bytes: 0,
            trailer_bytes: 0,
        }
    }

    /// Ready for the next message's body.
    pub fn reset(&mut self) {
        *self = Self::new(self.limits);
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Payload bytes still expected in the current chunk (0 outside data).
    pub fn data_remaining(&self) -> u64 {
        if self.state == State::Data {
            self.remaining
        } else {
            0
        }
    }

    /// Classifies the bytes at the start of `input`: a run of chunk data, or
    /// a run of framing up to the next data byte or the end of the message.
    /// Returns `Framing(0)` only for empty input.
    pub fn step(&mut self, input: &[u8]) -> Result<Segment, ChunkedError> {
        if self.state == State::Done {
            return Ok(Segment::Done);
        }
        if self.state == State::Data {
            let n = usize::try_from(self.remaining)
                .unwrap_or(usize::MAX)
                .min(input.len());
            self.remaining -= n as u64;
            if self.remaining == 0 {
                self.state = State::DataCr;
            }
            return Ok(Segment::Data(n));
        }
        for (i, &b) in input.iter().enumerate() {
            self.framing_byte(b)?;
            if matches!(self.state, State::Data | State::Done) {
                return Ok(Segment::Framing(i + 1));
            }
        }
        Ok(Segment::Framing(input.len()))
    }

    /// Runs `step` over all of `input`, stopping at the end of the message
    /// (bytes after it belong to the next message and are not consumed).
    pub fn scan(&mut self, input: &[u8]) -> Result<Scan, ChunkedError> {
        let mut scan = Scan::default();
        while scan.consumed < input.len() {
            match self.step(&input[scan.consumed..])? {
                Segment::Data(n) => {
                    scan.consumed += n;
                    scan.data += n;
                }
                Segment::Framing(n) => scan.consumed += n,
                Segment::Done => break,
            }
        }
        scan.done = self.is_done();
        Ok(scan)
    }

    fn size_line_byte(&mut self) -> Result<(), ChunkedError> {
        self.line_bytes += 1;
        if self.line_bytes > self.limits.max_line_bytes {
            return Err(ChunkedError::SizeLineTooLong);
        }
        Ok(())
    }

    fn trailer_byte(&mut self) -> Result<(), ChunkedError> {
        self.trailer_bytes += 1;
        if self.trailer_bytes > self.limits.max_trailer_bytes {
            return Err(ChunkedError::TrailersTooLarge);
        }
        Ok(())
    }

    fn framing_byte(&mut self, b: u8) -> Result<(), ChunkedError> {
        match self.state {
            State::SizeStart | State::Size => {
                if let Some(d) = hex_value(b) {
                    self.size_line_byte()?;
                    self.remaining = self
                        .remaining
                        .checked_mul(16)
                        .and_then(|v| v.checked_add(u64::from(d)))
                        .ok_or(ChunkedError::SizeOverflow)?;
                    self.state = State::Size;
                } else if self.state == State::SizeStart {
                    return Err(ChunkedError::InvalidSize);
                } else {
                    self.after_size(b)?;
                }
            }
            State::SizeBws => self.after_size(b)?,
            State::Ext => {
                self.size_line_byte()?;
                match b {
                    b'\r' => self.state = State::SizeLf,
                    b'"' => self.state = State::ExtQuoted,
                    b'\n' => return Err(ChunkedError::InvalidLineEnding),
                    _ if is_ext_byte(b) => {}
                    _ => return Err(ChunkedError::InvalidExtension),
                }
            }
            State::ExtQuoted => {
                self.size_line_byte()?;
                match b {
                    b'"' => self.state = State::Ext,
                    b'\\' => self.state = State::ExtQuotedEscape,
                    b'\r' | b'\n' => return Err(ChunkedError::InvalidExtension),
                    _ if is_value_byte(b) => {}
                    _ => return Err(ChunkedError::InvalidExtension),
                }
            }
            State::ExtQuotedEscape => {
                self.size_line_byte()?;
                if !is_value_byte(b) {
                    return Err(ChunkedError::InvalidExtension);
                }
                self.state = State::ExtQuoted;
            }
            State::SizeLf => {
                if b != b'\n' {
                    return Err(ChunkedError::InvalidLineEnding);
                }
                self.line_bytes = 0;
                self.state = if self.remaining == 0 {
                    State::TrailerStart
                } else {
                    State::Data
                };
            }
            State::DataCr => {
                if b != b'\r' {
                    return Err(ChunkedError::MissingDataCrlf);
                }
                self.state = State::DataLf;
            }
            State::DataLf => {
                if b != b'\n' {
                    return Err(ChunkedError::MissingDataCrlf);
                }
                self.state = State::SizeStart;
            }
            State::TrailerStart => {
                self.trailer_byte()?;
                if b == b'\r' {
                    self.state = State::FinalLf;
                } else if is_token_byte(b) {
                    self.state = State::TrailerName;
                } else if b == b'\n' {
                    return Err(ChunkedError::InvalidLineEnding);
                } else {
                    return Err(ChunkedError::InvalidTrailer);
                }
            }
            State::TrailerName => {
                self.trailer_byte()?;
                if b == b':' {
                    self.state = State::TrailerValue;
                } else if !is_token_byte(b) {
                    return Err(ChunkedError::InvalidTrailer);
                }
            }
            State::TrailerValue => {
                self.trailer_byte()?;
                if b == b'\r' {
                    self.state = State::TrailerLf;
                } else if b == b'\n' {
                    return Err(ChunkedError::InvalidLineEnding);
                } else if !is_value_byte(b) {
                    return Err(ChunkedError::InvalidTrailer);
                }
            }
            State::TrailerLf => {
                self.trailer_byte()?;
                if b != b'\n' {
                    return Err(ChunkedError::InvalidLineEnding);
                }
                self.state = State::TrailerStart;
            }
            State::FinalLf => {
                if b != b'\n' {
                    return Err(ChunkedError::InvalidLineEnding);
                }
                self.state = State::Done;
            }
            State::Data | State::Done => {
                unreachable!("data and done are handled before framing bytes")
            }
        }
        Ok(())
    }

    /// A byte after the size digits: BWS, the start of extensions or CR.
    fn after_size(&mut self, b: u8) -> Result<(), ChunkedError> {
        match b {
            b' ' | b'\t' => {
                self.size_line_byte()?;
                self.state = State::SizeBws;
            }
            b';' => {
                self.size_line_byte()?;
                self.state = State::Ext;
            }
            b'\r' => self.state = State::SizeLf,
            b'\n' => return Err(ChunkedError::InvalidLineEnding),
            _ if self.state == State::SizeBws => return Err(ChunkedError::InvalidExtension),
            _ => return Err(ChunkedError::InvalidSize),
        }
        Ok(())
    }
}

#[inline]
fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Outside quotes an extension holds tokens, `=`, `;` and BWS.
#[inline]
fn is_ext_byte(b: u8) -> bool {
    is_token_byte(b) || matches!(b, b'=' | b';' | b' ' | b'\t')
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"5\r\nhello\r\n1;name=\"va;l\\\"ue\"\r\n \r\nA ; x=y\r\n0123456789\r\n0\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n";
    const PAYLOAD: &[u8] = b"hello 0123456789";

    /// Feeds `parts` in order, collecting chunk payload bytes.
    fn run(parts: &[&[u8]]) -> Result<(Vec<u8>, usize, bool), ChunkedError> {
        let mut s = ChunkedScanner::default();
        let mut payload = Vec::new();
        let mut consumed = 0;
        for part in parts {
            let mut at = 0;
            while at < part.len() && !s.is_done() {
                match s.step(&part[at..])? {
                    Segment::Data(n) => {
                        payload.extend_from_slice(&part[at..at + n]);
                        at += n;
                    }
                    Segment::Framing(n) => at += n,
                    Segment::Done => break,
                }
            }
            consumed += at;
        }
        Ok((payload, consumed, s.is_done()))
    }

    #[test]
    fn whole_body() {
        let (payload, consumed, done) = run(&[BODY]).unwrap();
        assert_eq!(payload, PAYLOAD);
        assert_eq!(consumed, BODY.len());
        assert!(done);
    }

    #[test]
    fn split_at_every_position() {
        for k in 0..=BODY.len() {
            let (payload, consumed, done) = run(&[&BODY[..k], &BODY[k..]]).unwrap();
            assert_eq!(payload, PAYLOAD, "split at {k}");
            assert_eq!(consumed, BODY.len(), "split at {k}");
            assert!(done, "split at {k}");
        }
    }

    #[test]
    fn split_at_every_pair_of_positions() {
        for i in 0..=BODY.len() {
            for j in i..=BODY.len() {
                let (payload, _, done) = run(&[&BODY[..i], &BODY[i..j], &BODY[j..]]).unwrap();
                assert_eq!(payload, PAYLOAD, "split at {i},{j}");
                assert!(done);
            }
        }
    }

    #[test]
    fn byte_by_byte() {
        let parts: Vec<&[u8]> = BODY.chunks(1).collect();
        let (payload, consumed, done) = run(&parts).unwrap();
        assert_eq!(payload, PAYLOAD);
        assert_eq!(consumed, BODY.len());
        assert!(done);
    }

    #[test]
    fn not_done_before_final_crlf() {
        let mut s = ChunkedScanner::default();
        let scan = s.scan(&BODY[..BODY.len() - 1]).unwrap();
        assert!(!scan.done);
        assert_eq!(scan.consumed, BODY.len() - 1);
        let scan = s.scan(&BODY[BODY.len() - 1..]).unwrap();
        assert!(scan.done);
    }

    #[test]
    fn scan_stops_at_end_of_message() {
        let mut input = b"3\r\nabc\r\n0\r\n\r\n".to_vec();
        let body_len = input.len();
        input.extend_from_slice(b"GET /next HTTP/1.1\r\n");
        let mut s = ChunkedScanner::default();
        let scan = s.scan(&input).unwrap();
        assert_eq!(
            scan,
            Scan {
                consumed: body_len,
                data: 3,
                done: true
            }
        );
        assert_eq!(s.step(&input[body_len..]), Ok(Segment::Done));
    }

    #[test]
    fn segments_of_a_simple_body() {
        let mut s = ChunkedScanner::default();
        let input = b"3\r\nabc\r\n0\r\n\r\n";
        assert_eq!(s.step(input), Ok(Segment::Framing(3)));
        assert_eq!(s.data_remaining(), 3);
        assert_eq!(s.step(&input[3..]), Ok(Segment::Data(3)));
        assert_eq!(s.step(&input[6..]), Ok(Segment::Framing(7)));
        assert!(s.is_done());
        s.reset();
        assert!(!s.is_done());
    }

    #[test]
    fn large_chunk_is_skipped_in_one_step() {
        let mut s = ChunkedScanner::default();
        assert_eq!(s.step(b"100000\r\n"), Ok(Segment::Framing(8)));
        let data = vec![b'x'; 0x100000];
        assert_eq!(s.step(&data), Ok(Segment::Data(0x100000)));
        assert_eq!(s.scan(b"\r\n0\r\n\r\n").map(|x| x.done), Ok(true));
    }

    #[test]
    fn max_u64_size_is_accepted_as_size() {
        let mut s = ChunkedScanner::default();
        assert_eq!(s.step(b"ffffffffffffffff\r\n"), Ok(Segment::Framing(18)));
        assert_eq!(s.data_remaining(), u64::MAX);
    }

    fn err(input: &[u8]) -> ChunkedError {
        ChunkedScanner::default()
            .scan(input)
            .expect_err("must be refused")
    }

    #[test]
    fn non_hex_size() {
        assert_eq!(err(b"g\r\n"), ChunkedError::InvalidSize);
        assert_eq!(err(b"1g\r\n"), ChunkedError::InvalidSize);
        assert_eq!(err(b"0x5\r\n"), ChunkedError::InvalidSize);
        assert_eq!(err(b"-1\r\n"), ChunkedError::InvalidSize);
        assert_eq!(err(b"\r\n"), ChunkedError::InvalidSize);
        assert_eq!(err(b" 5\r\n"), ChunkedError::InvalidSize);
    }

    #[test]
    fn overflowing_size() {
        assert_eq!(err(b"10000000000000000\r\n"), ChunkedError::SizeOverflow);
    }

    #[test]
    fn long_size_line() {
        let mut line = vec![b'0'; 5000];
        line.extend_from_slice(b"1\r\n");
        assert_eq!(err(&line), ChunkedError::SizeLineTooLong);
        let mut ext = b"1;".to_vec();
        ext.resize(5000, b'a');
        assert_eq!(err(&ext), ChunkedError::SizeLineTooLong);
    }

    #[test]
    fn leading_zeros_within_limit_are_fine() {
        let (payload, _, done) = run(&[b"0000000003\r\nabc\r\n0\r\n\r\n"]).unwrap();
        assert_eq!(payload, b"abc");
        assert!(done);
    }

    #[test]
    fn missing_crlf_after_data() {
        assert_eq!(err(b"3\r\nabcd\r\n"), ChunkedError::MissingDataCrlf);
        assert_eq!(err(b"3\r\nabc\rX"), ChunkedError::MissingDataCrlf);
        assert_eq!(err(b"3\r\nabc\n0\r\n\r\n"), ChunkedError::MissingDataCrlf);
    }

    #[test]
    fn bare_lf_is_refused() {
        assert_eq!(err(b"3\nabc\r\n"), ChunkedError::InvalidLineEnding);
        assert_eq!(err(b"3;x\nabc\r\n"), ChunkedError::InvalidLineEnding);
        assert_eq!(err(b"0\r\n\n"), ChunkedError::InvalidLineEnding);
        assert_eq!(err(b"0\r\nX: y\n\r\n"), ChunkedError::InvalidLineEnding);
        assert_eq!(err(b"3\rabc"), ChunkedError::InvalidLineEnding);
    }

    #[test]
    fn bad_extensions() {
        assert_eq!(err(b"3;a\x01b\r\n"), ChunkedError::InvalidExtension);
        assert_eq!(
            err(b"3;a=\"unterminated\r\n"),
            ChunkedError::InvalidExtension
        );
        assert_eq!(err(b"3 x\r\n"), ChunkedError::InvalidExtension);
        assert_eq!(err(b"3;a\0\r\n"), ChunkedError::InvalidExtension);
    }

    #[test]
    fn good_extensions() {
        for body in [
            &b"3;a\r\nabc\r\n0\r\n\r\n"[..],
            b"3 ; a = b\r\nabc\r\n0\r\n\r\n",
            b"3;a=b;c=\"d e\"\r\nabc\r\n0;last\r\n\r\n",
            b"3\t\r\nabc\r\n0\r\n\r\n",
        ] {
            let (payload, _, done) = run(&[body]).unwrap();
            assert_eq!(payload, b"abc");
            assert!(done);
        }
    }

    #[test]
    fn bad_trailers() {
        assert_eq!(err(b"0\r\nNoColon\r\n\r\n"), ChunkedError::InvalidTrailer);
        assert_eq!(err(b"0\r\nX: a\0b\r\n\r\n"), ChunkedError::InvalidTrailer);
        assert_eq!(
            err(b"0\r\nX: a\r\n folded\r\n\r\n"),
            ChunkedError::InvalidTrailer
        );
        assert_eq!(err(b"0\r\nX : a\r\n\r\n"), ChunkedError::InvalidTrailer);
    }

    #[test]
    fn oversized_trailers() {
        let mut s = ChunkedScanner::new(ChunkedLimits {
            max_line_bytes: 64,
            max_trailer_bytes: 32,
        });
        let mut body = b"0\r\nX-Big: ".to_vec();
        body.resize(60, b'a');
        body.extend_from_slice(b"\r\n\r\n");
        assert_eq!(s.scan(&body), Err(ChunkedError::TrailersTooLarge));
    }
}
