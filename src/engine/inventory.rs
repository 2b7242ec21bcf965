//! The inventory: every MAC pxelab has heard of, with its state and bounded history.
//!
//! Each record keeps a timeline of its last [`TIMELINE_CAP`] events and a ring of its last
//! [`LOG_CAP`] log lines, so memory per node is bounded however long the lab runs. The
//! number of machines lab.yaml does not list is bounded too ([`UNKNOWN_CAP`]): a LAN full
//! of PXE clients, a DHCP load generator or a hostile host sending random MACs cannot
//! grow the inventory without end. The machine first seen longest ago goes first; one
//! still booting is back at its next request. Such a machine keeps a shorter history
//! ([`UNKNOWN_TIMELINE_CAP`], [`UNKNOWN_LOG_CAP`]): at the full length 4,096 held
//! machines alone took over 200 MB (BENCHMARKS.md, memory at the bound).

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

use super::event::{CloudPhase, Event, EventKind, FetchKind, Gauge, Stall};
pub use super::failure::FailureReason;
use super::state::{cloud_phase, new_boot, transition, NodeState};
use crate::config::NodeEntry;
use crate::mac::Mac;

mod boots;
use boots::push_capped;

/// Events kept per node.
pub const TIMELINE_CAP: usize = 256;
/// Log lines kept per node.
pub const LOG_CAP: usize = 400;
/// Records kept of machines lab.yaml does not list.
pub const UNKNOWN_CAP: usize = 4096;
/// Events kept per machine lab.yaml does not list (per boot). A held machine asks for
/// its wait loop every few seconds, so its history is mostly that one line again: this
/// keeps its way into the loop for a while, then its last minute and a half of it. At
/// [`UNKNOWN_CAP`] machines it is about 5 KB each instead of 50.
pub const UNKNOWN_TIMELINE_CAP: usize = 32;
/// Log lines kept per machine lab.yaml does not list (per boot).
pub const UNKNOWN_LOG_CAP: usize = 32;

/// One timeline entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// When (ms since epoch).
    pub at_ms: u64,
    /// Event kind name (a static name when made here: no allocation per entry).
    pub kind: Cow<'static, str>,
    /// Human description.
    pub text: String,
    /// Whether it is a problem.
    pub problem: bool,
}

/// The boot before the current one, kept whole so an operator can still read what
/// happened to it (the detail view's `p`, the admin API's node record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviousBoot {
    /// Its number (1 = the first boot pxelab saw this run).
    pub number: u32,
    /// When it began, ms since epoch.
    pub started_ms: Option<u64>,
    /// Where it had got when the next boot began.
    pub state: NodeState,
    /// Why it failed, when it did.
    pub failure: Option<String>,
    /// The failure's class and sentence, when it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<FailureReason>,
    /// When each state was reached.
    pub reached_ms: BTreeMap<NodeState, u64>,
    /// Its events.
    pub timeline: VecDeque<TimelineEntry>,
    /// Its log lines.
    pub log_tail: VecDeque<String>,
}

/// What pxelab knows about one machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Its MAC.
    pub mac: Mac,
    /// Hostname from lab.yaml (or adoption).
    pub hostname: Option<String>,
    /// Role from lab.yaml.
    pub role: Option<String>,
    /// Configured fixed address.
    pub ip: Option<Ipv4Addr>,
    /// The address it last fetched boot data from (HTTP client address).
    pub seen_ip: Option<IpAddr>,
    /// The address pxelab's own DHCP server last acknowledged to it (server mode): who a
    /// request comes from, and (server mode) an address its user-data may go to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leased_ip: Option<Ipv4Addr>,
    /// Listed in lab.yaml.
    pub known: bool,
    /// Where it is in the boot chain.
    pub state: NodeState,
    /// Latest tiny-cloud phase seen.
    pub cloud_phase: Option<CloudPhase>,
    /// Why it failed, when it did (the explaining log line).
    pub failure: Option<String>,
    /// The failure in words: class, sentence, message (see [`FailureReason`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<FailureReason>,
    /// Its memory and root gauge, last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Gauge>,
    /// Why it has not moved on within its step's deadline, while that lasts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall: Option<Stall>,
    /// Firmware architecture (option 93) last seen.
    pub arch: Option<u16>,
    /// The CPU architecture its firmware showed (option 93, iPXE, a Pi bootloader):
    /// which `boot.arch` profile it gets when lab.yaml does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<crate::config::Arch>,
    /// How its firmware booted it this time (BIOS PXE, UEFI PXE, UEFI HTTP, iPXE, Pi
    /// bootloader): the first DHCP of a boot says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_path: Option<crate::config::BootPath>,
    /// When this boot began (first DHCP of this power-on), ms since epoch.
    pub boot_started_ms: Option<u64>,
    /// When each state was reached during this boot.
    pub reached_ms: BTreeMap<NodeState, u64>,
    /// Time of the last event.
    pub last_event_ms: Option<u64>,
    /// Description of the last event.
    pub last_event: Option<String>,
    /// The last events concerning this node.
    pub timeline: VecDeque<TimelineEntry>,
    /// The last log lines streamed from the node.
    pub log_tail: VecDeque<String>,
    /// Which boot this is (1 = the first pxelab saw this run; 0 = none yet).
    #[serde(default)]
    pub boot: u32,
    /// The boot before this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_boot: Option<Box<PreviousBoot>>,
}

