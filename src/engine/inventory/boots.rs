//! A record's boots and how much of each it keeps: the caps per machine (shorter for
//! one lab.yaml does not list), the previous boot kept whole, and which events may start
//! a new boot. Split from `inventory.rs`, which applies events to records.

use std::collections::VecDeque;
use std::net::IpAddr;

use super::{
    NodeRecord, PreviousBoot, LOG_CAP, TIMELINE_CAP, UNKNOWN_LOG_CAP, UNKNOWN_TIMELINE_CAP,
};
use crate::engine::event::EventKind;

/// Appends `item`, dropping the oldest first so `q` holds at most `cap`.
pub(super) fn push_capped<T>(q: &mut VecDeque<T>, item: T, cap: usize) {
    while q.len() >= cap.max(1) {
        q.pop_front();
    }
    q.push_back(item);
}

/// Keeps the newest `cap` of `q`, and gives back the room beyond them.
fn trim<T>(q: &mut VecDeque<T>, cap: usize) {
    let extra = q.len().saturating_sub(cap);
    q.drain(..extra);
    q.shrink_to(cap);
}

impl NodeRecord {
    /// How many events and log lines this record keeps (per boot): fewer for a machine
    /// lab.yaml does not list.
    pub fn caps(&self) -> (usize, usize) {
        if self.known {
            (TIMELINE_CAP, LOG_CAP)
        } else {
            (UNKNOWN_TIMELINE_CAP, UNKNOWN_LOG_CAP)
        }
    }

    /// Cuts this record's histories (and its previous boot's) to its caps, newest kept:
    /// for a machine that has just left lab.yaml.
    pub(super) fn trim_to_caps(&mut self) {
        let (t, l) = self.caps();
        trim(&mut self.timeline, t);
        trim(&mut self.log_tail, l);
        if let Some(p) = self.previous_boot.as_deref_mut() {
            trim(&mut p.timeline, t);
            trim(&mut p.log_tail, l);
        }
    }

    /// The previous boot as a record of its own (same machine, that boot's state,
    /// timeline, log lines and times), for faces that show a boot.
    pub fn previous(&self) -> Option<NodeRecord> {
        let p = self.previous_boot.as_deref()?;
        let mut r = self.clone();
        r.previous_boot = None;
        r.boot = p.number;
        r.boot_started_ms = p.started_ms;
        r.state = p.state;
        r.failure = p.failure.clone();
        r.failure_reason = p.failure_reason.clone();
        r.stall = None;
        r.reached_ms = p.reached_ms.clone();
        r.timeline = p.timeline.clone();
        r.log_tail = p.log_tail.clone();
        r.last_event_ms = p.timeline.back().map(|t| t.at_ms);
        r.last_event = p.timeline.back().map(|t| t.text.clone());
        Some(r)
    }

    /// Whether an event that would start a new boot comes from the machine itself. A
    /// boot script anyone can ask for by MAC (`boot.ipxe?mac=`): only a fetch from an
    /// address the node holds (fixed, leased, or the one it booted from) restarts its
    /// timeline, so another host cannot wipe a node's boot from the console.
    pub(super) fn restart_comes_from_the_node(&self, kind: &EventKind) -> bool {
        let EventKind::HttpFetch { client, .. } = kind else {
            return true;
        };
        let held = [
            self.ip.map(IpAddr::V4),
            self.leased_ip.map(IpAddr::V4),
            self.seen_ip,
        ];
        held.iter().all(Option::is_none) || held.contains(&Some(*client))
    }

    /// Begins a boot at `at_ms`; with `archive`, the boot under way becomes the
    /// previous boot (its timeline, progress, failure and log lines move there).
    pub(super) fn start_boot(&mut self, at_ms: u64, archive: bool) {
        if archive && self.boot_started_ms.is_some() {
            self.previous_boot = Some(Box::new(PreviousBoot {
                number: self.boot,
                started_ms: self.boot_started_ms,
                state: self.state,
                failure: self.failure.take(),
                failure_reason: self.failure_reason.take(),
                reached_ms: std::mem::take(&mut self.reached_ms),
                timeline: std::mem::take(&mut self.timeline),
                log_tail: std::mem::take(&mut self.log_tail),
            }));
        }
        self.boot = self.boot.saturating_add(1);
        self.boot_started_ms = Some(at_ms);
        self.reached_ms.clear();
        self.failure = None;
        self.failure_reason = None;
        self.stall = None;
        if archive {
            self.cloud_phase = None;
        }
    }
}
