//! The console's state, without a terminal: which screen is shown, which overlay is
//! open, and what every screen shares (theme, lab facts, events, flash, clock). Keys
//! become [`Action`]s through the key table ([`super::keys`]); this module hands each to
//! the open overlay ([`super::overlay`]) or the shown screen ([`super::screen`]), which
//! change their state and may return [`Effect`]s that the run loop carries out against
//! the engine (adoption, forget, …), so everything here is testable without a terminal
//! or engine.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::events::EventRing;
use super::keys::{self, Action, Context};
pub use super::labinfo::{LabInfo, ServerSpec};
use super::overlay::confirm::Confirm;
use super::overlay::dialog::{DialogKind, NodeDialog};
pub use super::overlay::Overlay;
use super::overlay::{self, filter, Input};
use super::screen::detail::{self, Detail};
pub use super::screen::main::Focus;
use super::screen::main::{MainScreen, RowRef};
pub use super::screen::Screen;
use super::served::ServedCache;
use super::theme::Theme;
use crate::engine::Event;
use crate::mac::Mac;

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
    /// A power action with the node's driver.
    Power(Mac, crate::engine::service::PowerAction),
    /// Start a rolling reboot (the server last, confirmed).
    Roll,
    /// Stop the rolling reboot under way.
    RollStop,
    /// Load and apply a theme by name or path.
    SetTheme(String),
}

/// The whole console state.
#[derive(Debug, Clone)]
pub struct App {
    /// Screen.
    pub screen: Screen,
    /// Open overlay.
    pub overlay: Option<Overlay>,
    /// Colours.
    pub theme: Theme,
    /// Lab facts.
    pub lab: LabInfo,
    /// The main screen (node table and event pane).
    pub main: MainScreen,
    /// Node detail (shown on [`Screen::Detail`]).
    pub detail: Option<Detail>,
    /// What nodes are served, rendered once per node and lab (for the detail).
    pub served: ServedCache,
    /// Events for the pane (and the detail's per-node list).
    pub events: EventRing,
    /// The flash line.
    pub flash: Option<Flash>,
    /// "Now" for ages, ms since epoch (injected by the loop or a test).
    pub now_ms: u64,
    /// Local time offset for clock columns.
    pub tz_offset_s: i32,
    /// Rows of the node table that fit on screen (set by the loop from the terminal size).
    pub page: usize,
    /// Set when `:quit`/`q` was chosen.
    pub quit: bool,
    /// The server this console is attached to (`pxelab attach`), if any.
    pub attached: Option<super::attached::Attached>,
}

impl App {
    /// A fresh console state.
    pub fn new(theme: Theme, lab: LabInfo) -> App {
        App {
            screen: Screen::Main,
            overlay: None,
            theme,
            lab,
            main: MainScreen::default(),
            detail: None,
            served: ServedCache::default(),
            events: EventRing::default(),
            flash: None,
            now_ms: 0,
            tz_offset_s: 0,
            page: 10,
            quit: false,
            attached: None,
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
        self.main.selected_mac()
    }

    /// Re-filters and re-sorts the node rows (see [`MainScreen::sync`]).
    pub fn sync(&mut self, snap: &crate::engine::Snapshot) {
        self.main.sync(snap);
    }

    /// Adds an event from the bus to the pane.
    pub fn push_event(&mut self, ev: &Event) {
        let added = self.events.push(ev);
        self.main.event_arrived(added, self.events.len());
    }

    /// Key contexts active now, innermost first.
    pub fn contexts(&self) -> Vec<Context> {
        match &self.overlay {
            Some(o) => vec![o.context()],
            None => match (self.screen, self.main.focus) {
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
        if overlay::type_key(self, plain_char, backspace) {
            return Vec::new();
        }
        match keys::lookup(ev, &self.contexts()) {
            Some(a) => self.act(a),
            None => Vec::new(),
        }
    }

    /// Carries out an action: quit from anywhere, else the open overlay's, else the
    /// screen's.
    pub fn act(&mut self, a: Action) -> Vec<Effect> {
        if a == Action::Quit {
            self.quit = true;
            return vec![Effect::Quit];
        }
        if self.overlay.is_some() {
            return overlay::act(self, a);
        }
        self.act_screen(a)
    }

    /// Keys every screen shares (the global context), then the shown screen's own.
    fn act_screen(&mut self, a: Action) -> Vec<Effect> {
        match a {
            Action::Help => self.overlay = Some(Overlay::Help { scroll: 0 }),
            Action::Palette => self.overlay = Some(Overlay::Palette(Input::default())),
            Action::Filter => filter::open(self),
            Action::FocusNext => self.main.focus_next(),
            Action::SortNext => {
                let name = self.main.sort_next();
                self.flash(Level::Info, format!("sorted by {name}"));
            }
            Action::SortReverse => self.main.sort_reverse(),
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
                    self.overlay = Some(Overlay::Confirm(Confirm::forget(r.mac)));
                }
                Some(r) => self.flash(Level::Warn, format!("{} is not in the lab", r.mac)),
                None => self.flash(Level::Warn, "no node selected"),
            },
            Action::Reboot => match self.target() {
                Some(r) => self.overlay = Some(Overlay::Confirm(Confirm::reboot(r.mac))),
                None => self.flash(Level::Warn, "no node selected"),
            },
            Action::Wake | Action::PowerCycle => {
                use crate::engine::service::PowerAction;
                let action = if a == Action::Wake {
                    PowerAction::On
                } else {
                    PowerAction::Cycle
                };
                match self.target() {
                    Some(r) => match self.lab.power.get(&r.mac) {
                        Some(driver) => {
                            self.overlay =
                                Some(Overlay::Confirm(Confirm::power(r.mac, action, driver)))
                        }
                        None => self.flash(
                            Level::Warn,
                            format!("{} is not in the lab: it has no power driver", r.mac),
                        ),
                    },
                    None => self.flash(Level::Warn, "no node selected"),
                }
            }
            _ => match self.screen {
                Screen::Detail => detail::act(self, a),
                Screen::Main => {
                    let page = self.page.max(1) as isize;
                    if let Some(m) = self.main.act(a, page, &self.events) {
                        self.screen = Screen::Detail;
                        self.detail = None;
                        return vec![Effect::LoadDetail(m)];
                    }
                }
            },
        }
        Vec::new()
    }

    /// The main screen with `focus` (`:nodes`, `:events`), leaving the detail.
    pub fn show_main(&mut self, focus: Focus) {
        self.screen = Screen::Main;
        self.detail = None;
        self.main.focus = focus;
    }

    /// The node an action applies to: the detail's node, else the selected row.
    fn target(&self) -> Option<RowRef> {
        match (&self.screen, &self.detail) {
            (Screen::Detail, Some(d)) => Some(RowRef {
                idx: 0,
                mac: d.mac,
                known: d.record.as_ref().is_some_and(|r| r.known),
            }),
            _ => self.main.selected_row(),
        }
    }

    /// `a` / `:adopt`: the adoption dialog for the target, unless it is in the lab.
    pub(crate) fn adopt_selected(&mut self) -> Vec<Effect> {
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

    /// Opens the adoption or change-role dialog (called by the loop with lab facts).
    pub fn open_dialog(&mut self, d: NodeDialog) {
        self.overlay = Some(Overlay::Dialog(d));
    }

    /// Whether the dialog kind is open.
    pub fn dialog_open(&self, kind: DialogKind) -> bool {
        matches!(&self.overlay, Some(Overlay::Dialog(d)) if d.kind == kind)
    }
}
