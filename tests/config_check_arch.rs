//! `pxelab check` in a mixed lab: each boot file's architecture is read from the file
//! (kernel header, modloop squashfs), not its name, and a node of one architecture
//! handed a file of another is an error at the line that does it. The modloops are
//! real squashfs images made by `mksquashfs` (xz, as Alpine's, and gzip).

mod common;

use std::path::Path;
use std::process::Command;

/// An x86 bzImage header (the `HdrS` setup header, no version string).
fn bzimage() -> Vec<u8> {
    let mut b = vec![0u8; 0x4000];
    b[0x1fe..0x200].copy_from_slice(&[0x55, 0xaa]);
    b[0x202..0x206].copy_from_slice(b"HdrS");
    b
}

/// An arm64 `Image` with its EFI stub, gzip-compressed as Alpine's aarch64 `vmlinuz`.
fn arm64_vmlinuz() -> Vec<u8> {
    use std::io::Write;
    let mut b = vec![0u8; 0x4000];
    b[..2].copy_from_slice(b"MZ");
    b[0x38..0x3c].copy_from_slice(b"ARM\x64");
    b[0x3c..0x40].copy_from_slice(&0x40u32.to_le_bytes());
    b[0x40..0x44].copy_from_slice(b"PE\0\0");
    b[0x44..0x46].copy_from_slice(&0xaa64u16.to_le_bytes());
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&b).unwrap();
    e.finish().unwrap()
}

