//! The node state machine: where a machine is in the boot chain.
//!
//! States only move forward during one boot ([`transition`]); failure is sticky until
//! the next boot. What starts a new boot is decided apart ([`new_boot`]): a machine
//! that powers on again says so at its firmware's first DHCPDISCOVER, and that firmware
//! may itself be iPXE (QEMU's ROM, NICs flashed with iPXE), so "iPXE is talking" does
//! not mean "same boot as before". The order of the enum is the order of the boot
//! chain, so the TUI can show progress as "step k of n".

use serde::{Deserialize, Serialize};

use super::event::{CloudPhase, EventKind, FetchKind, K3sStep};

/// Where a node is in its boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NodeState {
    /// Listed in lab.yaml, nothing seen yet this run.
    Idle,
    /// Seen on DHCP (PXE ROM).
    Discovered,
    /// Unknown MAC waiting in the iPXE loop for adoption.
    Held,
    /// Adopted; will boot at its next ask.
    Adopted,
    /// pxelab sent it a DHCP offer with boot information.
    Offered,
    /// The iPXE binary was fetched over TFTP, or iPXE asked DHCP.
    IpxeLoaded,
    /// Its iPXE script was served.
    ScriptServed,
    /// Its kernel was fetched.
    Kernel,
    /// Its initramfs was fetched.
    Initrd,
    /// It fetched its NoCloud data (tiny-cloud boot phase).
    ConfigFetched,
    /// pxelab logged in over SSH with the pinned host key.
    SshUp,
    /// tiny-cloud is running (see the phase in the node record).
    TinyCloud,
    /// tiny-cloud bootstrap complete.
    Bootstrapped,
    /// k3s started on it.
    K3sStarting,
    /// k3s server up / agent joined.
    Joined,
    /// Ready, seen from the k3s server.
    Ready,
    /// Something failed; see the node's failure line.
    Failed,
}

impl NodeState {
    /// A one-character glyph for tables.
    pub fn glyph(&self) -> &'static str {
        match self {
            NodeState::Idle => "·",
            NodeState::Discovered => "?",
            NodeState::Held => "⏸",
            NodeState::Adopted => "+",
            NodeState::Offered
            | NodeState::IpxeLoaded
            | NodeState::ScriptServed
            | NodeState::Kernel
            | NodeState::Initrd => "↓",
            NodeState::ConfigFetched | NodeState::SshUp | NodeState::TinyCloud => "⚙",
            NodeState::Bootstrapped | NodeState::K3sStarting | NodeState::Joined => "◐",
            NodeState::Ready => "●",
            NodeState::Failed => "✗",
        }
    }

    /// The kebab-case name (`script-served`).
    pub fn name(&self) -> &'static str {
        match self {
            NodeState::Idle => "idle",
            NodeState::Discovered => "discovered",
            NodeState::Held => "held",
            NodeState::Adopted => "adopted",
            NodeState::Offered => "offered",
            NodeState::IpxeLoaded => "ipxe-loaded",
            NodeState::ScriptServed => "script-served",
            NodeState::Kernel => "kernel",
            NodeState::Initrd => "initrd",
            NodeState::ConfigFetched => "config-fetched",
            NodeState::SshUp => "ssh-up",
            NodeState::TinyCloud => "tiny-cloud",
            NodeState::Bootstrapped => "bootstrapped",
            NodeState::K3sStarting => "k3s-starting",
            NodeState::Joined => "joined",
            NodeState::Ready => "ready",
            NodeState::Failed => "failed",
        }
    }

    /// Every state, in boot-chain order.
    pub const ALL: [NodeState; 17] = [
        NodeState::Idle,
        NodeState::Discovered,
        NodeState::Held,
        NodeState::Adopted,
        NodeState::Offered,
        NodeState::IpxeLoaded,
        NodeState::ScriptServed,
        NodeState::Kernel,
        NodeState::Initrd,
        NodeState::ConfigFetched,
        NodeState::SshUp,
        NodeState::TinyCloud,
        NodeState::Bootstrapped,
        NodeState::K3sStarting,
        NodeState::Joined,
        NodeState::Ready,
        NodeState::Failed,
    ];
}

