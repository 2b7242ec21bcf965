//! The main screen: header, node table, live event pane. Its state (focus, sort,
//! filters, rows, selection, event scroll) and its keys are here; drawing is in [`draw()`],
//! with the [`header`] lines and the table's [`columns`].
//!
//! ```text
//!  pxelab ▸ homelab   ▲ proxyDHCP :67/:4011  ▲ TFTP :69  ▲ HTTP …:8080  ▲ admin :7480
//!  7 nodes  ● 2 ready  ↓ 1 kernel  ⏸ 1 held                dropped 0 · refused 0 · events 81
//! ┌ Nodes 7 · sort default ──────────────────────────────────────────────────────┐
//! │   HOSTNAME      MAC                ROLE        IP              STEP      UP  LAST │
//! │ ● node-0        a0:1a:2c:c3:d4:e0  k3s-server  192.168.64.140  ready   3m05s   2s │
//! │ ⏸ (unknown)     52:54:00:12:34:56  -           -               held: a adopts …   │
//! └──────────────────────────────────────────────────────────────────────────────┘
//! ┌ Events 81 ───────────────────────────────────────────────────────────────────┐
//! │ 12:00:01 node-0           http-fetch        HTTP 200 Kernel /assets/vmlinuz … │
//! └──────────────────────────────────────────────────────────────────────────────┘
//! ```

mod columns;
mod draw;
mod header;

use std::cell::Cell;

pub use draw::{draw, split};

use crate::engine::{NodeState, Snapshot};
use crate::mac::Mac;
use crate::tui::events::{contains_ci, EventRing};
use crate::tui::keys::Action;
use crate::tui::overlay::palette::SORT_NAMES;

/// Which pane of the main screen has the keyboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    /// The node table.
    Nodes,
    /// The event pane.
    Events,
}

/// Node table sort columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// lab.yaml nodes first, by hostname; then unknown MACs.
    Default,
    /// By boot state (problems and held first).
    State,
    /// By hostname.
    Host,
    /// By MAC.
    Mac,
    /// By address.
    Ip,
    /// By time since power-on.
    Up,
    /// By last event, most recent first.
    Last,
}

impl SortKey {
    const ORDER: [SortKey; 7] = [
        SortKey::Default,
        SortKey::State,
        SortKey::Host,
        SortKey::Mac,
        SortKey::Ip,
        SortKey::Up,
        SortKey::Last,
    ];

    /// The column's name (as `:sort` takes it).
    pub fn name(&self) -> &'static str {
        SORT_NAMES[SortKey::ORDER.iter().position(|k| k == self).unwrap_or(0)]
    }

    fn next(&self) -> SortKey {
        let i = SortKey::ORDER.iter().position(|k| k == self).unwrap_or(0);
        SortKey::ORDER[(i + 1) % SortKey::ORDER.len()]
    }

    fn by_name(n: &str) -> Option<SortKey> {
        SORT_NAMES
            .iter()
            .position(|s| *s == n)
            .map(|i| SortKey::ORDER[i])
    }
}

/// A row of the node table: index into the snapshot plus what actions need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowRef {
    /// Index into `Snapshot::nodes`.
    pub idx: usize,
    /// Its MAC.
    pub mac: Mac,
    /// Listed in lab.yaml.
    pub known: bool,
}

/// The main screen's state.
#[derive(Debug, Clone)]
pub struct MainScreen {
    /// Focused pane.
    pub focus: Focus,
    /// Sort column.
    pub sort: SortKey,
    /// Reverse the sort.
    pub reverse: bool,
    /// Node filter (leading `!` inverts).
    pub node_filter: String,
    /// Event filter (leading `!` inverts).
    pub event_filter: String,
    /// Rows shown, in order (filtered and sorted once per snapshot change).
    pub rows: Vec<RowRef>,
    /// Selected row.
    pub selected: usize,
    /// Lines scrolled back in the event pane (0 follows new events).
    pub events_back: usize,
    /// First visible row of the node table (kept by the renderer).
    pub table_offset: Cell<usize>,
    rows_version: u64,
    rows_dirty: bool,
    selected_mac: Option<Mac>,
}

