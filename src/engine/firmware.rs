//! What a machine's firmware shows of itself: its boot path (BIOS PXE, UEFI PXE, UEFI
//! HTTP, iPXE, Pi bootloader) and CPU architecture, learnt from DHCP and iPXE, and the
//! architecture a listed node boots as when lab.yaml leaves it open.
//!
//! Why apart from the inventory: one concern, read by the boot policy too
//! ([`with_observed_arch`]), so the profile a node gets and the one its record shows
//! cannot disagree.

use super::event::EventKind;
use super::inventory::{Inventory, NodeRecord};
use crate::config::{BootPath, Lab, NodeEntry};

impl NodeRecord {
    /// What DHCP, iPXE and the Pi bootloader say about the machine's firmware. The
    /// path is the firmware's (iPXE chainloaded by a PXE ROM stays a BIOS or UEFI PXE
    /// boot); `iPXE` when iPXE is all pxelab has seen (a NIC or VM ROM that is iPXE).
    ///
    /// The booted system's own DHCP client (udhcpc, dhclient: no option 93, no
    /// `PXEClient`/`HTTPClient` class, not iPXE) says nothing about the firmware, so it
    /// never overwrites what the firmware said: without this an arm64 UEFI node showed
    /// "BIOS PXE" once its initramfs asked for its address.
    pub(super) fn learn_firmware(&mut self, kind: &EventKind) {
        match kind {
            EventKind::DhcpDiscover {
                arch,
                vendor_class,
                ipxe,
                ..
            } => {
                let firmware = arch.is_some()
                    || *ipxe
                    || vendor_class
                        .as_deref()
                        .is_some_and(|c| c.starts_with("PXEClient") || c.starts_with("HTTPClient"));
                if !firmware && self.boot_path.is_some() {
                    return;
                }
                if let Some(a) = arch {
                    self.arch = Some(*a);
                }
                let path = BootPath::of(&self.mac, *arch, vendor_class.as_deref(), *ipxe);
                if !*ipxe || self.boot_path.is_none() {
                    self.boot_path = Some(path);
                }
                if let Some(c) = path.arch(*arch) {
                    self.cpu = Some(c);
                }
            }
            EventKind::ArchSeen { arch, .. } => self.cpu = Some(*arch),
            _ => {}
        }
    }
}

/// `node` with the architecture its firmware showed, when lab.yaml gives it none
/// (see [`crate::render::files`]).
pub(super) fn with_observed_arch(lab: &Lab, inv: &Inventory, node: &NodeEntry) -> NodeEntry {
    let mut n = node.clone();
    if crate::render::files::configured_arch(lab, &n).is_none() {
        n.arch = inv.get(&n.mac).and_then(|r| r.cpu);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::super::event::Event;
    use super::*;
    use crate::config::Arch;

    fn discover(arch: u16, class: &str, ipxe: bool) -> EventKind {
        EventKind::DhcpDiscover {
            msg: "discover".into(),
            arch: Some(arch),
            vendor_class: Some(class.into()),
            uuid: None,
            relay: None,
            ipxe,
            pxe_port: false,
        }
    }

    fn seen(mac: &str, kinds: &[EventKind]) -> NodeRecord {
        let mac = mac.parse().unwrap();
        let mut r = NodeRecord::new(mac);
        for (i, k) in kinds.iter().enumerate() {
            r.apply(&Event {
                seq: i as u64,
                at_ms: 1000 + i as u64,
                mac: Some(mac),
                hostname: None,
                kind: k.clone(),
            });
        }
        r
    }

    #[test]
    fn boot_path_and_cpu_from_what_the_firmware_says() {
        const PXE: &str = "PXEClient:Arch:00000:UNDI:002001";
        let cases = [
            ("52:54:00:00:00:01", 0, PXE, BootPath::BiosPxe, Arch::X86_64),
            (
                "52:54:00:00:00:01",
                7,
                "PXEClient:Arch:00007",
                BootPath::UefiPxe,
                Arch::X86_64,
            ),
            (
                "52:54:00:00:00:01",
                11,
                "PXEClient:Arch:00011",
                BootPath::UefiPxe,
                Arch::Aarch64,
            ),
            (
                "52:54:00:00:00:01",
                19,
                "HTTPClient:Arch:00019",
                BootPath::UefiHttp,
                Arch::Aarch64,
            ),
            (
                "dc:a6:32:01:02:03",
                0,
                PXE,
                BootPath::PiBootloader,
                Arch::Aarch64,
            ),
        ];
        for (mac, arch, class, path, cpu) in cases {
            let r = seen(mac, &[discover(arch, class, false)]);
            assert_eq!(
                (r.boot_path, r.cpu),
                (Some(path), Some(cpu)),
                "{mac} {arch}"
            );
        }
        // iPXE chainloaded by a BIOS ROM stays a BIOS PXE boot; iPXE alone is iPXE;
        // iPXE's ${buildarch} overrides the architecture.
        let r = seen(
            "52:54:00:00:00:01",
            &[discover(0, PXE, false), discover(0, PXE, true)],
        );
        assert_eq!(r.boot_path, Some(BootPath::BiosPxe));
        let r = seen(
            "52:54:00:00:00:01",
            &[
                discover(7, PXE, true),
                EventKind::ArchSeen {
                    arch: Arch::Aarch64,
                    from: "ipxe".into(),
                },
            ],
        );
        assert_eq!(
            (r.boot_path, r.cpu),
            (Some(BootPath::Ipxe), Some(Arch::Aarch64))
        );
    }

    /// The booted system's DHCP client (udhcpc: no option 93, its own vendor class)
    /// after an arm64 UEFI PXE boot: the record keeps what the firmware said.
    #[test]
    fn the_booted_systems_dhcp_client_does_not_overwrite_the_firmware() {
        let udhcpc = EventKind::DhcpDiscover {
            msg: "discover".into(),
            arch: None,
            vendor_class: Some("udhcp 1.35.0".into()),
            uuid: None,
            relay: None,
            ipxe: false,
            pxe_port: false,
        };
        let r = seen(
            "52:54:00:a6:00:20",
            &[
                discover(11, "PXEClient:Arch:00011:UNDI:003000", false),
                discover(11, "PXEClient:Arch:00011:UNDI:003000", true),
                EventKind::ArchSeen {
                    arch: Arch::Aarch64,
                    from: "ipxe".into(),
                },
                udhcpc.clone(),
            ],
        );
        assert_eq!(
            (r.boot_path, r.cpu, r.arch),
            (Some(BootPath::UefiPxe), Some(Arch::Aarch64), Some(11))
        );
        // Nothing seen before it: the OS's request is all there is, as it always was.
        let r = seen("52:54:00:a6:00:21", &[udhcpc]);
        assert_eq!((r.boot_path, r.cpu), (Some(BootPath::BiosPxe), None));
        // The firmware of the next power-on is heard again (a BIOS PXE ROM this time).
        let r = seen(
            "52:54:00:a6:00:22",
            &[
                discover(11, "PXEClient:Arch:00011", false),
                discover(0, "PXEClient:Arch:00000:UNDI:002001", false),
            ],
        );
        assert_eq!(r.boot_path, Some(BootPath::BiosPxe));
    }
}
