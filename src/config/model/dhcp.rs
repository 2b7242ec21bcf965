//! The `dhcp:` section as written.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// DHCP mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DhcpMode {
    /// Answer only PXE clients with boot information; the LAN's server gives addresses.
    #[default]
    Proxy,
    /// Be the only DHCP server of the segment: addresses, reservations and boot info.
    Server,
    /// No DHCP at all (another server points clients at pxelab's TFTP/HTTP).
    Off,
}

/// Whether pxelab sends IPv6 router advertisements (`dhcp.ipv6_ra`), server mode only.
///
/// Why at all: iPXE waits for IPv6 autoconfiguration (~16 s) when no router answers its
/// Router Solicitation; one RA with M=O=0 ends the wait (see [`crate::net::ra`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ipv6Ra {
    /// In server mode on an interface, unless another router already advertises there.
    #[default]
    Auto,
    /// In server mode on an interface, even beside another router.
    On,
    /// Never.
    Off,
}

/// The `dhcp:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DhcpSection {
    /// proxy | server | off.
    #[serde(default)]
    pub mode: DhcpMode,
    /// The subnet nodes live in, e.g. `192.168.64.128/27` (server mode).
    #[serde(default)]
    pub subnet: Option<String>,
    /// First and last address of the dynamic range (server mode).
    #[serde(default)]
    pub range: Option<[Ipv4Addr; 2]>,
    /// Lease time, e.g. `12h`, `30m`, `3600` (seconds).
    #[serde(default = "default_lease")]
    pub lease_time: String,
    /// Default gateway handed out (server mode).
    #[serde(default)]
    pub router: Option<Ipv4Addr>,
    /// DNS servers handed out (server mode).
    #[serde(default)]
    pub dns: Vec<Ipv4Addr>,
    /// Domain name handed out (server mode).
    #[serde(default)]
    pub domain: Option<String>,
    /// UDP port for DHCP (67). Only tests and the demo change it.
    #[serde(default = "default_dhcp_port")]
    pub port: u16,
    /// UDP port for PXE boot-server requests (4011).
    #[serde(default = "default_pxe_port")]
    pub pxe_port: u16,
    /// Serve `snponly.efi` instead of `ipxe.efi` to UEFI firmware.
    #[serde(default)]
    pub snponly: bool,
    /// An arm64 iPXE binary (relative to the TFTP root) for option 93 = 11.
    #[serde(default)]
    pub arm64_binary: Option<String>,
    /// Where leases are kept (server mode); default `.pxelab/leases.json` beside lab.yaml.
    #[serde(default)]
    pub leases_file: Option<PathBuf>,
    /// IPv6 router advertisements in server mode: auto | on | off.
    #[serde(default)]
    pub ipv6_ra: Ipv6Ra,
    /// Relay agents (their giaddr) whose relayed requests proxy mode answers. Empty: no
    /// relayed request is answered, since the answer goes to port 67 of whatever address
    /// the request claims as its relay (dnsmasq likewise answers a relay only for a
    /// network it was configured for).
    #[serde(default)]
    pub relays: Vec<Ipv4Addr>,
}

fn default_lease() -> String {
    "12h".to_string()
}
fn default_dhcp_port() -> u16 {
    67
}
fn default_pxe_port() -> u16 {
    4011
}

impl Default for DhcpSection {
    fn default() -> Self {
        DhcpSection {
            mode: DhcpMode::Proxy,
            subnet: None,
            range: None,
            lease_time: default_lease(),
            router: None,
            dns: Vec::new(),
            domain: None,
            port: default_dhcp_port(),
            pxe_port: default_pxe_port(),
            snponly: false,
            arm64_binary: None,
            leases_file: None,
            ipv6_ra: Ipv6Ra::Auto,
            relays: Vec::new(),
        }
    }
}
