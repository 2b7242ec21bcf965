//! The shape of lab.yaml, as deserialised by `yaml_serde`.
//!
//! These are the *wire* types: what a person writes. `deny_unknown_fields` everywhere so
//! that a typo (`hostnmae:`) is an error naming file:line:col instead of a silently
//! ignored key. Defaults are chosen so the smallest useful lab.yaml is a name, boot
//! assets and a list of nodes.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::mac::Mac;

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

/// The `syslog:` section: a UDP receiver for busybox `syslogd -R`, so a node's log is
/// seen from early boot on, before (or without) SSH. Off by default: it is one more
/// listener on the lab side, and port 514 needs root.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogSection {
    /// Receive syslog, and point the built-in roles' syslogd at it.
    #[serde(default)]
    pub enabled: bool,
    /// UDP port on `server_address` (514 when not set).
    #[serde(default)]
    pub port: Option<u16>,
    /// Add `netconsole=` to the kernel command line, so the kernel's own messages
    /// arrive too (for kernels built with netconsole; Alpine's `lts` has it as a module
    /// and ignores the argument).
    #[serde(default)]
    pub netconsole: bool,
}

impl SyslogSection {
    /// The UDP port.
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(514)
    }
}

/// The `tftp:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TftpSection {
    /// Serve TFTP at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Folder with the iPXE binaries; Debian's `/usr/lib/ipxe` by default.
    #[serde(default = "default_tftp_root")]
    pub root: PathBuf,
    /// UDP port (69). Only tests and the demo change it.
    #[serde(default = "default_tftp_port")]
    pub port: u16,
}

fn yes() -> bool {
    true
}
fn default_tftp_root() -> PathBuf {
    PathBuf::from("/usr/lib/ipxe")
}
fn default_tftp_port() -> u16 {
    69
}

impl Default for TftpSection {
    fn default() -> Self {
        TftpSection {
            enabled: true,
            root: default_tftp_root(),
            port: default_tftp_port(),
        }
    }
}

/// The `http:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// Address to bind; all interfaces by default.
    #[serde(default = "default_bind")]
    pub bind: std::net::IpAddr,
    /// TCP port for boot scripts, assets and NoCloud data.
    #[serde(default = "default_http_port")]
    pub port: u16,
    /// TCP port of the admin API, always on loopback.
    #[serde(default = "default_admin_port")]
    pub admin_port: u16,
}

fn default_bind() -> std::net::IpAddr {
    std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED)
}
fn default_http_port() -> u16 {
    8080
}
fn default_admin_port() -> u16 {
    7480
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            bind: default_bind(),
            port: default_http_port(),
            admin_port: default_admin_port(),
        }
    }
}

/// The `boot:` section: what every node boots unless it overrides it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootSection {
    /// Folder holding the assets, relative to lab.yaml.
    #[serde(default = "default_assets_dir")]
    pub assets_dir: PathBuf,
    /// Kernel file name inside `assets_dir` (e.g. `vmlinuz-lts`).
    pub kernel: String,
    /// Initramfs file names, loaded in order.
    #[serde(default)]
    pub initrds: Vec<String>,
    /// Alpine modloop file name, offered to templates as `modloop_url`.
    #[serde(default)]
    pub modloop: Option<String>,
    /// Other files served under /assets/ (e.g. an apkovl).
    #[serde(default)]
    pub extra: Vec<String>,
    /// Kernel command line template; `ds=nocloud;s=…` is appended as the last word.
    #[serde(default)]
    pub cmdline: String,
}

fn default_assets_dir() -> PathBuf {
    PathBuf::from("assets")
}

/// One role: how a node of that kind is configured.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSection {
    /// A one-line description shown in the adoption dialog.
    #[serde(default)]
    pub description: Option<String>,
    /// user-data template (inline text).
    #[serde(default)]
    pub user_data: Option<String>,
    /// user-data template file, relative to lab.yaml.
    #[serde(default)]
    pub user_data_file: Option<PathBuf>,
    /// meta-data template (inline text).
    #[serde(default)]
    pub meta_data: Option<String>,
    /// Words appended to the kernel command line for this role.
    #[serde(default)]
    pub cmdline_extra: Option<String>,
    /// Hostname prefix for adopted machines of this role (e.g. `agent`).
    #[serde(default)]
    pub hostname_prefix: Option<String>,
    /// Packages installed by the default user-data.
    #[serde(default)]
    pub packages: Vec<String>,
    /// The nodes' SSH server (`ssh.server`), which decides the host key file format.
    #[serde(default)]
    pub ssh: RoleSsh,
}

/// The `roles.R.ssh:` section.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSsh {
    /// Which sshd the role's nodes run: the pinned host key is delivered in its format.
    #[serde(default)]
    pub server: SshServer,
}

/// The SSH server a node runs. dropbear cannot read OpenSSH private keys, so the pinned
/// host key has to be delivered in the format the node's server reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SshServer {
    /// OpenSSH: the key at `/etc/ssh/ssh_host_ed25519_key` (OpenSSH format).
    #[default]
    Openssh,
    /// dropbear: the key at `/etc/dropbear/dropbear_ed25519_host_key` (dropbear format).
    Dropbear,
}

