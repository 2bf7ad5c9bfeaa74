//! Values with embedded samples, HAProxy's log-format strings restricted to
//! `%[fetch,converter...]` and `%%`: `"%[src]"`, `"%[ssl_fc,iif(https,http)]"`.

use std::io::Write;

use super::sample::{Facts, Fetch, Sample};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Converter {
    /// `iif(true_value,false_value)` on a boolean sample.
    Iif(Box<[u8]>, Box<[u8]>),
    Lower,
    Upper,
}

#[derive(Debug, Clone)]
pub enum Part {
    Literal(Box<[u8]>),
    Sample {
        fetch: Fetch,
        converters: Vec<Converter>,
    },
}

/// A compiled value.
#[derive(Debug, Clone, Default)]
pub struct Format {
    pub parts: Vec<Part>,
}

impl Format {
    pub fn literal(bytes: &[u8]) -> Self {
        Format {
            parts: vec![Part::Literal(bytes.into())],
        }
    }

    /// Appends the value for these facts. A fetch without a sample adds
    /// nothing; of several samples (a repeated header) the last is used,
    /// as HAProxy does outside ACLs.
    pub fn render(&self, facts: &Facts<'_>, out: &mut Vec<u8>) {
        for part in &self.parts {
            match part {
                Part::Literal(bytes) => out.extend_from_slice(bytes),
                Part::Sample { fetch, converters } => {
                    let start = out.len();
                    fetch.any(facts, |s| {
                        out.truncate(start);
                        render_sample(s, converters, out);
                        false
                    });
                }
            }
        }
    }
}

fn render_sample(sample: Sample<'_>, converters: &[Converter], out: &mut Vec<u8>) {
    let start = out.len();
    let mut current = sample;
    let mut chosen: Option<&[u8]> = None;
    for conv in converters {
        if let Converter::Iif(yes, no) = conv {
            let truth = match current {
                Sample::Bool(b) => b,
                Sample::Int(i) => i != 0,
                Sample::Str(s) => !s.is_empty(),
                Sample::Ip(_) => true,
            };
            let pick: &[u8] = if truth { yes } else { no };
            chosen = Some(pick);
            current = Sample::Str(pick);
        }
    }
    match chosen.map(Sample::Str).unwrap_or(current) {
        Sample::Str(s) => out.extend_from_slice(s),
        Sample::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Sample::Ip(ip) => {
            let _ = write!(out, "{ip}");
        }
        Sample::Bool(b) => out.push(if b { b'1' } else { b'0' }),
    }
    for conv in converters {
        match conv {
            Converter::Lower => out[start..].make_ascii_lowercase(),
            Converter::Upper => out[start..].make_ascii_uppercase(),
            Converter::Iif(..) => {}
        }
    }
}
