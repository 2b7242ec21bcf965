//! The `syslog:`, `tftp:` and `http:` sections as written.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

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
    #[serde(default = "super::yes")]
    pub enabled: bool,
    /// Folder with the iPXE binaries; Debian's `/usr/lib/ipxe` by default.
    #[serde(default = "default_tftp_root")]
    pub root: PathBuf,
    /// UDP port (69). Only tests and the demo change it.
    #[serde(default = "default_tftp_port")]
    pub port: u16,
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
    /// TCP port of the admin API.
    #[serde(default = "default_admin_port")]
    pub admin_port: u16,
    /// Address of the admin API when it must be reached from another machine
    /// (`pxelab attach`, `nodes --remote`); loopback when absent. Any other address
    /// serves it over TLS only, with a certificate made into `.pxelab/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_bind: Option<std::net::IpAddr>,
    /// A pull-through cache of Alpine package repositories, served under `/apk/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub apk_cache: Option<ApkCacheSection>,
}

/// `http.apk_cache`: pxelab keeps the APKINDEX and packages the nodes fetch, and serves
/// them from disk; the built-in `alpine_repo=` URLs that match an upstream point at it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApkCacheSection {
    /// Serve the cache (and rewrite matching `alpine_repo=` URLs).
    #[serde(default)]
    pub enabled: bool,
    /// Where cached files live (relative to lab.yaml); `.pxelab/apk-cache` by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dir: Option<PathBuf>,
    /// Repository or mirror URLs that may be fetched through the cache; by default the
    /// `alpine_repo=` URLs of `boot.cmdline`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub upstream: Vec<String>,
    /// How long a cached APKINDEX is served before it is fetched again (`1h`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index_ttl: Option<String>,
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
            admin_bind: None,
            apk_cache: None,
        }
    }
}
