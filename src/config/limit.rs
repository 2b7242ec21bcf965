//! Reading lab.yaml within a size limit.
//!
//! Why: a lab.yaml of 50 MB (a generated node list gone wrong, a log pasted in) kept
//! `check` busy for minutes at 1.6 GB before it said anything. The size is known before
//! a byte is parsed, so a file over the limit is refused at once, naming the file, its
//! size, the limit and how to raise it. 8 MiB holds some 60,000 nodes of the usual form,
//! far beyond a lab; `PXELAB_MAX_LAB_BYTES` raises (or lowers) it.

use std::io::Read;
use std::path::Path;

use super::ConfigError;

/// The limit when `PXELAB_MAX_LAB_BYTES` does not set one.
pub const DEFAULT_MAX_BYTES: u64 = 8 << 20;

/// The environment variable that sets the limit, in bytes (or with a K, M or G suffix,
/// in KiB, MiB or GiB).
pub const ENV: &str = "PXELAB_MAX_LAB_BYTES";

/// Parses a limit: `8388608`, `64K`, `16M`, `1G` (binary units). `None` when malformed.
pub fn parse_bytes(text: &str) -> Option<u64> {
    let t = text.trim();
    let (digits, unit) = match t.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&t[..i], c.to_ascii_uppercase()),
        _ => (t, 'B'),
    };
    let shift = match unit {
        'B' => 0,
        'K' => 10,
        'M' => 20,
        'G' => 30,
        _ => return None,
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits
        .parse::<u64>()
        .ok()?
        .checked_mul(1 << shift)
        .filter(|n| *n > 0)
}

/// The limit in force: `PXELAB_MAX_LAB_BYTES` when it parses, else the default.
pub fn max_bytes() -> u64 {
    std::env::var(ENV)
        .ok()
        .and_then(|v| parse_bytes(&v))
        .unwrap_or(DEFAULT_MAX_BYTES)
}

/// Reads lab.yaml as text, refusing a file over `limit` bytes before reading it (and
/// reading at most `limit + 1` bytes, should it grow meanwhile).
pub fn read_text_limited(path: &Path, limit: u64) -> Result<String, ConfigError> {
    let io = |source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let too_large = |size| ConfigError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit,
    };
    if size > limit {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(too_large(bytes.len() as u64));
    }
    String::from_utf8(bytes).map_err(|e| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        ))
    })
}

/// Reads lab.yaml as text within [`max_bytes`].
pub fn read_text(path: &Path) -> Result<String, ConfigError> {
    read_text_limited(path, max_bytes())
}

/// `52428800` as `50.0 MiB`, for the refusal.
pub fn human(bytes: u64) -> String {
    const MIB: f64 = (1u64 << 20) as f64;
    if bytes >= 1 << 20 {
        format!("{:.1} MiB", bytes as f64 / MIB)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_parse_in_binary_units() {
        for (t, want) in [
            ("8388608", Some(8 << 20)),
            ("64K", Some(64 << 10)),
            ("16m", Some(16 << 20)),
            ("1G", Some(1 << 30)),
            ("0", None),
            ("", None),
            ("M", None),
            ("12T", None),
            ("-5", None),
            ("1.5M", None),
        ] {
            assert_eq!(parse_bytes(t), want, "{t}");
        }
    }

    #[test]
    fn a_file_over_the_limit_is_refused_naming_size_limit_and_remedy() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lab.yaml");
        std::fs::write(&p, "name: t\n".repeat(100)).unwrap();
        assert!(read_text_limited(&p, 800).is_ok());
        let e = read_text_limited(&p, 799).unwrap_err().to_string();
        assert!(e.starts_with(&format!("{}: ", p.display())), "{e}");
        assert!(e.contains("800 bytes") && e.contains("799 bytes"), "{e}");
        assert!(e.contains(ENV) && e.contains("Split the machines"), "{e}");
    }
}
