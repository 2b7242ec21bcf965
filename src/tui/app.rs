//! The console's state, without a terminal: what is shown, what is selected, which
//! dialog is open. Keys become [`Action`]s (see [`super::keys`]); actions change the
//! state and may return [`Effect`]s that the run loop carries out against the engine
//! (adoption, forget, …), so everything here is testable without a terminal or engine.

use std::cell::Cell;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::dialog::{Confirm, ConfirmWhat, DialogKind, Field, NodeDialog};
use super::events::{contains_ci, EventRing};
use super::keys::{self, Action, Context};
pub use super::labinfo::{LabInfo, ServerSpec};
use super::palette::{self, Command};
use super::served::Served;
use super::theme::Theme;
use crate::engine::{Event, NodeRecord, NodeState, Snapshot};
use crate::mac::Mac;

/// Which screen is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    /// Header, node table, event pane.
    Main,
    /// One node's timeline, logs and served files.
    Detail,
}

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
        palette::SORT_NAMES[SortKey::ORDER.iter().position(|k| k == self).unwrap_or(0)]
    }

    fn next(&self) -> SortKey {
        let i = SortKey::ORDER.iter().position(|k| k == self).unwrap_or(0);
        SortKey::ORDER[(i + 1) % SortKey::ORDER.len()]
    }

    fn by_name(n: &str) -> Option<SortKey> {
        palette::SORT_NAMES
            .iter()
            .position(|s| *s == n)
            .map(|i| SortKey::ORDER[i])
    }
}

/// A line of text being typed (palette or filter).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Input {
    /// The text.
    pub text: String,
    /// The highlighted suggestion.
    pub pick: usize,
}

/// What is drawn over the screen.
#[derive(Debug, Clone, PartialEq)]
pub enum Overlay {
    /// Key help.
    Help {
        /// Lines scrolled.
        scroll: u16,
    },
    /// `:` palette.
    Palette(Input),
    /// `/` filter.
    Filter(Input),
    /// Adopt or change role.
    Dialog(NodeDialog),
    /// Yes/no for a dangerous action.
    Confirm(Confirm),
}

/// How serious a flash message is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Done / FYI.
    Info,
    /// Not done, nothing broken.
    Warn,
    /// Failed.
    Error,
}

/// A short message in the flash line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    /// The text.
    pub text: String,
    /// Its level.
    pub level: Level,
    /// Hidden after this time (ms since epoch).
    pub until_ms: u64,
}

/// How long a flash stays.
pub const FLASH_MS: u64 = 5_000;

/// One node's detail, loaded by the run loop.
#[derive(Debug, Clone, PartialEq)]
pub struct Detail {
    /// The node.
    pub mac: Mac,
    /// Its full record (refreshed when the engine changes).
    pub record: Option<NodeRecord>,
    /// What it is served (masked).
    pub served: Vec<Served>,
    /// Which served file is shown.
    pub tab: usize,
    /// Scroll of the served file.
    pub scroll: u16,
    /// Show the previous boot instead of the current one (`p`).
    pub previous: bool,
    /// The failure (or stall) section alone, on the whole screen (Enter).
    pub why_full: bool,
    /// Cut the failure section's long lines to one row each instead of wrapping them
    /// (`w`): a 250-column k3s line wraps to several rows, which is what one wants to
    /// read it and not always to see the rest.
    pub cut_lines: bool,
}

/// Something the run loop must do with the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Stop pxelab.
    Quit,
    /// Load a node's record and served files into `App::detail`.
    LoadDetail(Mac),
    /// Open the adoption dialog (needs roles and suggested hostnames).
    OpenAdopt(Mac),
    /// Open the change-role dialog.
    OpenChange(Mac),
    /// Adopt (writes lab.yaml; run off the UI task).
    Adopt {
        /// MAC.
        mac: Mac,
        /// Role.
        role: String,
        /// Hostname.
        hostname: String,
        /// Fixed address (server mode).
        ip: Option<std::net::Ipv4Addr>,
    },
    /// Change role/hostname (writes lab.yaml).
    Change {
        /// MAC.
        mac: Mac,
        /// Role.
        role: String,
        /// Hostname.
        hostname: String,
    },
    /// Remove from lab.yaml.
    Forget(Mac),
    /// Reboot over SSH.
    Reboot(Mac),
    /// Load and apply a theme by name or path.
    SetTheme(String),
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

