//! Typed events: what the wire servers and the watcher report, and what every face shows.
//!
//! An [`Event`] is plain data (serde), so the headless JSON face, the recorder
//! (`--record FILE`), the admin API's Server-Sent Events and the TUI all see the same
//! thing. Secrets never go into an event: fields carry file names, paths, sizes and
//! addresses, never the content served.

use serde::{Deserialize, Serialize};

use crate::mac::Mac;

/// One thing that happened, stamped by the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Monotonic sequence number (starts at 1 for each engine).
    pub seq: u64,
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// The machine it concerns, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<Mac>,
    /// The node's hostname at the time, when it is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Which server or watcher an event comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// DHCP / proxyDHCP.
    Dhcp,
    /// TFTP.
    Tftp,
    /// HTTP boot server.
    Http,
    /// Admin API.
    Admin,
    /// SSH watcher.
    Ssh,
    /// IPv6 router advertisements (server mode).
    Ra,
    /// The syslog receiver (the nodes' `syslogd -R`).
    Syslog,
    /// The engine itself (config, adoption).
    Engine,
}

impl Source {
    /// The name an operator knows it by (`DHCP`, `admin API`).
    pub fn label(&self) -> &'static str {
        match self {
            Source::Dhcp => "DHCP",
            Source::Tftp => "TFTP",
            Source::Http => "HTTP",
            Source::Admin => "admin API",
            Source::Ssh => "SSH watcher",
            Source::Ra => "IPv6 RA",
            Source::Syslog => "syslog",
            Source::Engine => "engine",
        }
    }
}

/// How a TFTP transfer ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferOutcome {
    /// Every byte delivered and acknowledged.
    Complete,
    /// The client stopped answering.
    Timeout,
    /// Refused before any data (write request, traversal, missing file).
    Refused,
    /// The client aborted (e.g. OVMF's size probe, error 8) or another error occurred.
    Error,
}

/// The kind of thing a node fetched over HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FetchKind {
    /// The per-node iPXE script.
    Script,
    /// The wait-loop script given to a held MAC.
    HoldScript,
    /// The one-line script that asks iPXE for its `${buildarch}` (mixed labs).
    ArchProbe,
    /// The kernel.
    Kernel,
    /// An initramfs.
    Initrd,
    /// The Alpine modloop.
    Modloop,
    /// Another boot asset (apkovl, …).
    Asset,
    /// An iPXE binary fetched over HTTP by UEFI HTTP-boot firmware.
    Ipxe,
    /// NoCloud meta-data.
    MetaData,
    /// NoCloud user-data.
    UserData,
    /// NoCloud vendor-data.
    VendorData,
    /// NoCloud network-config.
    NetworkConfig,
    /// Anything else (refused or unknown paths).
    Other,
}

/// What the package cache answered over a few seconds (`apk-cache` events).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApkTally {
    /// Served from disk (or from another request's fetch), no upstream fetch.
    pub hits: u64,
    /// Fetched from upstream (one per file, however many nodes asked at once).
    pub fetched: u64,
    /// An expired APKINDEX served because upstream failed.
    pub stale: u64,
    /// Not served: upstream failed or sent a damaged file (nothing was cached).
    pub failed: u64,
    /// Bytes served.
    pub bytes: u64,
    /// The last failure's reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// A tiny-cloud phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CloudPhase {
    /// Network up, sshd enabled, NoCloud data fetched.
    Boot,
    /// user-data saved.
    Early,
    /// Users, hostname, keys, write_files, packages.
    Main,
    /// runcmd.
    Final,
}

/// Status of one tiny-cloud action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionStatus {
    /// `<action>: starting`
    Starting,
    /// `<action>: done`
    Done,
    /// `<action>: failed`
    Failed,
    /// `<action>: skipped`
    Skipped,
    /// `<action>: unknown`
    Unknown,
}

/// A k3s milestone read from its log or from the server's node list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "step")]
pub enum K3sStep {
    /// `Starting k3s v…`
    Starting {
        /// The version string.
        version: String,
    },
    /// `Kube API server is now running` (server).
    ApiUp,
    /// `k3s is up and running` (server).
    ServerUp,
    /// `Connecting to proxy` (agent).
    Connecting {
        /// The URL it connects to.
        url: String,
    },
    /// `Remotedialer connected to proxy` (agent).
    Connected,
    /// `Annotations and labels have been set successfully on node: NAME` (agent joined).
    Joined,
    /// Ready condition True, seen from the server.
    Ready,
    /// Ready condition no longer True, seen from the server.
    NotReady,
}

pub use super::failure::{Gauge, K3sFailure, Stall};

mod kind;
pub use kind::EventKind;
