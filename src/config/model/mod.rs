//! The shape of lab.yaml, as deserialised by `yaml_serde`.
//!
//! These are the *wire* types: what a person writes. `deny_unknown_fields` everywhere so
//! that a typo (`hostnmae:`) is an error naming file:line:col instead of a silently
//! ignored key. Defaults are chosen so the smallest useful lab.yaml is a name, boot
//! assets and a list of nodes.
//!
//! One file per part of the file: [`dhcp`], the other [`servers`], what [`nodes`] run
//! (boot, roles, k3s, ssh, the node list), the [`policy`] for unknown machines and
//! how [`power`] is switched, and the [`arch`]itectures of a mixed lab.

mod arch;
mod dhcp;
mod nodes;
mod policy;
mod power;
mod servers;

pub use arch::*;
pub use dhcp::*;
pub use nodes::*;
pub use policy::*;
pub use power::*;
pub use servers::*;

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// The whole lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabFile {
    /// A short name shown in the console header and given to templates as `lab`.
    pub name: String,
    /// The interface the boot servers listen on (e.g. `eth0`, `br-lab`).
    #[serde(default)]
    pub interface: Option<String>,
    /// The address nodes reach pxelab at (127.0.0.1 when omitted: a loopback lab). With
    /// `interface`, one of its addresses ([`crate::preflight`] checks it).
    #[serde(default)]
    pub server_address: Option<Ipv4Addr>,
    /// DHCP: proxy beside the LAN's server, full server, or off.
    #[serde(default)]
    pub dhcp: DhcpSection,
    /// TFTP for the iPXE binaries.
    #[serde(default)]
    pub tftp: TftpSection,
    /// HTTP for scripts, assets and NoCloud data.
    #[serde(default)]
    pub http: HttpSection,
    /// Kernel, initramfs, modloop and the kernel command line.
    pub boot: BootSection,
    /// Extra or overridden roles; `k3s-server` and `k3s-agent` are built in.
    #[serde(default)]
    pub roles: BTreeMap<String, RoleSection>,
    /// k3s cluster wiring.
    #[serde(default)]
    pub k3s: K3sSection,
    /// Login user and keys put on every node.
    #[serde(default)]
    pub ssh: SshSection,
    /// The receiver for the nodes' syslog (off unless enabled).
    #[serde(default)]
    pub syslog: SyslogSection,
    /// What to do with a MAC that is not in `nodes`.
    #[serde(default)]
    pub unknown: UnknownPolicy,
    /// How the console suggests hostnames for adopted machines.
    #[serde(default)]
    pub adopt: AdoptSection,
    /// How pxelab powers nodes on, off and around, unless a role or node says otherwise
    /// (see [`PowerSpec`]; default `wol`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<PowerSpec>,
    /// `pxelab up` powers on every node it has not seen yet once its servers listen,
    /// the k3s server first (for boards that stay off when the power comes back).
    #[serde(default)]
    pub wake_on_start: bool,
    /// The console's colour theme (a name from themes/ or a path).
    #[serde(default)]
    pub theme: Option<String>,
    /// Raspberry Pi 4 / CM4 netboot from the EEPROM bootloader (off unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pi: Option<PiSection>,
    /// The machines of the lab.
    #[serde(default)]
    pub nodes: Vec<NodeEntry>,
}

/// serde's default for switches that are on unless turned off.
fn yes() -> bool {
    true
}
