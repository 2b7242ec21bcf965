//! The CPU architecture a boot file was built for, read from its contents: a kernel's
//! image header, a modloop's squashfs directory, an initramfs's first ELF program.
//!
//! Why: a file's name is whatever someone called it, and an arm64 board handed an x86
//! kernel (or an x86 modloop beside its arm64 kernel) never boots, with nothing on a
//! screen to say why. What is read, and why it is enough:
//!
//! - kernel: the x86 setup header's `HdrS` at 0x202 (Documentation/arch/x86/boot.rst);
//!   the arm64 `Image` magic `ARM\x64` at 0x38 (Documentation/arch/arm64/booting.rst);
//!   a PE/COFF image's machine field (EFI stub and EFI zboot kernels: 0xaa64 arm64,
//!   0x8664 x86-64); a gzip-compressed kernel (Alpine's and Debian's arm64 `vmlinuz`)
//!   is inflated just far enough to read the same.
//! - modloop: a squashfs whose directory table names `arch/x86` or `arch/arm64` under
//!   `modules/<version>/kernel/` (gzip or xz metadata; other compressors: unknown).
//! - initramfs: a gzip newc cpio; the first ELF file's `e_machine`.
//!
//! Anything else is `None`: the check only speaks when the file says.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use crate::config::Arch;

/// How much of a compressed kernel or initramfs is inflated at most.
const INFLATE_LIMIT: u64 = 32 << 20;
/// How much of a squashfs directory table is read at most.
const DIR_TABLE_LIMIT: u64 = 8 << 20;

/// The architecture of a kernel image (bzImage, arm64 `Image`, PE, gzip of those).
pub fn kernel_arch(path: &Path) -> Option<Arch> {
    let mut head = Vec::with_capacity(0x1000);
    std::fs::File::open(path)
        .ok()?
        .take(0x1000)
        .read_to_end(&mut head)
        .ok()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        let f = std::fs::File::open(path).ok()?;
        let mut inner = Vec::with_capacity(0x1000);
        flate2::read::GzDecoder::new(f)
            .take(0x1000)
            .read_to_end(&mut inner)
            .ok()?;
        return header_arch(&inner);
    }
    header_arch(&head)
}

/// The architecture the first bytes of a kernel image say.
fn header_arch(b: &[u8]) -> Option<Arch> {
    if b.get(0x202..0x206) == Some(b"HdrS") {
        return Some(Arch::X86_64);
    }
    if b.get(0x38..0x3c) == Some(b"ARM\x64") {
        return Some(Arch::Aarch64);
    }
    if b.starts_with(b"MZ") {
        let at = u32::from_le_bytes(b.get(0x3c..0x40)?.try_into().ok()?) as usize;
        if b.get(at..at + 4) == Some(b"PE\0\0") {
            let machine = u16::from_le_bytes(b.get(at + 4..at + 6)?.try_into().ok()?);
            return match machine {
                0xaa64 => Some(Arch::Aarch64),
                0x8664 | 0x014c => Some(Arch::X86_64),
                _ => None,
            };
        }
    }
    None
}

/// The architecture of an ELF `e_machine`.
fn elf_arch(machine: u16) -> Option<Arch> {
    match machine {
        0x3e | 0x03 => Some(Arch::X86_64),
        0xb7 => Some(Arch::Aarch64),
        _ => None,
    }
}

/// The architecture of an initramfs: the first ELF file in its (gzip) newc cpio.
pub fn initramfs_arch(path: &Path) -> Option<Arch> {
    let f = std::fs::File::open(path).ok()?;
    let mut r = flate2::read::GzDecoder::new(f).take(INFLATE_LIMIT);
    loop {
        let mut h = [0u8; 110];
        r.read_exact(&mut h).ok()?;
        if &h[..6] != b"070701" && &h[..6] != b"070702" {
            return None;
        }
        let field = |i: usize| {
            std::str::from_utf8(&h[6 + i * 8..14 + i * 8])
                .ok()
                .and_then(|s| u32::from_str_radix(s, 16).ok())
        };
        let (size, namesize) = (field(6)? as usize, field(11)? as usize);
        let mut name = vec![0u8; namesize];
        r.read_exact(&mut name).ok()?;
        if name.starts_with(b"TRAILER!!!") {
            return None;
        }
        skip(&mut r, (4 - (110 + namesize) % 4) % 4)?;
        let mut body = vec![0u8; size.min(20)];
        r.read_exact(&mut body).ok()?;
        if size >= 20 && body.starts_with(b"\x7fELF") {
            return elf_arch(u16::from_le_bytes([body[18], body[19]]));
        }
        skip(&mut r, size - body.len() + (4 - size % 4) % 4)?;
    }
}

fn skip(r: &mut impl Read, n: usize) -> Option<()> {
    let got = std::io::copy(&mut r.take(n as u64), &mut std::io::sink()).ok()?;
    (got == n as u64).then_some(())
}