/// The whole console state.
#[derive(Debug, Clone)]
pub struct App {
    /// Screen.
    pub screen: Screen,
    /// Focused pane.
    pub focus: Focus,
    /// Open overlay.
    pub overlay: Option<Overlay>,
    /// Colours.
    pub theme: Theme,
    /// Lab facts.
    pub lab: LabInfo,
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
    /// Events for the pane.
    pub events: EventRing,
    /// Lines scrolled back in the event pane (0 follows new events).
    pub events_back: usize,
    /// The flash line.
    pub flash: Option<Flash>,
    /// Node detail.
    pub detail: Option<Detail>,
    /// "Now" for ages, ms since epoch (injected by the loop or a test).
    pub now_ms: u64,
    /// Local time offset for clock columns.
    pub tz_offset_s: i32,
    /// Rows of the node table that fit on screen (set by the loop from the terminal size).
    pub page: usize,
    /// Set when `:quit`/`q` was chosen.
    pub quit: bool,
    rows_version: u64,
    rows_dirty: bool,
    selected_mac: Option<Mac>,
    /// First visible row of the node table (kept by the renderer).
    pub table_offset: Cell<usize>,
}

impl App {
    /// A fresh console state.
    pub fn new(theme: Theme, lab: LabInfo) -> App {
        App {
            screen: Screen::Main,
            focus: Focus::Nodes,
            overlay: None,
            theme,
            lab,
            sort: SortKey::Default,
            reverse: false,
            node_filter: String::new(),
            event_filter: String::new(),
            rows: Vec::new(),
            selected: 0,
            events: EventRing::default(),
            events_back: 0,
            flash: None,
            detail: None,
            now_ms: 0,
            tz_offset_s: 0,
            page: 10,
            quit: false,
            rows_version: 0,
            rows_dirty: true,
            selected_mac: None,
            table_offset: Cell::new(0),
        }
    }

    /// Shows a flash message.
    pub fn flash(&mut self, level: Level, text: impl Into<String>) {
        self.flash = Some(Flash {
            text: text.into(),
            level,
            until_ms: self.now_ms + FLASH_MS,
        });
    }

    /// The selected row's MAC.
    pub fn selected_mac(&self) -> Option<Mac> {
        self.rows.get(self.selected).map(|r| r.mac)
    }

    fn selected_row(&self) -> Option<RowRef> {
        self.rows.get(self.selected).copied()
    }

    /// Adds an event from the bus to the pane.
    pub fn push_event(&mut self, ev: &Event) {
        let before = self.events.received;
        self.events.push(ev);
        if self.events_back > 0 && self.events.received > before {
            self.events_back = (self.events_back + 1).min(self.events.len());
        }
    }

    /// Key contexts active now, innermost first.
    pub fn contexts(&self) -> Vec<Context> {
        match &self.overlay {
            Some(Overlay::Help { .. }) => vec![Context::Help],
            Some(Overlay::Palette(_)) | Some(Overlay::Filter(_)) => vec![Context::Input],
            Some(Overlay::Dialog(_)) => vec![Context::Dialog],
            Some(Overlay::Confirm(_)) => vec![Context::Confirm],
            None => match (self.screen, self.focus) {
                (Screen::Detail, _) => vec![Context::Detail, Context::Global],
                (Screen::Main, Focus::Nodes) => vec![Context::Nodes, Context::Global],
                (Screen::Main, Focus::Events) => vec![Context::Events, Context::Global],
            },
        }
    }

