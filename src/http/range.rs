//! The `Range` request header, single ranges only (RFC 9110 §14).
//!
//! A malformed header or a multi-range request is ignored (the whole file is sent, as
//! the RFC allows); a well-formed range that does not overlap the file is unsatisfiable
//! (416). iPXE never sends ranges; curl, wget and resuming downloads do.

/// What to send for a file of a given length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeAnswer {
    /// The whole file (200).
    Full,
    /// Bytes `start..=end` (206).
    Partial {
        /// First byte.
        start: u64,
        /// Last byte (inclusive).
        end: u64,
    },
    /// No overlap with the file (416).
    Unsatisfiable,
}

/// Decides what to send for `header` (the `Range` value, if any) and a file of `len` bytes.
pub fn answer(header: Option<&str>, len: u64) -> RangeAnswer {
    let Some(h) = header else {
        return RangeAnswer::Full;
    };
    let Some(spec) = h.trim().strip_prefix("bytes=") else {
        return RangeAnswer::Full;
    };
    if spec.contains(',') {
        return RangeAnswer::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeAnswer::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (a.is_empty(), b.is_empty()) {
        // bytes=-N: the last N bytes.
        (true, false) => match num(b) {
            None => RangeAnswer::Full,
            Some(0) => RangeAnswer::Unsatisfiable,
            Some(_) if len == 0 => RangeAnswer::Unsatisfiable,
            Some(n) => RangeAnswer::Partial {
                start: len.saturating_sub(n),
                end: len - 1,
            },
        },
        // bytes=A-: from A to the end.
        (false, true) => match num(a) {
            None => RangeAnswer::Full,
            Some(s) if s >= len => RangeAnswer::Unsatisfiable,
            Some(s) => RangeAnswer::Partial {
                start: s,
                end: len - 1,
            },
        },
        // bytes=A-B.
        (false, false) => match (num(a), num(b)) {
            (Some(s), Some(e)) if s <= e => {
                if s >= len {
                    RangeAnswer::Unsatisfiable
                } else {
                    RangeAnswer::Partial {
                        start: s,
                        end: e.min(len - 1),
                    }
                }
            }
            _ => RangeAnswer::Full,
        },
        (true, true) => RangeAnswer::Full,
    }
}

#[cfg(test)]
mod tests {
    use super::RangeAnswer::*;
    use super::*;

    #[test]
    fn table() {
        let cases: &[(Option<&str>, u64, RangeAnswer)] = &[
            (None, 10, Full),
            (Some("bytes=0-3"), 10, Partial { start: 0, end: 3 }),
            (Some("bytes=2-"), 10, Partial { start: 2, end: 9 }),
            (Some("bytes=-4"), 10, Partial { start: 6, end: 9 }),
            (Some("bytes=-40"), 10, Partial { start: 0, end: 9 }),
            (Some("bytes=5-500"), 10, Partial { start: 5, end: 9 }),
            (Some("bytes=9-9"), 10, Partial { start: 9, end: 9 }),
            (Some("bytes=10-"), 10, Unsatisfiable),
            (Some("bytes=10-20"), 10, Unsatisfiable),
            (Some("bytes=-0"), 10, Unsatisfiable),
            (Some("bytes=0-"), 0, Unsatisfiable),
            (Some("bytes=-1"), 0, Unsatisfiable),
            (Some("bytes=5-2"), 10, Full),
            (Some("bytes=0-1,4-5"), 10, Full),
            (Some("items=0-1"), 10, Full),
            (Some("bytes=a-b"), 10, Full),
            (Some("bytes=-"), 10, Full),
            (Some("bytes=+1-2"), 10, Full),
            (Some("bytes=99999999999999999999999-"), 10, Full),
        ];
        for (h, len, want) in cases {
            assert_eq!(answer(*h, *len), *want, "{h:?} len {len}");
        }
    }
}
