//! Keys are data: one table of (key, action, context, help, dangerous) from which key
//! dispatch, the footer hints and the `?` help screen are all generated.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

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

const fn b(
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

const fn h(word: &'static str, priority: u8) -> Option<Hint> {
    Some(Hint { word, priority })
}

use Action as A;
use Context as C;
use KeyBinding as K;

/// Every key pxelab's console knows.
#[rustfmt::skip]
pub const KEYS: &[Binding] = &[
    b(
        K::ch('q'),
        A::Quit,
        C::Global,
        "quit pxelab (stops the servers)",
        h("quit", 1),
        false,
    ),
    b(K::ctrl('c'), A::Quit, C::Global, "quit pxelab", None, false),
    b(
        K::ch('?'),
        A::Help,
        C::Global,
        "this help",
        h("help", 2),
        false,
    ),
    b(
        K::ch(':'),
        A::Palette,
        C::Global,
        "command palette (:nodes :theme :quit…)",
        h("cmd", 4),
        false,
    ),
    b(
        K::ch('/'),
        A::Filter,
        C::Global,
        "filter the focused pane (!text inverts)",
        h("filter", 1),
        false,
    ),
    b(
        K::plain(KeyCode::Tab),
        A::FocusNext,
        C::Global,
        "switch focus: nodes ⇄ events",
        h("pane", 3),
        false,
    ),
    // node table
    b(K::ch('j'), A::Down, C::Nodes, "next node", None, false),
    b(
        K::plain(KeyCode::Down),
        A::Down,
        C::Nodes,
        "next node",
        None,
        false,
    ),
    b(K::ch('k'), A::Up, C::Nodes, "previous node", None, false),
    b(
        K::plain(KeyCode::Up),
        A::Up,
        C::Nodes,
        "previous node",
        None,
        false,
    ),
    b(K::ch('g'), A::Top, C::Nodes, "first node", None, false),
    b(
        K::plain(KeyCode::Home),
        A::Top,
        C::Nodes,
        "first node",
        None,
        false,
    ),
    b(K::ch('G'), A::Bottom, C::Nodes, "last node", None, false),
    b(
        K::plain(KeyCode::End),
        A::Bottom,
        C::Nodes,
        "last node",
        None,
        false,
    ),
    b(
        K::plain(KeyCode::PageDown),
        A::PageDown,
        C::Nodes,
        "page down",
        None,
        false,
    ),
    b(
        K::ctrl('d'),
        A::PageDown,
        C::Nodes,
        "page down",
        None,
        false,
    ),
    b(
        K::plain(KeyCode::PageUp),
        A::PageUp,
        C::Nodes,
        "page up",
        None,
        false,
    ),
    b(K::ctrl('u'), A::PageUp, C::Nodes, "page up", None, false),
    b(
        K::plain(KeyCode::Enter),
        A::Open,
        C::Nodes,
        "detail: timeline, logs, what it got",
        h("detail", 1),
        false,
    ),
    b(
        K::ch('a'),
        A::Adopt,
        C::Nodes,
        "adopt a held MAC: role and hostname",
        h("adopt", 1),
        false,
    ),
    b(
        K::ch('r'),
        A::ChangeRole,
        C::Nodes,
        "change the node's role (writes lab.yaml)",
        h("role", 3),
        false,
    ),
    b(
        K::ch('D'),
        A::Forget,
        C::Nodes,
        "forget: remove from lab.yaml",
        h("forget", 5),
        true,
    ),
    b(
        K::ch('R'),
        A::Reboot,
        C::Nodes,
        "reboot the node over SSH",
        h("reboot", 4),
        true,
    ),
    b(
        K::ch('s'),
        A::SortNext,
        C::Nodes,
        "sort by the next column",
        h("sort", 4),
        false,
    ),
    b(
        K::ch('S'),
        A::SortReverse,
        C::Nodes,
        "reverse the sort",
        None,
        false,
    ),
    b(
        K::plain(KeyCode::Esc),
        A::Back,
        C::Nodes,
        "clear the filter",
        None,
        false,
    ),
    // event pane
    b(K::ch('j'), A::Down, C::Events, "newer events", None, false),
    b(
        K::plain(KeyCode::Down),
        A::Down,
        C::Events,
        "newer events",
        None,
        false,
    ),
    b(K::ch('k'), A::Up, C::Events, "older events", None, false),
    b(
        K::plain(KeyCode::Up),
        A::Up,
        C::Events,
        "older events",
        None,
        false,
    ),
    b(
        K::ch('g'),
        A::Top,
        C::Events,
        "oldest event kept",
        None,
        false,
    ),
    b(
        K::ch('G'),
        A::Bottom,
        C::Events,
        "follow new events",
        h("follow", 2),
        false,
    ),
    b(
        K::plain(KeyCode::PageDown),
        A::PageDown,
        C::Events,
        "page down",
        None,
        false,
    ),
    b(
        K::plain(KeyCode::PageUp),
        A::PageUp,
        C::Events,
        "page up",
        None,
        false,
    ),
    b(
        K::plain(KeyCode::Esc),
        A::Back,
        C::Events,
        "clear the filter, back to nodes",
        None,
        false,
    ),
    // detail
    b(
        K::plain(KeyCode::Esc),
        A::Back,
        C::Detail,
        "back to the node table",
        h("back", 1),
        false,
    ),
    b(
        K::plain(KeyCode::Tab),
        A::NextTab,
        C::Detail,
        "next served file (script, user-data…)",
        h("served", 2),
        false,
    ),
    b(
        K::ch('p'),
        A::PreviousBoot,
        C::Detail,
        "the previous boot (again: this boot)",
        h("prev boot", 3),
        false,
    ),
    b(
        K::ch('w'),
        A::ToggleWrap,
        C::Detail,
        "wrap or cut the failure's long lines",
        None,
        false,
    ),
    b(
        K::plain(KeyCode::Enter),
        A::Open,
        C::Detail,
        "the failure alone, whole (again: back)",
        None,
        false,
    ),
    b(
        K::ch('j'),
        A::Down,
        C::Detail,
        "scroll the served file",
        None,
        false,
    ),
    b(
        K::plain(KeyCode::Down),
        A::Down,
        C::Detail,
        "scroll the served file",
        None,
        false,
    ),
    b(K::ch('k'), A::Up, C::Detail, "scroll back", None, false),
    b(
        K::plain(KeyCode::Up),
        A::Up,
        C::Detail,
        "scroll back",
        None,
        false,
    ),
    b(
        K::ch('g'),
        A::Top,
        C::Detail,
        "top of the served file",
        None,
        false,
    ),
    b(
        K::ch('a'),
        A::Adopt,
        C::Detail,
        "adopt this MAC",
        h("adopt", 1),
        false,
    ),
    b(
        K::ch('r'),
        A::ChangeRole,
        C::Detail,
        "change this node's role",
        None,
        false,
    ),
    b(
        K::ch('D'),
        A::Forget,
        C::Detail,
        "forget this node",
        None,
        true,
    ),
    b(
        K::ch('R'),
        A::Reboot,
        C::Detail,
        "reboot this node over SSH",
        h("reboot", 4),
        true,
    ),
    // help
    b(
        K::plain(KeyCode::Esc),
        A::Back,
        C::Help,
        "close help",
        h("close", 1),
        false,
    ),
    b(K::ch('?'), A::Back, C::Help, "close help", None, false),
    b(K::ch('q'), A::Back, C::Help, "close help", None, false),
    b(K::ch('j'), A::Down, C::Help, "scroll", None, false),
    b(
        K::plain(KeyCode::Down),
        A::Down,
        C::Help,
        "scroll",
        None,
        false,
    ),
    b(K::ch('k'), A::Up, C::Help, "scroll back", None, false),
    b(
        K::plain(KeyCode::Up),
        A::Up,
        C::Help,
        "scroll back",
        None,
        false,
    ),
    // dialog
    b(
        K::plain(KeyCode::Enter),
        A::Confirm,
        C::Dialog,
        "adopt / apply (writes lab.yaml)",
        h("apply", 1),
        false,
    ),
    b(
        K::plain(KeyCode::Esc),
        A::Back,
        C::Dialog,
        "cancel",
        h("cancel", 1),
        false,
    ),
    b(
        K::plain(KeyCode::Tab),
        A::NextField,
        C::Dialog,
        "next field (role, hostname, IP)",
        h("field", 2),
        false,
    ),
    b(
        K::ctrl('u'),
        A::ClearField,
        C::Dialog,
        "clear the hostname or IP field",
        None,
        false,
    ),
    b(
        K::plain(KeyCode::Up),
        A::Up,
        C::Dialog,
        "previous role",
        None,
        false,
    ),
    b(
        K::plain(KeyCode::Down),
        A::Down,
        C::Dialog,
        "next role",
        h("role", 3),
        false,
    ),
    // confirm
    b(
        K::ch('y'),
        A::Confirm,
        C::Confirm,
        "yes, do it",
        h("yes", 1),
        false,
    ),
    b(K::ch('n'), A::Back, C::Confirm, "no", h("no", 1), false),
    b(
        K::plain(KeyCode::Esc),
        A::Back,
        C::Confirm,
        "no",
        None,
        false,
    ),
    // palette / filter line
    b(
        K::plain(KeyCode::Enter),
        A::Confirm,
        C::Input,
        "run the command / keep the filter",
        h("run", 1),
        false,
    ),
    b(
        K::plain(KeyCode::Esc),
        A::Back,
        C::Input,
        "cancel (a filter is cleared)",
        h("cancel", 1),
        false,
    ),
    b(
        K::plain(KeyCode::Tab),
        A::Complete,
        C::Input,
        "complete the command",
        h("complete", 2),
        false,
    ),
    b(
        K::plain(KeyCode::Up),
        A::Up,
        C::Input,
        "previous suggestion",
        None,
        false,
    ),
    b(
        K::plain(KeyCode::Down),
        A::Down,
        C::Input,
        "next suggestion",
        None,
        false,
    ),
];

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
        C::Global,
        C::Nodes,
        C::Events,
        C::Detail,
        C::Dialog,
        C::Confirm,
        C::Input,
        C::Help,
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
