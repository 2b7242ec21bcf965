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

use serde::Deserialize;

mod color;
mod slots;

pub use color::{xterm_rgb, Color, StyleSpec};
use slots::{EventPatch, StatePatch, UiPatch};
pub use slots::{EventSlots, StateSlots, UiSlots};

/// The themes shipped inside the binary, by name.
pub const BUILTIN: [(&str, &str); 3] = [
    ("dark", include_str!("../../../themes/dark.yaml")),
    ("light", include_str!("../../../themes/light.yaml")),
    (
        "high-contrast",
        include_str!("../../../themes/high-contrast.yaml"),
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