/// What an event does to a node's state: `Some(new)` to move, `None` to stay.
///
/// `current` matters only for the "forward only" rule and the new-boot rule.
pub fn transition(current: NodeState, kind: &EventKind) -> Option<NodeState> {
    use NodeState as S;
    let target = match kind {
        EventKind::DhcpDiscover { ipxe: true, .. } => S::IpxeLoaded,
        EventKind::DhcpDiscover { ipxe: false, .. } if is_firmware_discover(kind) => S::Discovered,
        EventKind::DhcpReply { boot_file, .. } if boot_file.is_some() => S::Offered,
        EventKind::TftpEnd { outcome, .. }
            if *outcome == super::event::TransferOutcome::Complete =>
        {
            S::IpxeLoaded
        }
        EventKind::NodeHeld => return (current != S::Held).then_some(S::Held),
        EventKind::NodeAdopted { .. } => return Some(S::Adopted),
        EventKind::HttpFetch { what, status, .. } if (200..300).contains(status) => match what {
            FetchKind::Script => S::ScriptServed,
            FetchKind::Ipxe => S::IpxeLoaded,
            FetchKind::Kernel => S::Kernel,
            FetchKind::Initrd => S::Initrd,
            FetchKind::MetaData
            | FetchKind::UserData
            | FetchKind::VendorData
            | FetchKind::NetworkConfig => S::ConfigFetched,
            _ => return None,
        },
        EventKind::SshUp { .. } => S::SshUp,
        EventKind::TinyCloud { .. } => S::TinyCloud,
        EventKind::TinyCloudComplete => S::Bootstrapped,
        EventKind::K3s { step } => match step {
            K3sStep::Starting { .. } | K3sStep::Connecting { .. } | K3sStep::ApiUp => {
                S::K3sStarting
            }
            K3sStep::ServerUp | K3sStep::Connected | K3sStep::Joined => S::Joined,
            K3sStep::Ready => S::Ready,
            K3sStep::NotReady => return (current == S::Ready).then_some(S::Joined),
        },
        EventKind::NodeFailed { .. }
        | EventKind::CloudFailed { .. }
        | EventKind::HostKeyMismatch { .. } => return Some(S::Failed),
        _ => return None,
    };
    if current == S::Failed || target <= current {
        None
    } else {
        Some(target)
    }
}

/// Whether `kind` is boot firmware's DHCPDISCOVER: a PXE ROM, UEFI HTTP boot or iPXE
/// (option 60 `PXEClient`/`HTTPClient`; iPXE sends `PXEClient` too). The kernel's own
/// `ip=dhcp` (udhcpc) and the node's later renewals carry another class or none.
fn is_firmware_discover(kind: &EventKind) -> bool {
    matches!(kind, EventKind::DhcpDiscover {
            msg,
            vendor_class,
            pxe_port: false,
            ..
        } if msg == "discover"
            && vendor_class
                .as_deref()
                .is_some_and(|v| v.starts_with("PXEClient") || v.starts_with("HTTPClient")))
}

/// Whether an event starts a new boot of a machine now in `current`, and the state the
/// new boot starts in. `None`: the event belongs to the boot under way.
///
/// - Firmware that is not iPXE asking DHCP: new unless the boot has not got past the
///   offer yet (a retransmitted DISCOVER is the same boot).
/// - iPXE asking DHCP: new once the machine is past loading iPXE. A chainloaded iPXE
///   asks right after its TFTP download (`ipxe-loaded`: same boot); iPXE as firmware
///   asks first thing after a power cycle, when the last boot had got further.
/// - A boot script fetched by a machine already past its kernel: it booted again
///   without pxelab seeing its DHCP (`dhcp.mode: off`, another server's DHCP).
///
/// Held and adopted machines are between boots already: their next step is their boot.
pub fn new_boot(current: NodeState, kind: &EventKind) -> Option<NodeState> {
    use NodeState as S;
    if matches!(current, S::Idle | S::Held | S::Adopted) {
        return None;
    }
    match kind {
        EventKind::DhcpDiscover { ipxe: false, .. } if is_firmware_discover(kind) => {
            (current > S::Offered).then_some(S::Discovered)
        }
        EventKind::DhcpDiscover { ipxe: true, .. } if is_firmware_discover(kind) => {
            (current > S::IpxeLoaded).then_some(S::IpxeLoaded)
        }
        EventKind::HttpFetch {
            what: FetchKind::Script,
            status,
            ..
        } if (200..300).contains(status) => (current > S::Kernel).then_some(S::ScriptServed),
        _ => None,
    }
}

/// The steps of a boot as shown in a node's timeline, with the state that ends each.
pub const STEPS: [(&str, NodeState); 13] = [
    ("DHCP", NodeState::Offered),
    ("iPXE", NodeState::IpxeLoaded),
    ("script", NodeState::ScriptServed),
    ("kernel", NodeState::Kernel),
    ("initrd", NodeState::Initrd),
    ("NoCloud", NodeState::ConfigFetched),
    ("SSH", NodeState::SshUp),
    ("tiny-cloud", NodeState::TinyCloud),
    ("bootstrap", NodeState::Bootstrapped),
    ("k3s", NodeState::K3sStarting),
    ("joined", NodeState::Joined),
    ("Ready", NodeState::Ready),
    ("failed", NodeState::Failed),
];