/// A modloop of `arch` (`x86` or `arm64`), as Alpine lays one out.
fn modloop(dir: &Path, out: &str, arch: &str, comp: &str) {
    let tree = dir.join(format!("tree-{arch}"));
    let m = tree.join(format!("modules/6.12.13-0-lts/kernel/arch/{arch}/crypto"));
    std::fs::create_dir_all(&m).unwrap();
    std::fs::write(m.join("aes.ko.gz"), b"module").unwrap();
    let d = tree.join("modules/6.12.13-0-lts/kernel/drivers/net");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("virtio_net.ko.gz"), b"module").unwrap();
    let o = Command::new("mksquashfs")
        .arg(&tree)
        .arg(dir.join(out))
        .args(["-comp", comp, "-noappend", "-quiet", "-no-progress"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

const SERVER: &str =
    "  - {mac: 52:54:00:00:00:01, hostname: server, role: k3s-server, ip: 10.0.0.11}\n";

fn lab(profiles: bool, nodes: &str) -> String {
    let mut s = String::from(
        "name: mixed\nserver_address: 10.0.0.1\nboot:\n  kernel: vmlinuz-lts\n  initrds: [initramfs-lts]\n  modloop: modloop-lts\n  cmdline: \"console=ttyS0 modloop={{ modloop_url }}\"\n",
    );
    if profiles {
        // The arm64 kernel is called `vmlinuz-x86`: its header says otherwise.
        s.push_str("  arch:\n    aarch64:\n      kernel: vmlinuz-x86\n      initrds: [initramfs-arm]\n      modloop: modloop-arm\n");
    }
    s.push_str("nodes:\n");
    s.push_str(SERVER);
    s.push_str(nodes);
    s
}

/// Runs `check --no-host` on `text`; exit code and the error lines.
fn check(dir: &Path, text: &str) -> (Option<i32>, Vec<String>, String) {
    std::fs::write(dir.join("lab.yaml"), text).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_pxelab"))
        .current_dir(dir)
        .env_remove("PXELAB_CONFIG")
        .args(["check", "--no-host"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
    let errors = out
        .lines()
        .filter(|l| l.contains(": error: "))
        .map(str::to_string)
        .collect();
    (o.status.code(), errors, out)
}

/// `lab.yaml:LINE:` of the first line of `text` containing `needle` after `after`.
fn at(text: &str, after: &str, needle: &str) -> String {
    let start = text.find(after).unwrap();
    let line = text[..start].matches('\n').count()
        + 1
        + text[start..]
            .lines()
            .position(|l| l.contains(needle))
            .unwrap();
    format!("lab.yaml:{line}:")
}

fn assets() -> Option<tempfile::TempDir> {
    if !common::require_program("mksquashfs") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("assets");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::write(a.join("vmlinuz-lts"), bzimage()).unwrap();
    std::fs::write(a.join("vmlinuz-x86"), arm64_vmlinuz()).unwrap();
    std::fs::write(a.join("initramfs-lts"), b"not read").unwrap();
    std::fs::write(a.join("initramfs-arm"), b"not read").unwrap();
    modloop(&a, "modloop-lts", "x86", "xz");
    modloop(&a, "modloop-arm", "arm64", "gzip");
    Some(dir)
}

#[test]
fn a_mixed_lab_with_matching_profiles_checks_clean() {
    let Some(dir) = assets() else { return };
    let text = lab(
        true,
        "  - {mac: dc:a6:32:00:00:02, hostname: pi, role: k3s-agent, arch: aarch64}\n  - {mac: 52:54:00:00:00:03, hostname: pc, role: k3s-agent}\n",
    );
    let (code, errors, out) = check(dir.path(), &text);
    assert!(errors.is_empty(), "{out}");
    assert_eq!(code, Some(0), "{out}");
}

#[test]
fn an_x86_modloop_on_an_aarch64_node_is_refused_at_its_line() {
    let Some(dir) = assets() else { return };
    let text = lab(
        true,
        "  - mac: dc:a6:32:00:00:02\n    hostname: pi\n    role: k3s-agent\n    arch: aarch64\n    modloop: modloop-lts\n",
    );
    let (code, errors, out) = check(dir.path(), &text);
    assert_ne!(code, Some(0), "{out}");
    assert_eq!(errors.len(), 1, "{out}");
    assert!(
        errors[0].starts_with(&at(&text, "hostname: pi", "modloop:")),
        "{out}"
    );
    assert!(
        errors[0].contains(
            "modloop-lts is an x86_64 modloop (read from the file), but nodes[1] (pi) is aarch64"
        ),
        "{out}"
    );
}

#[test]
fn an_arm64_kernel_on_an_x86_node_is_refused_whatever_its_name() {
    let Some(dir) = assets() else { return };
    // Named `vmlinuz-x86`, an arm64 image: on a node that says it is x86_64.
    let text = lab(
        false,
        "  - mac: 52:54:00:00:00:02\n    hostname: pc\n    role: k3s-agent\n    arch: x86_64\n    kernel: vmlinuz-x86\n",
    );
    let (code, errors, out) = check(dir.path(), &text);
    assert_ne!(code, Some(0), "{out}");
    assert_eq!(errors.len(), 1, "{out}");
    assert!(
        errors[0].starts_with(&at(&text, "hostname: pc", "kernel:")),
        "{out}"
    );
    assert!(
        errors[0].contains(
            "vmlinuz-x86 is an aarch64 kernel (read from the file), but nodes[1] (pc) is x86_64"
        ),
        "{out}"
    );
    // Without `arch:`: the node's own arm64 kernel disagrees with boot:'s x86 modloop.
    let text = lab(
        false,
        "  - mac: 52:54:00:00:00:02\n    hostname: pc\n    role: k3s-agent\n    kernel: vmlinuz-x86\n",
    );
    let (code, errors, out) = check(dir.path(), &text);
    assert_ne!(code, Some(0), "{out}");
    assert_eq!(errors.len(), 1, "{out}");
    assert!(
        errors[0].starts_with(&at(&text, "hostname: pc", "kernel:")),
        "{out}"
    );
    assert!(
        errors[0].contains("one boot needs one architecture"),
        "{out}"
    );
}

#[test]
fn an_aarch64_node_without_a_profile_is_told_to_add_one() {
    let Some(dir) = assets() else { return };
    let text = lab(
        false,
        "  - mac: dc:a6:32:00:00:02\n    hostname: pi\n    role: k3s-agent\n    arch: aarch64\n",
    );
    let (code, errors, out) = check(dir.path(), &text);
    assert_ne!(code, Some(0), "{out}");
    assert!(!errors.is_empty(), "{out}");
    let line = at(&text, "hostname: pi", "arch:");
    assert!(errors.iter().all(|e| e.starts_with(&line)), "{out}");
    assert!(
        errors.iter().any(|e| e.contains("add boot.arch.aarch64")),
        "{out}"
    );
    // A profile whose files are of the wrong architecture is refused at the profile.
    let text = lab(true, "").replace("modloop: modloop-arm", "modloop: modloop-lts");
    let (_, errors, out) = check(dir.path(), &text);
    assert_eq!(errors.len(), 1, "{out}");
    assert!(
        errors[0].contains("modloop-lts is an x86_64 modloop (read from the file), not aarch64"),
        "{out}"
    );
    // boot: is the x86_64 profile of a mixed lab: an arm64 modloop (gzip squashfs) there.
    let text = lab(true, "").replacen("modloop: modloop-lts", "modloop: modloop-arm", 1);
    let (_, errors, out) = check(dir.path(), &text);
    assert_eq!(errors.len(), 1, "{out}");
    assert!(
        errors[0].starts_with(&at(&text, "boot:", "modloop: modloop-arm")),
        "{out}"
    );
    assert!(errors[0].contains("modloop-arm is an aarch64 modloop (read from the file), but boot: is the x86_64 profile"), "{out}");
}
