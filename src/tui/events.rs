//! The event pane's bounded ring: events as they arrive on the bus, pre-formatted once.

use std::collections::VecDeque;

use crate::engine::{Event, EventKind};

/// Events kept for the pane.
pub const EVENT_RING_CAP: usize = 2_000;

/// Which theme slot an event line takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventClass {
    /// Servers, lab.yaml.
    Lifecycle,
    /// DHCP.
    Dhcp,
    /// TFTP.
    Tftp,
    /// HTTP.
    Http,
    /// Adoption, forget, change.
    Inventory,
    /// SSH, tiny-cloud.
    Ssh,
    /// k3s.
    K3s,
    /// A problem.
    Problem,
}

impl EventClass {
    /// The class of an event kind.
    pub fn of(k: &EventKind) -> EventClass {
        if k.is_problem() {
            return EventClass::Problem;
        }
        match k {
            EventKind::ServerUp { .. }
            | EventKind::ServerDown { .. }
            | EventKind::ConfigLoaded { .. }
            | EventKind::ConfigRejected { .. } => EventClass::Lifecycle,
            EventKind::DhcpDiscover { .. }
            | EventKind::DhcpReply { .. }
            | EventKind::DhcpLease { .. }
            | EventKind::DhcpDropped { .. }
            | EventKind::Ipv6Ra { .. }
            | EventKind::LeaseWriteFailed { .. } => EventClass::Dhcp,
            EventKind::TftpStart { .. } | EventKind::TftpEnd { .. } => EventClass::Tftp,
            EventKind::HttpStart { .. } | EventKind::HttpFetch { .. } => EventClass::Http,
            EventKind::NodeHeld
            | EventKind::NodeAdopted { .. }
            | EventKind::NodeForgotten
            | EventKind::NodeChanged { .. } => EventClass::Inventory,
            EventKind::K3s { .. }
            | EventKind::NodeFailed { .. }
            | EventKind::NodeWaiting { .. } => EventClass::K3s,
            EventKind::NodeStalled { .. } | EventKind::StallCleared { .. } => EventClass::Inventory,
            EventKind::SshConnecting { .. }
            | EventKind::SshUp { .. }
            | EventKind::SshLost { .. }
            | EventKind::HostKeyMismatch { .. }
            | EventKind::TinyCloud { .. }
            | EventKind::TinyCloudComplete
            | EventKind::CloudFailed { .. }
            | EventKind::LogLine { .. }
            | EventKind::NodeResources { .. }
            | EventKind::ResourcesLow { .. }
            | EventKind::Refused { .. } => EventClass::Ssh,
        }
    }
}

/// One formatted line of the event pane.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLine {
    /// When (ms since epoch).
    pub at_ms: u64,
    /// Hostname, MAC or `-`.
    pub who: String,
    /// Kind name.
    pub kind: &'static str,
    /// Description.
    pub text: String,
    /// Colour class.
    pub class: EventClass,
}

impl EventLine {
    /// Formats an event.
    pub fn from_event(ev: &Event) -> EventLine {
        let who = match (&ev.hostname, &ev.mac) {
            (Some(h), _) => h.clone(),
            (None, Some(m)) => m.to_string(),
            (None, None) => "-".to_string(),
        };
        EventLine {
            at_ms: ev.at_ms,
            who,
            kind: ev.kind.name(),
            text: ev.kind.describe(),
            class: EventClass::of(&ev.kind),
        }
    }

    /// Whether the line matches a filter word (lower-case).
    pub fn matches(&self, needle_lower: &str) -> bool {
        contains_ci(&self.who, needle_lower)
            || contains_ci(self.kind, needle_lower)
            || contains_ci(&self.text, needle_lower)
    }
}

/// Case-insensitive substring test; `needle` must already be lower-case.
pub fn contains_ci(hay: &str, needle: &str) -> bool {
    needle.is_empty() || hay.to_lowercase().contains(needle)
}

/// A bounded ring of event lines, plus how many were skipped when the pane fell behind.
#[derive(Debug, Clone, Default)]
pub struct EventRing {
    lines: VecDeque<EventLine>,
    /// Events the bus dropped because the console fell behind.
    pub lagged: u64,
    /// Events received in total.
    pub received: u64,
}

impl EventRing {
    /// Adds an event (log lines are skipped: they live in the node's own tail).
    pub fn push(&mut self, ev: &Event) {
        if ev.kind.is_node_local() {
            return;
        }
        self.push_line(EventLine::from_event(ev));
    }

    /// Adds a formatted line.
    pub fn push_line(&mut self, line: EventLine) {
        if self.lines.len() == EVENT_RING_CAP {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
        self.received += 1;
    }

    /// Lines kept, oldest first.
    pub fn lines(&self) -> &VecDeque<EventLine> {
        &self.lines
    }

    /// Number of lines kept.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}
