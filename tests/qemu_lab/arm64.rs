//! The arm64 side of the VM harness: an aarch64 UEFI machine (QEMU `virt`, Cortex-A57,
//! AAVMF from Debian's qemu-efi-aarch64), the arm64 node image and iPXE's arm64 EFI
//! binary.
//!
//! Why TCG always: the build and CI machines are x86, so the arm64 guest is emulated
//! instance by instance; its steps take seconds, and the tests budget for that.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::{repo, Image};
use crate::common::{self, NetNs};

/// AAVMF's code (read-only pflash).
pub const AAVMF_CODE: &str = "/usr/share/AAVMF/AAVMF_CODE.fd";
/// AAVMF's variable store template; each VM gets its own copy (its NVRAM).
pub const AAVMF_VARS: &str = "/usr/share/AAVMF/AAVMF_VARS.fd";

/// Whether dpkg knows the arm64 architecture and apt has its package lists
/// (`apt-get download PKG:arm64` needs both).
fn dpkg_has_arm64() -> bool {
    let foreign = Command::new("dpkg")
        .arg("--print-foreign-architectures")
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l == "arm64")
        });
    foreign
        && Command::new("apt-cache")
            .args(["policy", "busybox-static:arm64"])
            .output()
            .is_ok_and(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| l.trim().starts_with("Candidate:") && !l.contains("(none)"))
            })
}

/// Whether this machine can start the arm64 VM and build its image (beyond
/// [`super::require_vm_tools`]): skips visibly, naming what is missing.
pub fn require_arm64_tools() -> bool {
    common::require_program("qemu-system-aarch64")
        && common::require_program("readelf")
        && common::require_program("curl")
        && common::require_program("flock")
        && common::require(
            Path::new(AAVMF_CODE).is_file() && Path::new(AAVMF_VARS).is_file(),
            "AAVMF firmware (the qemu-efi-aarch64 package)",
        )
        && common::require(
            dpkg_has_arm64(),
            "dpkg's arm64 architecture for the arm64 node image's packages \
             (dpkg --add-architecture arm64; apt-get update)",
        )
}

/// Runs `script args…` bounded by `secs`; its stdout's last line, or its stderr.
fn run_script(secs: u32, script: &str, args: &[&OsStr]) -> Result<PathBuf, String> {
    let out = Command::new("timeout")
        .arg(secs.to_string())
        .arg(repo().join(script))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{script}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{script} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default().trim().to_string();
    Ok(PathBuf::from(last))
}

/// The arm64 node image (`build-node-image.sh --arch arm64`), built once per test binary
/// under the cargo target dir. Bounded to 15 minutes (a cold build downloads ~60 MB).
pub fn node_image() -> Image {
    static IMAGE: OnceLock<Image> = OnceLock::new();
    IMAGE
        .get_or_init(|| {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("node-image-arm64");
            let args = [OsStr::new("--arch"), OsStr::new("arm64"), dir.as_os_str()];
            if let Err(e) = run_script(900, "scripts/build-node-image.sh", &args) {
                panic!("{e}");
            }
            let img = Image {
                kernel: dir.join("vmlinuz"),
                initrd: dir.join("initramfs"),
            };
            assert!(
                img.kernel.is_file() && img.initrd.is_file(),
                "image files missing in {dir:?}"
            );
            img
        })
        .clone()
}

/// iPXE's arm64 EFI binary from Debian 13's ipxe .deb (scripts/fetch-ipxe-arm64.sh,
/// cached under the cargo target dir), or why it could not be had.
pub fn ipxe_efi() -> Result<PathBuf, String> {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ipxe-arm64");
    let path = run_script(600, "scripts/fetch-ipxe-arm64.sh", &[dir.as_os_str()])?;
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("fetch-ipxe-arm64.sh printed {path:?}, not a file"))
    }
}

/// The QEMU command of an aarch64 UEFI VM on `tap`: `virt` with a Cortex-A57 under TCG,
/// AAVMF in pflash with the VM's own variable store (`NAME.AAVMF_VARS.fd` in `dir`,
/// kept over power cycles as NVRAM is), and a virtio-net NIC without an option ROM
/// (QEMU's default ROM holds x86 code; AAVMF's own VirtioNetDxe does the PXE boot).
pub fn qemu(ns: &NetNs, name: &str, tap: &str, mac: &str, dir: &Path, serial: &Path) -> Command {
    let vars = dir.join(format!("{name}.AAVMF_VARS.fd"));
    if !vars.exists() {
        std::fs::copy(AAVMF_VARS, &vars).expect("copy AAVMF_VARS.fd");
    }
    ns.command(&[
        "qemu-system-aarch64",
        "-M",
        "virt",
        "-cpu",
        "cortex-a57",
        "-accel",
        "tcg",
        "-m",
        "512",
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        &format!("file:{}", serial.display()),
        "-drive",
        &format!("if=pflash,format=raw,unit=0,readonly=on,file={AAVMF_CODE}"),
        "-drive",
        &format!("if=pflash,format=raw,unit=1,file={}", vars.display()),
        "-netdev",
        &format!("tap,id=n0,ifname={tap},script=no,downscript=no"),
        "-device",
        &format!("virtio-net-pci,netdev=n0,mac={mac},romfile="),
    ])
}
