//! The variables every template sees, built from the lab, one node and (for user-data
//! only) that node's secrets.
//!
//! | variable | example |
//! |---|---|
//! | `mac`, `mac_hyphen` | `a0:1a:2c:c3:d4:e0`, `a0-1a-2c-c3-d4-e0` |
//! | `hostname`, `role`, `ip` | `node-0`, `k3s-server`, `192.168.64.140` (or none) |
//! | `server`, `http_base`, `assets_url` | `192.168.64.134`, `http://192.168.64.134:8080`, `…/assets` |
//! | `modloop_url`, `nocloud_url` | `…/assets/modloop-lts`, `…/nocloud/a0:1a:2c:c3:d4:e0/` |
//! | `k3s_url`, `k3s_role`, `k3s_opts` | `https://192.168.64.140:6443`, `server`/`agent`/`""` |
//! | `ssh_user`, `ssh_keys`, `lab`, `packages` | `lab`, list of keys, `pxelab-k3s`, list |
//! | `ssh_server` | `openssh` or `dropbear` (the role's `ssh.server`) |
//! | `syslog_remote` | `192.168.64.134:514` when `syslog.enabled`, else none |
//! | user-data only: `k3s_token`, `operator_key`, `host_key_private`, `host_key_public`, `node_password` | |
//! | user-data only: `host_key_dropbear` | the host key as dropbear's key file, base64 |
//! | user-data only: `k3s_ca_files` | the k3s server's only: `{path, content, permissions}` of each cluster CA file |
//! | `snapshot_url` | the k3s server's only: `…/snapshot/<mac>`, its newest datastore snapshot |
//! | `data_disk` | the role's `data_disk` (`LABEL=…`, `/dev/…`), mounted at `/var/lib/rancher/k3s` |
//!
//! The kernel command line and meta-data are rendered without the secret variables, so a
//! template that tries to put the token on the command line fails at `pxelab check`.

use serde::Serialize;

use crate::config::{Lab, NodeEntry};
use crate::secrets::NodeSecrets;

/// Packages the built-in k3s roles install before a role's own `packages`.
pub const K3S_PACKAGES: [&str; 3] = ["curl", "k3s", "k3s-openrc"];
/// What the k3s server installs besides: Alpine's `sqlite` (the `sqlite3` tool).
pub const K3S_SERVER_SNAPSHOT_PACKAGE: &str = "sqlite";

/// Public (non-secret) template variables.
#[derive(Debug, Clone, Serialize)]
pub struct PublicVars {
    /// Canonical MAC.
    pub mac: String,
    /// MAC with hyphens.
    pub mac_hyphen: String,
    /// Hostname.
    pub hostname: String,
    /// Role name.
    pub role: String,
    /// Fixed address, if any.
    pub ip: Option<String>,
    /// The address nodes reach pxelab at.
    pub server: String,
    /// `http://SERVER:PORT`.
    pub http_base: String,
    /// `http://SERVER:PORT/assets`.
    pub assets_url: String,
    /// URL of the modloop, when the lab has one.
    pub modloop_url: Option<String>,
    /// `http://SERVER:PORT/nocloud/<mac>/`.
    pub nocloud_url: String,
    /// `https://<k3s server>:6443`.
    pub k3s_url: String,
    /// `server`, `agent`, or empty for roles outside k3s.
    pub k3s_role: String,
    /// Extra `K3S_OPTS`.
    pub k3s_opts: String,
    /// Login user.
    pub ssh_user: String,
    /// Authorised public keys (lab.yaml's plus the operator key).
    pub ssh_keys: Vec<String>,
    /// Lab name.
    pub lab: String,
    /// Packages to install.
    pub packages: Vec<String>,
    /// The role's SSH server, `openssh` or `dropbear`: where and in which format the
    /// host key goes.
    pub ssh_server: String,
    /// `SERVER:PORT` of pxelab's syslog receiver when `syslog.enabled`, else none: the
    /// built-in roles point the node's syslogd there.
    pub syslog_remote: Option<String>,
    /// The k3s server's only: where its newest datastore snapshot is served.
    pub snapshot_url: Option<String>,
    /// The role's `data_disk`, mounted at k3s's data folder.
    pub data_disk: Option<String>,
}

/// Public variables plus the node's secrets (user-data only).
#[derive(Clone, Serialize)]
pub struct SecretVars {
    /// Everything public.
    #[serde(flatten)]
    pub public: PublicVars,
    /// k3s cluster token.
    pub k3s_token: String,
    /// The operator's public key.
    pub operator_key: Option<String>,
    /// The node's pinned host private key.
    pub host_key_private: Option<String>,
    /// The node's pinned host public key.
    pub host_key_public: Option<String>,
    /// The same private key as dropbear's key file, base64.
    pub host_key_dropbear: Option<String>,
    /// The node's k3s node password.
    pub node_password: Option<String>,
    /// The cluster CA files (the k3s server's user-data only).
    pub k3s_ca_files: Vec<crate::secrets::CaFile>,
}

