//! Which boot file a client gets, from what its firmware says about itself.
//!
//! | client                                   | gets                                        |
//! |------------------------------------------|---------------------------------------------|
//! | iPXE (option 77 `iPXE` or 175 present)   | `http://SERVER:PORT/boot.ipxe?mac=MAC`      |
//! | option 93 = 0 (x86 BIOS) or absent       | `undionly.kpxe` over TFTP                   |
//! | option 93 = 7 or 9 (x64 UEFI)            | `ipxe.efi` (`snponly.efi` with `dhcp.snponly`) |
//! | option 93 = 11 (arm64 UEFI)              | `dhcp.arm64_binary` when configured         |
//! | option 93 = 16 (x64 UEFI HTTP boot)      | `http://SERVER:PORT/ipxe/ipxe.efi`, 60 = `HTTPClient` |
//! | option 93 = 19 (arm64 UEFI HTTP boot)    | `http://SERVER:PORT/ipxe/<arm64_binary>`    |
//! | a Pi MAC, option 93 = 0, with `pi:`      | `start4.elf` (the Pi bootloader reads options 43 and 66, then its firmware over TFTP) |
//! | anything else                            | nothing (dropped and counted)               |
//!
//! An iPXE client never gets the iPXE binary again, or it would chainload forever. The
//! hold policy needs no special file: a held iPXE client fetches `boot.ipxe` like any
//! other, and the HTTP server answers it with the wait loop.

use crate::config::Lab;
use crate::mac::Mac;

use super::request::Request;

pub use crate::mac::PI_OUIS;

/// Whether the MAC belongs to a Raspberry Pi.
pub fn is_raspberry_pi(mac: &Mac) -> bool {
    mac.is_raspberry_pi()
}

/// What the client should load next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootTarget {
    /// A TFTP file name (relative to the TFTP root) or a full HTTP URL.
    pub file: String,
    /// Option 60 to echo: `PXEClient`, `HTTPClient`, or none (plain DHCP iPXE).
    pub class: Option<&'static str>,
    /// The client is iPXE (gets option 175.176 in server mode).
    pub ipxe: bool,
    /// Firmware PXE (not iPXE): send option 43 {6: 8} so it skips boot-server discovery.
    pub pxe_discovery_control: bool,
    /// A Raspberry Pi: option 66 and the Pi's option 43 sub-options.
    pub raspberry_pi: bool,
    /// A Pi's EEPROM bootloader netbooting natively (`pi:`): no iPXE, so a held one
    /// gets no answer at all (its bootloader asks again) until it is adopted.
    pub pi_bootloader: bool,
}

/// What a Pi bootloader is named as its boot file (it loads `start4.elf` anyway).
pub const PI_BOOT_FILE: &str = "start4.elf";

/// Why a client gets no boot file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoBootFile {
    /// The client did not identify as PXE, HTTP boot or iPXE.
    #[error("not a PXE, HTTP-boot or iPXE client")]
    NotPxe,
    /// No iPXE binary is known for this architecture.
    #[error("no iPXE binary for client architecture {0}")]
    Arch(u16),
}

/// The script URL an iPXE client gets.
pub fn script_url(lab: &Lab, mac: &Mac) -> String {
    format!("{}/boot.ipxe?mac={mac}", lab.http_base())
}

/// The iPXE binary (TFTP name) for a firmware architecture, if there is one.
pub fn binary_for_arch(lab: &Lab, arch: u16) -> Option<String> {
    let d = &lab.file.dhcp;
    match arch {
        0 => Some("undionly.kpxe".to_string()),
        7 | 9 | 16 => Some(if d.snponly { "snponly.efi" } else { "ipxe.efi" }.to_string()),
        11 | 19 => d.arm64_binary.clone(),
        _ => None,
    }
}