/// The tiny-cloud phase an event reports, if any.
pub fn cloud_phase(kind: &EventKind) -> Option<CloudPhase> {
    match kind {
        EventKind::TinyCloud { phase, .. } | EventKind::CloudFailed { phase, .. } => Some(*phase),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::event::TransferOutcome;

    fn fetch(what: FetchKind, status: u16) -> EventKind {
        EventKind::HttpFetch {
            path: "/x".into(),
            client: "127.0.0.1".parse().unwrap(),
            what,
            status,
            bytes: 1,
            ms: 1,
        }
    }

    #[test]
    fn moves_forward_along_the_chain() {
        let mut s = NodeState::Idle;
        let chain = [
            EventKind::DhcpReply {
                msg: "offer".into(),
                yiaddr: None,
                boot_file: Some("undionly.kpxe".into()),
                proxy: true,
            },
            EventKind::TftpEnd {
                file: "undionly.kpxe".into(),
                client: "127.0.0.1:1000".parse().unwrap(),
                bytes: 1,
                ms: 1,
                outcome: TransferOutcome::Complete,
                detail: None,
            },
            fetch(FetchKind::Script, 200),
            fetch(FetchKind::Kernel, 200),
            fetch(FetchKind::Initrd, 206),
            fetch(FetchKind::MetaData, 200),
            fetch(FetchKind::UserData, 200),
            EventKind::TinyCloudComplete,
            EventKind::K3s {
                step: K3sStep::Ready,
            },
        ];
        for e in &chain {
            if let Some(n) = transition(s, e) {
                s = n;
            }
        }
        assert_eq!(s, NodeState::Ready);
    }

    #[test]
    fn errors_and_backward_steps_do_not_move() {
        assert_eq!(
            transition(NodeState::Kernel, &fetch(FetchKind::Script, 200)),
            None
        );
        assert_eq!(
            transition(NodeState::Kernel, &fetch(FetchKind::Initrd, 404)),
            None
        );
        assert_eq!(
            transition(
                NodeState::Failed,
                &EventKind::K3s {
                    step: K3sStep::Ready
                }
            ),
            None
        );
    }

    #[test]
    fn a_new_pxe_discover_starts_a_new_boot() {
        let d = EventKind::DhcpDiscover {
            msg: "discover".into(),
            arch: Some(0),
            vendor_class: Some("PXEClient:Arch:00000".into()),
            uuid: None,
            relay: None,
            ipxe: false,
            pxe_port: false,
        };
        assert_eq!(new_boot(NodeState::Ready, &d), Some(NodeState::Discovered));
        assert_eq!(new_boot(NodeState::Failed, &d), Some(NodeState::Discovered));
        assert_eq!(new_boot(NodeState::Held, &d), None);
        // A retransmitted DISCOVER before the boot got anywhere is the same boot.
        assert_eq!(new_boot(NodeState::Offered, &d), None);
        assert_eq!(transition(NodeState::Idle, &d), Some(NodeState::Discovered));
    }

    fn ipxe_discover(vendor_class: Option<&str>) -> EventKind {
        EventKind::DhcpDiscover {
            msg: "discover".into(),
            arch: Some(0),
            vendor_class: vendor_class.map(String::from),
            uuid: None,
            relay: None,
            ipxe: true,
            pxe_port: false,
        }
    }

    #[test]
    fn ipxe_as_firmware_starts_a_new_boot_once_past_loading_ipxe() {
        let d = ipxe_discover(Some("PXEClient:Arch:00000:UNDI:002001"));
        // Chainloaded iPXE right after its TFTP download: the same boot.
        assert_eq!(new_boot(NodeState::IpxeLoaded, &d), None);
        assert_eq!(new_boot(NodeState::Offered, &d), None);
        // QEMU's ROM after a power cycle of a joined or failed node: a new boot.
        for s in [
            NodeState::ScriptServed,
            NodeState::Kernel,
            NodeState::Joined,
            NodeState::Ready,
            NodeState::Failed,
        ] {
            assert_eq!(new_boot(s, &d), Some(NodeState::IpxeLoaded), "{s:?}");
        }
        // The kernel's udhcpc (another class) and held machines never start one.
        assert_eq!(
            new_boot(NodeState::Ready, &ipxe_discover(Some("udhcp 1.35.0"))),
            None
        );
        assert_eq!(new_boot(NodeState::Held, &d), None);
    }

    #[test]
    fn a_boot_script_after_the_kernel_starts_a_new_boot() {
        let s = fetch(FetchKind::Script, 200);
        assert_eq!(new_boot(NodeState::Kernel, &s), None);
        assert_eq!(
            new_boot(NodeState::Initrd, &s),
            Some(NodeState::ScriptServed)
        );
        assert_eq!(
            new_boot(NodeState::Ready, &s),
            Some(NodeState::ScriptServed)
        );
        assert_eq!(
            new_boot(NodeState::Ready, &fetch(FetchKind::Script, 404)),
            None
        );
        assert_eq!(
            new_boot(NodeState::Ready, &fetch(FetchKind::Kernel, 200)),
            None
        );
    }
}