impl std::fmt::Debug for SecretVars {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretVars")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// `https://HOST:6443` of the cluster: `k3s.server_url`, else the `k3s-server` node's
/// fixed address (or hostname).
pub fn k3s_url(lab: &Lab) -> String {
    if let Some(u) = &lab.file.k3s.server_url {
        return u.clone();
    }
    match lab.file.nodes.iter().find(|n| n.role == "k3s-server") {
        Some(n) => match n.ip {
            Some(ip) => format!("https://{ip}:6443"),
            None => format!("https://{}:6443", n.hostname),
        },
        None => String::new(),
    }
}

/// The public variables for `node`.
pub fn public_vars(lab: &Lab, node: &NodeEntry, operator_key: Option<&str>) -> PublicVars {
    let base = lab.http_base();
    let assets_url = format!("{base}/assets");
    let role = lab.file.roles.get(&node.role);
    let k3s_role = match node.role.as_str() {
        "k3s-server" => "server",
        "k3s-agent" => "agent",
        _ => "",
    };
    let mut packages: Vec<String> = if k3s_role.is_empty() {
        Vec::new()
    } else {
        K3S_PACKAGES.iter().map(|s| s.to_string()).collect()
    };
    if k3s_role == "server" {
        // `sqlite3` for the scheduled online snapshot (crate::watch::snapshot).
        packages.push(K3S_SERVER_SNAPSHOT_PACKAGE.to_string());
    }
    for p in role.map(|r| r.packages.as_slice()).unwrap_or_default() {
        if !packages.contains(p) {
            packages.push(p.clone());
        }
    }
    let mut ssh_keys: Vec<String> = Vec::new();
    for k in lab
        .file
        .ssh
        .authorized_keys
        .iter()
        .map(String::as_str)
        .chain(operator_key)
    {
        let k = k.trim().to_string();
        if !k.is_empty() && !ssh_keys.contains(&k) {
            ssh_keys.push(k);
        }
    }
    PublicVars {
        mac: node.mac.to_string(),
        mac_hyphen: node.mac.hyphenated(),
        hostname: node.hostname.clone(),
        role: node.role.clone(),
        ip: node.ip.map(|i| i.to_string()),
        server: lab.server_address.to_string(),
        modloop_url: super::modloop_name(lab, node).map(|m| format!("{assets_url}/{m}")),
        assets_url,
        nocloud_url: format!("{base}/nocloud/{}/", node.mac),
        k3s_url: k3s_url(lab),
        k3s_role: k3s_role.to_string(),
        k3s_opts: lab.file.k3s.extra_args.clone().unwrap_or_default(),
        ssh_user: lab.file.ssh.user.clone(),
        ssh_keys,
        lab: lab.file.name.clone(),
        packages,
        ssh_server: role
            .map(|r| r.ssh.server)
            .unwrap_or_default()
            .as_str()
            .to_string(),
        syslog_remote: lab
            .file
            .syslog
            .enabled
            .then(|| format!("{}:{}", lab.server_address, lab.file.syslog.port())),
        snapshot_url: (k3s_role == "server").then(|| format!("{base}/snapshot/{}", node.mac)),
        data_disk: role
            .and_then(|r| r.data_disk.clone())
            .filter(|_| !k3s_role.is_empty()),
        http_base: base,
    }
}

/// Public variables plus `secrets` (which belong to `node` only).
pub fn secret_vars(lab: &Lab, node: &NodeEntry, secrets: &NodeSecrets) -> SecretVars {
    let token = if secrets.k3s_token.is_empty() {
        lab.file.k3s.token.clone().unwrap_or_default()
    } else {
        secrets.k3s_token.clone()
    };
    // Only a pinned lab hands out host keys. Under `tofu` the node's sshd makes its own
    // key each boot and the watcher trusts the first it sees per boot; under a
    // known_hosts file the keys are the operator's. Delivering ours there would pin by
    // accident and hide the very reboot behaviour those modes are for.
    let pinned = lab.file.ssh.host_keys == "pinned";
    let host = |k: &Option<String>| if pinned { k.clone() } else { None };
    SecretVars {
        public: public_vars(lab, node, secrets.operator_public_key.as_deref()),
        k3s_token: token,
        operator_key: secrets.operator_public_key.clone(),
        host_key_private: host(&secrets.host_private_key),
        host_key_public: host(&secrets.host_public_key),
        host_key_dropbear: host(&secrets.host_private_key_dropbear),
        node_password: secrets.node_password.clone(),
        k3s_ca_files: secrets
            .k3s_ca
            .as_ref()
            .map(|ca| ca.files.clone())
            .unwrap_or_default(),
    }
}