    /// Handles a key press.
    pub fn on_key(&mut self, ev: &KeyEvent) -> Vec<Effect> {
        if ev.kind == KeyEventKind::Release {
            return Vec::new();
        }
        let plain_char = match ev.code {
            KeyCode::Char(c)
                if !ev
                    .modifiers
                    .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT) =>
            {
                Some(c)
            }
            _ => None,
        };
        let backspace = ev.code == KeyCode::Backspace;
        // Text entry first: characters go into the line being typed.
        match &mut self.overlay {
            Some(Overlay::Palette(i)) => {
                if let Some(c) = plain_char {
                    i.text.push(c);
                    i.pick = 0;
                    return Vec::new();
                }
                if backspace {
                    if i.text.pop().is_none() {
                        self.overlay = None;
                    }
                    return Vec::new();
                }
            }
            Some(Overlay::Filter(i)) if plain_char.is_some() || backspace => {
                match plain_char {
                    Some(c) => i.text.push(c),
                    None => {
                        i.text.pop();
                    }
                }
                let t = i.text.clone();
                self.set_filter(t);
                return Vec::new();
            }
            Some(Overlay::Dialog(d)) => {
                if d.field != Field::Role {
                    if let Some(c) = plain_char {
                        d.type_char(c);
                        return Vec::new();
                    }
                    if backspace {
                        d.backspace();
                        return Vec::new();
                    }
                } else if let Some(c @ ('j' | 'k')) = plain_char {
                    d.move_role(if c == 'j' { 1 } else { -1 });
                    return Vec::new();
                }
            }
            _ => {}
        }
        match keys::lookup(ev, &self.contexts()) {
            Some(a) => self.act(a),
            None => Vec::new(),
        }
    }

    fn set_filter(&mut self, t: String) {
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

    fn scroll_events(&mut self, delta: isize) {
        let max = self.events.len().saturating_sub(1) as isize;
        self.events_back = (self.events_back as isize + delta).clamp(0, max) as usize;
    }

    /// Carries out an action.
    pub fn act(&mut self, a: Action) -> Vec<Effect> {
        let page = self.page.max(1) as isize;
        match (&mut self.overlay, a) {
            (_, Action::Quit) => {
                self.quit = true;
                return vec![Effect::Quit];
            }
            (Some(Overlay::Help { .. }), Action::Back) => self.overlay = None,
            (Some(Overlay::Help { scroll }), Action::Down) => *scroll = scroll.saturating_add(1),
            (Some(Overlay::Help { scroll }), Action::Up) => *scroll = scroll.saturating_sub(1),
            (Some(Overlay::Confirm(_)), Action::Back) => {
                self.overlay = None;
                self.flash(Level::Info, "cancelled");
            }
            (Some(Overlay::Confirm(c)), Action::Confirm) => {
                let fx = match c.what {
                    ConfirmWhat::Forget(m) => Effect::Forget(m),
                    ConfirmWhat::Reboot(m) => Effect::Reboot(m),
                };
                self.overlay = None;
                return vec![fx];
            }
            (Some(Overlay::Dialog(_)), Action::Back) => {
                self.overlay = None;
                self.flash(Level::Info, "cancelled: lab.yaml unchanged");
            }
            (Some(Overlay::Dialog(d)), Action::NextField) => d.next_field(),
            (Some(Overlay::Dialog(d)), Action::ClearField) => d.clear_field(),
            (Some(Overlay::Dialog(d)), Action::Up) => d.move_role(-1),
            (Some(Overlay::Dialog(d)), Action::Down) => d.move_role(1),
            (Some(Overlay::Dialog(d)), Action::Confirm) => match d.effect() {
                Ok(fx) => {
                    let what = match (&fx, d.kind) {
                        (Effect::Adopt { hostname, .. }, _) => {
                            format!("adopting {} as {hostname}…", d.mac)
                        }
                        _ => format!("updating {}…", d.mac),
                    };
                    self.overlay = None;
                    self.flash(Level::Info, what);
                    return vec![fx];
                }
                Err(e) => {
                    d.error = Some(e);
                }
            },
            (Some(Overlay::Filter(_)), Action::Back) => {
                self.overlay = None;
                self.set_filter(String::new());
            }
            (Some(Overlay::Filter(_)), Action::Confirm) => self.overlay = None,
            (Some(Overlay::Palette(_)), Action::Back) => self.overlay = None,
            (Some(Overlay::Palette(i)), Action::Down) => i.pick = i.pick.saturating_add(1),
            (Some(Overlay::Palette(i)), Action::Up) => i.pick = i.pick.saturating_sub(1),
            (Some(Overlay::Palette(i)), Action::Complete) => {
                let c = palette::complete(&i.text);
                if !c.is_empty() {
                    let (line, _) = &c[i.pick.min(c.len() - 1)];
                    i.text = line.clone();
                    let takes_arg = palette::COMMANDS
                        .iter()
                        .any(|s| s.name == line.as_str() && !s.arg.is_empty());
                    if takes_arg {
                        i.text.push(' ');
                    }
                    i.pick = 0;
                }
            }
            (Some(Overlay::Palette(i)), Action::Confirm) => {
                let mut line = i.text.clone();
                let c = palette::complete(&line);
                // Enter on a partial word runs the highlighted suggestion.
                if palette::parse(&line).is_err() && !c.is_empty() && !line.contains(' ') {
                    line = c[i.pick.min(c.len() - 1)].0.clone();
                }
                self.overlay = None;
                return match palette::parse(&line) {
                    Ok(cmd) => self.run_command(cmd),
                    Err(e) => {
                        self.flash(Level::Error, format!(":{line}: {e}"));
                        Vec::new()
                    }
                };
            }
            (Some(_), _) => {}
            (None, a) => return self.act_screen(a, page),
        }
        Vec::new()
    }

    fn act_screen(&mut self, a: Action, page: isize) -> Vec<Effect> {
        match a {
            Action::Help => self.overlay = Some(Overlay::Help { scroll: 0 }),
            Action::Palette => self.overlay = Some(Overlay::Palette(Input::default())),
            Action::Filter => {
                if self.screen == Screen::Detail {
                    self.screen = Screen::Main;
                    self.detail = None;
                }
                let text = match self.focus {
                    Focus::Nodes => self.node_filter.clone(),
                    Focus::Events => self.event_filter.clone(),
                };
                self.overlay = Some(Overlay::Filter(Input { text, pick: 0 }));
            }
            Action::FocusNext => {
                self.focus = match self.focus {
                    Focus::Nodes => Focus::Events,
                    Focus::Events => Focus::Nodes,
                }
            }
            Action::SortNext => {
                self.sort = self.sort.next();
                self.rows_dirty = true;
                self.flash(Level::Info, format!("sorted by {}", self.sort.name()));
            }
            Action::SortReverse => {
                self.reverse = !self.reverse;
                self.rows_dirty = true;
            }
            Action::Adopt => return self.adopt_selected(),
            Action::ChangeRole => match self.target() {
                Some(r) if r.known => return vec![Effect::OpenChange(r.mac)],
                Some(r) => self.flash(
                    Level::Warn,
                    format!("{} is not in the lab yet: press a to adopt it", r.mac),
                ),
                None => self.flash(Level::Warn, "no node selected"),
            },
            Action::Forget => match self.target() {
                Some(r) if r.known => {
                    self.overlay = Some(Overlay::Confirm(Confirm {
                        what: ConfirmWhat::Forget(r.mac),
                        prompt: format!(
                            "Forget {}? It is removed from lab.yaml and held at its next boot.",
                            r.mac
                        ),
                    }))
                }
                Some(r) => self.flash(Level::Warn, format!("{} is not in the lab", r.mac)),
                None => self.flash(Level::Warn, "no node selected"),
            },
            Action::Reboot => match self.target() {
                Some(r) => {
                    self.overlay = Some(Overlay::Confirm(Confirm {
                        what: ConfirmWhat::Reboot(r.mac),
                        prompt: format!("Reboot {} over SSH now?", r.mac),
                    }))
                }
                None => self.flash(Level::Warn, "no node selected"),
            },
            _ => match self.screen {
                Screen::Detail => self.act_detail(a),
                Screen::Main => return self.act_main(a, page),
            },
        }
        Vec::new()
    }

    /// The node an action applies to: the detail's node, else the selected row.
    fn target(&self) -> Option<RowRef> {
        match (&self.screen, &self.detail) {
            (Screen::Detail, Some(d)) => Some(RowRef {
                idx: 0,
                mac: d.mac,
                known: d.record.as_ref().is_some_and(|r| r.known),
            }),
            _ => self.selected_row(),
        }
    }

    fn adopt_selected(&mut self) -> Vec<Effect> {
        match self.target() {
            Some(r) if r.known => {
                self.flash(
                    Level::Warn,
                    format!("{} is already in the lab (r changes its role)", r.mac),
                );
                Vec::new()
            }
            Some(r) => vec![Effect::OpenAdopt(r.mac)],
            None => {
                self.flash(Level::Warn, "no node selected");
                Vec::new()
            }
        }
    }

    fn act_detail(&mut self, a: Action) {
        if a == Action::PreviousBoot {
            self.toggle_previous_boot();
            return;
        }
        let Some(d) = &mut self.detail else {
            self.screen = Screen::Main;
            return;
        };
        match a {
            Action::Back => {
                self.screen = Screen::Main;
                self.detail = None;
            }
            Action::NextTab => {
                d.tab = (d.tab + 1) % d.served.len().max(1);
                d.scroll = 0;
            }
            Action::Open => d.why_full = !d.why_full,
            Action::Down => d.scroll = d.scroll.saturating_add(1),
            Action::Up => d.scroll = d.scroll.saturating_sub(1),
            Action::Top => d.scroll = 0,
            Action::ToggleWrap => d.cut_lines = !d.cut_lines,
            _ => {}
        }
    }

    /// `p` in the detail view: the previous boot, or back to the current one.
    fn toggle_previous_boot(&mut self) {
        let Some(d) = &mut self.detail else { return };
        let has = d.record.as_ref().is_some_and(|r| r.previous_boot.is_some());
        if has || d.previous {
            d.previous = !d.previous;
        } else {
            self.flash(Level::Info, "no earlier boot of this node seen in this run");
        }
    }

    fn act_main(&mut self, a: Action, page: isize) -> Vec<Effect> {
        match (self.focus, a) {
            (Focus::Nodes, Action::Down) => self.move_sel(1),
            (Focus::Nodes, Action::Up) => self.move_sel(-1),
            (Focus::Nodes, Action::PageDown) => self.move_sel(page),
            (Focus::Nodes, Action::PageUp) => self.move_sel(-page),
            (Focus::Nodes, Action::Top) => self.move_sel(-(self.rows.len() as isize)),
            (Focus::Nodes, Action::Bottom) => self.move_sel(self.rows.len() as isize),
            (Focus::Nodes, Action::Open) => {
                if let Some(m) = self.selected_mac() {
                    self.screen = Screen::Detail;
                    self.detail = None;
                    return vec![Effect::LoadDetail(m)];
                }
            }
            (Focus::Nodes, Action::Back) if !self.node_filter.is_empty() => {
                self.node_filter.clear();
                self.rows_dirty = true;
            }
            (Focus::Events, Action::Down) => self.scroll_events(-1),
            (Focus::Events, Action::Up) => self.scroll_events(1),
            (Focus::Events, Action::PageDown) => self.scroll_events(-page),
            (Focus::Events, Action::PageUp) => self.scroll_events(page),
            (Focus::Events, Action::Top) => self.scroll_events(self.events.len() as isize),
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
        Vec::new()
    }

    fn run_command(&mut self, cmd: Command) -> Vec<Effect> {
        match cmd {
            Command::Nodes => {
                self.screen = Screen::Main;
                self.detail = None;
                self.focus = Focus::Nodes;
            }
            Command::Events => {
                self.screen = Screen::Main;
                self.detail = None;
                self.focus = Focus::Events;
            }
            Command::Help => self.overlay = Some(Overlay::Help { scroll: 0 }),
            Command::Quit => {
                self.quit = true;
                return vec![Effect::Quit];
            }
            Command::Theme(t) => return vec![Effect::SetTheme(t)],
            Command::Sort(s) => {
                if let Some(k) = SortKey::by_name(&s) {
                    self.sort = k;
                    self.rows_dirty = true;
                }
            }
            Command::Adopt(None) => return self.adopt_selected(),
            Command::Adopt(Some(m)) => match m.parse::<Mac>() {
                Ok(mac) => return vec![Effect::OpenAdopt(mac)],
                Err(_) => self.flash(Level::Error, format!("`{m}` is not a MAC address")),
            },
        }
        Vec::new()
    }

    /// Opens the adoption or change-role dialog (called by the loop with lab facts).
    pub fn open_dialog(&mut self, d: NodeDialog) {
        self.overlay = Some(Overlay::Dialog(d));
    }

    /// Whether the dialog kind is open.
    pub fn dialog_open(&self, kind: DialogKind) -> bool {
        matches!(&self.overlay, Some(Overlay::Dialog(d)) if d.kind == kind)
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
