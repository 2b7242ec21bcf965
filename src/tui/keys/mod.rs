//! Keys are data: one table of (key, action, context, help, dangerous) from which key
//! dispatch, the footer hints and the `?` help screen are all generated.
//!
//! The table itself is in [`table`] (data only); this file holds its types and what is
//! generated from it.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

mod table;
pub use table::KEYS;

/// Something the operator asks for. Keys and palette commands both map to these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Leave pxelab (stops the servers).
    Quit,
    /// Move the selection up.
    Up,
    /// Move the selection down.
    Down,
    /// One page up.
    PageUp,
    /// One page down.
    PageDown,
    /// First row.
    Top,
    /// Last row (in the event pane: follow new events).
    Bottom,
    /// Open the selected node's detail.
    Open,
    /// Close the dialog / clear the filter / go back.
    Back,
    /// Type a filter for the focused pane.
    Filter,
    /// Open the command palette.
    Palette,
    /// Show the key help.
    Help,
    /// Adopt the selected held or unknown MAC.
    Adopt,
    /// Change the selected node's role.
    ChangeRole,
    /// Remove the selected node from lab.yaml.
    Forget,
    /// Reboot the selected node over SSH.
    Reboot,
    /// Power the selected node on with its `power:` driver (Wake-on-LAN by default).
    Wake,
    /// Power-cycle the selected node with its `power:` driver.
    PowerCycle,
    /// Next sort column.
    SortNext,
    /// Reverse the sort.
    SortReverse,
    /// Switch focus between nodes and events.
    FocusNext,
    /// Next tab of what the node was served.
    NextTab,
    /// Confirm the dialog.
    Confirm,
    /// Next field of a dialog.
    NextField,
    /// Show the node's previous boot instead of the current one (and back).
    PreviousBoot,
    /// Complete the command being typed.
    Complete,
    /// Empty the dialog's text field (as Ctrl-U does in a shell).
    ClearField,
    /// Wrap or cut the long lines of the detail view's failure section.
    ToggleWrap,
}

/// Where a binding applies. Lookup goes from the innermost context out to `Global`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Context {
    /// Main and detail screens, when no dialog is open.
    Global,
    /// The node table has focus.
    Nodes,
    /// The event pane has focus.
    Events,
    /// Node detail.
    Detail,
    /// The help screen.
    Help,
    /// The adoption / change-role dialog.
    Dialog,
    /// A yes/no confirmation.
    Confirm,
    /// The palette or filter line.
    Input,
}

impl Context {
    /// A heading for the help screen.
    pub fn title(&self) -> &'static str {
        match self {
            Context::Global => "Everywhere",
            Context::Nodes => "Node table",
            Context::Events => "Event pane",
            Context::Detail => "Node detail",
            Context::Help => "Help",
            Context::Dialog => "Adopt / change-role dialog",
            Context::Confirm => "Confirmation",
            Context::Input => "Palette and filter line",
        }
    }
}

/// A key with modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyBinding {
    /// The key.
    pub code: KeyCode,
    /// Ctrl/Alt (Shift is part of the character).
    pub mods: KeyModifiers,
}

impl KeyBinding {
    const fn plain(code: KeyCode) -> KeyBinding {
        KeyBinding {
            code,
            mods: KeyModifiers::NONE,
        }
    }
    const fn ch(c: char) -> KeyBinding {
        KeyBinding::plain(KeyCode::Char(c))
    }
    const fn ctrl(c: char) -> KeyBinding {
        KeyBinding {
            code: KeyCode::Char(c),
            mods: KeyModifiers::CONTROL,
        }
    }

    /// A short label: `j`, `↓`, `Enter`, `Ctrl-C`.
    pub fn label(&self) -> String {
        let k = match self.code {
            KeyCode::Char(' ') => "Space".to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "S-Tab".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Backspace => "Bksp".into(),
            other => format!("{other:?}"),
        };
        if self.mods.contains(KeyModifiers::CONTROL) {
            format!("Ctrl-{}", k.to_uppercase())
        } else {
            k
        }
    }

    /// Whether a terminal key event is this binding.
    pub fn matches(&self, ev: &KeyEvent) -> bool {
        let mods = ev.modifiers - KeyModifiers::SHIFT;
        let code = match ev.code {
            // Some terminals report Ctrl-letters upper-case.
            KeyCode::Char(c) if mods.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            c => c,
        };
        code == self.code && mods == self.mods
    }
}

