//! [`EventKind`]: every kind of thing that can happen, with its stable name and how faces
//! treat it. Kept apart from the small value types in [`super`] because the list is long
//! and grows with every server that reports something new.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::{
    ActionStatus, ApkTally, CloudPhase, FetchKind, Gauge, K3sFailure, K3sStep, Source, Stall,
    TransferOutcome,
};

/// What happened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum EventKind {
    // ---- lifecycle ----
    /// A server started listening.
    ServerUp {
        /// Which.
        source: Source,
        /// Where.
        addr: String,
    },
    /// A server stopped or failed to start.
    ServerDown {
        /// Which.
        source: Source,
        /// Why.
        reason: String,
    },
    /// lab.yaml was (re)loaded.
    ConfigLoaded {
        /// Number of nodes listed.
        nodes: usize,
    },
    /// lab.yaml changed on disk but is invalid; the previous lab stays in force.
    ConfigRejected {
        /// The error, with file:line:col.
        error: String,
    },

    // ---- DHCP ----
    /// A DHCPDISCOVER (or PXE REQUEST on 4011) arrived.
    DhcpDiscover {
        /// Message type (`discover`, `request`, `inform`, …).
        msg: String,
        /// Option 93 client architecture (raw number).
        #[serde(skip_serializing_if = "Option::is_none")]
        arch: Option<u16>,
        /// Option 60 vendor class.
        #[serde(skip_serializing_if = "Option::is_none")]
        vendor_class: Option<String>,
        /// Option 97 client UUID.
        #[serde(skip_serializing_if = "Option::is_none")]
        uuid: Option<String>,
        /// giaddr when relayed.
        #[serde(skip_serializing_if = "Option::is_none")]
        relay: Option<Ipv4Addr>,
        /// The client is iPXE (option 77 `iPXE` or option 175 present).
        ipxe: bool,
        /// Whether the request came on the PXE port (4011).
        #[serde(default)]
        pxe_port: bool,
    },
    /// pxelab answered with an OFFER or ACK.
    DhcpReply {
        /// `offer`, `ack`, `nak`.
        msg: String,
        /// Address given (server mode).
        #[serde(skip_serializing_if = "Option::is_none")]
        yiaddr: Option<Ipv4Addr>,
        /// Boot file or URL given.
        #[serde(skip_serializing_if = "Option::is_none")]
        boot_file: Option<String>,
        /// proxy or server.
        proxy: bool,
    },
    /// A lease was released or declined, or expired (server mode).
    DhcpLease {
        /// `release`, `decline`, `expire`, `renew`.
        action: String,
        /// The address.
        ip: Ipv4Addr,
    },
    /// IPv6 router advertisements started, stopped or were not started (server mode).
    Ipv6Ra {
        /// Whether pxelab sends them from now on.
        sending: bool,
        /// Why, with the interface, prefix or other router.
        reason: String,
    },
    /// Packets were dropped without an answer (malformed, not PXE in proxy mode, …): at
    /// most one such event a second, counting every drop since the previous one.
    DhcpDropped {
        /// Who sent the last one.
        from: SocketAddr,
        /// Why the last one was dropped.
        reason: String,
        /// Packets dropped since the previous `dhcp-dropped` event.
        #[serde(default = "one")]
        count: u64,
        /// Those packets by kind of reason.
        #[serde(default)]
        by_reason: std::collections::BTreeMap<String, u64>,
    },

    /// The lease file could not be written (disk full, read-only, folder gone): the ACKs
    /// waiting for it were not sent. At most one a second while it lasts.
    LeaseWriteFailed {
        /// The lease file.
        path: String,
        /// The OS error.
        error: String,
        /// ACKs held back by this failed write.
        waiting: usize,
    },

    // ---- TFTP ----
    /// A TFTP read request was accepted.
    TftpStart {
        /// The file asked for.
        file: String,
        /// The client.
        client: SocketAddr,
        /// Negotiated block size.
        blksize: u16,
        /// Negotiated window size.
        windowsize: u16,
    },
    /// A TFTP transfer ended.
    TftpEnd {
        /// The file asked for.
        file: String,
        /// The client.
        client: SocketAddr,
        /// Bytes sent.
        bytes: u64,
        /// Duration.
        ms: u64,
        /// How it ended.
        outcome: TransferOutcome,
        /// Error detail.
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },

    // ---- HTTP ----
    /// An HTTP request began (large assets only; small ones report just the end).
    HttpStart {
        /// The path asked for.
        path: String,
        /// The client.
        client: IpAddr,
        /// What it is.
        what: FetchKind,
        /// Bytes about to be sent.
        bytes: u64,
    },
    /// An HTTP request ended.
    HttpFetch {
        /// The path asked for.
        path: String,
        /// The client.
        client: IpAddr,
        /// What it is.
        what: FetchKind,
        /// Status code.
        status: u16,
        /// Bytes sent.
        bytes: u64,
        /// Duration.
        ms: u64,
    },

    /// The package cache's answers since the previous `apk-cache` event (at most one
    /// every few seconds, not one per request).
    ApkCache {
        /// The counts.
        #[serde(flatten)]
        tally: ApkTally,
    },

    // ---- inventory / commands ----
    /// An unknown MAC was seen and is being held in the wait loop.
    NodeHeld,
    /// The machine's CPU architecture became known from its boot firmware: iPXE's
    /// `${buildarch}` or a Pi bootloader (DHCP option 93 is in `dhcp-discover`).
    ArchSeen {
        /// The architecture whose boot profile it gets.
        arch: crate::config::Arch,
        /// What said so (`ipxe`, `pi-bootloader`).
        from: String,
    },
    /// A MAC was adopted into the lab.
    NodeAdopted {
        /// Its role.
        role: String,
        /// Its hostname (JSON key `new_hostname`: the event already has `hostname`).
        #[serde(rename = "new_hostname")]
        hostname: String,
    },
    /// A node was removed from the lab.
    NodeForgotten,
    /// A node's role or hostname changed.
    NodeChanged {
        /// New role.
        role: String,
        /// New hostname (JSON key `new_hostname`: the event already has `hostname`).
        #[serde(rename = "new_hostname")]
        hostname: String,
    },

    // ---- SSH watcher ----
    /// Waiting for / connecting to the node's SSH.
    SshConnecting {
        /// Address.
        addr: SocketAddr,
        /// Attempt number.
        attempt: u32,
    },
    /// Logged in with the operator key and the expected host key.
    SshUp {
        /// Address.
        addr: SocketAddr,
    },
    /// The connection dropped or the node went away.
    SshLost {
        /// Why.
        reason: String,
    },
    /// The node presented a host key other than the pinned one: not trusted.
    HostKeyMismatch {
        /// Fingerprint expected.
        expected: String,
        /// Fingerprint seen.
        seen: String,
    },
    /// A tiny-cloud action line.
    TinyCloud {
        /// Phase.
        phase: CloudPhase,
        /// Action (e.g. `set_hostname`).
        action: String,
        /// Status.
        status: ActionStatus,
    },
    /// tiny-cloud marked bootstrap complete.
    TinyCloudComplete,
    /// A k3s milestone.
    K3s {
        /// Which.
        #[serde(flatten)]
        step: K3sStep,
    },
    /// The node failed; `line` is the log line that says why.
    NodeFailed {
        /// Category (the failure class, e.g. `token-mismatch`).
        reason: K3sFailure,
        /// The log line.
        line: String,
        /// The class in words ([`K3sFailure::summary`]).
        #[serde(default)]
        summary: String,
        /// The message in the line (logrus `msg=`, or the syslog text).
        #[serde(default)]
        msg: String,
    },
    /// k3s waits for something that usually comes (its server starting): shown, never a
    /// failure, so alerting on `node-failed` raises no false alarms.
    NodeWaiting {
        /// What it waits for.
        reason: K3sFailure,
        /// In words.
        summary: String,
        /// The log line.
        line: String,
    },
    /// tiny-cloud reported a failed action (the node is marked failed).
    CloudFailed {
        /// Phase.
        phase: CloudPhase,
        /// Action.
        action: String,
        /// The log line.
        line: String,
        /// In words ([`super::failure::cloud_summary`]).
        #[serde(default)]
        summary: String,
    },
    /// The node has not moved on within its step's deadline.
    NodeStalled {
        /// Where, for how long, what was last seen and the likely cause.
        #[serde(flatten)]
        stall: Stall,
    },
    /// A stalled node moved on.
    StallCleared {
        /// The state it had stalled in.
        step: String,
        /// The state it is in now.
        now: String,
    },
    /// The node's memory and root gauge, read every poll (kept on its record, like log
    /// lines: not in the timeline, the headless stream or the record file).
    NodeResources {
        /// The reading.
        #[serde(flatten)]
        gauge: Gauge,
    },
    /// A node is running out of memory or root space (below 10 % free), once per boot.
    ResourcesLow {
        /// `memory` or `root`.
        what: String,
        /// Per cent free.
        free_pct: u64,
        /// kB free.
        free_kb: u64,
    },
    /// A snapshot of the k3s server's datastore was taken (or could not be).
    K3sSnapshot {
        /// `scheduled` or `before-reboot`.
        why: String,
        /// Whether it was kept.
        ok: bool,
        /// The file name and size, or why it failed.
        detail: String,
    },
    /// A log line streamed from the node (kept in its ring buffer, not on the bus).
    LogLine {
        /// Which file (`messages`, `k3s.log`).
        file: String,
        /// The line.
        line: String,
    },

    // ---- power and rolling reboots ----
    /// A power action was carried out, or failed.
    Power {
        /// on, off or cycle.
        action: crate::engine::service::PowerAction,
        /// The node's driver (`wol`, `ssh`, `cmd`, `none`).
        driver: String,
        /// Whether it worked.
        ok: bool,
        /// What the driver did or why it failed (never a command line: it may hold a password).
        detail: String,
    },
    /// A step of a rolling reboot.
    Roll {
        /// Which.
        #[serde(flatten)]
        step: crate::engine::roll::RollStep,
    },

    // ---- refusals ----
    /// A request was refused (traversal, unknown MAC, wrong client for secrets, …).
    Refused {
        /// Which server.
        source: Source,
        /// The client.
        client: String,
        /// What was asked.
        what: String,
        /// Why.
        reason: String,
    },
}