impl NodeRecord {
    /// A record for a MAC with nothing known yet.
    pub fn new(mac: Mac) -> NodeRecord {
        NodeRecord {
            mac,
            hostname: None,
            role: None,
            ip: None,
            seen_ip: None,
            leased_ip: None,
            known: false,
            state: NodeState::Idle,
            cloud_phase: None,
            failure: None,
            failure_reason: None,
            stall: None,
            resources: None,
            arch: None,
            cpu: None,
            boot_path: None,
            boot_started_ms: None,
            reached_ms: BTreeMap::new(),
            last_event_ms: None,
            last_event: None,
            timeline: VecDeque::new(),
            log_tail: VecDeque::new(),
            boot: 0,
            previous_boot: None,
        }
    }

    /// The name to show: hostname, else the MAC.
    pub fn label(&self) -> String {
        self.hostname
            .clone()
            .unwrap_or_else(|| self.mac.to_string())
    }

    /// Copies lab.yaml's view of the node into the record.
    pub fn apply_entry(&mut self, e: &NodeEntry) {
        self.known = true;
        self.hostname = Some(e.hostname.clone());
        self.role = Some(e.role.clone());
        self.ip = e.ip;
    }

    /// Applies an event: state transition, timeline, log tail. Returns true if anything changed.
    pub fn apply(&mut self, ev: &Event) -> bool {
        let (timeline_cap, log_cap) = self.caps();
        if let EventKind::LogLine { line, file } = &ev.kind {
            push_capped(&mut self.log_tail, format!("{file}: {line}"), log_cap);
            return true;
        }
        if let EventKind::NodeResources { gauge } = &ev.kind {
            self.resources = Some(*gauge);
            return true;
        }
        // Judged before this event's address is recorded below.
        let from_the_node = self.restart_comes_from_the_node(&ev.kind);
        self.learn_firmware(&ev.kind);
        if let EventKind::DhcpReply {
            msg,
            yiaddr: Some(ip),
            proxy: false,
            ..
        } = &ev.kind
        {
            if msg == "ack" {
                self.leased_ip = Some(*ip);
            }
        }
        if let EventKind::HttpFetch {
            client,
            status,
            what,
            ..
        } = &ev.kind
        {
            // Only boot files say where the machine booted from: NoCloud data must not
            // (a meta-data fetch from elsewhere would otherwise unlock its user-data).
            let boot_file = matches!(
                what,
                FetchKind::Script
                    | FetchKind::Ipxe
                    | FetchKind::Kernel
                    | FetchKind::Initrd
                    | FetchKind::Modloop
            );
            if boot_file && (200..300).contains(status) {
                self.seen_ip = Some(*client);
            }
        }
        if let Some(p) = cloud_phase(&ev.kind) {
            self.cloud_phase = Some(p);
        }
        // An unknown MAC held in the wait loop stays held through the DHCP and TFTP of
        // its later rounds (they stay in its timeline) until it is adopted or listed:
        // `held` is what the operator has to act on, and it is announced only once.
        let stays_held = self.state == NodeState::Held
            && !self.known
            && !matches!(ev.kind, EventKind::NodeAdopted { .. });
        let fresh = if stays_held {
            None
        } else {
            new_boot(self.state, &ev.kind).filter(|_| from_the_node)
        };
        let next = match fresh {
            Some(start) => {
                self.start_boot(ev.at_ms, true);
                Some(start)
            }
            None if stays_held => None,
            None => transition(self.state, &ev.kind),
        };
        if let Some(next) = next {
            if self.boot_started_ms.is_none() {
                self.start_boot(ev.at_ms, false);
            }
            self.state = next;
            self.reached_ms.entry(next).or_insert(ev.at_ms);
        }
        // The first failure of a boot is kept: later ones (a failed tiny-cloud action
        // after apk's own error) are usually its consequences, and stay in the timeline.
        if let Some(why) = FailureReason::of(&ev.kind).filter(|_| self.failure.is_none()) {
            self.failure = Some(match &ev.kind {
                EventKind::NodeFailed { line, .. } | EventKind::CloudFailed { line, .. } => {
                    line.clone()
                }
                other => other.describe(),
            });
            self.failure_reason = Some(why);
        }
        match &ev.kind {
            EventKind::NodeStalled { stall } => self.stall = Some(stall.clone()),
            EventKind::StallCleared { .. } => self.stall = None,
            _ => {}
        }
        let text = ev.kind.describe();
        // The last event's text reuses its buffer: one allocation fewer per event.
        match &mut self.last_event {
            Some(last) => {
                last.clear();
                last.push_str(&text);
            }
            None => self.last_event = Some(text.clone()),
        }
        push_capped(
            &mut self.timeline,
            TimelineEntry {
                at_ms: ev.at_ms,
                kind: Cow::Borrowed(ev.kind.name()),
                text,
                problem: ev.kind.is_problem(),
            },
            timeline_cap,
        );
        self.last_event_ms = Some(ev.at_ms);
        true
    }
}