/// The architecture of a modloop: which `arch/<name>` folder its squashfs holds.
pub fn modloop_arch(path: &Path) -> Option<Arch> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut sb = [0u8; 96];
    f.read_exact(&mut sb).ok()?;
    if &sb[..4] != b"hsqs" {
        return None;
    }
    let u16_at = |i: usize| u16::from_le_bytes([sb[i], sb[i + 1]]);
    let u64_at = |i: usize| u64::from_le_bytes(sb[i..i + 8].try_into().unwrap_or_default());
    let compression = u16_at(20);
    let dir_start = u64_at(72);
    // The directory table ends where the next table begins (fragments, export, ids).
    let end = [u64_at(80), u64_at(88), u64_at(48), u64_at(40)]
        .into_iter()
        .filter(|t| *t > dir_start && *t != u64::MAX)
        .min()?;
    let len = (end - dir_start).min(DIR_TABLE_LIMIT);
    f.seek(SeekFrom::Start(dir_start)).ok()?;
    let mut raw = vec![0u8; len as usize];
    f.read_exact(&mut raw).ok()?;
    let table = metadata_blocks(&raw, compression)?;
    let named = |name: &[u8]| {
        // A directory entry: type 1 (directory), name_size = len - 1, then the name.
        let mut pat = vec![1u8, 0, (name.len() - 1) as u8, 0];
        pat.extend_from_slice(name);
        table.windows(pat.len()).any(|w| w == pat.as_slice())
    };
    match (named(b"arm64"), named(b"x86")) {
        (true, false) => Some(Arch::Aarch64),
        (false, true) => Some(Arch::X86_64),
        _ => None,
    }
}

/// The metadata blocks of a squashfs table, inflated and joined.
fn metadata_blocks(raw: &[u8], compression: u16) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 2 <= raw.len() {
        let h = u16::from_le_bytes([raw[at], raw[at + 1]]);
        let size = usize::from(h & 0x7fff);
        let block = raw.get(at + 2..at + 2 + size)?;
        at += 2 + size;
        if h & 0x8000 != 0 {
            out.extend_from_slice(block);
            continue;
        }
        match compression {
            1 => {
                flate2::read::ZlibDecoder::new(block)
                    .take(8192)
                    .read_to_end(&mut out)
                    .ok()?;
            }
            4 => {
                let mut r = std::io::BufReader::new(block);
                lzma_rs::xz_decompress(&mut r, &mut out).ok()?;
            }
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An arm64 `Image` header (the EFI stub's `MZ` and PE header, as Debian's).
    pub(crate) fn fake_arm64_image() -> Vec<u8> {
        let mut b = vec![0u8; 0x2000];
        b[..2].copy_from_slice(b"MZ");
        b[0x38..0x3c].copy_from_slice(b"ARM\x64");
        b[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
        b[0x40..0x44].copy_from_slice(b"PE\0\0");
        b[0x44..0x46].copy_from_slice(&0xaa64u16.to_le_bytes());
        b
    }

    fn gzip(b: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn kernels_by_header_not_name() {
        let dir = tempfile::tempdir().unwrap();
        let x86 = super::super::bzimage::tests::fake_bzimage("6.12.13-0-lts");
        let arm = fake_arm64_image();
        let mut pe_only = vec![0u8; 0x200];
        pe_only[..2].copy_from_slice(b"MZ");
        pe_only[0x3c..0x40].copy_from_slice(&0x80u32.to_le_bytes());
        pe_only[0x80..0x84].copy_from_slice(b"PE\0\0");
        pe_only[0x84..0x86].copy_from_slice(&0xaa64u16.to_le_bytes());
        let cases: Vec<(&str, Vec<u8>, Option<Arch>)> = vec![
            ("vmlinuz-arm64-named", x86.clone(), Some(Arch::X86_64)),
            ("vmlinuz-lts", arm.clone(), Some(Arch::Aarch64)),
            ("vmlinuz-gz", gzip(&arm), Some(Arch::Aarch64)),
            ("zboot", pe_only, Some(Arch::Aarch64)),
            ("plain", b"kernel".to_vec(), None),
            ("zeros", vec![0u8; 0x4000], None),
        ];
        for (name, bytes, want) in cases {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            assert_eq!(kernel_arch(&p), want, "{name}");
        }
    }

    fn cpio(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let entry = |out: &mut Vec<u8>, name: &str, body: &[u8]| {
            let n = name.len() + 1;
            out.extend_from_slice(
                format!(
                    "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
                    1, 0o100644, 0, 0, 1, 0, body.len(), 0, 0, 0, 0, n, 0
                )
                .as_bytes(),
            );
            out.extend_from_slice(name.as_bytes());
            out.push(0);
            out.resize(out.len() + (4 - (110 + n) % 4) % 4, 0);
            out.extend_from_slice(body);
            out.resize(out.len() + (4 - body.len() % 4) % 4, 0);
        };
        for (name, body) in files {
            entry(&mut out, name, body);
        }
        entry(&mut out, "TRAILER!!!", b"");
        out
    }

    #[test]
    fn initramfs_by_its_first_program() {
        let dir = tempfile::tempdir().unwrap();
        let elf = |m: u16| {
            let mut b = b"\x7fELF".to_vec();
            b.resize(64, 0);
            b[18..20].copy_from_slice(&m.to_le_bytes());
            b
        };
        for (name, machine, want) in [
            ("x86", 0x3eu16, Some(Arch::X86_64)),
            ("arm", 0xb7, Some(Arch::Aarch64)),
            ("other", 0xf3, None),
        ] {
            let body = elf(machine);
            let img = gzip(&cpio(&[("init", b"#!/bin/sh\n"), ("bin/busybox", &body)]));
            let p = dir.path().join(name);
            std::fs::write(&p, img).unwrap();
            assert_eq!(initramfs_arch(&p), want, "{name}");
        }
        let p = dir.path().join("no-elf");
        std::fs::write(&p, gzip(&cpio(&[("init", b"x")]))).unwrap();
        assert_eq!(initramfs_arch(&p), None);
    }
}