/// Chooses the boot target for a request (pure: the policy decision is made elsewhere).
pub fn select(lab: &Lab, req: &Request) -> Result<BootTarget, NoBootFile> {
    let pi = is_raspberry_pi(&req.mac);
    let pxe = req.is_pxe_client();
    let http = req.is_http_client();
    if req.is_ipxe() {
        return Ok(BootTarget {
            file: script_url(lab, &req.mac),
            class: (pxe || http).then_some(if http { "HTTPClient" } else { "PXEClient" }),
            ipxe: true,
            pxe_discovery_control: false,
            raspberry_pi: pi,
            pi_bootloader: false,
        });
    }
    if !pxe && !http {
        return Err(NoBootFile::NotPxe);
    }
    let arch = req.arch().unwrap_or(0);
    if pi && arch == 0 && pxe && lab.file.pi.is_some() {
        return Ok(BootTarget {
            file: PI_BOOT_FILE.to_string(),
            class: Some("PXEClient"),
            ipxe: false,
            pxe_discovery_control: true,
            raspberry_pi: true,
            pi_bootloader: true,
        });
    }
    let bin = binary_for_arch(lab, arch).ok_or(NoBootFile::Arch(arch))?;
    if http || matches!(arch, 15 | 16 | 18 | 19) {
        // UEFI HTTP boot: the firmware downloads the EFI binary itself, over HTTP.
        if !matches!(arch, 16 | 19) {
            return Err(NoBootFile::Arch(arch));
        }
        return Ok(BootTarget {
            file: format!("{}/ipxe/{bin}", lab.http_base()),
            class: Some("HTTPClient"),
            ipxe: false,
            pxe_discovery_control: false,
            raspberry_pi: pi,
            pi_bootloader: false,
        });
    }
    Ok(BootTarget {
        file: bin,
        class: Some("PXEClient"),
        ipxe: false,
        pxe_discovery_control: true,
        raspberry_pi: pi,
        pi_bootloader: false,
    })
}

#[cfg(test)]
mod tests {
    use super::super::request::{parse, tests::build};
    use super::*;

    fn lab(extra: &str) -> Lab {
        let text = format!(
            "name: t\nserver_address: 10.0.0.1\nhttp: {{port: 8080}}\nboot: {{kernel: k}}\n{extra}"
        );
        Lab::parse(std::path::Path::new("/tmp/lab.yaml"), &text).unwrap()
    }

    fn req(
        mac: [u8; 6],
        class: Option<&[u8]>,
        arch: Option<u16>,
        ipxe: Option<(u8, &[u8])>,
    ) -> Request {
        let a;
        let mut opts: Vec<(u8, &[u8])> = vec![(53, &[1])];
        if let Some(c) = class {
            opts.push((60, c));
        }
        if let Some(x) = arch {
            a = x.to_be_bytes();
            opts.push((93, &a));
        }
        if let Some(o) = ipxe {
            opts.push(o);
        }
        parse(&build(mac, &opts)).unwrap()
    }

    const MAC: [u8; 6] = [0x52, 0x54, 0, 0xaa, 0xbb, 0xcc];
    const URL: &str = "http://10.0.0.1:8080/boot.ipxe?mac=52:54:00:aa:bb:cc";