impl Default for MainScreen {
    fn default() -> MainScreen {
        MainScreen {
            focus: Focus::Nodes,
            sort: SortKey::Default,
            reverse: false,
            node_filter: String::new(),
            event_filter: String::new(),
            rows: Vec::new(),
            selected: 0,
            events_back: 0,
            table_offset: Cell::new(0),
            rows_version: 0,
            rows_dirty: true,
            selected_mac: None,
        }
    }
}

impl MainScreen {
    /// The selected row's MAC.
    pub fn selected_mac(&self) -> Option<Mac> {
        self.rows.get(self.selected).map(|r| r.mac)
    }

    /// The selected row.
    pub fn selected_row(&self) -> Option<RowRef> {
        self.rows.get(self.selected).copied()
    }

    /// The focused pane's filter.
    pub fn filter(&self) -> &str {
        match self.focus {
            Focus::Nodes => &self.node_filter,
            Focus::Events => &self.event_filter,
        }
    }

    /// Sets the focused pane's filter.
    pub fn set_filter(&mut self, t: String) {
        match self.focus {
            Focus::Nodes => {
                self.node_filter = t;
                self.rows_dirty = true;
            }
            Focus::Events => {
                self.event_filter = t;
                self.events_back = 0;
            }
        }
    }

    /// Tab: the other pane.
    pub fn focus_next(&mut self) {
        self.focus = match self.focus {
            Focus::Nodes => Focus::Events,
            Focus::Events => Focus::Nodes,
        }
    }

