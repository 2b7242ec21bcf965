//! What the package cache checks before it keeps a file: an `APKINDEX.tar.gz` must
//! unpack to an `APKINDEX`, and an `.apk` must match its index entry.
//!
//! The cache never re-signs or rewrites anything: apk on the node still verifies the
//! index's signature and each package against the index. These checks only keep a
//! damaged download (a cut connection, a broken mirror) out of the cache, so one bad
//! fetch does not break every later boot. A package is checked against the `S:` (size)
//! and `C:Q1…` (SHA-1 of the package's control segment, the second gzip stream after
//! the signature) of its entry in the same folder's APKINDEX.

use std::collections::HashMap;
use std::io::{BufRead, Read};

use base64::Engine as _;
use sha1::{Digest, Sha1};

/// Largest decompressed `APKINDEX` read (Alpine's community index is ~10 MB).
const MAX_INDEX_TEXT: u64 = 128 << 20;

/// One package as its index lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `S:`, the `.apk` file's size.
    pub size: Option<u64>,
    /// `C:Q1…`, the SHA-1 of its control segment.
    pub q1: Option<[u8; 20]>,
}

/// A parsed APKINDEX: file name (`NAME-VERSION.apk`) → entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Index {
    /// The packages.
    pub entries: HashMap<String, Entry>,
}

/// Reads an `APKINDEX.tar.gz` (signature stream + index stream, gzip members
/// concatenated) and parses its `APKINDEX`.
pub fn read_index(r: impl Read) -> Result<Index, String> {
    let gz = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(r));
    let mut tar = tar::Archive::new(gz);
    tar.set_ignore_zeros(true);
    let entries = tar.entries().map_err(|e| format!("not a tar.gz: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("damaged tar.gz: {e}"))?;
        let is_index = entry
            .path()
            .map(|p| p.as_os_str() == "APKINDEX")
            .unwrap_or(false);
        if !is_index {
            continue;
        }
        let mut text = String::new();
        (&mut entry)
            .take(MAX_INDEX_TEXT)
            .read_to_string(&mut text)
            .map_err(|e| format!("damaged APKINDEX: {e}"))?;
        return Ok(parse_index(&text));
    }
    Err("no APKINDEX in the archive".to_string())
}

/// Parses APKINDEX text: blank-line separated records of `K:value` lines.
pub fn parse_index(text: &str) -> Index {
    let mut index = Index::default();
    for record in text.split("\n\n") {
        let (mut name, mut version, mut size, mut q1) = (None, None, None, None);
        for line in record.lines() {
            match line.split_once(':') {
                Some(("P", v)) => name = Some(v),
                Some(("V", v)) => version = Some(v),
                Some(("S", v)) => size = v.trim().parse::<u64>().ok(),
                Some(("C", v)) => q1 = decode_q1(v.trim()),
                _ => {}
            }
        }
        if let (Some(n), Some(v)) = (name, version) {
            index
                .entries
                .insert(format!("{n}-{v}.apk"), Entry { size, q1 });
        }
    }
    index
}

/// `Q1<base64 of 20 bytes>` → the bytes.
fn decode_q1(v: &str) -> Option<[u8; 20]> {
    let b = base64::engine::general_purpose::STANDARD
        .decode(v.strip_prefix("Q1")?)
        .ok()?;
    b.try_into().ok()
}

/// Checks a downloaded package (`len` bytes read from `r`) against its index entry.
pub fn check_package(r: impl Read, len: u64, want: &Entry) -> Result<(), String> {
    if let Some(s) = want.size.filter(|s| *s != len) {
        return Err(format!(
            "size {len} bytes, but the APKINDEX says {s}: damaged download"
        ));
    }
    let got = control_sha1(r)?;
    if want.q1.is_some_and(|q1| q1 != got) {
        return Err("its control segment's SHA-1 differs from the APKINDEX's checksum".into());
    }
    Ok(())
}

/// A `BufRead` that hashes exactly the bytes its consumer takes.
struct Hashing<R> {
    inner: R,
    hash: Sha1,
}

