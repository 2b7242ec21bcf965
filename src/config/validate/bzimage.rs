//! The version string of an x86 Linux kernel image (bzImage), read from its setup
//! header: `6.12.13-0-lts (buildozer@build-3-21-x86_64) #1-Alpine SMP …`.
//!
//! Why: a kernel's file name is whatever someone called it; the string the kernel was
//! built with says which flavour it is (`…-lts`, `…-virt`, Debian's `…-amd64`). The
//! setup header (Documentation/arch/x86/boot.rst) has the `HdrS` magic at 0x202 and, at
//! 0x20E, the offset of that string minus 0x200. Reading it costs two small reads;
//! anything that is not such a header (an arm64 `Image`, a test file) gives `None` and
//! the name is used instead.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Where the setup header's fields are.
const MAGIC_AT: usize = 0x202;
const VERSION_PTR_AT: usize = 0x20e;
/// The most of the version string read.
const MAX_LEN: usize = 256;

/// The kernel's version string up to its first space (`6.12.13-0-lts`), if `path` is a
/// bzImage with one.
pub fn kernel_version(path: &Path) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut head = [0u8; VERSION_PTR_AT + 2];
    f.read_exact(&mut head).ok()?;
    if &head[MAGIC_AT..MAGIC_AT + 4] != b"HdrS" {
        return None;
    }
    let ptr = u16::from_le_bytes([head[VERSION_PTR_AT], head[VERSION_PTR_AT + 1]]);
    if ptr == 0 {
        return None;
    }
    f.seek(SeekFrom::Start(u64::from(ptr) + 0x200)).ok()?;
    let mut buf = Vec::with_capacity(MAX_LEN);
    f.take(MAX_LEN as u64).read_to_end(&mut buf).ok()?;
    let end = buf.iter().position(|b| *b == 0 || *b == b' ')?;
    let v = std::str::from_utf8(&buf[..end]).ok()?;
    let plain = !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic());
    plain.then(|| v.to_string())
}

/// The flavour a kernel version ends in: `6.12.13-0-lts` → `lts`.
pub fn version_flavour(version: &str) -> Option<&str> {
    let (_, f) = version.rsplit_once('-')?;
    (!f.is_empty() && f.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(f)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A bzImage-shaped file whose header points at `version` (as a built kernel does).
    pub(crate) fn fake_bzimage(version: &str) -> Vec<u8> {
        let mut b = vec![0u8; 0x4000];
        b[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
        b[MAGIC_AT..MAGIC_AT + 4].copy_from_slice(b"HdrS");
        let at = 0x3000usize;
        b[VERSION_PTR_AT..VERSION_PTR_AT + 2].copy_from_slice(&((at - 0x200) as u16).to_le_bytes());
        let s = format!("{version} (buildozer@build-3-21-x86_64) #1-Alpine SMP\0");
        b[at..at + s.len()].copy_from_slice(s.as_bytes());
        b
    }

    #[test]
    fn reads_the_version_a_kernel_was_built_with() {
        let dir = tempfile::tempdir().unwrap();
        let k = dir.path().join("vmlinuz-lts");
        std::fs::write(&k, fake_bzimage("6.12.13-0-virt")).unwrap();
        assert_eq!(kernel_version(&k).as_deref(), Some("6.12.13-0-virt"));
        assert_eq!(version_flavour("6.12.13-0-virt"), Some("virt"));
        assert_eq!(version_flavour("6.1.0-18-amd64"), Some("amd64"));
        assert_eq!(version_flavour("6.1.0"), None);
        // No header, a header without a version, a file too short: no version.
        let mut no_ptr = fake_bzimage("6.12.13-0-lts");
        no_ptr[VERSION_PTR_AT..VERSION_PTR_AT + 2].copy_from_slice(&[0, 0]);
        for (name, bytes) in [
            ("plain", b"kernel".to_vec()),
            ("zeros", vec![0u8; 0x4000]),
            ("no-ptr", no_ptr),
        ] {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            assert_eq!(kernel_version(&p), None, "{name}");
        }
        assert_eq!(kernel_version(&dir.path().join("absent")), None);
    }
}