    /// `s`: the next sort column; its name.
    pub fn sort_next(&mut self) -> &'static str {
        self.sort = self.sort.next();
        self.rows_dirty = true;
        self.sort.name()
    }

    /// `S`: the other direction.
    pub fn sort_reverse(&mut self) {
        self.reverse = !self.reverse;
        self.rows_dirty = true;
    }

    /// `:sort NAME` (names the palette has checked).
    pub fn sort_by_name(&mut self, name: &str) {
        if let Some(k) = SortKey::by_name(name) {
            self.sort = k;
            self.rows_dirty = true;
        }
    }

    /// Keeps the event pane where the operator scrolled it when a new event arrives
    /// (`received_new`: the ring took one more).
    pub fn event_arrived(&mut self, received_new: bool, events_len: usize) {
        if self.events_back > 0 && received_new {
            self.events_back = (self.events_back + 1).min(events_len);
        }
    }

    fn move_sel(&mut self, delta: isize) {
        let n = self.rows.len();
        if n == 0 {
            self.selected = 0;
            return;
        }
        let cur = self.selected as isize + delta;
        self.selected = cur.clamp(0, n as isize - 1) as usize;
        self.selected_mac = self.selected_mac();
    }

    fn scroll_events(&mut self, delta: isize, events_len: usize) {
        let max = events_len.saturating_sub(1) as isize;
        self.events_back = (self.events_back as isize + delta).clamp(0, max) as usize;
    }

    /// The main screen's keys: moving in the focused pane, Esc clearing its filter, Enter
    /// on a node. Returns the node to open in the detail screen.
    pub(crate) fn act(&mut self, a: Action, page: isize, events: &EventRing) -> Option<Mac> {
        match (self.focus, a) {
            (Focus::Nodes, Action::Down) => self.move_sel(1),
            (Focus::Nodes, Action::Up) => self.move_sel(-1),
            (Focus::Nodes, Action::PageDown) => self.move_sel(page),
            (Focus::Nodes, Action::PageUp) => self.move_sel(-page),
            (Focus::Nodes, Action::Top) => self.move_sel(-(self.rows.len() as isize)),
            (Focus::Nodes, Action::Bottom) => self.move_sel(self.rows.len() as isize),
            (Focus::Nodes, Action::Open) => return self.selected_mac(),
            (Focus::Nodes, Action::Back) if !self.node_filter.is_empty() => {
                self.node_filter.clear();
                self.rows_dirty = true;
            }
            (Focus::Events, Action::Down) => self.scroll_events(-1, events.len()),
            (Focus::Events, Action::Up) => self.scroll_events(1, events.len()),
            (Focus::Events, Action::PageDown) => self.scroll_events(-page, events.len()),
            (Focus::Events, Action::PageUp) => self.scroll_events(page, events.len()),
            (Focus::Events, Action::Top) => self.scroll_events(events.len() as isize, events.len()),
            (Focus::Events, Action::Bottom) => self.events_back = 0,
            (Focus::Events, Action::Back) => {
                if self.event_filter.is_empty() {
                    self.focus = Focus::Nodes;
                } else {
                    self.event_filter.clear();
                }
            }
            _ => {}
        }
        None
    }

    /// Re-filters and re-sorts the node rows when the snapshot or the sort/filter changed.
    /// Cheap when nothing changed; O(n log n) otherwise, never per frame for nothing.
    pub fn sync(&mut self, snap: &Snapshot) {
        if !self.rows_dirty && snap.version == self.rows_version {
            return;
        }
        let keep = self.selected_mac.or_else(|| self.selected_mac());
        let (needle, invert) = split_filter(&self.node_filter);
        let mut rows: Vec<RowRef> = snap
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| {
                if needle.is_empty() {
                    return true;
                }
                let hit = n
                    .hostname
                    .as_deref()
                    .is_some_and(|h| contains_ci(h, &needle))
                    || contains_ci(&n.mac.to_string(), &needle)
                    || n.role.as_deref().is_some_and(|r| contains_ci(r, &needle))
                    || n.ip.is_some_and(|ip| ip.to_string().contains(&needle))
                    || n.state.name().contains(&needle);
                hit != invert
            })
            .map(|(idx, n)| RowRef {
                idx,
                mac: n.mac,
                known: n.known,
            })
            .collect();
        let nodes = &snap.nodes;
        match self.sort {
            SortKey::Default => {}
            SortKey::State => rows.sort_by_key(|r| state_rank(nodes[r.idx].state)),
            SortKey::Host => rows.sort_by(|a, b| {
                let k = |r: &RowRef| {
                    (
                        nodes[r.idx].hostname.is_none(),
                        nodes[r.idx].hostname.clone(),
                        r.mac,
                    )
                };
                k(a).cmp(&k(b))
            }),
            SortKey::Mac => rows.sort_by_key(|r| r.mac),
            SortKey::Ip => rows.sort_by_key(|r| (nodes[r.idx].ip.is_none(), nodes[r.idx].ip)),
            SortKey::Up => rows.sort_by_key(|r| {
                let n = &nodes[r.idx];
                (n.boot_started_ms.is_none(), n.boot_started_ms)
            }),
            SortKey::Last => rows.sort_by_key(|r| std::cmp::Reverse(nodes[r.idx].last_event_ms)),
        }
        if self.reverse {
            rows.reverse();
        }
        self.rows = rows;
        self.rows_version = snap.version;
        self.rows_dirty = false;
        self.selected = keep
            .and_then(|m| self.rows.iter().position(|r| r.mac == m))
            .unwrap_or_else(|| self.selected.min(self.rows.len().saturating_sub(1)));
        self.selected_mac = self.selected_mac();
    }
}

/// Splits a filter into (lower-case needle, inverted).
pub fn split_filter(f: &str) -> (String, bool) {
    match f.strip_prefix('!') {
        Some(rest) => (rest.to_lowercase(), !rest.is_empty()),
        None => (f.to_lowercase(), false),
    }
}

/// Sort rank of a state: problems and held machines first, then by progress.
fn state_rank(s: NodeState) -> (u8, NodeState) {
    match s {
        NodeState::Failed => (0, s),
        NodeState::Held | NodeState::Discovered => (1, s),
        _ => (2, s),
    }
}
