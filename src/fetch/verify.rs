//! Proof that a downloaded tarball is the one Alpine published: its SHA-256 against the
//! published sum, and a detached OpenPGP signature against the keyring.
//!
//! The checksum alone proves only that the mirror served what the mirror lists; the
//! signature ties the file to the release key. Each refusal says which check failed and
//! what it found (expected vs got, the signer's key id).

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use pgp::composed::{Deserializable, DetachedSignature};
use pgp::types::KeyDetails;
use sha2::{Digest, Sha256};

use super::keyring::Keyring;
use super::{io_err, FetchError};

/// SHA-256 of a file, lowercase hex, read in chunks (tarballs and modloops are large).
pub fn sha256_file(path: &Path) -> Result<String, FetchError> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

/// Lowercase hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The sum for `file` in a `sha256sum`-style text (`HASH  NAME` lines, or a bare hash).
pub fn published_sum(text: &str, file: &str) -> Option<String> {
    let is_hash = |h: &str| h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit());
    let mut bare = None;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        let (Some(h), name) = (words.next(), words.next()) else {
            continue;
        };
        if !is_hash(h) {
            continue;
        }
        match name.map(|n| n.trim_start_matches('*')) {
            Some(n) if n == file => return Some(h.to_ascii_lowercase()),
            None => bare = Some(h.to_ascii_lowercase()),
            Some(_) => {}
        }
    }
    bare
}

/// Refuses `path` unless its SHA-256 is `expected`.
pub fn check_sha256(path: &Path, name: &str, expected: &str) -> Result<(), FetchError> {
    let got = sha256_file(path)?;
    if got != expected.to_ascii_lowercase() {
        return Err(FetchError::Checksum {
            file: name.to_string(),
            expected: expected.to_ascii_lowercase(),
            got,
        });
    }
    Ok(())
}

/// Verifies the armored detached signature `asc` over the file at `path` with a key of
/// `ring` (the primary key or a subkey the signature names). Returns the signer's
/// fingerprint.
pub fn check_signature(
    path: &Path,
    name: &str,
    asc: &[u8],
    ring: &Keyring,
) -> Result<String, FetchError> {
    let (sig, _) = DetachedSignature::from_armor_single(asc).map_err(|e| FetchError::Pgp {
        what: format!("{name}.asc"),
        message: e.to_string(),
    })?;
    let sig = sig.signature;
    let issuers: Vec<String> = sig
        .issuer_key_id()
        .iter()
        .map(|k| k.to_string())
        .chain(sig.issuer_fingerprint().iter().map(|f| format!("{f:x}")))
        .collect();
    // Which key of the ring made it: a signature names its issuer by key id (the low
    // 8 bytes of a v4 fingerprint) and/or fingerprint.
    let named =
        |id: String, fp: String| issuers.is_empty() || issuers.iter().any(|i| *i == id || *i == fp);
    let verify = |key: &dyn Fn(File) -> pgp::errors::Result<()>| -> Result<(), FetchError> {
        let f = File::open(path).map_err(io_err(path))?;
        key(f).map_err(|e| FetchError::BadSignature {
            file: name.to_string(),
            key_id: issuers.first().cloned().unwrap_or_default(),
            message: e.to_string(),
        })
    };
    let mut last_bad = None;
    for k in &ring.keys {
        let fp = super::keyring::fingerprint(k);
        let pk = &k.primary_key;
        if named(
            pk.legacy_key_id().to_string(),
            format!("{:x}", pk.fingerprint()),
        ) {
            match verify(&|f| sig.verify(pk, BufReader::new(f))) {
                Ok(()) => return Ok(fp),
                Err(e) => last_bad = Some(e),
            }
        }
        for sub in &k.public_subkeys {
            let sk = &sub.key;
            if named(
                sk.legacy_key_id().to_string(),
                format!("{:x}", sk.fingerprint()),
            ) {
                match verify(&|f| sig.verify(sk, BufReader::new(f))) {
                    Ok(()) => return Ok(fp),
                    Err(e) => last_bad = Some(e),
                }
            }
        }
    }
    Err(last_bad.unwrap_or_else(|| FetchError::WrongKey {
        file: name.to_string(),
        key_id: issuers.join(" / "),
        keyring: ring.name.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::published_sum;

    #[test]
    fn finds_the_sum_for_the_file() {
        let a = "a".repeat(64);
        let b = "B".repeat(64);
        let text = format!("{a}  other.tar.gz\n{b}  alpine-netboot.tar.gz\n");
        assert_eq!(
            published_sum(&text, "alpine-netboot.tar.gz"),
            Some("b".repeat(64))
        );
        assert_eq!(published_sum(&text, "missing"), None);
        assert_eq!(published_sum(&format!("{a}\n"), "x"), Some(a.clone()));
        assert_eq!(published_sum("short  x\n", "x"), None);
    }
}
