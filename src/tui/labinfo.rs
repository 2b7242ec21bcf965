//! What the console knows about lab.yaml: its roles, whether it hands out addresses, and
//! the servers the header shows (in the order they are listed there).
//!
//! ```text
//!  pxelab ▸ homelab   ▲ proxyDHCP :67/:4011  ▲ TFTP :69  ▲ HTTP …:8080  ▲ admin :7480  ▲ syslog :514  ▲ SSH watch
//! ```

use crate::config::{DhcpMode, Lab};
use crate::engine::Source;

/// A server the lab runs, as the header shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    /// Which.
    pub source: Source,
    /// Label and configured address (`proxyDHCP :67`).
    pub label: String,
}

/// What the console needs to know about lab.yaml.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabInfo {
    /// Roles a node may take.
    pub roles: Vec<String>,
    /// DHCP server mode (the adoption dialog asks for an IP).
    pub server_mode: bool,
    /// Servers the lab runs.
    pub servers: Vec<ServerSpec>,
    /// The folder of lab.yaml (theme files are looked up there).
    pub dir: std::path::PathBuf,
    /// Each listed node's power driver (`wol`, `ssh`, `cmd`, `none`), for the
    /// confirmation before a wake or power-cycle.
    pub power: std::collections::BTreeMap<crate::mac::Mac, &'static str>,
}

impl LabInfo {
    /// From a loaded lab.
    pub fn from_lab(lab: &Lab) -> LabInfo {
        let f = &lab.file;
        let mut servers = Vec::new();
        match f.dhcp.mode {
            DhcpMode::Proxy => servers.push(ServerSpec {
                source: Source::Dhcp,
                label: format!("proxyDHCP :{}/:{}", f.dhcp.port, f.dhcp.pxe_port),
            }),
            DhcpMode::Server => servers.push(ServerSpec {
                source: Source::Dhcp,
                label: format!("DHCP :{}", f.dhcp.port),
            }),
            DhcpMode::Off => {}
        }
        if lab.ra_interface().is_some() {
            servers.push(ServerSpec {
                source: Source::Ra,
                label: "IPv6 RA".into(),
            });
        }
        if f.tftp.enabled {
            servers.push(ServerSpec {
                source: Source::Tftp,
                label: format!("TFTP :{}", f.tftp.port),
            });
        }
        servers.push(ServerSpec {
            source: Source::Http,
            label: format!("HTTP {}:{}", lab.server_address, f.http.port),
        });
        servers.push(ServerSpec {
            source: Source::Admin,
            label: format!("admin :{}", f.http.admin_port),
        });
        if f.syslog.enabled {
            servers.push(ServerSpec {
                source: Source::Syslog,
                label: format!("syslog :{}", f.syslog.port()),
            });
        }
        if f.ssh.watch {
            servers.push(ServerSpec {
                source: Source::Ssh,
                label: "SSH watch".into(),
            });
        }
        LabInfo {
            roles: lab.role_names(),
            server_mode: f.dhcp.mode == DhcpMode::Server,
            servers,
            dir: lab.dir(),
            power: f
                .nodes
                .iter()
                .map(|n| (n.mac, lab.power_for(n).name()))
                .collect(),
        }
    }
}