/// Serde default for counts of events recorded before counts existed.
fn one() -> u64 {
    1
}

impl EventKind {
    /// A short stable name for the event kind (`dhcp-discover`, `http-fetch`, …).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::ServerUp { .. } => "server-up",
            EventKind::ServerDown { .. } => "server-down",
            EventKind::ConfigLoaded { .. } => "config-loaded",
            EventKind::ConfigRejected { .. } => "config-rejected",
            EventKind::DhcpDiscover { .. } => "dhcp-discover",
            EventKind::DhcpReply { .. } => "dhcp-reply",
            EventKind::DhcpLease { .. } => "dhcp-lease",
            EventKind::DhcpDropped { .. } => "dhcp-dropped",
            EventKind::Ipv6Ra { .. } => "ipv6-ra",
            EventKind::LeaseWriteFailed { .. } => "lease-write-failed",
            EventKind::TftpStart { .. } => "tftp-start",
            EventKind::TftpEnd { .. } => "tftp-end",
            EventKind::HttpStart { .. } => "http-start",
            EventKind::HttpFetch { .. } => "http-fetch",
            EventKind::ApkCache { .. } => "apk-cache",
            EventKind::NodeHeld => "node-held",
            EventKind::ArchSeen { .. } => "arch-seen",
            EventKind::NodeAdopted { .. } => "node-adopted",
            EventKind::NodeForgotten => "node-forgotten",
            EventKind::NodeChanged { .. } => "node-changed",
            EventKind::SshConnecting { .. } => "ssh-connecting",
            EventKind::SshUp { .. } => "ssh-up",
            EventKind::SshLost { .. } => "ssh-lost",
            EventKind::HostKeyMismatch { .. } => "host-key-mismatch",
            EventKind::TinyCloud { .. } => "tiny-cloud",
            EventKind::TinyCloudComplete => "tiny-cloud-complete",
            EventKind::K3s { .. } => "k3s",
            EventKind::NodeFailed { .. } => "node-failed",
            EventKind::NodeWaiting { .. } => "node-waiting",
            EventKind::NodeStalled { .. } => "node-stalled",
            EventKind::StallCleared { .. } => "stall-cleared",
            EventKind::CloudFailed { .. } => "cloud-failed",
            EventKind::LogLine { .. } => "log-line",
            EventKind::NodeResources { .. } => "node-resources",
            EventKind::ResourcesLow { .. } => "resources-low",
            EventKind::K3sSnapshot { .. } => "k3s-snapshot",
            EventKind::Refused { .. } => "refused",
            EventKind::Power { .. } => "power",
            EventKind::Roll { .. } => "roll",
        }
    }

    /// Whether the event only updates its node's record (log lines, gauges): faces,
    /// the record file and the admin stream leave these out.
    pub fn is_node_local(&self) -> bool {
        matches!(
            self,
            EventKind::LogLine { .. } | EventKind::NodeResources { .. }
        )
    }

    /// Whether this is a problem a face should highlight.
    pub fn is_problem(&self) -> bool {
        matches!(
            self,
            EventKind::ServerDown { .. }
                | EventKind::ConfigRejected { .. }
                | EventKind::LeaseWriteFailed { .. }
                | EventKind::HostKeyMismatch { .. }
                | EventKind::NodeFailed { .. }
                | EventKind::NodeStalled { .. }
                | EventKind::ResourcesLow { .. }
                | EventKind::CloudFailed { .. }
                | EventKind::Refused { .. }
                | EventKind::Power { ok: false, .. }
                | EventKind::Roll {
                    step: crate::engine::roll::RollStep::Stopped { .. }
                }
        ) || matches!(
            self,
            EventKind::TftpEnd { outcome, .. } if *outcome != TransferOutcome::Complete
        ) || matches!(self, EventKind::ApkCache { tally } if tally.failed > 0)
            || matches!(self, EventKind::K3sSnapshot { ok: false, .. })
    }
}