/// MAC → record.
#[derive(Debug, Default, Clone)]
pub struct Inventory {
    /// Boxed: the map keeps room for up to twice its records (a hash table's slack),
    /// and a slot is then a pointer, not a whole record (about 4 MB at [`UNKNOWN_CAP`]).
    nodes: HashMap<Mac, Box<NodeRecord>>,
    /// Records lab.yaml lists.
    known: usize,
    /// Unknown MACs in the order their records were created (entries whose record has
    /// since become known or gone are skipped when met).
    unknown_order: VecDeque<Mac>,
    /// Unknown records forgotten to stay within [`UNKNOWN_CAP`].
    forgotten: u64,
}

impl Inventory {
    /// An empty inventory.
    pub fn new() -> Inventory {
        Inventory::default()
    }

    /// An inventory holding `records` (a mirror's seed: a server's records as they are),
    /// unknown machines queued for forgetting in the order given.
    pub fn restore(records: Vec<NodeRecord>) -> Inventory {
        let mut inv = Inventory::new();
        for r in records {
            if r.known {
                inv.known += 1;
            } else {
                inv.unknown_order.push_back(r.mac);
            }
            inv.nodes.insert(r.mac, Box::new(r));
        }
        inv
    }

    /// Makes the inventory agree with lab.yaml's node list: known nodes get their
    /// hostname/role/ip; nodes no longer listed become unknown (history kept).
    pub fn sync_with(&mut self, entries: &[NodeEntry]) {
        for rec in self.nodes.values_mut() {
            rec.known = false;
        }
        for e in entries {
            self.nodes
                .entry(e.mac)
                .or_insert_with(|| Box::new(NodeRecord::new(e.mac)))
                .apply_entry(e);
        }
        self.known = 0;
        for rec in self.nodes.values_mut() {
            if rec.known {
                self.known += 1;
            } else {
                rec.hostname = None;
                rec.role = None;
                rec.ip = None;
                rec.trim_to_caps();
            }
        }
        // Machines no longer listed queue for forgetting like any unknown one.
        let queued: std::collections::HashSet<Mac> = self.unknown_order.iter().copied().collect();
        let newly_unknown: Vec<Mac> = self
            .nodes
            .values()
            .filter(|r| !r.known && !queued.contains(&r.mac))
            .map(|r| r.mac)
            .collect();
        self.unknown_order.extend(newly_unknown);
        self.forget_beyond_cap();
    }

    /// The record for a MAC, created if missing (an unknown machine's creation may
    /// forget the unknown machine first seen longest ago).
    pub fn entry(&mut self, mac: Mac) -> &mut NodeRecord {
        if let std::collections::hash_map::Entry::Vacant(v) = self.nodes.entry(mac) {
            v.insert(Box::new(NodeRecord::new(mac)));
            self.unknown_order.push_back(mac);
            self.forget_beyond_cap();
        }
        self.nodes
            .entry(mac)
            .or_insert_with(|| Box::new(NodeRecord::new(mac)))
    }

    /// Unknown records forgotten so far to stay within [`UNKNOWN_CAP`].
    pub fn forgotten(&self) -> u64 {
        self.forgotten
    }

    fn forget_beyond_cap(&mut self) {
        // Bounded: each turn pops one queue entry.
        while self.nodes.len().saturating_sub(self.known) > UNKNOWN_CAP {
            let Some(mac) = self.unknown_order.pop_front() else {
                break;
            };
            if self.nodes.get(&mac).is_some_and(|r| !r.known) {
                self.nodes.remove(&mac);
                self.forgotten += 1;
                if self.forgotten == 1 || self.forgotten.is_multiple_of(1000) {
                    tracing::warn!(
                        "more than {UNKNOWN_CAP} machines not in lab.yaml: forgot {} so far, oldest first",
                        self.forgotten
                    );
                }
            }
        }
    }

    /// The record for a MAC.
    pub fn get(&self, mac: &Mac) -> Option<&NodeRecord> {
        self.nodes.get(mac).map(|r| &**r)
    }

    /// Removes a record entirely.
    pub fn remove(&mut self, mac: &Mac) -> Option<NodeRecord> {
        let r = self.nodes.remove(mac).map(|r| *r);
        if r.as_ref().is_some_and(|r| r.known) {
            self.known -= 1;
        }
        r
    }

    /// All records.
    pub fn iter(&self) -> impl Iterator<Item = &NodeRecord> {
        self.nodes.values().map(|r| &**r)
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }
}

#[cfg(test)]
#[path = "inventory_tests.rs"]
mod tests;