impl SshServer {
    /// The name written in lab.yaml and given to templates as `ssh_server`.
    pub fn as_str(self) -> &'static str {
        match self {
            SshServer::Openssh => "openssh",
            SshServer::Dropbear => "dropbear",
        }
    }
}

/// The `k3s:` section.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct K3sSection {
    /// The cluster token inline (prefer `token_file`).
    #[serde(default)]
    pub token: Option<String>,
    /// File holding the token; generated (mode 0600) if missing.
    /// Default `.pxelab/k3s-token` beside lab.yaml.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Server URL; derived from the `k3s-server` node's address when omitted.
    #[serde(default)]
    pub server_url: Option<String>,
    /// Extra words for `K3S_OPTS`.
    #[serde(default)]
    pub extra_args: Option<String>,
}

/// The `ssh:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSection {
    /// The login user created on every node.
    #[serde(default = "default_ssh_user")]
    pub user: String,
    /// Public keys authorised for that user (pxelab adds its own operator key).
    #[serde(default)]
    pub authorized_keys: Vec<String>,
    /// Follow each node over SSH after it fetched its NoCloud data.
    #[serde(default = "yes")]
    pub watch: bool,
    /// SSH port on the nodes.
    #[serde(default = "default_ssh_port")]
    pub port: u16,
    /// Host key trust: `pinned` (pxelab delivers each node's host key),
    /// `tofu` (trust the first key seen per boot) or a known_hosts path.
    #[serde(default = "default_trust")]
    pub host_keys: String,
    /// Per-step deadlines after which a node is reported stalled.
    #[serde(default)]
    pub deadlines: super::deadlines::Deadlines,
}

fn default_ssh_user() -> String {
    "lab".to_string()
}
fn default_ssh_port() -> u16 {
    22
}
fn default_trust() -> String {
    "pinned".to_string()
}

impl Default for SshSection {
    fn default() -> Self {
        SshSection {
            user: default_ssh_user(),
            authorized_keys: Vec::new(),
            watch: true,
            port: default_ssh_port(),
            host_keys: default_trust(),
            deadlines: Default::default(),
        }
    }
}

/// What happens to a MAC that is not listed in `nodes`. Written `hold`, `ignore` or
/// `{adopt: ROLE}` in lab.yaml.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum UnknownPolicy {
    /// Boot it into an iPXE wait loop until the operator adopts it.
    #[default]
    Hold,
    /// Do not answer it at all.
    Ignore,
    /// Adopt it automatically into this role.
    Adopt(String),
}

impl Serialize for UnknownPolicy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        match self {
            UnknownPolicy::Hold => s.serialize_str("hold"),
            UnknownPolicy::Ignore => s.serialize_str("ignore"),
            UnknownPolicy::Adopt(role) => {
                let mut m = s.serialize_map(Some(1))?;
                m.serialize_entry("adopt", role)?;
                m.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for UnknownPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const EXPECTED: &str = "`hold`, `ignore` or `{adopt: ROLE}`";
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = UnknownPolicy;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<UnknownPolicy, E> {
                match v {
                    "hold" => Ok(UnknownPolicy::Hold),
                    "ignore" => Ok(UnknownPolicy::Ignore),
                    other => Err(E::custom(format!(
                        "`{other}` is not a policy for unknown MACs (expected {EXPECTED})"
                    ))),
                }
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<UnknownPolicy, A::Error> {
                let mut role: Option<String> = None;
                while let Some(k) = map.next_key::<String>()? {
                    if k != "adopt" || role.is_some() {
                        return Err(serde::de::Error::custom(format!(
                            "unknown key `{k}` (expected {EXPECTED})"
                        )));
                    }
                    role = Some(map.next_value()?);
                }
                role.map(UnknownPolicy::Adopt)
                    .ok_or_else(|| serde::de::Error::custom(format!("expected {EXPECTED}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// The `adopt:` section: how adopted machines are named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdoptSection {
    /// Hostname pattern: `{prefix}` (role's hostname_prefix or role name),
    /// `{hash}` (4 hex digits from the MAC), `{n}` (next free number).
    #[serde(default = "default_pattern")]
    pub hostname_pattern: String,
}

fn default_pattern() -> String {
    "node-{n}".to_string()
}

impl Default for AdoptSection {
    fn default() -> Self {
        AdoptSection {
            hostname_pattern: default_pattern(),
        }
    }
}

/// One machine of the lab.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeEntry {
    /// Its Ethernet address.
    pub mac: Mac,
    /// Its hostname.
    pub hostname: String,
    /// Its role (`k3s-server`, `k3s-agent` or one from `roles`).
    pub role: String,
    /// A fixed address (server mode: a reservation; proxy mode: informative).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ipv4Addr>,
    /// Words appended to this node's kernel command line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmdline_extra: Option<String>,
    /// Kernel override for this node (file in `assets_dir`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// Initrds override for this node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initrds: Option<Vec<String>>,
}
