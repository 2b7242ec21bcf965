//! Colour themes as data: YAML files of named slots, parsed into plain types.
//!
//! A theme has three sections: `ui` (header, borders, table header, selection, dialog,
//! footer, flash…), `event` (one slot per kind of event, plus `problem`) and `state`
//! (one slot per node state, named as the state is shown: `ipxe-loaded`, `ready`…).
//! A slot is a colour (`green`, `#a6e3a1`, `214`) meaning the foreground, or a map
//! `{fg, bg, bold, dim, italic, underline, reversed}`.
//!
//! The shipped themes (`dark`, `light`, `high-contrast`) are embedded in the binary. A
//! user file may say `base: dark` and set only the slots it changes; a file without a
//! base must set every slot. Nothing here knows ratatui: [`super::paint`] converts.

use std::path::{Path, PathBuf};

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::engine::NodeState;

/// The themes shipped inside the binary, by name.
pub const BUILTIN: [(&str, &str); 3] = [
    ("dark", include_str!("../../themes/dark.yaml")),
    ("light", include_str!("../../themes/light.yaml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.yaml"),
    ),
];

/// The theme used when nothing else is asked for.
pub const DEFAULT_THEME: &str = "dark";

/// Why a theme could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ThemeError {
    /// The file could not be read.
    #[error("theme {path}: {message}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error text.
        message: String,
    },
    /// A slot has a bad value, an unknown name, or the YAML is malformed.
    #[error("theme {path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, starting with the slot's path (`state.held.fg: …`).
        message: String,
    },
    /// `base:` names no shipped theme.
    #[error("theme {path}: unknown base `{base}` (shipped themes: dark, light, high-contrast)")]
    UnknownBase {
        /// The file.
        path: PathBuf,
        /// The base asked for.
        base: String,
    },
    /// A file without `base:` leaves slots unset.
    #[error("theme {path}: slot(s) not set: {slots} (or add `base: dark` to inherit them)")]
    Incomplete {
        /// The file.
        path: PathBuf,
        /// The missing slots, comma separated.
        slots: String,
    },
}

/// A colour, independent of any terminal library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Color {
    /// The terminal's default.
    #[default]
    Reset,
    /// One of the 16 ANSI colours, 0 (black) to 15 (white).
    Ansi(u8),
    /// An index into the 256-colour palette.
    Indexed(u8),
    /// True colour.
    Rgb(u8, u8, u8),
}

const NAMES: [&str; 16] = [
    "black",
    "red",
    "green",
    "yellow",
    "blue",
    "magenta",
    "cyan",
    "gray",
    "dark-gray",
    "light-red",
    "light-green",
    "light-yellow",
    "light-blue",
    "light-magenta",
    "light-cyan",
    "white",
];

impl Color {
    /// Parses `reset`, an ANSI name (`light-blue`), `#rrggbb` or a palette index `0`-`255`.
    pub fn parse(s: &str) -> Option<Color> {
        let t = s.trim().to_ascii_lowercase().replace('_', "-");
        if t == "reset" || t == "default" {
            return Some(Color::Reset);
        }
        if let Some(i) = NAMES.iter().position(|n| *n == t) {
            return Some(Color::Ansi(i as u8));
        }
        if let Some(hex) = t.strip_prefix('#') {
            if hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                let v = u32::from_str_radix(hex, 16).ok()?;
                return Some(Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8));
            }
            return None;
        }
        t.parse::<u8>().ok().map(Color::Indexed)
    }

    /// The colour as `#rrggbb` (ANSI and indexed colours mapped to xterm's values),
    /// `None` for the terminal default. Used by the screenshot renderer.
    pub fn to_hex(&self) -> Option<String> {
        let (r, g, b) = match *self {
            Color::Reset => return None,
            Color::Rgb(r, g, b) => (r, g, b),
            Color::Ansi(i) | Color::Indexed(i) => xterm_rgb(i),
        };
        Some(format!("#{r:02x}{g:02x}{b:02x}"))
    }
}

