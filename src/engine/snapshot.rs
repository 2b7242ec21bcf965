//! The snapshot: a cheap, plain-data copy of the engine's state for faces.
//!
//! Table rows only ([`NodeView`]); a face that shows one node in detail asks
//! [`super::Engine::node`] for its full record.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};

use super::event::{CloudPhase, Source};
use super::inventory::NodeRecord;
use super::state::NodeState;
use super::Counters;
use crate::config::{DhcpMode, Lab};
use crate::mac::Mac;

/// Whether one server is up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerStatus {
    /// Which server.
    pub source: Source,
    /// Listening.
    pub up: bool,
    /// Address when up, reason when down.
    pub detail: String,
}

/// One node as a table row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    /// MAC.
    pub mac: Mac,
    /// Hostname, if known.
    pub hostname: Option<String>,
    /// Role, if known.
    pub role: Option<String>,
    /// Fixed or observed address.
    pub ip: Option<IpAddr>,
    /// Listed in lab.yaml.
    pub known: bool,
    /// State.
    pub state: NodeState,
    /// tiny-cloud phase.
    pub cloud_phase: Option<CloudPhase>,
    /// Failure line.
    pub failure: Option<String>,
    /// Failure class (`token-mismatch`, `cloud-action`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_class: Option<String>,
    /// The failure in words: what the table shows instead of the raw line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// Why the node has not moved on within its step's deadline, while it has not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall: Option<String>,
    /// Boot start, ms since epoch.
    pub boot_started_ms: Option<u64>,
    /// When the node reached its current state, ms since epoch (stall checks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_since_ms: Option<u64>,
    /// Which boot this is (1 = the first pxelab saw this run).
    #[serde(default)]
    pub boot: u32,
    /// Last event time, ms since epoch.
    pub last_event_ms: Option<u64>,
    /// Last event text.
    pub last_event: Option<String>,
    /// The CPU architecture its firmware showed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<crate::config::Arch>,
    /// How its firmware booted it (BIOS PXE, UEFI PXE, UEFI HTTP, iPXE, Pi bootloader).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_path: Option<crate::config::BootPath>,
}

impl NodeView {
    /// `aarch64 · Pi bootloader`, `x86_64`, `iPXE`, or `-` when nothing is known yet.
    pub fn firmware(&self) -> String {
        firmware_text(self.cpu, self.boot_path)
    }
}

/// A machine's architecture and boot path in words, for every face.
pub fn firmware_text(
    cpu: Option<crate::config::Arch>,
    path: Option<crate::config::BootPath>,
) -> String {
    match (cpu, path) {
        (Some(a), Some(p)) => format!("{a} · {}", p.label()),
        (Some(a), None) => a.to_string(),
        (None, Some(p)) => p.label().to_string(),
        (None, None) => "-".to_string(),
    }
}

impl From<&NodeRecord> for NodeView {
    fn from(r: &NodeRecord) -> Self {
        NodeView {
            mac: r.mac,
            hostname: r.hostname.clone(),
            role: r.role.clone(),
            ip: r.ip.map(IpAddr::V4).or(r.seen_ip),
            known: r.known,
            state: r.state,
            cloud_phase: r.cloud_phase,
            failure: r.failure.clone(),
            failure_class: r.failure_reason.as_ref().map(|f| f.class.clone()),
            failure_reason: r.failure_reason.as_ref().map(|f| f.summary.clone()),
            stall: r
                .stall
                .as_ref()
                .map(|s| format!("stalled {} s: {}", s.waited_s, s.hint)),
            boot_started_ms: r.boot_started_ms,
            state_since_ms: r.reached_ms.get(&r.state).copied(),
            boot: r.boot,
            last_event_ms: r.last_event_ms,
            last_event: r.last_event.clone(),
            cpu: r.cpu,
            boot_path: r.boot_path,
        }
    }
}

/// Everything a face needs to draw a frame.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Lab name.
    pub lab_name: String,
    /// Address nodes reach pxelab at.
    pub server_address: Ipv4Addr,
    /// DHCP mode.
    pub dhcp_mode: DhcpMode,
    /// Server states.
    pub servers: Vec<ServerStatus>,
    /// Every node, sorted known-first then by hostname/MAC.
    pub nodes: Vec<NodeView>,
    /// Node counts by state name.
    pub counts: BTreeMap<String, usize>,
    /// DHCP packets dropped.
    pub dhcp_dropped: u64,
    /// HTTP requests refused.
    pub http_refused: u64,
    /// TFTP requests refused.
    pub tftp_refused: u64,
    /// Events emitted so far.
    pub events: u64,
    /// Records of machines not in lab.yaml forgotten to stay within the inventory's cap.
    #[serde(default)]
    pub unknown_forgotten: u64,
    /// Package cache: answers without an upstream fetch, files fetched, failures.
    #[serde(default)]
    pub apk_hits: u64,
    /// Package cache files fetched from upstream.
    #[serde(default)]
    pub apk_fetched: u64,
    /// Package cache requests that failed.
    #[serde(default)]
    pub apk_failed: u64,
    /// Engine version at the time of the snapshot.
    pub version: u64,
}

impl Snapshot {
    pub(crate) fn new(
        lab: &Lab,
        mut nodes: Vec<NodeView>,
        servers: Vec<ServerStatus>,
        c: &Counters,
        version: u64,
    ) -> Snapshot {
        nodes.sort_by(|a, b| {
            (!a.known, a.hostname.as_deref(), a.mac).cmp(&(!b.known, b.hostname.as_deref(), b.mac))
        });
        let mut counts = BTreeMap::new();
        for n in &nodes {
            *counts.entry(n.state.name().to_string()).or_insert(0) += 1;
        }
        Snapshot {
            lab_name: lab.file.name.clone(),
            server_address: lab.server_address,
            dhcp_mode: lab.file.dhcp.mode,
            servers,
            nodes,
            counts,
            dhcp_dropped: c.dhcp_dropped.load(Ordering::Relaxed),
            http_refused: c.http_refused.load(Ordering::Relaxed),
            tftp_refused: c.tftp_refused.load(Ordering::Relaxed),
            events: c.events.load(Ordering::Relaxed),
            unknown_forgotten: c.unknown_forgotten.load(Ordering::Relaxed),
            apk_hits: c.apk_hits.load(Ordering::Relaxed),
            apk_fetched: c.apk_fetched.load(Ordering::Relaxed),
            apk_failed: c.apk_failed.load(Ordering::Relaxed),
            version,
        }
    }
}
