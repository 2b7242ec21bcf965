//! The shape of lab.yaml, as deserialised by `yaml_serde`.
//!
//! These are the *wire* types: what a person writes. `deny_unknown_fields` everywhere so
//! that a typo (`hostnmae:`) is an error naming file:line:col instead of a silently
//! ignored key. Defaults are chosen so the smallest useful lab.yaml is a name, boot
//! assets and a list of nodes.
//!
//! One file per part of the file: [`dhcp`], the other [`servers`], what [`nodes`] run
//! (boot, roles, k3s, ssh, the node list) and the [`policy`] for unknown machines.

mod dhcp;
mod nodes;
mod policy;
mod servers;

pub use dhcp::*;
pub use nodes::*;
pub use policy::*;
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
    /// The address nodes reach pxelab at. Detected from `interface` when omitted.
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
    /// The console's colour theme (a name from themes/ or a path).
    #[serde(default)]
    pub theme: Option<String>,
    /// The machines of the lab.
    #[serde(default)]
    pub nodes: Vec<NodeEntry>,
}

/// serde's default for switches that are on unless turned off.
fn yes() -> bool {
    true
}
