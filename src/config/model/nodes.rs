//! What the nodes run (`boot:`, `roles:`, `k3s:`, `ssh:`) and the `nodes:` list.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::mac::Mac;

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
    /// Alpine modloop file name, offered to templates as `modloop_url` (a node's own
    /// `modloop` overrides it).
    #[serde(default)]
    pub modloop: Option<String>,
    /// Other files served under /assets/ (e.g. an apkovl).
    #[serde(default)]
    pub extra: Vec<String>,
    /// Kernel command line template; `ds=nocloud;s=…` is appended as the last word.
    #[serde(default)]
    pub cmdline: String,
    /// Per-architecture kernel, initramfs and modloop (`boot.arch.aarch64: {kernel: …}`);
    /// the files above are the x86_64 profile (see [`super::ArchBoot`]).
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub arch: std::collections::BTreeMap<super::Arch, super::ArchBoot>,
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
    /// How the role's nodes are powered, unless a node says otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<super::PowerSpec>,
    /// A disk mounted (`nofail`) at k3s's data folder `/var/lib/rancher/k3s`, by label
    /// (`LABEL=k3s-data`), UUID (`UUID=…`) or device (`/dev/sdb1`): its state survives
    /// a reboot without snapshots. Built-in k3s roles only.
    #[serde(default)]
    pub data_disk: Option<String>,
    /// The CPU architecture of the role's machines, when they are all of one (else what
    /// their firmware says picks the `boot.arch` profile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<super::Arch>,
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
    /// Snapshots of the k3s server's datastore (`k3s.snapshots`).
    #[serde(default)]
    pub snapshots: SnapshotSection,
}

/// The `k3s.snapshots:` section: how often pxelab snapshots the k3s server's datastore
/// over SSH and how many it keeps in `.pxelab/snapshots/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSection {
    /// Interval of the scheduled snapshot (`30m`, `1h`, seconds); `off` for none (the
    /// one before a reboot pxelab performs is always taken).
    #[serde(default = "default_snapshot_every")]
    pub every: String,
    /// How many snapshots are kept (the oldest removed first); at least 1.
    #[serde(default = "default_snapshot_keep")]
    pub keep: usize,
}

impl Default for SnapshotSection {
    fn default() -> Self {
        SnapshotSection {
            every: default_snapshot_every(),
            keep: default_snapshot_keep(),
        }
    }
}

fn default_snapshot_every() -> String {
    "1h".to_string()
}

fn default_snapshot_keep() -> usize {
    5
}

impl SnapshotSection {
    /// The schedule's interval; `None` for `off` (or anything that is not a duration,
    /// which validation reports).
    pub fn interval(&self) -> Option<std::time::Duration> {
        match self.every.trim() {
            "off" | "0" | "" => None,
            t => crate::config::net::parse_duration(t).filter(|d| !d.is_zero()),
        }
    }
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
    #[serde(default = "super::yes")]
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
    pub deadlines: crate::config::deadlines::Deadlines,
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
    /// Modloop override for this node (file in `assets_dir`): a node that boots another
    /// kernel flavour (`kernel: vmlinuz-virt`) needs that flavour's modloop too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modloop: Option<String>,
    /// How this machine is powered on, off and around (else its role's, else the lab's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub power: Option<super::PowerSpec>,
    /// Its CPU architecture (else its role's, else what its firmware says).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arch: Option<super::Arch>,
}