    /// Every option 93 value and iPXE marker → expected file or URL (None: no answer).
    #[test]
    fn table() {
        let pxe: &[u8] = b"PXEClient:Arch:00000:UNDI:002001";
        let httpc: &[u8] = b"HTTPClient:Arch:00016:UNDI:003000";
        let plain = lab("");
        let snp = lab("dhcp: {snponly: true, arm64_binary: arm64/ipxe.efi}\n");
        type Row<'a> = (
            &'a Lab,
            Option<&'a [u8]>,
            Option<u16>,
            Option<(u8, &'a [u8])>,
            Option<&'a str>,
            Option<&'a str>,
        );
        let rows: Vec<Row> = vec![
            (
                &plain,
                Some(pxe),
                None,
                None,
                Some("undionly.kpxe"),
                Some("PXEClient"),
            ),
            (
                &plain,
                Some(pxe),
                Some(0),
                None,
                Some("undionly.kpxe"),
                Some("PXEClient"),
            ),
            (&plain, Some(pxe), Some(6), None, None, None),
            (
                &plain,
                Some(pxe),
                Some(7),
                None,
                Some("ipxe.efi"),
                Some("PXEClient"),
            ),
            (
                &plain,
                Some(pxe),
                Some(9),
                None,
                Some("ipxe.efi"),
                Some("PXEClient"),
            ),
            (
                &snp,
                Some(pxe),
                Some(7),
                None,
                Some("snponly.efi"),
                Some("PXEClient"),
            ),
            (
                &snp,
                Some(pxe),
                Some(9),
                None,
                Some("snponly.efi"),
                Some("PXEClient"),
            ),
            (&plain, Some(pxe), Some(10), None, None, None),
            (&plain, Some(pxe), Some(11), None, None, None),
            (
                &snp,
                Some(pxe),
                Some(11),
                None,
                Some("arm64/ipxe.efi"),
                Some("PXEClient"),
            ),
            (&plain, Some(httpc), Some(15), None, None, None),
            (
                &plain,
                Some(httpc),
                Some(16),
                None,
                Some("http://10.0.0.1:8080/ipxe/ipxe.efi"),
                Some("HTTPClient"),
            ),
            (
                &snp,
                Some(httpc),
                Some(16),
                None,
                Some("http://10.0.0.1:8080/ipxe/snponly.efi"),
                Some("HTTPClient"),
            ),
            (&plain, Some(httpc), Some(18), None, None, None),
            (&plain, Some(httpc), Some(19), None, None, None),
            (
                &snp,
                Some(httpc),
                Some(19),
                None,
                Some("http://10.0.0.1:8080/ipxe/arm64/ipxe.efi"),
                Some("HTTPClient"),
            ),
            (&plain, Some(pxe), Some(21), None, None, None),
            (&plain, Some(pxe), Some(22), None, None, None),
            (&plain, Some(pxe), Some(0xffff), None, None, None),
            // iPXE: whatever the architecture, the script URL, never the binary again.
            (
                &plain,
                Some(pxe),
                Some(0),
                Some((77, b"iPXE")),
                Some(URL),
                Some("PXEClient"),
            ),
            (
                &plain,
                Some(pxe),
                Some(7),
                Some((77, b"iPXE")),
                Some(URL),
                Some("PXEClient"),
            ),
            (
                &plain,
                Some(pxe),
                Some(9),
                Some((175, &[0x13, 1, 1])),
                Some(URL),
                Some("PXEClient"),
            ),
            (
                &plain,
                Some(pxe),
                Some(6),
                Some((175, &[0x13, 1, 1])),
                Some(URL),
                Some("PXEClient"),
            ),
            (&plain, None, None, Some((77, b"iPXE")), Some(URL), None),
            (&plain, None, None, Some((77, b"\x04iPXE")), Some(URL), None),
            // Not PXE at all: nothing.
            (&plain, None, Some(0), None, None, None),
            (&plain, Some(b"udhcp 1.35.0"), None, None, None, None),
            (
                &plain,
                Some(b"PXEClient"),
                None,
                Some((77, b"gPXE")),
                Some("undionly.kpxe"),
                Some("PXEClient"),
            ),
        ];
        for (i, (lab, class, arch, marker, want, want_class)) in rows.into_iter().enumerate() {
            let r = req(MAC, class, arch, marker);
            let got = select(lab, &r).ok();
            assert_eq!(got.as_ref().map(|t| t.file.as_str()), want, "row {i}");
            assert_eq!(got.as_ref().and_then(|t| t.class), want_class, "row {i}");
            if let Some(t) = got {
                assert_eq!(t.ipxe, marker.is_some_and(|(_, v)| v != b"gPXE"), "row {i}");
                assert_eq!(
                    t.pxe_discovery_control,
                    !t.ipxe && t.class == Some("PXEClient"),
                    "row {i}"
                );
            }
        }
    }

    #[test]
    fn pi_bootloader_gets_start4_only_with_pi_configured() {
        let pxe: &[u8] = b"PXEClient:Arch:00000:UNDI:002001";
        let pi = [0xdc, 0xa6, 0x32, 1, 2, 3];
        let with = lab("pi: {firmware: pifw}\n");
        let t = select(&with, &req(pi, Some(pxe), Some(0), None)).unwrap();
        assert_eq!((t.file.as_str(), t.pi_bootloader), (PI_BOOT_FILE, true));
        // Without `pi:`, as before: iPXE for the Pi's PXE ROM.
        let t = select(&lab(""), &req(pi, Some(pxe), Some(0), None)).unwrap();
        assert_eq!((t.file.as_str(), t.pi_bootloader), ("undionly.kpxe", false));
        // A Pi with UEFI firmware (arch 11) and a PC: unchanged.
        let uefi = lab("pi: {firmware: pifw}\ndhcp: {arm64_binary: arm64/ipxe.efi}\n");
        let t = select(&uefi, &req(pi, Some(pxe), Some(11), None)).unwrap();
        assert_eq!(
            (t.file.as_str(), t.pi_bootloader),
            ("arm64/ipxe.efi", false)
        );
        let t = select(&with, &req(MAC, Some(pxe), Some(0), None)).unwrap();
        assert_eq!(t.file, "undionly.kpxe");
    }

    #[test]
    fn raspberry_pi_is_recognised() {
        let pxe: &[u8] = b"PXEClient:Arch:00000:UNDI:002001";
        for oui in PI_OUIS {
            let r = req([oui[0], oui[1], oui[2], 1, 2, 3], Some(pxe), Some(0), None);
            assert!(select(&lab(""), &r).unwrap().raspberry_pi);
        }
        let r = req(MAC, Some(pxe), Some(0), None);
        assert!(!select(&lab(""), &r).unwrap().raspberry_pi);
    }
}
