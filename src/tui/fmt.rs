//! Small formatting helpers: durations, ages, clock times.

/// A duration in ms as a short string: `850ms`, `4.2s`, `1m05s`, `2h03m`, `3d04h`.
pub fn duration(ms: u64) -> String {
    let s = ms / 1000;
    if ms < 1000 {
        format!("{ms}ms")
    } else if s < 60 {
        format!("{}.{}s", s, (ms % 1000) / 100)
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86_400 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else {
        format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600)
    }
}

/// A coarse age for table columns: `now`, `12s`, `4m`, `3h`, `2d`.
pub fn age(ms: u64) -> String {
    let s = ms / 1000;
    if s < 1 {
        "now".into()
    } else if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m", s / 60)
    } else if s < 86_400 {
        format!("{}h", s / 3600)
    } else {
        format!("{}d", s / 86_400)
    }
}

/// `HH:MM:SS` of a Unix time in ms, shifted by `tz_offset_s` (local time).
pub fn clock(at_ms: u64, tz_offset_s: i32) -> String {
    let t = (at_ms / 1000) as i64 + tz_offset_s as i64;
    let d = t.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", d / 3600, (d % 3600) / 60, d % 60)
}

/// The glyph the console shows for a state: the engine's, except held, whose pause sign
/// is drawn double-width by many fonts.
pub fn glyph(s: crate::engine::NodeState) -> &'static str {
    match s {
        crate::engine::NodeState::Held => "◆",
        s => s.glyph(),
    }
}

/// Cuts `s` to at most `n` characters, marking the cut with `…`.
pub fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        return s.to_string();
    }
    if n == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(n - 1).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(duration(850), "850ms");
        assert_eq!(duration(4_250), "4.2s");
        assert_eq!(duration(65_000), "1m05s");
        assert_eq!(duration(7_380_000), "2h03m");
        assert_eq!(age(500), "now");
        assert_eq!(age(61_000), "1m");
        assert_eq!(clock(3_723_000, 0), "01:02:03");
        assert_eq!(clock(3_723_000, 3600), "02:02:03");
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abc", 4), "abc");
    }
}
