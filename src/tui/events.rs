//! The event pane's bounded ring: events as they arrive on the bus, pre-formatted once.
//!
//! An event that says what the line before it said (same machine and kind, same fields
//! but for how long it took) is counted on that line (`×N`) instead of taking a new one:
//! a held machine's iPXE wait loop fetches its script every few seconds, and without this
//! it pushed every other event off the pane within minutes.

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
            EventKind::HttpStart { .. }
            | EventKind::HttpFetch { .. }
            | EventKind::ApkCache { .. } => EventClass::Http,
            EventKind::NodeHeld
            | EventKind::ArchSeen { .. }
            | EventKind::NodeAdopted { .. }
            | EventKind::NodeForgotten
            | EventKind::NodeChanged { .. }
            | EventKind::Power { .. }
            | EventKind::Roll { .. } => EventClass::Inventory,
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
            | EventKind::K3sSnapshot { .. }
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
    /// How many like events this line stands for (1 or more; see [`EventRing::push_line`]).
    pub repeats: u32,
    /// The event's fields without timings: what "the same event again" compares.
    pub gist: String,
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
            repeats: 1,
            gist: gist(&ev.kind),
        }
    }

    /// Whether `other` says the same thing (timings aside).
    fn same_as(&self, other: &EventLine) -> bool {
        self.kind == other.kind && self.who == other.who && self.gist == other.gist
    }

    /// Whether the line matches a filter word (lower-case).
    pub fn matches(&self, needle_lower: &str) -> bool {
        contains_ci(&self.who, needle_lower)
            || contains_ci(self.kind, needle_lower)
            || contains_ci(&self.text, needle_lower)
    }
}

/// Fields that measure one occurrence rather than say what happened.
const TIMINGS: [&str; 2] = ["ms", "attempt"];

/// An event kind's fields as JSON, timings removed.
fn gist(kind: &EventKind) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::Object(mut fields)) => {
            for t in TIMINGS {
                fields.remove(t);
            }
            serde_json::Value::Object(fields).to_string()
        }
        Ok(other) => other.to_string(),
        Err(_) => kind.describe(),
    }
}

/// Case-insensitive substring test; `needle` must already be lower-case.
pub fn contains_ci(hay: &str, needle: &str) -> bool {
    needle.is_empty() || hay.to_lowercase().contains(needle)
}

/// How many of the newest lines a repeated event may be counted on.
pub const REPEAT_LOOKBACK: usize = 8;

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
    /// Returns whether the pane gained a line (a repeat only counts on the last one).
    pub fn push(&mut self, ev: &Event) -> bool {
        if ev.kind.is_node_local() {
            return false;
        }
        self.push_line(EventLine::from_event(ev))
    }

    /// Adds a formatted line, or counts it on a recent line that says the same thing
    /// (one of the last [`REPEAT_LOOKBACK`]), which then moves to the bottom: a held
    /// machine's wait loop stays one counted line even while other nodes' events arrive
    /// between its fetches. Returns whether a line was added.
    pub fn push_line(&mut self, line: EventLine) -> bool {
        self.received += 1;
        let recent = self.lines.len().saturating_sub(REPEAT_LOOKBACK);
        let same = (recent..self.lines.len())
            .rev()
            .find(|&i| self.lines[i].same_as(&line));
        if let Some(mut earlier) = same.and_then(|i| self.lines.remove(i)) {
            earlier.repeats = earlier.repeats.saturating_add(line.repeats);
            earlier.at_ms = line.at_ms;
            earlier.text = line.text;
            self.lines.push_back(earlier);
            return false;
        }
        if self.lines.len() == EVENT_RING_CAP {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
        true
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

#[cfg(test)]
mod tests {
    use super::*;

    fn line(who: &str, text: &str, at_ms: u64) -> EventLine {
        EventLine {
            at_ms,
            who: who.to_string(),
            kind: "http-fetch",
            text: text.to_string(),
            class: EventClass::Http,
            repeats: 1,
            gist: text.to_string(),
        }
    }

    #[test]
    fn a_repeated_event_counts_on_its_recent_line_which_moves_to_the_bottom() {
        let mut ring = EventRing::default();
        assert!(ring.push_line(line("aa", "HTTP 200 /boot.ipxe", 1)));
        assert!(!ring.push_line(line("aa", "HTTP 200 /boot.ipxe", 2)));
        assert!(!ring.push_line(line("aa", "HTTP 200 /boot.ipxe", 3)));
        assert!(ring.push_line(line("bb", "HTTP 200 /boot.ipxe", 4)));
        // Another event between two fetches of a wait loop does not split its count.
        assert!(!ring.push_line(line("aa", "HTTP 200 /boot.ipxe", 5)));
        let kept: Vec<(u32, u64)> = ring.lines().iter().map(|l| (l.repeats, l.at_ms)).collect();
        assert_eq!(kept, vec![(1, 4), (4, 5)]);
        assert_eq!(ring.received, 5);
        // Past the lookback, the same event is a line of its own again.
        for i in 0..REPEAT_LOOKBACK as u64 {
            ring.push_line(line("cc", &format!("other {i}"), 6 + i));
        }
        assert!(ring.push_line(line("aa", "HTTP 200 /boot.ipxe", 20)));
        assert_eq!(ring.len(), 2 + REPEAT_LOOKBACK + 1);
    }

    #[test]
    fn fetches_that_differ_only_in_how_long_they_took_are_one_line() {
        let fetch = |ms: u64, path: &str| Event {
            seq: 0,
            at_ms: ms,
            mac: None,
            hostname: Some("node-6".to_string()),
            kind: EventKind::HttpFetch {
                path: path.to_string(),
                client: std::net::IpAddr::from([10, 0, 0, 6]),
                what: crate::engine::FetchKind::HoldScript,
                status: 200,
                bytes: 196,
                ms,
            },
        };
        let mut ring = EventRing::default();
        assert!(ring.push(&fetch(0, "/boot.ipxe")));
        assert!(!ring.push(&fetch(8, "/boot.ipxe")));
        assert!(ring.push(&fetch(3, "/other.ipxe")));
        assert_eq!(ring.lines()[0].repeats, 2);
        assert!(
            ring.lines()[0].text.contains("in 8 ms"),
            "{}",
            ring.lines()[0].text
        );
    }

    #[test]
    fn the_ring_stays_bounded() {
        let mut ring = EventRing::default();
        for i in 0..(EVENT_RING_CAP as u64 + 10) {
            ring.push_line(line("aa", &format!("n{i}"), i));
        }
        assert_eq!(ring.len(), EVENT_RING_CAP);
        assert_eq!(ring.lines().front().map(|l| l.text.as_str()), Some("n10"));
    }
}
