//! Mixed labs: the CPU architectures a node can boot (`boot.arch.<arch>:` profiles,
//! `arch:` on a role or node), the way its firmware boots it, and the `pi:` section for
//! Raspberry Pis that netboot from their EEPROM bootloader without iPXE.
//!
//! Why here: the architecture is a word of lab.yaml first (which kernel, initramfs and
//! modloop a node gets); DHCP option 93, iPXE's `${buildarch}` and the Pi bootloader
//! only tell which of the configured profiles applies when lab.yaml does not say.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A CPU architecture a boot profile is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// 64-bit x86 (`boot:` itself; BIOS and UEFI PCs).
    X86_64,
    /// 64-bit Arm (UEFI compute blades, QEMU `virt`, Raspberry Pi 4 / CM4).
    Aarch64,
}

impl Arch {
    /// The architecture x86 labs have always booted: `boot:` is its profile.
    pub const DEFAULT: Arch = Arch::X86_64;

    /// The name written in lab.yaml (`x86_64`, `aarch64`).
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// The architecture of a DHCP option 93 value (RFC 4578, IANA's registry), if it is
    /// one of ours: 0 BIOS, 6 IA32 UEFI, 7/9 x64 UEFI, 16 x64 HTTP → x86_64 (an IA32
    /// UEFI is rare and boots the x86 profile); 11 arm64 UEFI, 19 arm64 HTTP → aarch64.
    pub fn from_client_arch(code: u16) -> Option<Arch> {
        match code {
            0 | 6 | 7 | 9 | 15 | 16 => Some(Arch::X86_64),
            11 | 19 => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// The architecture of iPXE's `${buildarch}` (`i386` for `undionly.kpxe`, `x86_64`,
    /// `arm64`), or of its lab.yaml name.
    pub fn from_name(name: &str) -> Option<Arch> {
        match name {
            "x86_64" | "i386" | "amd64" | "x86" => Some(Arch::X86_64),
            "aarch64" | "arm64" => Some(Arch::Aarch64),
            _ => None,
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `boot.arch.<arch>:`: what a node of that architecture boots instead of `boot:`'s
/// kernel, initramfs and modloop (the command line and `assets_dir` are shared).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchBoot {
    /// Kernel file name inside `boot.assets_dir` (e.g. `vmlinuz-lts-aarch64`).
    pub kernel: String,
    /// Initramfs file names, loaded in order.
    #[serde(default)]
    pub initrds: Vec<String>,
    /// Modloop file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modloop: Option<String>,
    /// Folder of device trees inside `assets_dir` (a Pi's firmware loads its
    /// `bcm2711-rpi-4-b.dtb` from there when the firmware tree has none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtbs: Option<String>,
}

/// How a machine's firmware booted it this time, from what it said on DHCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BootPath {
    /// A PC BIOS PXE ROM (option 93 = 0).
    BiosPxe,
    /// UEFI PXE (option 93 = 6, 7, 9, 11).
    UefiPxe,
    /// UEFI HTTP boot (option 93 = 15, 16, 18, 19, or vendor class `HTTPClient`).
    UefiHttp,
    /// iPXE itself (option 77 `iPXE` or option 175).
    Ipxe,
    /// A Raspberry Pi's EEPROM bootloader (a Pi MAC sending option 93 = 0).
    PiBootloader,
}

impl BootPath {
    /// The boot path of a DHCP request from `mac` with option 93 `arch`, vendor class
    /// `class`, and iPXE's marker.
    pub fn of(
        mac: &crate::mac::Mac,
        arch: Option<u16>,
        class: Option<&str>,
        ipxe: bool,
    ) -> BootPath {
        if ipxe {
            return BootPath::Ipxe;
        }
        let http = class.is_some_and(|c| c.starts_with("HTTPClient"));
        match arch.unwrap_or(0) {
            _ if http => BootPath::UefiHttp,
            15 | 16 | 18 | 19 => BootPath::UefiHttp,
            0 if mac.is_raspberry_pi() => BootPath::PiBootloader,
            0 => BootPath::BiosPxe,
            _ => BootPath::UefiPxe,
        }
    }

    /// How it is shown (`BIOS PXE`, `Pi bootloader`).
    pub fn label(self) -> &'static str {
        match self {
            BootPath::BiosPxe => "BIOS PXE",
            BootPath::UefiPxe => "UEFI PXE",
            BootPath::UefiHttp => "UEFI HTTP",
            BootPath::Ipxe => "iPXE",
            BootPath::PiBootloader => "Pi bootloader",
        }
    }

    /// The CPU architecture this path implies, if it implies one.
    pub fn arch(self, option93: Option<u16>) -> Option<Arch> {
        match self {
            BootPath::PiBootloader => Some(Arch::Aarch64),
            _ => option93.and_then(Arch::from_client_arch),
        }
    }
}

/// The `pi:` section: Raspberry Pi 4 / CM4 boards that netboot from their EEPROM
/// bootloader (no SD card, no iPXE). pxelab answers their DHCP with the options the
/// bootloader reads and serves their firmware tree over TFTP, with `cmdline.txt` and
/// `config.txt` rendered per node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PiSection {
    /// The firmware tree (`start4.elf`, `fixup4.dat`, `bcm2711-rpi-4-b.dtb`, `overlays/`),
    /// relative to lab.yaml. A folder named by a board's serial number inside it
    /// (`1234abcd/`) is served to that board first, the shared root after.
    pub firmware: PathBuf,
    /// Extra lines for every Pi's rendered `config.txt` (after pxelab's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_extra: Option<String>,
}
