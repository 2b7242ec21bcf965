//! File-name policing and rooting (shared by TFTP, /ipxe/ and /assets/): no panic, a
//! name that passes has only plain, non-hidden components, and whatever `resolve`
//! returns is a regular file inside the root, reached through symlinks of all kinds.
#![no_main]

use std::path::{Component, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use pxelab::net::path;

/// A root with files, a hidden folder and symlinks in and out; and a secret beside it.
fn root() -> &'static PathBuf {
    static ROOT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &ROOT
        .get_or_init(|| {
            let d = tempfile::tempdir().expect("tempdir");
            let top = std::fs::canonicalize(d.path()).expect("canonical");
            let r = top.join("root");
            let mk = |p: &str| std::fs::create_dir_all(r.join(p)).expect("mkdir");
            mk("qemu");
            mk(".pxelab");
            std::fs::write(r.join("a.efi"), b"a").expect("write");
            std::fs::write(r.join("qemu/b.rom"), b"b").expect("write");
            std::fs::write(r.join(".pxelab/lab-secret"), b"s").expect("write");
            std::fs::write(top.join("secret"), b"s").expect("write");
            let ln = |t: &str, n: &str| {
                let _ = std::os::unix::fs::symlink(t, r.join(n));
            };
            ln("qemu/b.rom", "c.rom");
            ln("../secret", "out");
            ln("..", "up");
            ln("/etc", "etc");
            ln(".pxelab", "p");
            ln("qemu", "q");
            (d, r)
        })
        .1
}

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(rel) = path::check_name(name) {
        assert!(rel.components().all(|c| matches!(c, Component::Normal(s)
            if !s.as_encoded_bytes().starts_with(b"."))));
    }
    let root = root();
    if let Ok(p) = path::resolve(root, name) {
        assert!(p.starts_with(root), "{name} -> {p:?}");
        assert!(p.is_file());
        let below = p.strip_prefix(root).expect("inside");
        assert!(!below
            .to_string_lossy()
            .split('/')
            .any(|c| c.starts_with('.')));
    }
});