/// One row of the key table.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    /// The key.
    pub key: KeyBinding,
    /// What it does.
    pub action: Action,
    /// Where.
    pub context: Context,
    /// A line for the help screen.
    pub help: &'static str,
    /// The footer's hint (`None`: help screen only).
    pub footer: Option<Hint>,
    /// Changes lab.yaml or a machine and asks to confirm.
    pub dangerous: bool,
}

pub(super) const fn b(
    key: KeyBinding,
    action: Action,
    context: Context,
    help: &'static str,
    footer: Option<Hint>,
    dangerous: bool,
) -> Binding {
    Binding {
        key,
        action,
        context,
        help,
        footer,
        dangerous,
    }
}

/// A footer hint: its word and how much it is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hint {
    /// The word after the key (`filter`).
    pub word: &'static str,
    /// 1 is kept longest; when the terminal is narrow, hints go from the highest number
    /// down, so `q quit` and `/ filter` stay on an 80-column footer.
    pub priority: u8,
}

pub(super) const fn h(word: &'static str, priority: u8) -> Option<Hint> {
    Some(Hint { word, priority })
}

/// The action a key means in `contexts` (innermost first), if any.
pub fn lookup(ev: &KeyEvent, contexts: &[Context]) -> Option<Action> {
    if ev.kind == KeyEventKind::Release {
        return None;
    }
    contexts.iter().find_map(|c| {
        KEYS.iter()
            .find(|b| b.context == *c && b.key.matches(ev))
            .map(|b| b.action)
    })
}

/// One footer hint: key label, word, dangerous.
pub type FooterHint = (String, &'static str, bool);

/// Footer hints for `contexts`: (keys, word, dangerous), one per action, in table order.
pub fn footer(contexts: &[Context]) -> Vec<FooterHint> {
    footer_ranked(contexts)
        .into_iter()
        .map(|(hint, _)| hint)
        .collect()
}

fn footer_ranked(contexts: &[Context]) -> Vec<(FooterHint, u8)> {
    let mut out = Vec::new();
    let mut seen: Vec<Action> = Vec::new();
    let mut keys_seen: Vec<KeyBinding> = Vec::new();
    for c in contexts {
        for bd in KEYS.iter().filter(|b| b.context == *c) {
            if seen.contains(&bd.action) || keys_seen.contains(&bd.key) {
                continue;
            }
            keys_seen.push(bd.key);
            if let Some(hint) = bd.footer {
                seen.push(bd.action);
                out.push(((bd.key.label(), hint.word, bd.dangerous), hint.priority));
            }
        }
    }
    out
}

/// The width of a hint as the footer draws it: `key word` and two spaces.
pub fn hint_width(h: &FooterHint) -> usize {
    h.0.chars().count() + 1 + h.1.chars().count() + 2
}

/// The footer hints that fit in `width` columns (one leading space): the least used
/// (highest priority number, later in the table first) are left out until the rest fit,
/// so a narrow terminal keeps the keys people reach for and never cuts one in half.
pub fn footer_within(contexts: &[Context], width: usize) -> Vec<FooterHint> {
    let mut ranked = footer_ranked(contexts);
    let total = |r: &[(FooterHint, u8)]| 1 + r.iter().map(|(h, _)| hint_width(h)).sum::<usize>();
    // Bounded: each turn removes one hint.
    while total(&ranked) > width && !ranked.is_empty() {
        let worst = ranked
            .iter()
            .enumerate()
            .max_by_key(|(i, (_, p))| (*p, *i))
            .map(|(i, _)| i)
            .unwrap_or(0);
        ranked.remove(worst);
    }
    ranked.into_iter().map(|(hint, _)| hint).collect()
}

/// One help line: keys (space separated), help text, dangerous.
pub type HelpRow = (String, &'static str, bool);

/// Help lines grouped by context: (context, [(keys joined, help, dangerous)]).
pub fn help() -> Vec<(Context, Vec<HelpRow>)> {
    let order = [
        Context::Global,
        Context::Nodes,
        Context::Events,
        Context::Detail,
        Context::Dialog,
        Context::Confirm,
        Context::Input,
        Context::Help,
    ];
    order
        .iter()
        .map(|c| {
            let mut rows: Vec<HelpRow> = Vec::new();
            for bd in KEYS.iter().filter(|b| b.context == *c) {
                match rows.iter_mut().find(|r| r.1 == bd.help) {
                    Some(r) => {
                        r.0.push(' ');
                        r.0.push_str(&bd.key.label());
                    }
                    None => rows.push((bd.key.label(), bd.help, bd.dangerous)),
                }
            }
            (*c, rows)
        })
        .collect()
}