/// xterm's default RGB for a 256-colour index.
pub fn xterm_rgb(i: u8) -> (u8, u8, u8) {
    const BASE: [(u8, u8, u8); 16] = [
        (0, 0, 0),
        (205, 0, 0),
        (0, 205, 0),
        (205, 205, 0),
        (0, 0, 238),
        (205, 0, 205),
        (0, 205, 205),
        (229, 229, 229),
        (127, 127, 127),
        (255, 0, 0),
        (0, 255, 0),
        (255, 255, 0),
        (92, 92, 255),
        (255, 0, 255),
        (0, 255, 255),
        (255, 255, 255),
    ];
    match i {
        0..=15 => BASE[i as usize],
        16..=231 => {
            let n = i - 16;
            let step = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            (step(n / 36), step((n / 6) % 6), step(n % 6))
        }
        _ => {
            let v = 8 + (i - 232) * 10;
            (v, v, v)
        }
    }
}

impl<'de> Deserialize<'de> for Color {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Color;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a colour: a name (red, light-blue…), #rrggbb or 0-255")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Color, E> {
                Color::parse(s).ok_or_else(|| {
                    E::custom(format!(
                        "unknown colour `{s}`: use a name (red, light-blue, …), #rrggbb or 0-255"
                    ))
                })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Color, E> {
                u8::try_from(v)
                    .map(Color::Indexed)
                    .map_err(|_| E::custom(format!("colour index {v} is not in 0-255")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Color, E> {
                u8::try_from(v)
                    .map(Color::Indexed)
                    .map_err(|_| E::custom(format!("colour index {v} is not in 0-255")))
            }
        }
        d.deserialize_any(V)
    }
}

/// How one slot looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StyleSpec {
    /// Foreground.
    #[serde(default)]
    pub fg: Option<Color>,
    /// Background.
    #[serde(default)]
    pub bg: Option<Color>,
    /// Bold.
    #[serde(default)]
    pub bold: bool,
    /// Dim.
    #[serde(default)]
    pub dim: bool,
    /// Italic.
    #[serde(default)]
    pub italic: bool,
    /// Underlined.
    #[serde(default)]
    pub underline: bool,
    /// Foreground and background swapped.
    #[serde(default)]
    pub reversed: bool,
}

/// A slot value: a bare colour (the foreground) or a full [`StyleSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SlotValue(StyleSpec);

impl<'de> Deserialize<'de> for SlotValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = SlotValue;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a colour or a map {fg, bg, bold, dim, italic, underline, reversed}")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<SlotValue, E> {
                let fg = Color::parse(s).ok_or_else(|| {
                    E::custom(format!(
                        "unknown colour `{s}`: use a name (red, light-blue, …), #rrggbb or 0-255"
                    ))
                })?;
                Ok(SlotValue(StyleSpec {
                    fg: Some(fg),
                    ..StyleSpec::default()
                }))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SlotValue, E> {
                let fg = u8::try_from(v)
                    .map(Color::Indexed)
                    .map_err(|_| E::custom(format!("colour index {v} is not in 0-255")))?;
                Ok(SlotValue(StyleSpec {
                    fg: Some(fg),
                    ..StyleSpec::default()
                }))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<SlotValue, A::Error> {
                StyleSpec::deserialize(de::value::MapAccessDeserializer::new(map)).map(SlotValue)
            }
        }
        d.deserialize_any(V)
    }
}