impl<R: BufRead> Read for Hashing<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let buf = self.fill_buf()?;
        let n = buf.len().min(out.len());
        out[..n].copy_from_slice(&buf[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Hashing<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        if let Ok(buf) = self.inner.fill_buf() {
            self.hash.update(&buf[..n.min(buf.len())]);
        }
        self.inner.consume(n);
    }
}

/// The SHA-1 of a package's control segment: the first gzip member whose tar does not
/// start with a `.SIGN.` entry (signed packages put their signature first). Every member
/// is decompressed to its end, so a damaged data segment fails its gzip CRC here.
pub fn control_sha1(r: impl Read) -> Result<[u8; 20], String> {
    let mut src = Hashing {
        inner: std::io::BufReader::new(r),
        hash: Sha1::new(),
    };
    let mut control = None;
    for member in 0.. {
        if src.fill_buf().map_err(|e| e.to_string())?.is_empty() {
            break;
        }
        if member == 8 {
            return Err("more gzip streams than a package has".into());
        }
        src.hash = Sha1::new();
        let mut gz = flate2::bufread::GzDecoder::new(&mut src);
        let mut header = Vec::with_capacity(512);
        (&mut gz)
            .take(512)
            .read_to_end(&mut header)
            .and_then(|_| std::io::copy(&mut gz, &mut std::io::sink()))
            .map_err(|e| format!("damaged gzip stream {}: {e}", member + 1))?;
        drop(gz);
        let digest: [u8; 20] = std::mem::replace(&mut src.hash, Sha1::new())
            .finalize()
            .into();
        if control.is_none() && !header.starts_with(b".SIGN.") {
            control = Some(digest);
        }
    }
    control.ok_or_else(|| "no control segment".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A gzip'd tar of one file (without end blocks unless `end`).
    fn member(name: &str, data: &[u8], end: bool) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append_data(&mut h, name, data).unwrap();
        let mut t = b.into_inner().unwrap();
        if !end {
            t.truncate(t.len() - 1024);
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &t).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn a_package_must_match_its_entrys_size_control_checksum_and_crcs() {
        let control = member(".PKGINFO", b"pkgname = x\n", false);
        let apk = [
            member(".SIGN.RSA.k.rsa.pub", b"sig", false),
            control.clone(),
            member("usr/bin/x", &[42u8; 5000], true),
        ]
        .concat();
        let q1: [u8; 20] = Sha1::digest(&control).into();
        let len = apk.len() as u64;
        let good = Entry {
            size: Some(len),
            q1: Some(q1),
        };
        assert_eq!(check_package(&apk[..], len, &good), Ok(()));
        let other_q1 = Entry {
            q1: Some([0u8; 20]),
            ..good.clone()
        };
        let e = check_package(&apk[..], len, &other_q1).unwrap_err();
        assert!(e.contains("SHA-1 differs"), "{e}");
        let e = check_package(&apk[..], len - 1, &good).unwrap_err();
        assert!(e.contains("APKINDEX says"), "{e}");
        // A flipped byte in the data stream: its gzip CRC (or inflate) fails.
        let mut bad = apk.clone();
        let at = bad.len() - 12;
        bad[at] ^= 0x55;
        let e = check_package(&bad[..], len, &good).unwrap_err();
        assert!(e.contains("damaged gzip stream 3"), "{e}");
    }

    #[test]
    fn index_records_give_file_names_sizes_and_checksums() {
        let q = base64::engine::general_purpose::STANDARD.encode([7u8; 20]);
        let text =
            format!("C:Q1{q}\nP:k3s\nV:1.31.4-r0\nS:2048\n\nP:curl\nV:8.11-r1\nS:10\n\nP:broken\n");
        let i = parse_index(&text);
        assert_eq!(i.entries.len(), 2);
        assert_eq!(
            i.entries["k3s-1.31.4-r0.apk"],
            Entry {
                size: Some(2048),
                q1: Some([7u8; 20])
            }
        );
        assert_eq!(i.entries["curl-8.11-r1.apk"].q1, None);
    }
}