macro_rules! slots {
    ($(#[$doc:meta])* $name:ident, $patch:ident, $rename:literal, $section:literal,
     [$($(#[$fdoc:meta])* $field:ident),* $(,)?]) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $($(#[$fdoc])* pub $field: StyleSpec,)*
        }

        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields, rename_all = $rename)]
        struct $patch {
            $(#[serde(default)] $field: Option<SlotValue>,)*
        }

        impl $patch {
            fn apply(self, to: &mut $name) {
                $(if let Some(v) = self.$field { to.$field = v.0; })*
            }
            fn missing(&self, out: &mut Vec<String>) {
                $(if self.$field.is_none() {
                    let n = stringify!($field);
                    let n = if $rename == "kebab-case" { n.replace('_', "-") } else { n.to_string() };
                    out.push(format!("{}.{}", $section, n));
                })*
            }
        }
    };
}

slots!(
    /// Slots of the console's furniture.
    UiSlots, UiPatch, "snake_case", "ui",
    [
        /// The whole frame (its `bg` paints every cell no widget colours).
        background,
        /// Plain text.
        text,
        /// Secondary text (column separators, hints).
        muted,
        /// The header bar.
        header,
        /// The lab name in the header.
        header_title,
        /// A server that is up.
        server_up,
        /// A server that is down or not started.
        server_down,
        /// Pane borders.
        border,
        /// The border of the focused pane.
        border_focus,
        /// Pane titles.
        title,
        /// The node table's header row.
        table_header,
        /// The selected row.
        selection,
        /// Dialog body.
        dialog,
        /// Dialog border and title.
        dialog_border,
        /// A text field being edited.
        input,
        /// The highlighted choice in a list.
        choice,
        /// The footer line.
        footer,
        /// Keys in the footer and help.
        footer_key,
        /// Keys of dangerous actions (forget, reboot).
        danger,
        /// Flash: information.
        flash_info,
        /// Flash: warning.
        flash_warn,
        /// Flash: error.
        flash_error,
        /// Masked secrets in served data.
        masked,
        /// Timeline: a step done.
        step_done,
        /// Timeline: the step in progress.
        step_current,
        /// Timeline: a step not reached.
        step_pending,
        /// Timeline: the failed step.
        step_failed,
    ]
);

slots!(
    /// Slots for the event pane, by kind of event.
    EventSlots, EventPatch, "snake_case", "event",
    [
        /// The time column.
        time,
        /// The node column.
        node,
        /// Servers and lab.yaml.
        lifecycle,
        /// DHCP.
        dhcp,
        /// TFTP.
        tftp,
        /// HTTP.
        http,
        /// Adoption and node changes.
        inventory,
        /// SSH and tiny-cloud.
        ssh,
        /// k3s.
        k3s,
        /// Anything flagged as a problem (refusals, failures).
        problem,
    ]
);

slots!(
    /// Slots for node rows, one per state.
    StateSlots, StatePatch, "kebab-case", "state",
    [
        /// idle
        idle,
        /// discovered
        discovered,
        /// held
        held,
        /// adopted
        adopted,
        /// offered
        offered,
        /// ipxe-loaded
        ipxe_loaded,
        /// script-served
        script_served,
        /// kernel
        kernel,
        /// initrd
        initrd,
        /// config-fetched
        config_fetched,
        /// ssh-up
        ssh_up,
        /// tiny-cloud
        tiny_cloud,
        /// bootstrapped
        bootstrapped,
        /// k3s-starting
        k3s_starting,
        /// joined
        joined,
        /// ready
        ready,
        /// failed
        failed,
    ]
);

impl StateSlots {
    /// The style of a node state.
    pub fn of(&self, s: NodeState) -> StyleSpec {
        match s {
            NodeState::Idle => self.idle,
            NodeState::Discovered => self.discovered,
            NodeState::Held => self.held,
            NodeState::Adopted => self.adopted,
            NodeState::Offered => self.offered,
            NodeState::IpxeLoaded => self.ipxe_loaded,
            NodeState::ScriptServed => self.script_served,
            NodeState::Kernel => self.kernel,
            NodeState::Initrd => self.initrd,
            NodeState::ConfigFetched => self.config_fetched,
            NodeState::SshUp => self.ssh_up,
            NodeState::TinyCloud => self.tiny_cloud,
            NodeState::Bootstrapped => self.bootstrapped,
            NodeState::K3sStarting => self.k3s_starting,
            NodeState::Joined => self.joined,
            NodeState::Ready => self.ready,
            NodeState::Failed => self.failed,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    base: Option<String>,
    #[serde(default)]
    ui: Option<UiPatch>,
    #[serde(default)]
    event: Option<EventPatch>,
    #[serde(default)]
    state: Option<StatePatch>,
}

/// A complete theme.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Theme {
    /// Its name (the file's `name:`, else the shipped name or file stem).
    pub name: String,
    /// Console furniture.
    pub ui: UiSlots,
    /// Event pane.
    pub event: EventSlots,
    /// Node rows by state.
    pub state: StateSlots,
}

impl Theme {
    /// A shipped theme by name.
    pub fn builtin(name: &str) -> Option<Result<Theme, ThemeError>> {
        BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, text)| Theme::parse(Path::new(&format!("themes/{n}.yaml")), text))
    }

    /// The default theme; a theme without colours if the embedded file were broken
    /// (a test guards against that).
    pub fn default_theme() -> Theme {
        match Theme::builtin(DEFAULT_THEME) {
            Some(Ok(t)) => t,
            _ => Theme::default(),
        }
    }

    /// A theme by shipped name or file path (relative paths against `dir`).
    pub fn load(spec: &str, dir: &Path) -> Result<Theme, ThemeError> {
        if let Some(t) = Theme::builtin(spec) {
            return t;
        }
        let p = Path::new(spec);
        let path = if p.is_absolute() {
            p.to_path_buf()
        } else {
            dir.join(p)
        };
        let text = std::fs::read_to_string(&path).map_err(|e| ThemeError::Io {
            path: path.clone(),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                format!("not found (shipped themes: {})", builtin_names().join(", "))
            } else {
                e.to_string()
            },
        })?;
        Theme::parse(&path, &text)
    }

    /// Parses theme YAML; `path` is used in errors.
    pub fn parse(path: &Path, text: &str) -> Result<Theme, ThemeError> {
        let file: ThemeFile = yaml_serde::from_str(text).map_err(|e| {
            let (line, column) = e
                .location()
                .map(|l| (l.line(), l.column()))
                .unwrap_or((1, 1));
            ThemeError::Invalid {
                path: path.to_path_buf(),
                line,
                column,
                message: e.to_string(),
            }
        })?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut theme = match &file.base {
            Some(b) => match BUILTIN.iter().find(|(n, _)| n == b) {
                Some((n, text)) => Theme::parse(Path::new(&format!("themes/{n}.yaml")), text)?,
                None => {
                    return Err(ThemeError::UnknownBase {
                        path: path.to_path_buf(),
                        base: b.clone(),
                    })
                }
            },
            None => {
                let mut missing = Vec::new();
                let ui = file.ui.clone().unwrap_or_default();
                let ev = file.event.clone().unwrap_or_default();
                let st = file.state.clone().unwrap_or_default();
                ui.missing(&mut missing);
                ev.missing(&mut missing);
                st.missing(&mut missing);
                if !missing.is_empty() {
                    return Err(ThemeError::Incomplete {
                        path: path.to_path_buf(),
                        slots: missing.join(", "),
                    });
                }
                Theme::default()
            }
        };
        theme.name = file.name.unwrap_or(stem);
        if let Some(p) = file.ui {
            p.apply(&mut theme.ui);
        }
        if let Some(p) = file.event {
            p.apply(&mut theme.event);
        }
        if let Some(p) = file.state {
            p.apply(&mut theme.state);
        }
        Ok(theme)
    }
}

/// Names of the shipped themes.
pub fn builtin_names() -> Vec<&'static str> {
    BUILTIN.iter().map(|(n, _)| *n).collect()
}
